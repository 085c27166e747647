package acl

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

const nobodyGID = 65534

func ownerMode(t *testing.T, p string) string {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%d:%d %04o", st.Uid, st.Gid, fi.Mode().Perm())
}

// TestModesAfterTheServerSaves: ACL SAVE and CONFIG REWRITE write a new
// file with the server's umask, so on 0.1.0 a 0640 aclfile or valkey.conf
// became 0644 and every local user could read the password hashes and
// requirepass. The owner and mode read before are restored right after.
func TestModesAfterTheServerSaves(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving the files another group needs root")
	}
	old := syscall.Umask(0o022) // the server inherits it: a default install's umask
	t.Cleanup(func() { syscall.Umask(old) })

	t.Run("ACL SAVE", func(t *testing.T) {
		srv, aclfile := startACL(t)
		require.NoError(t, os.Chown(aclfile, 0, nobodyGID))
		require.NoError(t, os.Chmod(aclfile, 0o640))
		_, f := mod.CallOK(t, task(srv, map[string]any{"name": "app", "passwords": []any{"app-pw-1f2e"}, "commands": []any{"+get"}, "keys": []any{"app:*"}}))
		require.Equal(t, aclfile, f.PersistedTo)
		assert.Contains(t, string(readBytes(t, aclfile)), "user app ")
		assert.Equal(t, fmt.Sprintf("0:%d 0640", nobodyGID), ownerMode(t, aclfile))
	})
	t.Run("CONFIG REWRITE", func(t *testing.T) {
		srv := testserver.Start(t)
		require.NoError(t, os.Chown(srv.ConfPath, 0, nobodyGID))
		require.NoError(t, os.Chmod(srv.ConfPath, 0o640))
		_, f := mod.CallOK(t, task(srv, map[string]any{"name": "app", "passwords": []any{"app-pw-1f2e"}, "commands": []any{"+get"}, "persist": "config"}))
		require.Equal(t, srv.ConfPath, f.PersistedTo)
		assert.Contains(t, string(srv.ReadConf()), "user app ")
		assert.Equal(t, fmt.Sprintf("0:%d 0640", nobodyGID), ownerMode(t, srv.ConfPath))
	})
}

// TestSaveRefusedWhereRootMayNotTouch: the aclfile's directory is writable
// by every user: another user could swap the file the server writes for a
// link, and root would then chmod the link's target. Refused before any
// change.
func TestSaveRefusedWhereRootMayNotTouch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "acl")
	require.NoError(t, os.Mkdir(dir, 0o755))
	aclfile := filepath.Join(dir, "users.acl")
	require.NoError(t, os.WriteFile(aclfile, nil, 0o640))
	srv := testserver.Start(t, "aclfile "+aclfile)
	require.NoError(t, os.Chmod(dir, 0o777))
	before := aclList(t, srv, "", "")
	res, _ := mod.Call(t, task(srv, map[string]any{"name": "app", "passwords": []any{"app-pw-1f2e"}}))
	assert.True(t, res.Failed)
	assert.Equal(t, `refusing to save the users to `+aclfile+`: "`+dir+`" is writable by every user (mode 0777); nothing was changed`, res.Msg)
	assert.Equal(t, before, aclList(t, srv, "", ""))
}

func readBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

// TestSwappedSaveIsNotChmodded: the server runs as its own user in its own
// directory; right after ACL SAVE it swaps the new aclfile for a hard link
// to a root-only file (or a link to it). Restoring "the aclfile's" owner
// and mode would then make the root-only file root:<group> 0640. The
// restore refuses, and the task fails saying the users were saved.
func TestSwappedSaveIsNotChmodded(t *testing.T) {
	for _, how := range []string{"hard link", "symbolic link"} {
		t.Run(how, func(t *testing.T) {
			dir := testserver.OwnedDir(t, testserver.Nobody, testserver.Nobody)
			aclfile := filepath.Join(dir, "users.acl")
			require.NoError(t, os.WriteFile(aclfile, nil, 0o640))
			require.NoError(t, os.Chown(aclfile, testserver.Nobody, testserver.Nobody))
			srv := testserver.StartWith(t, testserver.Options{Dir: dir, Extra: []string{"aclfile " + aclfile},
				Credential: &syscall.Credential{Uid: testserver.Nobody, Gid: testserver.Nobody}})
			shadow := testserver.RootOnly(t)
			testHookAfterSave = func() {
				require.NoError(t, os.Remove(aclfile))
				if how == "hard link" {
					require.NoError(t, os.Link(shadow, aclfile))
				} else {
					testserver.PlantLink(t, shadow, aclfile)
				}
			}
			t.Cleanup(func() { testHookAfterSave = nil })
			res, _ := mod.Call(t, task(srv, map[string]any{"name": "app", "passwords": []any{"app-pw-1f2e"}}))
			assert.True(t, res.Failed)
			assert.True(t, res.Changed)
			why := map[string]string{
				"hard link":     `"` + aclfile + `" has 2 hard links; a file with other names is not changed`,
				"symbolic link": `"` + aclfile + `" is a symbolic link`,
			}[how]
			assert.Equal(t, "the users were changed and saved, but failed to restore the owner and mode of "+aclfile+" after the server rewrote it: "+why+"; fix its owner and mode by hand", res.Msg)
			testserver.AssertRootOnlyUntouched(t, shadow)
		})
	}
}
