package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/aclrule"
)

// The roles refuse the well-known passwords before a play changes anything;
// the audit fails a user that has one anyway (set by hand, or before the
// roles). One list: a role's copy that parts from the audit's fails here.
func TestRolesShareTheKnownBadPasswords(t *testing.T) {
	for file, key := range map[string]string{
		"../../roles/valkey_acl/vars/main.yml":    "valkey_acl_known_bad_passwords",
		"../../roles/valkey_server/vars/main.yml": "valkey_server_known_bad_passwords",
	} {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		var vars map[string]any
		require.NoError(t, yaml.Unmarshal(data, &vars))
		list, ok := vars[key].([]any)
		require.True(t, ok, "%s: %s is not a list", file, key)
		var got []string
		for _, v := range list {
			got = append(got, v.(string))
		}
		assert.Equal(t, KnownBadPasswords, got, "%s: %s differs from internal/policy/passwords.go", file, key)
	}
}

// A user's hash is compared with the hashes of each listed password as
// written, in capitals and capitalised; nothing else is guessed.
func TestKnownPasswordFromTheModel(t *testing.T) {
	for pw, known := range map[string]bool{"foobared": true, "Foobared": true, "FOOBARED": true, "fooBared": false,
		"a-strong-Password-9f8e": false, "123456": true, "": true} {
		u := aclrule.NewUser()
		sum := sha256.Sum256([]byte(pw))
		require.NoError(t, u.Apply("#"+hex.EncodeToString(sum[:])))
		assert.Equal(t, known, FromModel("u", u).KnownPassword, "%q", pw)
	}
}
