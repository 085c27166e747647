package sentinel

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

// Every bad input is refused with one sentence before anything is read or
// changed: exit 1, changed false, no secret in the output, the Sentinel's
// monitors and its file byte-identical.
func TestBadInputChangesNothing(t *testing.T) {
	g := testserver.StartGroup(t, 0, 1)
	s := g.Sentinels[0]
	mod.CallOK(t, task(s, map[string]any{"monitors": []any{monitor("grp", g.Primary, map[string]any{"auth_user": "dn", "auth_pass": authPass})}}))
	m := func(fields map[string]any) []any { return []any{monitor("new", g.Primary, fields)} }
	tests := []struct {
		name string
		args map[string]any
		msg  string
	}{
		{"name with space", map[string]any{"monitors": m(map[string]any{"name": "a b"})}, `option "monitors[0].name": "a b" contains whitespace; expected characters Sentinel writes into its config file as they are: no whitespace, quotes or control characters; nothing was changed`},
		{"name with quote", map[string]any{"monitors": m(map[string]any{"name": `q"x`})}, `option "monitors[0].name": "q\"x" contains a quote; expected characters Sentinel writes into its config file as they are: no whitespace, quotes or control characters; nothing was changed`},
		{"name with single quote", map[string]any{"monitors": m(map[string]any{"name": `q'x`})}, `option "monitors[0].name": "q'x" contains a quote; expected characters Sentinel writes into its config file as they are: no whitespace, quotes or control characters; nothing was changed`},
		{"name with newline", map[string]any{"monitors": m(map[string]any{"name": "a\nsentinel myid 0"})}, `option "monitors[0].name": "a\nsentinel myid 0" contains a control character; expected characters Sentinel writes into its config file as they are: no whitespace, quotes or control characters; nothing was changed`},
		{"empty name", map[string]any{"monitors": m(map[string]any{"name": ""})}, `option "monitors[0].name": "" is empty; expected characters Sentinel writes into its config file as they are: no whitespace, quotes or control characters; nothing was changed`},
		{"quorum 0", map[string]any{"monitors": m(map[string]any{"quorum": 0})}, `option "monitors[0].quorum": 0 is less than 1; expected at least 1 Sentinel; nothing was changed`},
		{"port 0", map[string]any{"monitors": m(map[string]any{"primary_port": 0})}, `option "monitors[0].primary_port": 0 is not a port; expected 1-65535; nothing was changed`},
		{"port too big", map[string]any{"monitors": m(map[string]any{"primary_port": 65536})}, `option "monitors[0].primary_port": 65536 is not a port; expected 1-65535; nothing was changed`},
		{"parallel_syncs 0", map[string]any{"monitors": m(map[string]any{"parallel_syncs": 0})}, `option "monitors[0].parallel_syncs": 0 is less than 1; expected at least 1 replica; nothing was changed`},
		{"down_after 0", map[string]any{"monitors": m(map[string]any{"down_after_milliseconds": 0})}, `option "monitors[0].down_after_milliseconds": 0 is less than 1; expected at least 1 milliseconds; nothing was changed`},
		{"auth_user without auth_pass", map[string]any{"monitors": m(map[string]any{"auth_user": "dn"})}, `option "monitors[0].auth_user" is set without "auth_pass"; expected the user's password in monitors[0].auth_pass; nothing was changed`},
		{"auth_pass with space", map[string]any{"monitors": m(map[string]any{"auth_pass": authPass + " x"})}, `option "monitors[0].auth_pass": the value contains whitespace; expected characters Sentinel writes into its config file as they are: no whitespace, quotes or control characters; nothing was changed`},
		{"duplicate names", map[string]any{"monitors": []any{monitor("grp", g.Primary, nil), monitor("grp", g.Primary, nil)}}, `option "monitors": monitor "grp" is listed twice; expected each name once; nothing was changed`},
		{"new monitor without host", map[string]any{"monitors": []any{map[string]any{"name": "new", "quorum": 2}}}, `option "monitors[0]": monitor "new" does not exist yet, and creating it needs primary_host; nothing was changed`},
		{"new monitor without quorum", map[string]any{"monitors": []any{map[string]any{"name": "new", "primary_host": "127.0.0.1"}}}, `option "monitors[0]": monitor "new" does not exist yet, and creating it needs quorum; nothing was changed`},
		{"deny_scripts_reconfig false", map[string]any{"deny_scripts_reconfig": false}, `option "deny_scripts_reconfig": false is refused; Sentinel's scripts run as its user, and letting SENTINEL SET change them at runtime lets anyone with a Sentinel login run commands on the host (expected true); nothing was changed`},
		{"sentinel_pass without user", map[string]any{"sentinel_pass": authPass}, `option "sentinel_pass" needs "sentinel_user": Sentinels log in to each other as a named ACL user; expected both; nothing was changed`},
		{"sentinel_pass with quote", map[string]any{"sentinel_user": "p", "sentinel_pass": authPass + `"`}, `option "sentinel_pass": the value contains a quote; expected characters Sentinel writes into its config file as they are: no whitespace, quotes or control characters; nothing was changed`},
		{"reset an absent monitor", map[string]any{"monitors": []any{map[string]any{"name": "grp", "state": "absent"}}, "reset": []any{"grp"}}, `option "reset": monitor "grp" is also listed with state absent; expected a monitor that stays; nothing was changed`},
		{"announce_port", map[string]any{"announce_port": 70000}, `option "announce_port": 70000 is not a port; expected 0 (none) or 1-65535; nothing was changed`},
		{"bad state", map[string]any{"monitors": m(map[string]any{"state": "gone"})}, `option "monitors[0].state": "gone" is not one of present, absent; nothing was changed`},
	}
	before, file := masters(t, s), s.ReadConf()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.args["_ansible_diff"] = true
			out, doc, code := mod.Printed(t, task(s, tc.args))
			assert.Equal(t, 1, code)
			assert.Equal(t, tc.msg, doc["msg"])
			assert.Equal(t, false, doc["changed"])
			assert.NotContains(t, out, authPass)
			assert.Equal(t, before, masters(t, s))
			assert.Equal(t, string(file), string(s.ReadConf()))
		})
	}
}

// A data node is not a Sentinel: refused, nothing sent but INFO.
func TestNotASentinel(t *testing.T) {
	srv := testserver.Start(t)
	res, _ := mod.Call(t, task(srv, map[string]any{"monitors": []any{monitor("grp", srv, nil)}}))
	require.True(t, res.Failed)
	assert.Equal(t, `the server at 127.0.0.1:`+itoa(srv.Port)+` is not a Sentinel (it runs in "standalone" mode); point login_host/login_port at a Sentinel (default port 26379); nothing was changed`, res.Msg)
}

// A process squatting on the Sentinel's port is refused before it is sent
// anything: neither the login password nor an auth_pass reaches it.
func TestSquatterGetsNoSecret(t *testing.T) {
	sq := testserver.StartSquatter(t, "+OK\r\n")
	args := task(&testserver.Server{Port: sq.Port}, map[string]any{
		"login_user": "admin", "login_password": authPass + "-login",
		"monitors": []any{map[string]any{"name": "grp", "primary_host": "127.0.0.1", "quorum": 2, "auth_user": "dn", "auth_pass": authPass}},
	})
	out, doc, code := mod.Printed(t, args)
	assert.Equal(t, 1, code)
	assert.Equal(t, false, doc["changed"])
	assert.Contains(t, doc["msg"], "refusing the server")
	assert.NotContains(t, out, authPass)
	sq.Wait()
	assert.NotContains(t, string(sq.Received()), authPass)
	assert.Empty(t, sq.Received())
}
