package conffile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/valkeyops/secure/internal/safefs"
)

// WriteOptions controls WriteAtomic.
type WriteOptions struct {
	// Backup keeps a copy of the old file first, named
	// "<file>.<pid>.<YYYY-MM-DD@HH:MM:SS>~" next to it, with the same
	// content, mode, owner and modification time as the original.
	Backup bool
	// NewFileMode is the mode for a file that did not exist (0600 if zero).
	NewFileMode fs.FileMode
	// Trust names who besides root may own the directories on the way and
	// the file (e.g. the server's user, for a directory the server writes
	// with CONFIG REWRITE). The zero value trusts root (and this process's
	// user) only.
	Trust safefs.Trust
}

const keptModeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// WriteAtomic writes data to path: a temp file in the same directory is
// written, given the old file's mode and owner (or NewFileMode), fsynced and
// renamed over path, then the directory is fsynced. On error the temp file is
// removed and the original is untouched.
//
// The path must pass safefs's rules: every directory owned by root (or
// opts.Trust) and writable by nobody else, no link that root did not make
// (a root-made link is followed and survives), and an existing file must be
// a regular file with one link. Everything after that check is relative to
// the directory's descriptor, so nothing can be swapped in between. It
// returns the backup path, or "" when no backup was made.
func WriteAtomic(path string, data []byte, opts WriteOptions) (backup string, err error) {
	d, name, err := safefs.OpenParent(path, opts.Trust)
	if err != nil {
		return "", fmt.Errorf("failed to write %q: %w", path, err)
	}
	defer d.Close()

	attr := safefs.Attr{Mode: opts.NewFileMode & keptModeBits, UID: -1, GID: -1}
	if attr.Mode == 0 {
		attr.Mode = 0o600
	}
	st, err := d.Stat(name)
	switch {
	case err == nil:
		if err := d.CheckFile(name, opts.Trust); err != nil {
			return "", fmt.Errorf("failed to write %q: %w", path, err)
		}
		attr = safefs.AttrOf(st)
	case errors.Is(err, fs.ErrNotExist):
		st = nil
	default:
		return "", fmt.Errorf("failed to write %q: %w", path, err)
	}

	if opts.Backup && st != nil {
		old, _, err := d.ReadFile(name, MaxFileSize)
		if err != nil {
			return "", fmt.Errorf("failed to read %q for backup: %w", path, err)
		}
		bname := name + "." + strconv.Itoa(os.Getpid()) + "." + time.Now().Format("2006-01-02@15:04:05") + "~"
		battr := attr
		battr.MTime = time.Unix(st.Mtim.Unix())
		if err := d.WriteFile(bname, old, battr); err != nil {
			return "", fmt.Errorf("failed to write backup of %q: %w", path, err)
		}
		backup = d.Join(bname)
	}

	if err := d.WriteFile(name, data, attr); err != nil {
		return backup, fmt.Errorf("failed to write %q: %w", path, err)
	}
	return backup, nil
}
