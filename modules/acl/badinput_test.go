package acl

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/valkeyops/secure/internal/aclrule"
)

func TestBadInputChangesNothing(t *testing.T) {
	srv, file := startACL(t)
	srv.CLI("ACL", "SETUSER", "existing", "on", "nopass", "+ping")
	pw := secret(t, "bad-")
	u := func(fields map[string]any) []any {
		m := map[string]any{"name": "app", "passwords": []any{pw}}
		for k, v := range fields {
			m[k] = v
		}
		return []any{m}
	}
	tests := []struct {
		name string
		args map[string]any
		msg  string
	}{
		{"unknown command", map[string]any{"users": u(map[string]any{"commands": []any{"+gett"}})}, `user "app": command rule "+gett": unknown command "gett"; nothing was changed`},
		{"unknown category", map[string]any{"users": u(map[string]any{"commands": []any{"+@reed"}})}, `user "app": command rule "+@reed": unknown category "reed" (the server knows admin, bitmap, blocking, connection, dangerous, fast, geo, hash, hyperloglog, keyspace, list, pubsub, read, scripting, set, slow, sortedset, stream, string, transaction, write); nothing was changed`},
		{"unknown subcommand", map[string]any{"users": u(map[string]any{"commands": []any{"+client|nosuch"}})}, `user "app": command rule "+client|nosuch": unknown subcommand "nosuch" of command "client"; nothing was changed`},
		{"negative first arg", map[string]any{"users": u(map[string]any{"commands": []any{"-select|0"}})}, `user "app": command rule "-select|0": a first-argument rule cannot be negative: "select" has no subcommands, so only +select|ARG is possible; nothing was changed`},
		{"two pipes", map[string]any{"users": u(map[string]any{"commands": []any{"+get|key1|key2"}})}, `user "app": command rule "+get|key1|key2": a command rule names a command, a subcommand (+client|setname) or one first argument (+select|0), so it has at most one |; nothing was changed`},
		{"rule without sign", map[string]any{"users": u(map[string]any{"commands": []any{"get"}})}, `user "app": command rule "get": a command rule starts with + or - (+@read, -@dangerous, +get, +client|setname), or is allcommands or nocommands; nothing was changed`},
		{"key pattern in commands", map[string]any{"users": u(map[string]any{"commands": []any{"~*"}})}, `user "app": command rule "~*": a command rule starts with + or - (+@read, -@dangerous, +get, +client|setname), or is allcommands or nocommands; key patterns go in keys; nothing was changed`},
		{"bad key permission", map[string]any{"users": u(map[string]any{"keys": []any{"%X~a"}})}, `user "app": key pattern "%X~a": not a valid rule (keys take pattern, ~pattern, %R~pattern, %W~pattern or %RW~pattern; channels take pattern or &pattern); nothing was changed`},
		{"key with space", map[string]any{"users": u(map[string]any{"keys": []any{"a b"}})}, `user "app": key pattern "a b": patterns cannot contain spaces or control characters; nothing was changed`},
		{"empty key", map[string]any{"users": u(map[string]any{"keys": []any{"~"}})}, `user "app": key pattern "~": the pattern is empty; nothing was changed`},
		{"key after allkeys", map[string]any{"users": u(map[string]any{"keys": []any{"allkeys", "a:*"}})}, `user "app": key pattern "a:*": comes after the pattern that already allows everything (allkeys, ~*, allchannels, &*) and would have no effect; remove one of them; nothing was changed`},
		{"channel after &*", map[string]any{"users": u(map[string]any{"channels": []any{"*", "news"}})}, `user "app": channel pattern "news": comes after the pattern that already allows everything (allkeys, ~*, allchannels, &*) and would have no effect; remove one of them; nothing was changed`},
		{"selector rule", map[string]any{"users": u(map[string]any{"selectors": []any{map[string]any{"commands": []any{"+nosuch"}}}})}, `user "app": selector 1: command rule "+nosuch": unknown command "nosuch"; nothing was changed`},
		{"empty selector", map[string]any{"users": u(map[string]any{"selectors": []any{map[string]any{}}})}, `user "app": selector 1 is empty; give keys, channels or commands; nothing was changed`},
		{"malformed hash", map[string]any{"users": []any{map[string]any{"name": "h", "password_hashes": []any{"abc" + pw}}}}, `user "h": password_hashes item 1 is not a SHA-256 hash (64 hexadecimal characters); nothing was changed`},
		{"duplicate names", map[string]any{"users": []any{map[string]any{"name": "dup"}, map[string]any{"name": "dup"}}}, `user "dup" is listed twice; give each user once; nothing was changed`},
		{"absent with fields", map[string]any{"users": []any{map[string]any{"name": "existing", "state": "absent", "keys": []any{"a"}}}}, `user "existing": state absent takes no other field, but keys is given; nothing was changed`},
		{"delete default", map[string]any{"name": "default", "state": "absent"}, `user "default": the default user cannot be deleted; use enabled: false to disable it; nothing was changed`},
		{"nopass with passwords", map[string]any{"users": u(map[string]any{"nopass": true})}, `user "app": nopass and passwords/password_hashes exclude each other; nothing was changed`},
		{"empty password", map[string]any{"name": "e", "passwords": []any{""}}, `user "e": passwords item 1 is empty; nothing was changed`},
		{"name with space", map[string]any{"name": "a b"}, `user "a b": the name contains a space or control character; nothing was changed`},
		{"no name", map[string]any{"users": []any{map[string]any{"keys": []any{"a"}}}}, `option "users[0].name" is required; nothing was changed`},
		{"name and users", map[string]any{"name": "x", "users": []any{}}, `give either name (one user) or users (a list of users), not both; nothing was changed`},
		{"neither", map[string]any{}, `give name (one user) or users (a list of users); nothing was changed`},
		{"field without name", map[string]any{"keys": []any{"a"}}, `option "keys" needs name (or use users, a list of users); nothing was changed`},
		{"bad state", map[string]any{"name": "x", "state": "gone"}, `option "state": "gone" is not one of present, absent; nothing was changed`},
		{"bad update_password", map[string]any{"name": "x", "update_password": "never"}, `option "update_password": "never" is not one of always, on_create; nothing was changed`},
		{"bad persist", map[string]any{"name": "x", "persist": "disk"}, `option "persist": "disk" is not one of auto, aclfile, config, none; nothing was changed`},
		{"unknown option", map[string]any{"name": "x", "passwrd": pw}, "unsupported option for valkey_acl: passwrd; valid options: allow_lockout, channels, commands, connect_timeout, enabled, exclusive, journal, journal_path, journal_required, journal_syslog, keys, login_host, login_password, login_port, login_unix_socket, login_user, name, nopass, password_hashes, passwords, persist, selectors, state, tls, tls_ca_cert, tls_cert, tls_key, tls_server_name, update_password, users, validate_certs; nothing was changed"},
		{"one bad among good", map[string]any{"users": []any{map[string]any{"name": "good", "commands": []any{"+get"}}, map[string]any{"name": "bad", "commands": []any{"+get", "+@nope"}}}}, `user "bad": command rule "+@nope": unknown category "nope" (the server knows admin, bitmap, blocking, connection, dangerous, fast, geo, hash, hyperloglog, keyspace, list, pubsub, read, scripting, set, slow, sortedset, stream, string, transaction, write); nothing was changed`},
	}
	before, fileBefore := aclList(t, srv, "", ""), readFile(t, file)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.args["_ansible_diff"] = true
			out, doc, code := mod.Printed(t, task(srv, tc.args))
			assert.Equal(t, 1, code)
			assert.Equal(t, tc.msg, doc["msg"])
			assert.Equal(t, false, doc["changed"])
			assert.NotContains(t, out, pw)
			assert.NotContains(t, out, aclrule.HashPassword(pw))
			assert.Equal(t, before, aclList(t, srv, "", ""))
			assert.Equal(t, fileBefore, readFile(t, file))
		})
	}
}

// TestSecretsNeverPrinted: passwords and hashes appear nowhere in the
// printed result, with diff, in check mode and for real; the diff shows
// the password count.
func TestSecretsNeverPrinted(t *testing.T) {
	srv, _ := startACL(t)
	pw, hash := secret(t, "pw-"), aclrule.HashPassword(secret(t, "other-"))
	for _, check := range []bool{true, false, false} {
		out, doc, code := mod.Printed(t, task(srv, map[string]any{"name": "s", "passwords": []any{pw}, "password_hashes": []any{hash},
			"commands": []any{"+ping"}, "_ansible_diff": true, "_ansible_check_mode": check, "_ansible_verbosity": 4}))
		assert.Equal(t, 0, code, out)
		for _, s := range []string{pw, hash, aclrule.HashPassword(pw)} {
			assert.NotContains(t, out, s)
		}
		if doc["changed"] == true {
			assert.Contains(t, out, "passwords: 2")
		}
	}
}
