// Package journal is the change journal: every change a module applies is
// recorded as one JSON line in an append-only file on the target (and, when
// asked, sent to syslog), with who made it from which Git commit. A change
// that cannot be recorded is not made: a module calls Check before its first
// side effect and Append after applying.
//
// Adopting it in a module (docs/ARCHITECTURE.md, "Change journal"):
//
//	type Options struct {
//		conn.Options
//		journal.JournalOptions // journal, journal_path, journal_required, journal_syslog
//		...
//	}
//
//	// after planning, outside check mode, only when something will change,
//	// before the first side effect:
//	warning, err := journal.Check(opts.JournalOptions) // err: fail, nothing was changed
//	... apply ...
//	e := journal.NewEntry(req, opts.Address(), port)
//	e.Changes = append(e.Changes, journal.Change{Kind: journal.KindUser, Name: "app"})
//	warning, err = journal.Append(opts.JournalOptions, e)
//
// (The type is not called Options because a struct cannot embed two types
// of the same name, and every module embeds conn.Options.)
//
// Values are recorded only for what is not secret: a Change with Secret set
// carries its name and never a value, a hash or key material.
package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/syslog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/valkeyops/secure/internal/ansible"
)

// Defaults of the journal options.
const (
	DefaultPath = "/var/log/valkeyops/changes.jsonl"
	// FileMode is the mode of a journal file the module creates: readable by
	// the group (adm, a SIEM agent), never by others.
	FileMode = 0o640
	// DirMode is the mode of a journal directory the module creates.
	DirMode = 0o750
	// SyslogTag is the tag of the syslog messages (the program name).
	SyslogTag = "valkeyops"
	// SyslogPriority: facility auth (security and authorisation events, the
	// one most SIEM agents already collect), severity notice.
	SyslogPriority = syslog.LOG_AUTH | syslog.LOG_NOTICE
)

// JournalOptions are the journal options every module that changes something
// embeds next to conn.Options (doc fragment `journal`). The zero value means
// the defaults.
type JournalOptions struct {
	// Journal turns the journal on (default true). Off: nothing is recorded
	// and nothing is checked, syslog included.
	Journal *bool `json:"journal" spec:"default=true"`
	// JournalPath is the journal file on the target (default DefaultPath).
	// Must be absolute.
	JournalPath string `json:"journal_path" spec:"path,default=/var/log/valkeyops/changes.jsonl"`
	// JournalRequired makes a journal that cannot be written fail the task
	// before anything changes (default true). False: warn and apply.
	JournalRequired *bool `json:"journal_required" spec:"default=true"`
	// JournalSyslog also sends each entry to the local syslog (default false).
	JournalSyslog bool `json:"journal_syslog" spec:"default=false"`
}

// Enabled reports whether changes are recorded.
func (o JournalOptions) Enabled() bool { return o.Journal == nil || *o.Journal }

// Required reports whether a change that cannot be recorded must not be made.
func (o JournalOptions) Required() bool { return o.JournalRequired == nil || *o.JournalRequired }

// Path is the journal file.
func (o JournalOptions) Path() string {
	if o.JournalPath == "" {
		return DefaultPath
	}
	return o.JournalPath
}

// Validate checks the options; it touches nothing.
func (o JournalOptions) Validate() error {
	if o.JournalPath != "" && !filepath.IsAbs(o.JournalPath) {
		return fmt.Errorf("option \"journal_path\": %q is not an absolute path", o.JournalPath)
	}
	return nil
}

// Kinds of change.
const (
	KindDirective   = "directive"    // a configuration directive (valkey_config, valkey_tls)
	KindUser        = "user"         // an ACL user (valkey_acl): name only, never a password or hash
	KindCertificate = "certificate"  // a certificate (valkey_tls): path and fingerprint, never key material
	KindClusterNode = "cluster_node" // a cluster node (valkey_cluster): address, detail = what changed
)

// Change is one thing a change set changed.
type Change struct {
	Kind string `json:"kind"` // KindDirective, KindUser, KindCertificate
	Name string `json:"name"` // canonical directive name, user name, certificate path
	// Secret means the values are not recorded (a secret directive such as
	// requirepass, or one whose secrecy is unknown); Before and After are
	// then always nil.
	Secret bool `json:"secret,omitempty"`
	// Before and After are the values before and after (canonical form:
	// what compares equal is equal). nil: not set, or not recorded.
	Before *string `json:"before,omitempty"`
	After  *string `json:"after,omitempty"`
	// FileBefore is the config file's value before, when it differed from
	// the running server's (drift).
	FileBefore *string `json:"file_before,omitempty"`
	// Where the change was applied: "runtime", "file" (directives).
	Where []string `json:"where,omitempty"`
	// RestartRequired: written but not in effect until the server restarts.
	RestartRequired bool `json:"restart_required,omitempty"`
	// Detail is a short non-secret description (e.g. a certificate's
	// SHA-256 fingerprint, "created", "deleted").
	Detail string `json:"detail,omitempty"`
}

// Entry is one change set: one line of the journal.
type Entry struct {
	Time   time.Time `json:"time"`   // UTC
	Module string    `json:"module"` // e.g. valkey_config
	Host   string    `json:"host"`   // the target's hostname
	// Server is the server's address as the module reached it
	// ("127.0.0.1:6379", "unix:/run/valkey.sock"); Port its TCP port (0 for
	// a unix socket).
	Server string `json:"server,omitempty"`
	Port   int    `json:"port,omitempty"`
	// ConfigFile is the file the change went to, when one did.
	ConfigFile string `json:"config_file,omitempty"`
	// Instance names the server on its host (InstanceName of its config
	// file): "default" for valkey.conf, NAME for valkey-NAME.conf; "" for a
	// server that runs without a config file.
	Instance string   `json:"instance,omitempty"`
	Changes  []Change `json:"changes"`
	// Controller: who ran the task and from which commit (nil when the
	// module ran without the action plugin).
	Controller *ansible.Controller `json:"controller,omitempty"`
	// Partial is set when the task failed after changing something (the
	// change is recorded because it happened).
	Partial bool `json:"partial,omitempty"`
}

// NewEntry starts an entry for req: the time (UTC), the module, this host
// and the controller's metadata. Server and Port come from the module.
func NewEntry(req *ansible.Request, server string, port int) Entry {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	e := Entry{Time: time.Now().UTC(), Host: host, Server: server, Port: port, Changes: []Change{}}
	if req != nil {
		e.Module = req.Module
		e.Controller = req.Controller
	}
	return e
}

// DefaultInstance is the name of the instance whose config file is
// valkey.conf (the single-instance layout of the valkey_server role).
const DefaultInstance = "default"

// InstanceName names the instance that runs from configFile, as the
// valkey_server role lays instances out: valkey.conf is DefaultInstance,
// valkey-NAME.conf (and Debian's valkey-server@NAME) is NAME; any other file
// is named by its base name without ".conf". "" for no config file.
func InstanceName(configFile string) string {
	if configFile == "" {
		return ""
	}
	base := strings.TrimSuffix(filepath.Base(configFile), ".conf")
	if base == "valkey" {
		return DefaultInstance
	}
	if name, ok := strings.CutPrefix(base, "valkey-"); ok && name != "" {
		return name
	}
	return base
}

// Value returns a pointer to v, for Change.Before and After.
func Value(v string) *string { return &v }

// ErrNotRegular is returned when the journal path exists and is not a
// regular file (a symlink, a directory, a FIFO): it is never followed.
var ErrNotRegular = errors.New("not a regular file")

// Check makes sure the journal can be written, before the first change. It
// creates the directory (DirMode) and the file (FileMode) when missing, and
// opens the file for append. It returns a warning instead of an error when
// the journal is not required. With the journal off it does nothing.
func Check(o JournalOptions) (warning string, err error) {
	if !o.Enabled() {
		return "", nil
	}
	f, err := open(o.Path())
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		err = fmt.Errorf("failed to write the change journal %s: %w", o.Path(), err)
	} else if o.JournalSyslog {
		var w *syslog.Writer
		if w, err = dialSyslog(); err == nil {
			err = w.Close()
		}
		if err != nil {
			err = fmt.Errorf("failed to reach the local syslog for the change journal: %w", err)
		}
	}
	return soft(o, err, "the change is applied without a record")
}

// Guard is Check with the sentence every module fails with when the
// journal cannot be written: a change that cannot be recorded is not made.
// Callers add what was left unchanged.
func Guard(o JournalOptions) (warning string, err error) {
	warning, err = Check(o)
	if err != nil {
		err = fmt.Errorf("cannot record the change: %v; set journal_path to a writable file, or journal_required: false to change without a record", err)
	}
	return warning, err
}

// Append records one change set: one JSON line, appended with O_APPEND in a
// single write (lines of concurrent runs never interleave), fsync'd. The file
// is opened for every entry, so logrotate can move it between tasks. With
// JournalSyslog the same line goes to syslog. With the journal off, or an
// entry without changes, it does nothing.
func Append(o JournalOptions, e Entry) (warning string, err error) {
	if !o.Enabled() || len(e.Changes) == 0 {
		return "", nil
	}
	line, err := json.Marshal(e)
	if err != nil {
		return soft(o, fmt.Errorf("failed to encode the journal entry: %w", err), "the change was applied and is not recorded")
	}
	if err := appendLine(o.Path(), append(line, '\n')); err != nil {
		return soft(o, fmt.Errorf("failed to write the change journal %s: %w", o.Path(), err), "the change was applied and is not recorded")
	}
	if o.JournalSyslog {
		w, err := dialSyslog()
		if err == nil {
			err = w.Notice(string(line))
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return soft(o, fmt.Errorf("failed to send the journal entry to syslog (it is in %s): %w", o.Path(), err), "the change was applied")
		}
	}
	return "", nil
}

// soft turns err into a warning when the journal is not required.
func soft(o JournalOptions, err error, consequence string) (string, error) {
	if err == nil {
		return "", nil
	}
	if o.Required() {
		return "", err
	}
	return fmt.Sprintf("%v; journal_required is false, so %s", err, consequence), nil
}

func appendLine(path string, line []byte) error {
	f, err := open(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// open opens the journal for append, creating it (and its directory) when
// missing, with FileMode and DirMode whatever the umask (the module runs
// under umask 077). A symlink or anything else than a regular file is
// refused: a journal directory writable by someone else must not let them
// redirect our writes.
func open(path string) (*os.File, error) {
	if err := mkdirs(filepath.Dir(path)); err != nil {
		return nil, unwrap(err, path)
	}
	const flags = os.O_WRONLY | os.O_APPEND | syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC
	created := true
	f, err := os.OpenFile(path, flags|os.O_CREATE|os.O_EXCL, FileMode)
	if errors.Is(err, fs.ErrExist) {
		created = false
		f, err = os.OpenFile(path, flags, 0)
	}
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, ErrNotRegular
		}
		return nil, unwrap(err, path)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = ErrNotRegular
	}
	if err == nil && created {
		err = f.Chmod(FileMode)
	}
	if err != nil {
		f.Close()
		return nil, unwrap(err, path)
	}
	return f, nil
}

// mkdirs creates dir and its missing parents with DirMode, whatever the
// umask; existing directories are left as they are.
func mkdirs(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirs(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, DirMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // made by a concurrent run
		}
		return err
	}
	return os.Chmod(dir, DirMode)
}

// unwrap drops the journal's own path from a PathError (the message names
// it once); another path (a parent directory) is kept.
func unwrap(err error, path string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if pe.Path == path {
			return pe.Err
		}
		return fmt.Errorf("%s %s: %w", pe.Op, pe.Path, pe.Err)
	}
	return err
}

// syslogAddr is the syslog socket; "" means the local default (/dev/log).
// Tests point it at their own socket.
var syslogAddr = ""

func dialSyslog() (*syslog.Writer, error) {
	if syslogAddr == "" {
		return syslog.New(SyslogPriority, SyslogTag)
	}
	return syslog.Dial("unixgram", syslogAddr, SyslogPriority, SyslogTag)
}
