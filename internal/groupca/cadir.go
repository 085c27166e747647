package groupca

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/valkeyops/secure/internal/safefs"
)

// File names in the CA directory.
const (
	CACertName = "ca.crt"
	CAKeyName  = "ca.key"
	// MaxCAFileSize bounds each file read from the CA directory.
	MaxCAFileSize = 64 << 10
)

// Dir is the controller's CA directory, checked and locked: the
// operator's user (or root) owns it and every directory above it, it is
// not a symbolic link, and nobody else may enter it (mode 0700).
type Dir struct {
	d *safefs.Dir
}

// OpenDir opens (and with create, makes 0700) the CA directory at path.
// The caller locks it (outcome.Task.Lock) before reading.
func OpenDir(path string, create bool) (*Dir, error) {
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
		if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("failed to create the CA directory %q: %v", path, err)
		}
		if st, err = os.Lstat(path); err != nil {
			return nil, fmt.Errorf("failed to stat the CA directory %q: %v", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("the CA directory %q does not exist", path)
	case err != nil:
		return nil, fmt.Errorf("failed to stat the CA directory %q: %v", path, err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("refusing the CA directory %q: it is a symbolic link; name the directory itself", path)
	}
	d, err := safefs.OpenDir(path, safefs.Trust{})
	if err != nil {
		return nil, fmt.Errorf("refusing the CA directory %q: %v", path, err)
	}
	var fst unix.Stat_t
	if err := unix.Fstat(d.Fd(), &fst); err != nil {
		_ = d.Close()
		return nil, err
	}
	if int(fst.Uid) != os.Geteuid() {
		_ = d.Close()
		return nil, fmt.Errorf("refusing the CA directory %q: it is owned by uid %d, not by the user running the play (uid %d)", path, fst.Uid, os.Geteuid())
	}
	if fst.Mode&0o077 != 0 {
		_ = d.Close()
		return nil, fmt.Errorf("refusing the CA directory %q: mode %04o lets other users in; make it 0700", path, fst.Mode&0o7777)
	}
	return &Dir{d: d}, nil
}

// Close releases the directory.
func (c *Dir) Close() {
	_ = c.d.Close()
}

// Path is the directory's resolved path.
func (c *Dir) Path() string { return c.d.Path }

// Read returns the CA's files: both nil when neither exists; an error when
// only one does (never generate a second CA over half of one), or when the
// key is readable by anyone but its owner, not a regular file, or a link.
func (c *Dir) Read() (certPEM, keyPEM []byte, err error) {
	certPEM, cerr := c.readFile(CACertName, false)
	keyPEM, kerr := c.readFile(CAKeyName, true)
	switch {
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
		return nil, nil, nil
	case errors.Is(cerr, fs.ErrNotExist) || errors.Is(kerr, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("the CA directory %q holds only one of %s and %s; restore the other (a second CA is never generated over half of one)", c.d.Path, CACertName, CAKeyName)
	case cerr != nil:
		return nil, nil, cerr
	case kerr != nil:
		return nil, nil, kerr
	}
	return certPEM, keyPEM, nil
}

func (c *Dir) readFile(name string, secret bool) ([]byte, error) {
	st, err := c.d.Stat(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && errors.Is(pe.Err, unix.ENOENT) {
			return nil, fs.ErrNotExist
		}
		return nil, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil, fmt.Errorf("refusing %s: it is a symbolic link", c.d.Join(name))
	}
	data, st, err := c.d.ReadFile(name, MaxCAFileSize)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %v", c.d.Join(name), err)
	}
	if int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("refusing %s: it is owned by uid %d, not by the user running the play", c.d.Join(name), st.Uid)
	}
	if st.Nlink > 1 {
		return nil, fmt.Errorf("refusing %s: it has %d hard links", c.d.Join(name), st.Nlink)
	}
	if secret && st.Mode&0o077 != 0 {
		return nil, fmt.Errorf("refusing %s: mode %04o lets other users read the CA key; make it 0600 (and consider the CA compromised if anyone did)", c.d.Join(name), st.Mode&0o7777)
	}
	return data, nil
}

// Write stores a new CA: the key (0600) first, then the certificate (0644),
// each atomically.
func (c *Dir) Write(certPEM, keyPEM []byte) error {
	if err := c.d.WriteFile(CAKeyName, keyPEM, safefs.Attr{Mode: 0o600, UID: -1, GID: -1}); err != nil {
		return fmt.Errorf("failed to write %s: %v", c.d.Join(CAKeyName), err)
	}
	if err := c.d.WriteFile(CACertName, certPEM, safefs.Attr{Mode: 0o644, UID: -1, GID: -1}); err != nil {
		_ = c.d.Remove(CAKeyName)
		return fmt.Errorf("failed to write %s: %v", c.d.Join(CACertName), err)
	}
	return nil
}
