package acl

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/valkeyops/secure/internal/safefs"
)

// NewFileMode is the mode given to an aclfile or config file that the
// server creates with ACL SAVE or CONFIG REWRITE (it holds password hashes).
const NewFileMode = 0o640

// testHookAfterSave, set by tests only, runs after the server saved the
// users and before their file's owner and mode are restored: the moment
// the server's user could swap the file.
var testHookAfterSave func()

// keptFile is the file the server rewrites when the users are saved. The
// server writes a new file with its own umask (0644 on a default install:
// every local user could read requirepass and the password hashes), so
// the owner and mode read before are put back right after, through the
// directory's descriptor and without following a link.
type keptFile struct {
	dir    *safefs.Dir
	name   string
	attr   safefs.Attr
	trust  safefs.Trust
	exists bool
}

// keepAttrs records the owner and mode of path before the server rewrites
// it. trust names the server's user, which owns the directory it writes.
func keepAttrs(path string, trust safefs.Trust) (*keptFile, error) {
	d, name, err := safefs.OpenParent(path, trust)
	if err != nil {
		return nil, err
	}
	k := &keptFile{dir: d, name: name, trust: trust, attr: safefs.Attr{Mode: NewFileMode, UID: -1, GID: -1}}
	st, err := d.Stat(name)
	switch {
	case err == nil:
		if err := d.CheckFile(name, trust); err != nil {
			_ = d.Close()
			return nil, err
		}
		k.attr, k.exists = safefs.AttrOf(st), true
	case !errors.Is(err, fs.ErrNotExist):
		_ = d.Close()
		return nil, err
	}
	return k, nil
}

// restore gives the rewritten file its owner and mode back (a new file:
// NewFileMode, the owner the server gave it).
func (k *keptFile) restore() error {
	if err := k.dir.SetAttr(k.name, k.attr, k.trust); err != nil {
		return fmt.Errorf("failed to restore the owner and mode of %s after the server rewrote it: %v", k.dir.Join(k.name), err)
	}
	return nil
}

func (k *keptFile) close() {
	if k != nil {
		_ = k.dir.Close()
	}
}
