package safefs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

const nobody = testserver.Nobody

// TestAttackerPaths: every way an unprivileged user could make root write
// somewhere else is refused with one sentence, and the target is untouched.
// On 0.1.0 (filepath.EvalSymlinks, os.Stat, os.Chmod) each one wrote
// through.
func TestAttackerPaths(t *testing.T) {
	testserver.NeedRoot(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, base, shadow string) (path string, trust Trust)
		want  string // %s: base
	}{
		{
			name: "link to a root-only file, planted by the server's user in its own directory",
			setup: func(t *testing.T, base, shadow string) (string, Trust) {
				dir := filepath.Join(base, "etc")
				require.NoError(t, os.Mkdir(dir, 0o750))
				require.NoError(t, os.Chown(dir, nobody, nobody))
				testserver.PlantLink(t, shadow, filepath.Join(dir, "valkey.conf"))
				return filepath.Join(dir, "valkey.conf"), Trust{UIDs: []int{nobody}, Who: "the server's user nobody"}
			},
			want: `"%s/etc/valkey.conf" is a symbolic link made by uid 65534; links are followed only when root made them`,
		},
		{
			name: "a .. after a link: the text and the kernel name different files",
			setup: func(t *testing.T, base, shadow string) (string, Trust) {
				dir := filepath.Join(base, "etc")
				require.NoError(t, os.Mkdir(dir, 0o750))
				require.NoError(t, os.Symlink(filepath.Dir(shadow), filepath.Join(dir, "link")))
				return dir + "/link/../valkey.conf", Trust{} // not filepath.Join: it would clean the ".." away
			},
			want: `"%s/etc/link/../valkey.conf" has a ".." component; give the path without it`,
		},
		{
			name: "dangling link (root would create the file where it points)",
			setup: func(t *testing.T, base, shadow string) (string, Trust) {
				dir := filepath.Join(base, "etc")
				require.NoError(t, os.Mkdir(dir, 0o750))
				require.NoError(t, os.Chown(dir, nobody, nobody))
				testserver.PlantLink(t, filepath.Join(filepath.Dir(shadow), "sudoers.d-new"), filepath.Join(dir, "valkey.conf"))
				return filepath.Join(dir, "valkey.conf"), Trust{UIDs: []int{nobody}, Who: "the server's user nobody"}
			},
			want: `"%s/etc/valkey.conf" is a symbolic link made by uid 65534; links are followed only when root made them`,
		},
		{
			name: "link as a directory on the way",
			setup: func(t *testing.T, base, shadow string) (string, Trust) {
				dir := filepath.Join(base, "etc")
				require.NoError(t, os.Mkdir(dir, 0o750))
				require.NoError(t, os.Chown(dir, nobody, nobody))
				testserver.PlantLink(t, filepath.Dir(shadow), filepath.Join(dir, "conf.d"))
				return filepath.Join(dir, "conf.d", "shadow"), Trust{UIDs: []int{nobody}, Who: "the server's user nobody"}
			},
			want: `"%s/etc/conf.d" is a symbolic link made by uid 65534; links are followed only when root made them`,
		},
		{
			name: "parent directory owned by a user root does not trust",
			setup: func(t *testing.T, base, shadow string) (string, Trust) {
				dir := filepath.Join(base, "etc")
				require.NoError(t, os.Mkdir(dir, 0o755))
				require.NoError(t, os.Chown(dir, nobody, nobody))
				return filepath.Join(dir, "valkey.conf"), Trust{}
			},
			want: `"%s/etc" is owned by uid 65534, not by root`,
		},
		{
			name: "parent directory writable by another group",
			setup: func(t *testing.T, base, shadow string) (string, Trust) {
				dir := filepath.Join(base, "etc")
				require.NoError(t, os.Mkdir(dir, 0o755))
				require.NoError(t, os.Chown(dir, 0, nobody))
				require.NoError(t, os.Chmod(dir, 0o775))
				return filepath.Join(dir, "valkey.conf"), Trust{}
			},
			want: `"%s/etc" is writable by group 65534 (mode 0775), not only by root`,
		},
		{
			name: "parent directory writable by every user, even sticky",
			setup: func(t *testing.T, base, shadow string) (string, Trust) {
				dir := filepath.Join(base, "etc")
				require.NoError(t, os.Mkdir(dir, 0o755))
				require.NoError(t, os.Chmod(dir, 0o777|fs.ModeSticky))
				return filepath.Join(dir, "valkey.conf"), Trust{}
			},
			want: `"%s/etc" is writable by every user (mode 1777)`,
		},
		{
			name: "grandparent writable by every user, not sticky",
			setup: func(t *testing.T, base, shadow string) (string, Trust) {
				dir := filepath.Join(base, "opt", "valkey")
				require.NoError(t, os.MkdirAll(dir, 0o755))
				require.NoError(t, os.Chmod(filepath.Dir(dir), 0o777))
				return filepath.Join(dir, "valkey.conf"), Trust{}
			},
			want: `"%s/opt" is writable by every user (mode 0777)`,
		},
		{
			name: "relative path",
			setup: func(t *testing.T, base, shadow string) (string, Trust) {
				return "valkey.conf", Trust{}
			},
			want: `"valkey.conf" is not an absolute path`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			shadow := testserver.RootOnly(t)
			path, trust := tc.setup(t, base, shadow)
			want := strings.ReplaceAll(tc.want, "%s", base)

			err := Check(path, trust)
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrUnsafe), "%v", err)
			assert.Equal(t, want, err.Error())

			d, name, err := OpenParent(path, trust)
			if err == nil {
				// Only reachable if the rules let it through: write as root would.
				_ = d.WriteFile(name, []byte("pwned\n"), Attr{Mode: 0o644, UID: -1, GID: -1})
				_ = d.Close()
			}
			require.Error(t, err)
			testserver.AssertRootOnlyUntouched(t, shadow)
		})
	}
}

// TestTrustedPaths: what a normal install looks like passes: root-owned
// directories, a sticky /tmp on the way, the server's own directory, a link
// root made.
func TestTrustedPaths(t *testing.T) {
	testserver.NeedRoot(t)
	base := t.TempDir() // under the sticky, world-writable /tmp
	own := filepath.Join(base, "valkey")
	require.NoError(t, os.Mkdir(own, 0o770))
	require.NoError(t, os.Chown(own, nobody, nobody))
	require.NoError(t, os.WriteFile(filepath.Join(own, "valkey.conf"), []byte("port 0\n"), 0o640))
	require.NoError(t, os.Chown(filepath.Join(own, "valkey.conf"), nobody, nobody))
	server := Trust{UIDs: []int{nobody}, GIDs: []int{nobody}, Who: "the server's user nobody"}
	assert.NoError(t, Check(filepath.Join(own, "valkey.conf"), server))

	real := filepath.Join(base, "real")
	require.NoError(t, os.Mkdir(real, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(real, "valkey.conf"), []byte("port 0\n"), 0o640))
	require.NoError(t, os.Symlink(filepath.Join(real, "valkey.conf"), filepath.Join(base, "valkey.conf")))
	d, name, err := OpenParent(filepath.Join(base, "valkey.conf"), Trust{})
	require.NoError(t, err)
	defer d.Close()
	assert.Equal(t, real, d.Path)
	assert.Equal(t, "valkey.conf", name)
}

// TestWriteFileReplacesLinkNeverFollows: a link swapped in at the file's
// name (the race: after the check, before the rename) is replaced by the
// rename; its target is never written.
func TestWriteFileReplacesLinkNeverFollows(t *testing.T) {
	testserver.NeedRoot(t)
	dir := t.TempDir()
	shadow := testserver.RootOnly(t)
	d, err := OpenDir(dir, Trust{})
	require.NoError(t, err)
	defer d.Close()
	TestHookBeforeRename = func(*Dir, string) error {
		testserver.PlantLink(t, shadow, filepath.Join(dir, "server.key"))
		return nil
	}
	t.Cleanup(func() { TestHookBeforeRename = nil })
	require.NoError(t, d.WriteFile("server.key", []byte("key\n"), Attr{Mode: 0o600, UID: -1, GID: -1}))
	testserver.AssertRootOnlyUntouched(t, shadow)
	fi, err := os.Lstat(filepath.Join(dir, "server.key"))
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular())
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
}

// TestSetAttrRefuses: chmod/chown act on the descriptor of a regular file
// with one name; a link or a hard link to another file is refused.
func TestSetAttrRefuses(t *testing.T) {
	testserver.NeedRoot(t)
	dir := t.TempDir()
	shadow := testserver.RootOnly(t)
	d, err := OpenDir(dir, Trust{})
	require.NoError(t, err)
	defer d.Close()
	testserver.PlantLink(t, shadow, filepath.Join(dir, "valkey.conf"))
	err = d.SetAttr("valkey.conf", Attr{Mode: 0o644, UID: nobody, GID: nobody}, Trust{})
	assert.EqualError(t, err, `"`+dir+`/valkey.conf" is a symbolic link`)
	require.NoError(t, os.Link(shadow, filepath.Join(dir, "users.acl")))
	err = d.SetAttr("users.acl", Attr{Mode: 0o644, UID: nobody, GID: nobody}, Trust{})
	assert.EqualError(t, err, `"`+dir+`/users.acl" has 2 hard links; a file with other names is not changed`)
	testserver.AssertRootOnlyUntouched(t, shadow)
}

// TestReadFileBounds: a FIFO returns at once (0.1.0 hung for ever), a
// device and a file over the limit are refused, all with one sentence.
func TestReadFileBounds(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "valkey.conf")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan error, 1)
	go func() { _, err := ReadFile(fifo, 1<<20); done <- err }()
	select {
	case err := <-done:
		assert.EqualError(t, err, "open "+fifo+": not a regular file (it is a FIFO)")
		assert.ErrorIs(t, err, ErrNotRegular)
	case <-time.After(time.Minute): // safety net only: the read returns at once
		t.Fatal("ReadFile blocked on a FIFO")
	}

	_, err := ReadFile("/dev/zero", 1<<20)
	assert.EqualError(t, err, "open /dev/zero: not a regular file (it is a character device)")

	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, make([]byte, 1<<20+1), 0o600))
	_, err = ReadFile(big, 1<<20)
	assert.EqualError(t, err, "read "+big+": file too large (more than 1 MiB)")
	assert.ErrorIs(t, err, ErrTooLarge)

	d, err := OpenDir(dir, Trust{})
	require.NoError(t, err)
	defer d.Close()
	_, _, err = d.ReadFile("valkey.conf", 1<<20)
	assert.EqualError(t, err, "open "+fifo+": not a regular file (it is a FIFO)")
}
