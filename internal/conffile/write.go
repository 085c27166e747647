package conffile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// WriteOptions controls WriteAtomic.
type WriteOptions struct {
	// Backup keeps a copy of the old file first, named
	// "<path>.<pid>.<YYYY-MM-DD@HH:MM:SS>~", with the same content, mode,
	// owner and modification time as the original.
	Backup bool
	// NewFileMode is the mode for a file that did not exist (0600 if zero).
	NewFileMode fs.FileMode
}

// testHookBeforeRename, when set by tests, runs after the temp file is
// complete and before it is renamed over the target.
var testHookBeforeRename func(tmp string) error

const keptModeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// WriteAtomic writes data to path: a temp file in the same directory is
// written, given the old file's mode and owner (or NewFileMode), fsynced and
// renamed over path, then the directory is fsynced. On error the temp file is
// removed and the original is untouched. When path is a symlink the data is
// written to its target so the link survives. It returns the backup path, or
// "" when no backup was made.
func WriteAtomic(path string, data []byte, opts WriteOptions) (backup string, err error) {
	target, err := resolveTarget(path)
	if err != nil {
		return "", fmt.Errorf("failed to resolve %q: %w", path, err)
	}

	mode := opts.NewFileMode & keptModeBits
	if mode == 0 {
		mode = 0o600
	}
	uid, gid, haveOwner := -1, -1, false
	fi, err := os.Stat(target)
	switch {
	case err == nil:
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("failed to write %q: %q is not a regular file", path, target)
		}
		mode = fi.Mode() & keptModeBits
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid, haveOwner = int(st.Uid), int(st.Gid), true
		}
	case errors.Is(err, fs.ErrNotExist):
		fi = nil
	default:
		return "", fmt.Errorf("failed to stat %q: %w", target, err)
	}

	if opts.Backup && fi != nil {
		old, err := os.ReadFile(target)
		if err != nil {
			return "", fmt.Errorf("failed to read %q for backup: %w", target, err)
		}
		bp := path + "." + strconv.Itoa(os.Getpid()) + "." + time.Now().Format("2006-01-02@15:04:05") + "~"
		if err := writeReplace(bp, old, mode, uid, gid, haveOwner, fi.ModTime()); err != nil {
			return "", fmt.Errorf("failed to write backup of %q: %w", path, err)
		}
		backup = bp
	}

	if err := writeReplace(target, data, mode, uid, gid, haveOwner, time.Time{}); err != nil {
		return backup, fmt.Errorf("failed to write %q: %w", path, err)
	}
	return backup, nil
}

// resolveTarget follows symlinks at path. A dangling link resolves to the
// path it points at, so the file is created there.
func resolveTarget(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	p := abs
	for range 40 {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		link, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(p), link)
		}
		p = link
	}
	return "", errors.New("too many levels of symbolic links")
}

// writeReplace atomically replaces target with data via a temp file in the
// same directory. A non-zero mtime is applied to the new file.
func writeReplace(target string, data []byte, mode fs.FileMode, uid, gid int, haveOwner bool, mtime time.Time) (err error) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".valkeyops-*")
	if err != nil {
		return fmt.Errorf("failed to create temp file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("failed to write temp file %q: %w", tmp, err)
	}
	if haveOwner {
		if err := chownLike(f, uid, gid); err != nil {
			return err
		}
	}
	// chmod after chown: chown clears setuid/setgid bits.
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("failed to chmod temp file %q: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("failed to sync temp file %q: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to close temp file %q: %w", tmp, err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(tmp, mtime, mtime); err != nil {
			return fmt.Errorf("failed to set times on %q: %w", tmp, err)
		}
	}
	if testHookBeforeRename != nil {
		if err := testHookBeforeRename(tmp); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		return fmt.Errorf("failed to rename temp file over %q: %w", target, err)
	}
	return syncDir(dir)
}

// chownLike gives f the wanted owner when it differs from the current one.
func chownLike(f *os.File, uid, gid int) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("failed to stat temp file %q: %w", f.Name(), err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) == uid && int(st.Gid) == gid {
		return nil
	}
	if err := f.Chown(uid, gid); err != nil {
		return fmt.Errorf("failed to give temp file %q owner %d:%d: %w", f.Name(), uid, gid, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to open directory %q for sync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("failed to sync directory %q: %w", dir, err)
	}
	return nil
}
