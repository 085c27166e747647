package acl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/aclrule"
	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conffile/locktest"
	"github.com/valkeyops/secure/internal/testserver"
)

// TestPersistPlansUnderTheLock plays a second operator for each way valkey_acl
// saves users: the test holds the lock of the file the users are saved to
// (as valkey_config, or another valkey_acl, would), the module must block on
// it, the other run changes the server (a user added) and the file
// (valkey_config's edit), releases, and the waiting run must plan from that
// (exclusive deletes the new user) and save after it (the other run's file
// edit and this run's user both end in the file). 0.1.0 took no lock: it
// planned and saved at once, and valkey_config's write then dropped its user.
func TestPersistPlansUnderTheLock(t *testing.T) {
	cases := []struct {
		name    string
		persist string
		start   func(t *testing.T) (*testserver.Server, string) // server, file the users go to
	}{
		{"config rewrite", "config", func(t *testing.T) (*testserver.Server, string) {
			srv := testserver.Start(t)
			return srv, srv.ConfPath
		}},
		{"acl save", "aclfile", func(t *testing.T) (*testserver.Server, string) { return startACL(t) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, file := tc.start(t)
			var res *ansible.Result
			var fields *Fields
			locktest.Race(t, file, func() {
				res, fields = mod.Call(t, task(srv, map[string]any{
					"users":     []any{map[string]any{"name": "app", "passwords": []string{"app-password-1"}, "keys": []string{"app:*"}, "commands": []string{"+get"}}},
					"exclusive": true, "persist": tc.persist,
				}))
			}, func() {
				// The other run, under the lock: a user in the server, and
				// (valkey_config) a line in the config file.
				srv.CLI("ACL", "SETUSER", "intruder", "on", ">intruder-password", "+@all", "~*")
				srv.ConfigSet("maxmemory", "100mb")
				conf := string(srv.ReadConf()) + "maxmemory 100mb\n"
				require.NoError(t, os.WriteFile(srv.ConfPath, []byte(conf), 0o640))
			})

			require.False(t, res.Failed, res.Msg)
			assert.Equal(t, []string{"app"}, fields.Created)
			assert.Equal(t, []string{"intruder"}, fields.Deleted, "planned from the users the other run left")
			list := aclList(t, srv, "", "")
			assert.Contains(t, list, "user app ")
			assert.NotContains(t, list, "intruder")
			saved := readText(t, file)
			assert.Contains(t, saved, "user app ")
			assert.NotContains(t, saved, "intruder")
			assert.Contains(t, string(srv.ReadConf()), "maxmemory 100mb", "the other run's file edit is kept")
		})
	}
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Clean(path))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// TestHashMaskedWhateverTheOrder: a message about an earlier user cannot
// show the hash of a later user's password (the raw output is printed at
// -vvvv before the controller masks it).
func TestHashMaskedWhateverTheOrder(t *testing.T) {
	srv, _ := startACL(t)
	pw := "later-user-password-1"
	hash := aclrule.HashPassword(pw)
	out, doc, code := mod.Printed(t, task(srv, map[string]any{"users": []any{
		map[string]any{"name": "first", "nopass": true, "keys": []string{hash + " x"}},
		map[string]any{"name": "second", "passwords": []string{pw}},
	}}))
	assert.Equal(t, 1, code)
	assert.Contains(t, doc["msg"], `user "first": key pattern`)
	assert.NotContains(t, out, hash)
	assert.NotContains(t, out, pw)
}
