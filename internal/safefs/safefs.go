// Package safefs is how root touches files it does not fully control:
// every directory on a path must be owned by root (or a user the caller
// trusts, such as the server's own user) and not writable by anyone else,
// a symbolic link is followed only when root made it, and every file
// operation after that check acts on descriptors (openat with O_NOFOLLOW,
// fstat, fchown, fchmod, renameat) so nothing can be swapped in between.
// This is OpenSSH's StrictModes rule for authorized_keys, applied to
// valkey.conf, the aclfile and the TLS files.
//
// Reads are bounded and refuse anything but a regular file, so a FIFO, a
// device or a huge file is an error instead of a hang or an out-of-memory
// crash.
package safefs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// MaxLinks bounds how many symbolic links one path may go through.
const MaxLinks = 40

// ErrUnsafe is wrapped by every refusal of a path by the trust rules.
var ErrUnsafe = errors.New("unsafe path")

// ErrNotRegular is wrapped when a file is a FIFO, a device, a socket or a
// directory where a regular file is expected.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped when a file is larger than the read limit.
var ErrTooLarge = errors.New("file too large")

// Trust says who, besides root and this process's effective user, may own
// the directories of a path and write to them.
type Trust struct {
	// UIDs may own directories (and the file itself), e.g. the server's
	// user where the server writes its own config file.
	UIDs []int
	// GIDs may have write permission on a directory, e.g. the server's group.
	GIDs []int
	// Who names UIDs in messages, e.g. "the server's user valkey".
	Who string
}

func (t Trust) uidOK(uid uint32) bool {
	return uid == 0 || int(uid) == os.Geteuid() || slices.Contains(t.UIDs, int(uid))
}

func (t Trust) owners() string {
	if t.Who != "" {
		return "root or " + t.Who
	}
	return "root"
}

// UnsafeError is a path refused by the trust rules: Path is the component
// at fault, Why what is wrong with it.
type UnsafeError struct {
	Path string
	Why  string
}

func (e *UnsafeError) Error() string { return fmt.Sprintf("%q %s", e.Path, e.Why) }

// Unwrap makes errors.Is(err, ErrUnsafe) hold.
func (e *UnsafeError) Unwrap() error { return ErrUnsafe }

func unsafeErr(path, format string, a ...any) error {
	return &UnsafeError{Path: path, Why: fmt.Sprintf(format, a...)}
}

// Dir is an open directory whose path passed the trust rules. Every
// operation on it is relative to its descriptor.
type Dir struct {
	fd   int
	Path string // the resolved absolute path, for messages
}

// Fd is the directory's descriptor (valid until Close).
func (d *Dir) Fd() int { return d.fd }

// Close releases the descriptor.
func (d *Dir) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// Join is the path of name inside d, for messages.
func (d *Dir) Join(name string) string { return filepath.Join(d.Path, name) }

// OpenDir opens the directory at path after checking every component.
func OpenDir(path string, t Trust) (*Dir, error) {
	d, name, err := walk(path, t, true)
	if err != nil {
		return nil, err
	}
	if name != "" {
		_ = d.Close()
		return nil, fmt.Errorf("internal error: %q resolved to a file", path)
	}
	return d, nil
}

// OpenParent opens the directory that holds path (after checking every
// component) and returns it with the file's name in it. A final symbolic
// link is followed only when root (or this process's user) made it in a
// directory that passed the rules; any other link is refused. The file
// itself need not exist.
func OpenParent(path string, t Trust) (*Dir, string, error) {
	return walk(path, t, false)
}

// Check applies the rules to path without keeping anything open: its
// directories, a final link, and (when the file exists) that it is a
// regular file with one link.
func Check(path string, t Trust) error {
	d, name, err := OpenParent(path, t)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.CheckFile(name, t)
}

// CheckFile checks name in d, when it exists: a regular file with one link.
func (d *Dir) CheckFile(name string, t Trust) error {
	st, err := d.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return checkFile(d.Join(name), st, t, false)
}

func walk(path string, t Trust, wantDir bool) (*Dir, string, error) {
	if !filepath.IsAbs(path) {
		return nil, "", unsafeErr(path, "is not an absolute path")
	}
	// filepath.Clean below resolves ".." by the text; the kernel (and the
	// server, and the lock) resolve it through whatever link precedes it.
	// Refuse it rather than check one file and let others open another.
	if slices.Contains(strings.Split(path, "/"), "..") {
		return nil, "", unsafeErr(path, "has a \"..\" component; give the path without it")
	}
	links := 0
restart:
	comps := strings.Split(strings.TrimPrefix(filepath.Clean(path), "/"), "/")
	if comps[0] == "" {
		comps = nil
	}
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	cur := "/"
	if err := checkDir(fd, cur, t, len(comps) == 0 || (!wantDir && len(comps) == 1)); err != nil {
		_ = unix.Close(fd)
		return nil, "", err
	}
	for i, c := range comps {
		last := i == len(comps)-1
		next := filepath.Join(cur, c)
		var st unix.Stat_t
		if err := unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) && last && !wantDir {
				return finish(fd, cur, c)
			}
			_ = unix.Close(fd)
			return nil, "", &fs.PathError{Op: "stat", Path: next, Err: err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			if !(st.Uid == 0 || int(st.Uid) == os.Geteuid()) {
				_ = unix.Close(fd)
				return nil, "", unsafeErr(next, "is a symbolic link made by uid %d; links are followed only when root made them", st.Uid)
			}
			target, err := readlinkat(fd, c)
			_ = unix.Close(fd)
			if err != nil {
				return nil, "", &fs.PathError{Op: "readlink", Path: next, Err: err}
			}
			if links++; links > MaxLinks {
				return nil, "", unsafeErr(next, "goes through more than %d symbolic links", MaxLinks)
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(cur, target)
			}
			path = filepath.Join(append([]string{target}, comps[i+1:]...)...)
			goto restart
		case unix.S_IFDIR:
			if last && !wantDir {
				return finish(fd, cur, c)
			}
			nfd, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			_ = unix.Close(fd)
			if err != nil {
				return nil, "", &fs.PathError{Op: "open", Path: next, Err: err}
			}
			fd, cur = nfd, next
			// The directory the file goes in is held to the stricter rule.
			isHome := (wantDir && last) || (!wantDir && i == len(comps)-2)
			if err := checkDir(fd, cur, t, isHome); err != nil {
				_ = unix.Close(fd)
				return nil, "", err
			}
		default:
			if last && !wantDir {
				return finish(fd, cur, c)
			}
			_ = unix.Close(fd)
			return nil, "", &fs.PathError{Op: "open", Path: next, Err: unix.ENOTDIR}
		}
	}
	if wantDir {
		return finish(fd, cur, "")
	}
	_ = unix.Close(fd)
	return nil, "", &fs.PathError{Op: "open", Path: path, Err: unix.EISDIR}
}

// finish turns the O_PATH descriptor of the resolved directory into one
// that can be read and locked (when permissions allow).
func finish(fd int, cur, name string) (*Dir, string, error) {
	if rfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		_ = unix.Close(fd)
		fd = rfd
	}
	return &Dir{fd: fd, Path: cur}, name, nil
}

// checkDir: owned by a trusted user; writable by others only when sticky
// and not the directory the file lives in; writable by the group only for
// root's group or a trusted group.
func checkDir(fd int, path string, t Trust, home bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	mode := st.Mode & 0o7777
	if !t.uidOK(st.Uid) {
		return unsafeErr(path, "is owned by uid %d, not by %s", st.Uid, t.owners())
	}
	sticky := mode&unix.S_ISVTX != 0
	if mode&0o002 != 0 && (home || !sticky) {
		return unsafeErr(path, "is writable by every user (mode %04o)", mode)
	}
	if mode&0o020 != 0 && st.Gid != 0 && !slices.Contains(t.GIDs, int(st.Gid)) && (home || !sticky) {
		return unsafeErr(path, "is writable by group %d (mode %04o), not only by %s", st.Gid, mode, t.owners())
	}
	return nil
}

// checkFile: a regular file with one link; for attribute changes also
// owned by a trusted user.
func checkFile(path string, st *unix.Stat_t, t Trust, owner bool) error {
	if err := regular(path, st); err != nil {
		return err
	}
	if st.Nlink > 1 {
		return unsafeErr(path, "has %d hard links; a file with other names is not changed", st.Nlink)
	}
	if owner && !t.uidOK(st.Uid) {
		return unsafeErr(path, "is owned by uid %d, not by %s", st.Uid, t.owners())
	}
	return nil
}

func regular(path string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		return nil
	}
	return &fs.PathError{Op: "open", Path: path, Err: &notRegularError{mode: st.Mode}}
}

// notRegularError says what a file is instead of a regular file; a
// directory also matches syscall.EISDIR.
type notRegularError struct{ mode uint32 }

func (e *notRegularError) Error() string { return "not a regular file (it is " + kind(e.mode) + ")" }

func (e *notRegularError) Is(target error) bool {
	return target == ErrNotRegular || (target == unix.EISDIR && e.mode&unix.S_IFMT == unix.S_IFDIR)
}

func kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return "not a file"
}

func readlinkat(fd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// Stat is fstatat without following a link; a missing name wraps
// fs.ErrNotExist.
func (d *Dir) Stat(name string) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: d.Join(name), Err: err}
	}
	return &st, nil
}

// openFile opens name for reading without following a link and without
// blocking on a FIFO, and checks that it is a regular file.
func (d *Dir) openFile(name string) (*os.File, *unix.Stat_t, error) {
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, nil, unsafeErr(d.Join(name), "is a symbolic link")
		}
		return nil, nil, &fs.PathError{Op: "open", Path: d.Join(name), Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return nil, nil, &fs.PathError{Op: "stat", Path: d.Join(name), Err: err}
	}
	if err := regular(d.Join(name), &st); err != nil {
		_ = unix.Close(fd)
		return nil, nil, err
	}
	return os.NewFile(uintptr(fd), d.Join(name)), &st, nil
}

// ReadFile reads name in d (no link followed), at most max bytes.
func (d *Dir) ReadFile(name string, max int64) ([]byte, *unix.Stat_t, error) {
	f, st, err := d.openFile(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	b, err := readBounded(f, d.Join(name), max)
	return b, st, err
}

// ReadFile reads a file the caller was given (links are followed, as any
// reader would), refusing anything but a regular file and anything larger
// than max bytes. It never blocks on a FIFO and never reads a device.
func ReadFile(path string, max int64) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if err := regular(path, &st); err != nil {
		return nil, err
	}
	return readBounded(f, path, max)
}

func readBounded(f *os.File, path string, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if int64(len(b)) > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w (more than %s)", ErrTooLarge, Size(max))}
	}
	return b, nil
}

// Size renders a byte count for messages (8 MiB, 512 KiB, 100 bytes).
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// Attr is the owner, mode and modification time a written file gets.
type Attr struct {
	Mode     fs.FileMode // permission bits (and setuid/setgid/sticky)
	UID, GID int         // -1: as created (this process's user and group)
	MTime    time.Time   // zero: now
}

// AttrOf is the owner and mode of st, to give a replacement file.
func AttrOf(st *unix.Stat_t) Attr {
	return Attr{Mode: fs.FileMode(st.Mode & 0o777), UID: int(st.Uid), GID: int(st.Gid)}.withSpecial(st.Mode)
}

func (a Attr) withSpecial(mode uint32) Attr {
	if mode&unix.S_ISUID != 0 {
		a.Mode |= fs.ModeSetuid
	}
	if mode&unix.S_ISGID != 0 {
		a.Mode |= fs.ModeSetgid
	}
	if mode&unix.S_ISVTX != 0 {
		a.Mode |= fs.ModeSticky
	}
	return a
}

func sysMode(m fs.FileMode) uint32 {
	out := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		out |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		out |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		out |= unix.S_ISVTX
	}
	return out
}

// TestHookBeforeRename is for tests only: when set, it runs after the temp
// file of WriteFile is complete and before it is renamed into place (its
// error fails the write).
var TestHookBeforeRename func(d *Dir, tmp string) error

// WriteFile replaces name in d atomically: a new temp file (O_EXCL,
// O_NOFOLLOW) in d gets the data, the owner and the mode (on its
// descriptor, before any byte is written, so the data is never readable
// under a looser mode), is fsynced and renamed over name; then d is
// fsynced. A link at name is replaced, never followed. On error the temp
// file is removed and name is untouched.
func (d *Dir) WriteFile(name string, data []byte, a Attr) (err error) {
	var f *os.File
	var tmp string
	for i := 0; ; i++ {
		tmp = "." + name + ".valkeyops-" + strconv.FormatInt(time.Now().UnixNano()+int64(i), 36)
		fd, oerr := unix.Openat(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if oerr == nil {
			f = os.NewFile(uintptr(fd), d.Join(tmp))
			break
		}
		if !errors.Is(oerr, unix.EEXIST) || i > 100 {
			return fmt.Errorf("failed to create a temp file in %q: %w", d.Path, oerr)
		}
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = unix.Unlinkat(d.fd, tmp, 0)
		}
	}()
	if err := fixAttr(f, a); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("failed to write temp file %q: %w", f.Name(), err)
	}
	if !a.MTime.IsZero() {
		ts := unix.NsecToTimespec(a.MTime.UnixNano())
		if err := unix.UtimesNanoAt(int(f.Fd()), "", []unix.Timespec{ts, ts}, unix.AT_EMPTY_PATH); err != nil {
			return fmt.Errorf("failed to set times on %q: %w", f.Name(), err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("failed to sync temp file %q: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to close temp file %q: %w", f.Name(), err)
	}
	if TestHookBeforeRename != nil {
		if err := TestHookBeforeRename(d, tmp); err != nil {
			return err
		}
	}
	if err := unix.Renameat(d.fd, tmp, d.fd, name); err != nil {
		return fmt.Errorf("failed to rename temp file over %q: %w", d.Join(name), err)
	}
	return d.sync()
}

// fixAttr gives f the owner, then the mode (chown clears setuid/setgid).
func fixAttr(f *os.File, a Attr) error {
	if a.UID >= 0 || a.GID >= 0 {
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return fmt.Errorf("failed to stat %q: %w", f.Name(), err)
		}
		if (a.UID >= 0 && uint32(a.UID) != st.Uid) || (a.GID >= 0 && uint32(a.GID) != st.Gid) {
			if err := unix.Fchown(int(f.Fd()), a.UID, a.GID); err != nil {
				return fmt.Errorf("failed to give %q owner %d:%d: %w", f.Name(), a.UID, a.GID, err)
			}
		}
	}
	if err := unix.Fchmod(int(f.Fd()), sysMode(a.Mode)); err != nil {
		return fmt.Errorf("failed to chmod %q: %w", f.Name(), err)
	}
	return nil
}

// SetAttr gives the existing file name in d the owner and mode of a,
// through its descriptor: a link, a non-regular file, a file with other
// hard links or owned by an untrusted user is refused.
func (d *Dir) SetAttr(name string, a Attr, t Trust) error {
	// Look before opening: opening a device node can have effects of its
	// own (a tape rewinds); the fstat after the open decides.
	var pre unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &pre, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		if err := regular(d.Join(name), &pre); err != nil && pre.Mode&unix.S_IFMT != unix.S_IFLNK {
			return err
		}
	}
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return unsafeErr(d.Join(name), "is a symbolic link")
		}
		return &fs.PathError{Op: "open", Path: d.Join(name), Err: err}
	}
	f := os.NewFile(uintptr(fd), d.Join(name))
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: d.Join(name), Err: err}
	}
	if err := checkFile(d.Join(name), &st, t, true); err != nil {
		return err
	}
	return fixAttr(f, a)
}

// Remove unlinks name in d (a link itself, never its target).
func (d *Dir) Remove(name string) error {
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: d.Join(name), Err: err}
	}
	return nil
}

func (d *Dir) sync() error {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil // an O_PATH-only directory (no read permission): nothing to sync with
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTSUP) {
		return fmt.Errorf("failed to sync directory %q: %w", d.Path, err)
	}
	return nil
}
