package acl

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

// A Sentinel has no CONFIG command and no aclfile: it keeps its users in its
// own config file, which SENTINEL FLUSHCONFIG rewrites. valkey_acl manages
// its users (the admin user, the user Sentinels log in to each other with,
// the default user turned off) and persists them that way.
func TestSentinelUsersPersistedByFlushConfig(t *testing.T) {
	s := testserver.StartSentinel(t)
	admin, peer := secret(t, "admin-"), secret(t, "peer-")
	args := task(s, map[string]any{"users": []any{
		map[string]any{"name": "sentinel-admin", "passwords": []any{admin}, "commands": []any{"+@all"}, "keys": []any{"~*"}, "channels": []any{"*"}},
		map[string]any{"name": "sentinel-peer", "passwords": []any{peer}, "commands": []any{"-@all", "+auth", "+client|getname", "+client|id", "+client|setname",
			"+command", "+hello", "+ping", "+role", "+sentinel|get-master-addr-by-name", "+sentinel|master",
			"+sentinel|myid", "+sentinel|replicas", "+sentinel|sentinels", "+sentinel|is-master-down-by-addr"}},
		map[string]any{"name": "default", "enabled": false},
	}})
	out, doc, code := mod.Printed(t, args)
	require.Equal(t, 0, code, out)
	assert.Equal(t, true, doc["changed"])
	assert.Equal(t, s.ConfPath, doc["persisted_to"])
	assert.NotContains(t, out, admin)
	conf := string(s.ReadConf())
	assert.Contains(t, conf, "\nuser sentinel-admin on ")
	assert.Contains(t, conf, "\nuser sentinel-peer on ")
	assert.Contains(t, conf, "\nuser default off ")
	assert.NotContains(t, conf, admin, "only the hash is written")

	// The rerun logs in as the admin (the default user is off now).
	args["login_user"], args["login_password"] = "sentinel-admin", admin
	res, _ := mod.CallOK(t, args)
	assert.False(t, res.Changed, "second run")
	assert.Equal(t, conf, string(s.ReadConf()))
	_, err := s.CLIErr("PING")
	require.NoError(t, err)
	anon, _ := s.CLIErr("SENTINEL", "MASTERS")
	assert.True(t, strings.HasPrefix(anon, "NOAUTH"), anon)
}
