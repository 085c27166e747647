package config

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

func randomSecret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return prefix + hex.EncodeToString(b)
}

func TestSecretsNeverPrinted(t *testing.T) {
	srv := testserver.Start(t, "primaryauth old-primary-"+randomSecret(t, ""))
	oldPrimary := strings.TrimPrefix(fileArgs(t, srv.ConfPath, "primaryauth")[0], "")
	pass1 := randomSecret(t, "pass1-")
	primary := randomSecret(t, "prim-")

	assertClean := func(t *testing.T, out string, secrets ...string) {
		t.Helper()
		for _, s := range append(secrets, oldPrimary) {
			assert.NotContains(t, out, s)
		}
	}

	// Check mode with diff: nothing printed, nothing changed.
	before := srv.ReadConf()
	out, doc, code := mod.Printed(t, task(srv, map[string]any{
		"settings":            map[string]any{"requirepass": pass1, "primaryauth": primary},
		"_ansible_check_mode": true, "_ansible_diff": true, "_ansible_verbosity": 4,
	}))
	assert.Equal(t, 0, code, out)
	assert.Equal(t, true, doc["changed"])
	assertClean(t, out, pass1, primary)
	assert.Contains(t, out, "requirepass ******** (new value hidden)")
	assert.Equal(t, before, srv.ReadConf())

	// Real run with diff.
	out, doc, code = mod.Printed(t, task(srv, map[string]any{
		"settings":      map[string]any{"requirepass": pass1, "primaryauth": primary},
		"_ansible_diff": true, "_ansible_verbosity": 4,
	}))
	assert.Equal(t, 0, code, out)
	assert.Equal(t, true, doc["changed"])
	assertClean(t, out, pass1, primary)
	assert.Contains(t, doc, "diff")
	assert.Equal(t, map[string]any{"requirepass": "********", "primaryauth": "********"}, doc["values"])
	// The file is the configuration: it holds the values.
	assert.Equal(t, []string{pass1}, fileArgs(t, srv.ConfPath, "requirepass"))
	assert.Equal(t, []string{primary}, fileArgs(t, srv.ConfPath, "primaryauth", "masterauth"))
	srv.Password = pass1
	assert.Equal(t, pass1, srv.ConfigGet("requirepass"))
	assert.Equal(t, primary, srv.ConfigGet("primaryauth"))

	// Second run (now it must log in): unchanged.
	res, _ := mod.CallOK(t, task(srv, map[string]any{"login_password": pass1, "settings": map[string]any{"requirepass": pass1, "primaryauth": primary}}))
	assert.False(t, res.Changed)

	// Rotation with diff: neither the old nor the new value is printed.
	pass2 := randomSecret(t, "pass2-")
	out, _, code = mod.Printed(t, task(srv, map[string]any{
		"login_password": pass1, "settings": map[string]any{"requirepass": pass2}, "_ansible_diff": true,
	}))
	assert.Equal(t, 0, code, out)
	assertClean(t, out, pass1, pass2, primary)
	srv.Password = pass2

	// Failures: bad value next to a secret, secret that cannot be a
	// value, wrong login password.
	pass3 := randomSecret(t, "pass3-")
	failures := []struct {
		name string
		args map[string]any
		msg  string
	}{
		{"bad sibling", map[string]any{"login_password": pass2, "settings": map[string]any{"requirepass": pass3, "timeout": "abc"}},
			`settings: directive "timeout": "abc" is not an integer; expected an integer between 0 and 2147483647; nothing was changed`},
		{"secret with newline", map[string]any{"login_password": pass2, "settings": map[string]any{"requirepass": pass3 + "\nx"}},
			`settings: directive "requirepass": the value contains a line break or NUL character; expected a single-line string; nothing was changed`},
		{"wrong login password", map[string]any{"login_password": pass3, "settings": map[string]any{"requirepass": pass3}},
			"cannot connect to " + srv.Addr + ": authentication failed (wrong user name or password, or the user is disabled); nothing was changed"},
		{"no login password", map[string]any{"settings": map[string]any{"requirepass": pass3}},
			"cannot connect to " + srv.Addr + ": the server requires authentication: set login_user and login_password; nothing was changed"},
		{"duplicate secret alias", map[string]any{"login_password": pass2, "settings": map[string]any{"masterauth": pass3, "primaryauth": pass3 + "x"}},
			`settings: "masterauth" and "primaryauth" are the same directive (primaryauth); give it once; nothing was changed`},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			tc.args["_ansible_diff"] = true
			out, doc, code := mod.Printed(t, task(srv, tc.args))
			assert.Equal(t, 1, code)
			assert.Equal(t, tc.msg, doc["msg"])
			assertClean(t, out, pass1, pass2, pass3, primary)
			assert.Equal(t, pass2, srv.ConfigGet("requirepass"))
		})
	}
}

// TestRollbackWhenFileUnwritable makes the config file's directory
// read-only after the server started, so the runtime change succeeds and the
// file write fails: the runtime change must be rolled back. chmod does not
// stop root, so the directory is a tmpfs remounted read-only.
func TestRollbackWhenFileUnwritable(t *testing.T) {
	confDir := mountTmpfs(t, "1m")
	pass := randomSecret(t, "rb-")
	srv := testserver.StartWith(t, testserver.Options{ConfDir: confDir, Extra: []string{"maxmemory 10mb", "timeout 0"}})
	if out, err := exec.Command("mount", "-o", "remount,ro", confDir).CombinedOutput(); err != nil {
		t.Skipf("remount read-only is not permitted here: %v: %s", err, out)
	}
	before := srv.ReadConf()
	out, doc, code := mod.Printed(t, task(srv, map[string]any{
		"settings":      map[string]any{"maxmemory": "20mb", "timeout": 300, "requirepass": pass},
		"_ansible_diff": true,
	}))
	assert.Equal(t, 1, code)
	msg, _ := doc["msg"].(string)
	assert.True(t, strings.HasPrefix(msg, "failed to write "+srv.ConfPath+": "), msg)
	assert.Contains(t, msg, "read-only file system")
	assert.True(t, strings.HasSuffix(msg, "; the runtime change of maxmemory, requirepass, timeout was rolled back; nothing was changed"), msg)
	assert.NotContains(t, out, pass)
	assert.Equal(t, false, doc["changed"], "a rolled-back run changed nothing")

	assert.Equal(t, "10485760", srv.ConfigGet("maxmemory"))
	assert.Equal(t, "0", srv.ConfigGet("timeout"))
	assert.Equal(t, "", srv.ConfigGet("requirepass"))
	assert.Equal(t, before, srv.ReadConf())
	entries, err := os.ReadDir(confDir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, fmt.Sprint(entries))
}

// TestFailedWriteRemovesItsBackup fills a small tmpfs so that the backup of
// valkey.conf fits and the new file does not: the task fails saying nothing
// was changed, and nothing is left behind (0.1.0 left the backup).
func TestFailedWriteRemovesItsBackup(t *testing.T) {
	confDir := mountTmpfs(t, "64k")
	srv := testserver.StartWith(t, testserver.Options{ConfDir: confDir, Extra: []string{"maxmemory 10mb"}})
	before := srv.ReadConf()
	require.Less(t, len(before), 4096, "the backup must fit in the one page left free")
	// Fill the file system, then free exactly one page: room for the
	// backup, none for the new file.
	filler := filepath.Join(confDir, "filler")
	f, err := os.Create(filler)
	require.NoError(t, err)
	page := make([]byte, 4096)
	size := int64(0)
	for {
		n, err := f.Write(page)
		size += int64(n)
		if err != nil {
			break
		}
	}
	require.NoError(t, f.Truncate(size/4096*4096-4096))
	require.NoError(t, f.Close())

	_, doc, code := mod.Printed(t, task(srv, map[string]any{
		"settings": map[string]any{"maxmemory": "20mb"}, "persist": "file", "config_file": srv.ConfPath, "backup": true,
	}))
	assert.Equal(t, 1, code)
	msg, _ := doc["msg"].(string)
	assert.True(t, strings.HasPrefix(msg, "failed to write "+srv.ConfPath+": "), msg)
	assert.Contains(t, msg, "no space left on device")
	assert.True(t, strings.HasSuffix(msg, "; nothing was changed"), msg)
	assert.Equal(t, false, doc["changed"])
	assert.Nil(t, doc["backup_file"])
	assert.Equal(t, before, srv.ReadConf())
	entries, err := os.ReadDir(confDir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"valkey.conf", "filler"}, names, "no backup is left behind")
}

// TestSecretMaskedWhateverTheOrder gives a secret's value to a directive
// checked before the secret one (the raw output is printed at -vvvv before
// the controller masks it): the binary's own output must not show it.
func TestSecretMaskedWhateverTheOrder(t *testing.T) {
	srv := testserver.Start(t)
	pass := randomSecret(t, "order-")
	for _, secret := range []string{"requirepass", "primaryauth", "masterauth", "tls-key-file-pass"} {
		t.Run(secret, func(t *testing.T) {
			// "appendfsync" and "maxmemory" sort before every secret directive.
			out, doc, code := mod.Printed(t, task(srv, map[string]any{
				"settings": map[string]any{"appendfsync": pass, "maxmemory": pass, secret: pass},
			}))
			assert.Equal(t, 1, code)
			assert.NotContains(t, out, pass)
			assert.Contains(t, doc["msg"], "appendfsync")
		})
	}
}

// mountTmpfs mounts a tmpfs of size on a fresh directory (skipping the test
// without root or mount permission). Call it before the server starts: the
// unmount, registered first, runs after the server is killed.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	testserver.Bin(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := filepath.Join(t.TempDir(), "tmpfs")
	require.NoError(t, os.Mkdir(dir, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount is not permitted here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
