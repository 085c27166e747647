package policy

import (
	"io/fs"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/conffile"
)

// Facts are what a policy is evaluated against. A nil part is unknown, and
// the rules that need it are skipped with the reason: lint has only the file,
// an audit has the server, the file and the host.
type Facts struct {
	// Runtime is CONFIG GET * (lowercase names); nil without a server.
	Runtime map[string]string
	// Info is INFO server; nil without a server.
	Info map[string]string
	// Config is the parsed config file; nil when not read.
	Config *conffile.Config
	// Users are the ACL users (from ACL LIST, else the aclfile, else the
	// config file's user lines, else the implicit default user).
	Users []User
	// UsersFrom says where Users came from: "server", an aclfile path,
	// the config file path, or "implicit".
	UsersFrom string
	// Host is true when the host's files and process were inspected;
	// false for lint, which sees a config file from a repository.
	Host bool
	// Files are the host's files by path (config, aclfile, dir, keys...).
	Files map[string]*FileInfo
	// Process is the server process; nil when unknown.
	Process *ProcessInfo
	// Certs are the certificates named by directives, by path.
	Certs map[string]*CertInfo
	// Now is the time certificate expiry is measured from.
	Now time.Time
}

// FileInfo is what the policy checks about a file on the host.
type FileInfo struct {
	Path   string
	Exists bool
	Mode   fs.FileMode // permission bits only
	IsDir  bool
	UID    int
	GID    int
	Owner  string // user name, or the uid as text when unknown
	Err    string // why it could not be inspected (not "missing")
}

// ProcessInfo is the running server process.
type ProcessInfo struct {
	PID  int
	UID  int
	User string
}

// CertInfo is a certificate file's expiry.
type CertInfo struct {
	NotAfter time.Time
	Subject  string
	Err      string
}

// User is an ACL user, parsed minimally: enough for the policy.
type User struct {
	Name        string `json:"name"`
	Enabled     bool   `json:"enabled"`
	NoPass      bool   `json:"nopass"`
	HasPassword bool   `json:"-"`
	AllKeys     bool   `json:"-"`
	AllCommands bool   `json:"-"`
	Dangerous   bool   `json:"-"`
}

// ParseACLRule parses one ACL user line: the text after "user" in an
// aclfile or valkey.conf, or a line of ACL LIST ("user NAME rules…"; the
// leading "user" is optional). Passwords and hashes are read as "set" and
// dropped. Rules inside selectors "( … )" are ignored.
func ParseACLRule(line string) (User, bool) {
	fields := strings.Fields(line)
	if len(fields) > 0 && strings.EqualFold(fields[0], "user") {
		fields = fields[1:]
	}
	if len(fields) == 0 {
		return User{}, false
	}
	u := User{Name: fields[0]}
	all, subtracted := false, false
	depth := 0
	for _, f := range fields[1:] {
		if depth > 0 || strings.HasPrefix(f, "(") {
			depth += strings.Count(f, "(") - strings.Count(f, ")")
			continue
		}
		lf := strings.ToLower(f)
		switch {
		case lf == "on":
			u.Enabled = true
		case lf == "off":
			u.Enabled = false
		case lf == "nopass":
			u.NoPass = true
		case lf == "resetpass":
			u.NoPass, u.HasPassword = false, false
		case strings.HasPrefix(f, ">") || strings.HasPrefix(f, "#"):
			u.HasPassword, u.NoPass = true, false
		case lf == "reset":
			u = User{Name: u.Name}
			all, subtracted = false, false
		case lf == "~*" || lf == "allkeys" || lf == "%rw~*":
			u.AllKeys = true
		case lf == "resetkeys":
			u.AllKeys = false
		case lf == "+@all" || lf == "allcommands":
			all, subtracted = true, false
			u.Dangerous = true
		case lf == "-@all" || lf == "nocommands":
			all, subtracted = false, false
			u.Dangerous = false
		case lf == "+@dangerous":
			u.Dangerous = true
		case lf == "-@dangerous":
			u.Dangerous = false
			subtracted = true
		case strings.HasPrefix(f, "-"):
			subtracted = true
		}
	}
	u.AllCommands = all && !subtracted
	return u, true
}

// UsersFromConfig returns the user lines of a config file (or nil).
func UsersFromConfig(c *conffile.Config) []User {
	var out []User
	for _, o := range c.Occurrences("user") {
		if u, ok := ParseACLRule(strings.Join(o.Args, " ")); ok {
			out = append(out, u)
		}
	}
	return out
}

// UsersFromACLFile parses an aclfile's content.
func UsersFromACLFile(data []byte) []User {
	var out []User
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if u, ok := ParseACLRule(l); ok {
			out = append(out, u)
		}
	}
	return out
}

// ImplicitDefault is the default user of a server without ACL
// configuration: on, all rights, and no password unless requirepass is set.
func ImplicitDefault(requirepass bool) User {
	return User{Name: "default", Enabled: true, NoPass: !requirepass, HasPassword: requirepass, AllKeys: true, AllCommands: true, Dangerous: true}
}

// WithDefaultUser adds the implicit default user when users lacks one (a
// server always has a default user).
func WithDefaultUser(users []User, requirepass bool) []User {
	for _, u := range users {
		if u.Name == "default" {
			return users
		}
	}
	return append([]User{ImplicitDefault(requirepass)}, users...)
}
