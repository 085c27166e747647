package conffile

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/valkeyops/secure/internal/safefs"
)

func statT(t *testing.T, path string) (fs.FileMode, int, int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fi.Mode(), int(st.Uid), int(st.Gid)
}

func readT(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tempLeftovers lists WriteAtomic temp files in dir.
func tempLeftovers(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ".*.valkeyops-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWriteAtomic(t *testing.T) {
	root := os.Geteuid() == 0
	tests := []struct {
		name      string
		existing  *string // nil: no file yet
		mode      fs.FileMode
		owner     [2]int // chown existing file to this (root only); 0,0 = leave
		opts      WriteOptions
		wantMode  fs.FileMode
		wantOwner [2]int // -1: current process
	}{
		{name: "new file gets NewFileMode", opts: WriteOptions{NewFileMode: 0o640}, wantMode: 0o640, wantOwner: [2]int{-1, -1}},
		{name: "new file default mode", wantMode: 0o600, wantOwner: [2]int{-1, -1}},
		{name: "new file backup is no-op", opts: WriteOptions{Backup: true, NewFileMode: 0o644}, wantMode: 0o644, wantOwner: [2]int{-1, -1}},
		{name: "mode 0640 kept", existing: ptr("old\n"), mode: 0o640, opts: WriteOptions{NewFileMode: 0o600}, wantMode: 0o640, wantOwner: [2]int{-1, -1}},
		{name: "mode 0600 kept with backup", existing: ptr("old\n"), mode: 0o600, opts: WriteOptions{Backup: true}, wantMode: 0o600, wantOwner: [2]int{-1, -1}},
		{name: "owner kept", existing: ptr("old\n"), mode: 0o640, owner: [2]int{1234, 5678}, opts: WriteOptions{Backup: true}, wantMode: 0o640, wantOwner: [2]int{1234, 5678}},
		{name: "setgid kept", existing: ptr("old\n"), mode: 0o640 | fs.ModeSetgid, owner: [2]int{1234, 5678}, wantMode: 0o640 | fs.ModeSetgid, wantOwner: [2]int{1234, 5678}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.owner != [2]int{} && !root {
				t.Skip("chown to another user needs root")
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "valkey.conf")
			if tc.existing != nil {
				if err := os.WriteFile(path, []byte(*tc.existing), 0o600); err != nil {
					t.Fatal(err)
				}
				if tc.owner != [2]int{} {
					if err := os.Chown(path, tc.owner[0], tc.owner[1]); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.Chmod(path, tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			backup, err := WriteAtomic(path, []byte("new\n"), tc.opts)
			if err != nil {
				t.Fatalf("WriteAtomic: %v", err)
			}
			if got := readT(t, path); got != "new\n" {
				t.Errorf("content = %q", got)
			}
			mode, uid, gid := statT(t, path)
			if mode != tc.wantMode {
				t.Errorf("mode = %v, want %v", mode, tc.wantMode)
			}
			wantUID, wantGID := tc.wantOwner[0], tc.wantOwner[1]
			if wantUID == -1 {
				wantUID, wantGID = os.Geteuid(), os.Getegid()
			}
			if uid != wantUID || gid != wantGID {
				t.Errorf("owner = %d:%d, want %d:%d", uid, gid, wantUID, wantGID)
			}
			if left := tempLeftovers(t, dir); len(left) != 0 {
				t.Errorf("temp files left: %q", left)
			}
			wantBackup := tc.opts.Backup && tc.existing != nil
			if (backup != "") != wantBackup {
				t.Fatalf("backup = %q, want one: %v", backup, wantBackup)
			}
			if !wantBackup {
				return
			}
			if !strings.HasPrefix(backup, path+"."+strconv.Itoa(os.Getpid())+".") || !strings.HasSuffix(backup, "~") {
				t.Errorf("backup name %q does not follow <path>.<pid>.<date>~", backup)
			}
			if got := readT(t, backup); got != *tc.existing {
				t.Errorf("backup content = %q, want %q", got, *tc.existing)
			}
			bm, bu, bg := statT(t, backup)
			if bm != tc.wantMode || bu != wantUID || bg != wantGID {
				t.Errorf("backup mode/owner = %v %d:%d, want %v %d:%d", bm, bu, bg, tc.wantMode, wantUID, wantGID)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestWriteAtomicSymlink(t *testing.T) {
	tests := []struct {
		name     string
		relative bool
		dangling bool
	}{
		{name: "absolute link"},
		{name: "relative link", relative: true},
		{name: "dangling link creates target", dangling: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			realDir := filepath.Join(base, "real")
			linkDir := filepath.Join(base, "etc")
			for _, d := range []string{realDir, linkDir} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			target := filepath.Join(realDir, "valkey.conf")
			if !tc.dangling {
				if err := os.WriteFile(target, []byte("old\n"), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			link := filepath.Join(linkDir, "valkey.conf")
			dest := target
			if tc.relative {
				dest = "../real/valkey.conf"
			}
			if err := os.Symlink(dest, link); err != nil {
				t.Fatal(err)
			}
			if _, err := WriteAtomic(link, []byte("new\n"), WriteOptions{NewFileMode: 0o644}); err != nil {
				t.Fatalf("WriteAtomic: %v", err)
			}
			fi, err := os.Lstat(link)
			if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Fatalf("link replaced: %v %v", fi.Mode(), err)
			}
			if got := readT(t, target); got != "new\n" {
				t.Errorf("target content = %q", got)
			}
			wantMode := fs.FileMode(0o640)
			if tc.dangling {
				wantMode = 0o644
			}
			if m, _, _ := statT(t, target); m != wantMode {
				t.Errorf("target mode = %v, want %v", m, wantMode)
			}
		})
	}
}

func TestWriteAtomicFailureLeavesOriginal(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir, path string)
	}{
		{
			name: "failure before rename",
			setup: func(t *testing.T, dir, path string) {
				safefs.TestHookBeforeRename = func(*safefs.Dir, string) error { return errors.New("injected failure") }
				t.Cleanup(func() { safefs.TestHookBeforeRename = nil })
			},
		},
		{
			name: "target is a directory",
			setup: func(t *testing.T, dir, path string) {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "valkey.conf")
			if err := os.WriteFile(path, []byte("old\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, dir, path)
			if _, err := WriteAtomic(path, []byte("new\n"), WriteOptions{}); err == nil {
				t.Fatal("WriteAtomic succeeded, want error")
			}
			if fi, _ := os.Stat(path); fi != nil && fi.Mode().IsRegular() {
				if got := readT(t, path); got != "old\n" {
					t.Errorf("original changed to %q", got)
				}
			}
			if left := tempLeftovers(t, dir); len(left) != 0 {
				t.Errorf("temp files left: %q", left)
			}
		})
	}
}

// mountTmpfs mounts a tmpfs on a new directory; it skips the test when that
// is not possible (not root, no mount permission).
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %q: %v: %s", dir, err, out)
		}
	})
	return dir
}

func TestWriteAtomicReadOnlyFS(t *testing.T) {
	dir := mountTmpfs(t, "size=1m,mode=0755")
	path := filepath.Join(dir, "valkey.conf")
	if err := os.WriteFile(path, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v: %s", err, out)
	}
	for _, backup := range []bool{false, true} {
		_, err := WriteAtomic(path, []byte("new\n"), WriteOptions{Backup: backup})
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("backup=%v: error = %v, want EROFS", backup, err)
		}
		if got := readT(t, path); got != "old\n" {
			t.Errorf("backup=%v: original changed to %q", backup, got)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory has %d entries, want only the original", len(entries))
	}
}

func TestWriteAtomicNoSpace(t *testing.T) {
	dir := mountTmpfs(t, "size=64k,mode=0755")
	path := filepath.Join(dir, "valkey.conf")
	if err := os.WriteFile(path, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	big := []byte(strings.Repeat("x", 1<<20))
	if _, err := WriteAtomic(path, big, WriteOptions{}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("error = %v, want ENOSPC", err)
	}
	if got := readT(t, path); got != "old\n" {
		t.Errorf("original changed (%d bytes)", len(got))
	}
	if left := tempLeftovers(t, dir); len(left) != 0 {
		t.Errorf("temp files left: %q", left)
	}
}
