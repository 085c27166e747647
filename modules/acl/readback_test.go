package acl

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

// restart stops srv and starts a server on the config file it rewrote;
// it returns the new server's ACL LIST, or "" and the log when it refused
// to start.
func restart(t *testing.T, srv *testserver.Server) (string, string) {
	t.Helper()
	srv.Stop()
	again, log := testserver.StartFile(t, srv.ConfPath)
	if again == nil {
		return "", log
	}
	return again.CLI("ACL", "LIST"), ""
}

// TestQuotesTheServerCannotReadBack (issue 11 item 4): with persist: config,
// CONFIG REWRITE writes user lines unquoted; a quote in a name or pattern
// then stops the server at its next start ("Unbalanced quotes") or makes it
// read another user. Each value is shown to do that when set on the server
// directly, and is refused by the module before anything changes.
func TestQuotesTheServerCannotReadBack(t *testing.T) {
	tests := []struct {
		name    string
		user    map[string]any
		setuser []string // the same user by hand
		msg     string
		crashes bool // valkey-server 8.0.1 dies on the next ACL LIST
	}{
		{"quote in a name", map[string]any{"name": `app"1`, "nopass": true},
			[]string{`app"1`, "on", "nopass"},
			`user "app\"1": the name contains a quote (" or '), which the server writes unquoted to valkey.conf and the aclfile and then cannot read back (Unbalanced quotes); nothing was changed`, false},
		{"quote in a key pattern", map[string]any{"name": "app", "nopass": true, "keys": []any{"it's:*"}},
			[]string{"app", "on", "nopass", "~it's:*"},
			`user "app": key pattern "it's:*": contains a quote (" or '), which the server writes unquoted to valkey.conf and the aclfile and then cannot read back (Unbalanced quotes); nothing was changed`, false},
		{"quoted channel pattern", map[string]any{"name": "app", "nopass": true, "channels": []any{`"news"`}},
			[]string{"app", "on", "nopass", `&"news"`},
			`user "app": channel pattern "\"news\"": contains a quote (" or '), which the server writes unquoted to valkey.conf and the aclfile and then cannot read back (Unbalanced quotes); nothing was changed`, false},
		{"quote in a first argument", map[string]any{"name": "app", "nopass": true, "commands": []any{"+select|'0"}},
			[]string{"app", "on", "nopass", "+select|'0"},
			`user "app": command rule "+select|'0": contains a quote (" or '), which the server writes unquoted to valkey.conf and the aclfile and then cannot read back (Unbalanced quotes); nothing was changed`, true},
		{"selector pattern ending with )", map[string]any{"name": "app", "nopass": true, "selectors": []any{map[string]any{"channels": []any{"c)"}, "commands": []any{"+get"}}}},
			[]string{"app", "on", "nopass", "(&c) +get)"},
			`user "app": selector 1: channel pattern "c)": ends with ), which ends the selector early when the server reads valkey.conf or the aclfile, so it could not start again; nothing was changed`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// By hand: the server takes it, rewrites, and cannot read it back.
			bad := testserver.Start(t)
			require.Equal(t, "OK", bad.CLI(append([]string{"ACL", "SETUSER"}, tc.setuser...)...))
			if tc.crashes {
				// The server re-splits the stored rules with sdssplitargs
				// to print them, and asserts on the quote.
				out, err := bad.CLIErr("ACL", "LIST")
				require.Error(t, err, out)
				assert.Contains(t, out, "Server closed the connection")
				assert.Contains(t, string(readFile(t, bad.LogPath)), "ASSERTION FAILED")
				return
			}
			before := bad.CLI("ACL", "LIST")
			require.Equal(t, "OK", bad.CLI("CONFIG", "REWRITE"))
			after, log := restart(t, bad)
			if after != "" {
				assert.NotEqual(t, before, after, "the server read the user back unchanged")
			} else {
				assert.Regexp(t, "Unbalanced quotes|Critical error while loading ACLs", log)
			}

			// The module refuses it and changes nothing.
			srv := testserver.Start(t)
			list, conf := srv.CLI("ACL", "LIST"), srv.ReadConf()
			res, _ := mod.Call(t, task(srv, map[string]any{"users": []any{tc.user}, "persist": "config"}))
			require.True(t, res.Failed)
			assert.Equal(t, tc.msg, res.Msg)
			assert.False(t, res.Changed)
			assert.Equal(t, list, srv.CLI("ACL", "LIST"))
			assert.Equal(t, conf, srv.ReadConf())
		})
	}
}

// TestOddNamesAndPatternsRoundTrip: what the module accepts survives CONFIG
// REWRITE and a restart unchanged, selectors included (inside a selector the
// server reads quotes, so they are refused there too).
func TestOddNamesAndPatternsRoundTrip(t *testing.T) {
	srv := testserver.Start(t)
	users := []any{
		map[string]any{"name": `a\b`, "nopass": true, "keys": []any{`k\x41:*`, "{x}:*", "a(b", "c)d"}, "commands": []any{"+get"}},
		map[string]any{"name": "ключ", "nopass": true, "channels": []any{"#news", "n[ae]ws", "ч*"}, "commands": []any{"+subscribe", "+select|0"}},
		map[string]any{"name": "sel", "nopass": true, "commands": []any{"+ping"},
			"selectors": []any{map[string]any{"keys": []any{`s\x22*`, "%R~r(*", "(t"}, "channels": []any{"c)d"}, "commands": []any{"+get", "+client|setname"}}}},
	}
	mod.CallOK(t, task(srv, map[string]any{"users": users, "persist": "config"}))
	before := srv.CLI("ACL", "LIST")
	for _, n := range []string{`user a\b `, "user ключ ", "user sel "} {
		assert.Contains(t, before, n)
	}
	after, log := restart(t, srv)
	require.NotEmpty(t, after, log)
	assert.Equal(t, before, after)
	assert.NotContains(t, strings.ToLower(log), "unbalanced")
}
