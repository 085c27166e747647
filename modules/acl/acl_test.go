package acl

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/aclrule"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/testserver"
)

func secret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return prefix + hex.EncodeToString(b)
}

func appUsers(appPW, roPW string) []any {
	return []any{
		map[string]any{
			"name": "app", "passwords": []any{appPW},
			"keys": []any{"app:*", "%R~shared:*"}, "channels": []any{"app-events"},
			"commands": []any{"+@read", "+@write", "-@dangerous", "+client|setname", "+publish"},
		},
		map[string]any{
			"name": "reader", "passwords": []any{roPW},
			"keys": []any{"allkeys"}, "commands": []any{"+@read", "-keys"},
		},
	}
}

// TestCreateChangeIdempotent: with an aclfile and with only a config file.
func TestCreateChangeIdempotent(t *testing.T) {
	for _, mode := range []string{"aclfile", "config"} {
		t.Run(mode, func(t *testing.T) {
			var srv *testserver.Server
			var file string
			if mode == "aclfile" {
				srv, file = startACL(t)
			} else {
				srv = testserver.Start(t)
				file = srv.ConfPath
			}
			appPW, roPW := secret(t, "app-"), secret(t, "ro-")
			args := task(srv, map[string]any{"users": appUsers(appPW, roPW)})

			// Check mode: same plan, nothing applied.
			before, fileBefore := aclList(t, srv, "", ""), readFile(t, file)
			cargs := task(srv, map[string]any{"users": appUsers(appPW, roPW), "_ansible_check_mode": true, "_ansible_diff": true})
			cres, cf := mod.CallOK(t, cargs)
			assert.True(t, cres.Changed)
			assert.Equal(t, before, aclList(t, srv, "", ""))
			assert.Equal(t, fileBefore, readFile(t, file))

			res, f := mod.CallOK(t, task(srv, map[string]any{"users": appUsers(appPW, roPW), "_ansible_diff": true}))
			assert.True(t, res.Changed)
			assert.Equal(t, cf, f, "check mode and the real run agree")
			assert.Equal(t, cres.Diff, res.Diff)
			assert.Equal(t, []string{"app", "reader"}, f.Created)
			assert.Equal(t, file, f.PersistedTo)
			assert.Empty(t, res.Warnings)
			saved := string(readFile(t, file))
			assert.Contains(t, saved, "user app on sanitize-payload #"+aclrule.HashPassword(appPW)+" ~app:* %R~shared:* resetchannels &app-events -@all +@read +@write -@dangerous +client|setname +publish")
			assert.NotContains(t, saved, appPW)

			// The users can do exactly what their rules say.
			app := login(t, srv, "app", appPW)
			assert.True(t, allowed(t, app, "SET", "app:1", "x"))
			assert.True(t, allowed(t, app, "GET", "app:1"))
			assert.True(t, allowed(t, app, "GET", "shared:1"))
			assert.False(t, allowed(t, app, "SET", "shared:1", "x"), "shared:* is read-only")
			assert.False(t, allowed(t, app, "GET", "other:1"))
			assert.False(t, allowed(t, app, "FLUSHALL"))
			assert.False(t, allowed(t, app, "KEYS", "*"), "-@dangerous")
			assert.False(t, allowed(t, app, "CONFIG", "GET", "maxmemory"))
			assert.True(t, allowed(t, app, "CLIENT", "SETNAME", "x"))
			assert.False(t, allowed(t, app, "CLIENT", "KILL", "ID", "1"))
			assert.True(t, allowed(t, app, "PUBLISH", "app-events", "x"))
			assert.False(t, allowed(t, app, "PUBLISH", "other", "x"))
			ro := login(t, srv, "reader", roPW)
			assert.True(t, allowed(t, ro, "GET", "anything"))
			assert.False(t, allowed(t, ro, "SET", "anything", "x"))
			assert.False(t, allowed(t, ro, "KEYS", "*"))
			assert.False(t, canLogin(srv, "app", roPW))

			// Second run: no change, file untouched.
			after := readFile(t, file)
			res2, f2 := mod.CallOK(t, args)
			assert.False(t, res2.Changed)
			assert.Empty(t, f2.Created)
			assert.Empty(t, f2.PersistedTo)
			assert.Equal(t, after, readFile(t, file))

			// A change: one user updated, rights follow.
			users := appUsers(appPW, roPW)
			users[1].(map[string]any)["commands"] = []any{"+@read", "+set"}
			res3, f3 := mod.CallOK(t, task(srv, map[string]any{"users": users}))
			assert.True(t, res3.Changed)
			assert.Equal(t, []string{"reader"}, f3.Updated)
			assert.True(t, allowed(t, ro, "SET", "anything", "x"))
			assert.True(t, allowed(t, ro, "KEYS", "*"))
		})
	}
}

func TestEqualByMeaningIsNoChange(t *testing.T) {
	srv, _ := startACL(t)
	require.Equal(t, "OK", srv.CLI("ACL", "SETUSER", "u", "reset", "on", ">pw-one", "~b", "%R~a", "%W~a", "&*", "+@all", "-DEBUG", "(%R~x* +GET)", "(~y* +set)"))
	require.Equal(t, "OK", srv.CLI("ACL", "SETUSER", "v", "reset", "on", "~*", "+@all"))
	res, _ := mod.CallOK(t, task(srv, map[string]any{"name": "v", "keys": []any{"allkeys"}, "commands": []any{"allcommands"}}))
	assert.False(t, res.Changed)
	res, _ = mod.CallOK(t, task(srv, map[string]any{"name": "u", "passwords": []any{"pw-one"},
		"keys": []any{"%RW~a", "~b"}, "channels": []any{"allchannels"}, "commands": []any{"allcommands", "-debug"},
		"selectors": []any{map[string]any{"keys": []any{"~y*"}, "commands": []any{"+SET"}}, map[string]any{"keys": []any{"%R~x*"}, "commands": []any{"+get"}}},
	}))
	assert.False(t, res.Changed)
}

func TestExclusiveAndDelete(t *testing.T) {
	srv, file := startACL(t)
	srv.CLI("ACL", "SETUSER", "intruder", "on", ">x-pass", "+@all", "~*")
	srv.CLI("ACL", "SETUSER", "old", "on")
	res, f := mod.CallOK(t, task(srv, map[string]any{"exclusive": true, "users": []any{
		map[string]any{"name": "app", "passwords": []any{"app-pass"}, "keys": []any{"a:*"}, "commands": []any{"+get"}},
	}}))
	assert.True(t, res.Changed)
	assert.Equal(t, []string{"intruder", "old"}, f.Deleted)
	list := aclList(t, srv, "", "")
	assert.NotContains(t, list, "intruder")
	assert.Contains(t, list, "user default on nopass", "default is left alone when not listed")
	assert.NotContains(t, string(readFile(t, file)), "intruder")

	res, f = mod.CallOK(t, task(srv, map[string]any{"name": "app", "state": "absent"}))
	assert.True(t, res.Changed)
	assert.Equal(t, []string{"app"}, f.Deleted)
	res, _ = mod.CallOK(t, task(srv, map[string]any{"name": "app", "state": "absent"}))
	assert.False(t, res.Changed)
}

func TestBootstrapThenLockoutGuard(t *testing.T) {
	srv, file := startACL(t)
	adminPW := secret(t, "admin-")
	users := []any{
		map[string]any{"name": "admin", "passwords": []any{adminPW}, "keys": []any{"allkeys"}, "channels": []any{"allchannels"}, "commands": []any{"allcommands"}},
		map[string]any{"name": "default", "enabled": false},
	}
	// One task, logged in as the stock default user.
	res, f := mod.CallOK(t, task(srv, map[string]any{"users": users}))
	assert.True(t, res.Changed)
	assert.Equal(t, []string{"admin"}, f.Created)
	assert.Equal(t, []string{"default"}, f.Updated)
	saved := string(readFile(t, file))
	assert.Contains(t, saved, "user default off sanitize-payload resetchannels -@all")
	assert.Contains(t, saved, "user admin on")
	assert.False(t, canLogin(srv, "", ""), "default is disabled")

	// Next run as the admin: no change.
	asAdmin := map[string]any{"login_user": "admin", "login_password": adminPW, "users": users}
	res, _ = mod.CallOK(t, task(srv, asAdmin))
	assert.False(t, res.Changed)

	// Taking away the admin's own rights is refused, with nothing changed.
	before, fileBefore := aclList(t, srv, "admin", adminPW), readFile(t, file)
	res, _ = mod.Call(t, task(srv, map[string]any{"login_user": "admin", "login_password": adminPW,
		"name": "admin", "passwords": []any{adminPW}, "commands": []any{"+@read"}}))
	require.True(t, res.Failed)
	assert.Equal(t, "refusing the change: afterwards no enabled user that can log in (with a password, or nopass) could run ACL SETUSER, so nobody could manage users any more; keep or create such a user, or set allow_lockout: true if this is intended; nothing was changed", res.Msg)
	assert.False(t, res.Changed)
	assert.Equal(t, before, aclList(t, srv, "admin", adminPW))
	assert.Equal(t, fileBefore, readFile(t, file))
}

func TestLoginUserLosesRightsNeedsFinisher(t *testing.T) {
	srv, _ := startACL(t)
	// An admin given only by hash cannot finish the run after default loses its rights.
	res, _ := mod.Call(t, task(srv, map[string]any{"users": []any{
		map[string]any{"name": "admin", "password_hashes": []any{aclrule.HashPassword("x-admin")}, "commands": []any{"+@all"}},
		map[string]any{"name": "default", "enabled": false},
	}}))
	require.True(t, res.Failed)
	assert.Equal(t, `the login user "default" loses the right to run ACL SAVE with this task, and no other user of the task has both that right and a password given in passwords to finish the run with; give the new admin user's password in passwords (not only password_hashes), or log in as another admin; nothing was changed`, res.Msg)
	assert.NotContains(t, aclList(t, srv, "", ""), "admin")
}

func TestUpdatePasswordOnCreate(t *testing.T) {
	srv, _ := startACL(t)
	first, second := secret(t, "one-"), secret(t, "two-")
	spec := func(pw string) map[string]any {
		return task(srv, map[string]any{"name": "svc", "passwords": []any{pw}, "update_password": "on_create", "commands": []any{"+ping"}})
	}
	res, _ := mod.CallOK(t, spec(first))
	assert.True(t, res.Changed)
	res, _ = mod.CallOK(t, spec(second))
	assert.False(t, res.Changed, "on_create keeps the existing password")
	assert.True(t, canLogin(srv, "svc", first))
	assert.False(t, canLogin(srv, "svc", second))
	// Other fields still converge.
	args := spec(second)
	args["commands"] = []any{"+ping", "+echo"}
	res, f := mod.CallOK(t, args)
	assert.True(t, res.Changed)
	assert.Equal(t, []string{"svc"}, f.Updated)
	assert.True(t, canLogin(srv, "svc", first))
	// always (the default) replaces it.
	args["update_password"] = "always"
	res, _ = mod.CallOK(t, args)
	assert.True(t, res.Changed)
	assert.True(t, canLogin(srv, "svc", second))
	assert.False(t, canLogin(srv, "svc", first))
}

func TestSelectors(t *testing.T) {
	srv, _ := startACL(t)
	pw := secret(t, "sel-")
	res, _ := mod.CallOK(t, task(srv, map[string]any{"name": "mixed", "passwords": []any{pw},
		"keys": []any{"cache:*"}, "commands": []any{"+get", "+set"},
		"selectors": []any{map[string]any{"keys": []any{"%R~report:*"}, "commands": []any{"+@read"}}},
	}))
	assert.True(t, res.Changed)
	c := login(t, srv, "mixed", pw)
	assert.True(t, allowed(t, c, "SET", "cache:1", "v"))
	assert.True(t, allowed(t, c, "GET", "report:1"), "via the selector")
	assert.True(t, allowed(t, c, "HGETALL", "report:1"), "@read via the selector")
	assert.False(t, allowed(t, c, "HGETALL", "cache:1"), "root selector: only get and set")
	assert.False(t, allowed(t, c, "SET", "report:1", "v"), "selector keys are read-only")
	assert.False(t, allowed(t, c, "GET", "other"))
}

func TestPersistChoices(t *testing.T) {
	srv := testserver.Start(t) // config file, no aclfile
	res, f := mod.CallOK(t, task(srv, map[string]any{"name": "a", "commands": []any{"+ping"}, "persist": "none"}))
	assert.True(t, res.Changed)
	assert.Empty(t, f.PersistedTo)
	assert.NotContains(t, string(srv.ReadConf()), "user a")
	res, _ = mod.Call(t, task(srv, map[string]any{"name": "b", "persist": "aclfile"}))
	assert.Equal(t, "persist: aclfile, but the server has no aclfile configured; use persist: auto, config or none; nothing was changed", res.Msg)

	srv2, file := startACL(t)
	res, _ = mod.Call(t, task(srv2, map[string]any{"name": "b", "persist": "config"}))
	assert.Equal(t, "persist: config, but the server keeps its users in the aclfile "+file+" (and ignores user lines in its config file); use persist: aclfile or auto; nothing was changed", res.Msg)
}

func TestMemoryOnlyWarns(t *testing.T) {
	testserver.Bin(t)
	dir := t.TempDir()
	// A server started without a config file (arguments on the command
	// line), on the port of a test server stopped for it.
	srv := testserver.Start(t)
	srv.Stop()
	cmd := exec.Command("valkey-server", "--port", strings.TrimPrefix(srv.Addr, "127.0.0.1:"), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--logfile", filepath.Join(dir, "log"))
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	deadline := time.Now().Add(60 * time.Second) // a guard: the event is the first login
	for !canLogin(srv, "", "") {
		select {
		case <-exited:
			t.Fatalf("valkey-server on %s exited before it answered", srv.Addr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("valkey-server on %s did not answer within 60s", srv.Addr)
		}
		cmdSleep()
	}
	res, f := mod.CallOK(t, task(srv, map[string]any{"name": "a", "commands": []any{"+ping"}}))
	assert.True(t, res.Changed)
	assert.Empty(t, f.PersistedTo)
	assert.Equal(t, []string{"the ACL changes live only in the server's memory: it has neither an aclfile nor a config file, so they are lost when it restarts"}, res.Warnings)
}

// TestRollbackWhenACLSaveFails: the aclfile's directory is a tmpfs
// remounted read-only after the server started, so ACL SAVE fails.
func TestRollbackWhenACLSaveFails(t *testing.T) {
	testserver.Bin(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	aclDir := filepath.Join(t.TempDir(), "ro")
	require.NoError(t, os.Mkdir(aclDir, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", aclDir).CombinedOutput(); err != nil {
		t.Skipf("mount is not permitted here: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", aclDir).Run() })
	aclfile := filepath.Join(aclDir, "users.acl")
	require.NoError(t, os.WriteFile(aclfile, []byte("user keep on nopass ~k:* resetchannels -@all +get\n"), 0o640))
	srv := testserver.StartWith(t, testserver.Options{Extra: []string{"aclfile " + aclfile}})
	srv.CLI("ACL", "SETUSER", "gone", "on", "nopass", "+ping")
	if out, err := exec.Command("mount", "-o", "remount,ro", aclDir).CombinedOutput(); err != nil {
		t.Skipf("remount read-only is not permitted here: %v: %s", err, out)
	}
	before, fileBefore := aclList(t, srv, "", ""), readFile(t, aclfile)
	pw := secret(t, "rb-")
	out, doc, code := mod.Printed(t, task(srv, map[string]any{"exclusive": true, "_ansible_diff": true, "users": []any{
		map[string]any{"name": "keep", "nopass": true, "keys": []any{"k:*"}, "commands": []any{"+get", "+set"}},
		map[string]any{"name": "new", "passwords": []any{pw}, "commands": []any{"+ping"}},
	}}))
	assert.Equal(t, 1, code)
	msg, _ := doc["msg"].(string)
	assert.True(t, strings.HasPrefix(msg, "failed to save the users to "+aclfile+" (ACL SAVE: "), msg)
	assert.True(t, strings.HasSuffix(msg, "; the users were restored to their state before the task; nothing was changed"), msg)
	assert.Equal(t, false, doc["changed"])
	assert.NotContains(t, out, pw)
	assert.Equal(t, before, aclList(t, srv, "", ""))
	assert.Equal(t, fileBefore, readFile(t, aclfile))
}

func TestJournalRecordsUsersByNameOnly(t *testing.T) {
	srv, _ := startACL(t)
	appPW, roPW := secret(t, "app-"), secret(t, "ro-")
	args := task(srv, map[string]any{"users": appUsers(appPW, roPW)})
	path := args["journal_path"].(string)

	// Check mode records nothing.
	cargs := task(srv, map[string]any{"users": appUsers(appPW, roPW), "_ansible_check_mode": true})
	mod.CallOK(t, cargs)
	_, err := os.Stat(path)
	require.True(t, os.IsNotExist(err), "check mode must not write the journal")

	mod.CallOK(t, args)
	data := readFile(t, path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	require.Len(t, lines, 1, "one line per change set")
	var entry journal.Entry
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &entry))
	assert.Equal(t, "valkey_acl", entry.Module)
	assert.Equal(t, journal.InstanceName(srv.ConfPath), entry.Instance)
	assert.NotEmpty(t, entry.Instance, "the server runs from %s", srv.ConfPath)
	var names []string
	for _, c := range entry.Changes {
		assert.Equal(t, journal.KindUser, c.Kind)
		assert.Equal(t, "created", c.Detail)
		names = append(names, c.Name)
	}
	assert.ElementsMatch(t, []string{"app", "reader"}, names)
	for _, s := range []string{appPW, roPW, aclrule.HashPassword(appPW), aclrule.HashPassword(roPW)} {
		assert.NotContains(t, string(data), s, "no password or hash in the journal")
	}

	// A no-op run writes nothing more.
	mod.CallOK(t, task(srv, map[string]any{"users": appUsers(appPW, roPW)}))
	assert.Equal(t, data, readFile(t, path))
}
