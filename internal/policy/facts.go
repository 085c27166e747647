package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/aclrule"
	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/topology"
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
	// Paths lists the files behind the file predicate's special paths:
	// "loadmodule" (each module's path), "data" (the RDB file and the AOF
	// directory's files). Each is in Files.
	Paths map[string][]string
	// Process is the server process; nil when unknown.
	Process *ProcessInfo
	// Certs are the certificates named by directives, by path.
	Certs map[string]*CertInfo
	// Served is the certificate the server presents on its TLS port; nil
	// when it was not read (no server, no TLS port, no handshake).
	Served *ServedCert
	// Now is the time certificate expiry is measured from.
	Now time.Time
	// Persistence is INFO persistence; nil without a server.
	Persistence map[string]string
	// Kernel is what the audit read of the host's kernel settings (nil when
	// the host was not inspected).
	Kernel *KernelInfo
	// Sandbox is the service's hardening drop-in (nil when not inspected).
	Sandbox *SandboxInfo
	// Cluster is the node's view of its cluster; nil for a server without
	// cluster-enabled, or when it could not be read.
	Cluster *ClusterFacts
	// Replication is INFO replication; nil without a server, or when it
	// could not be read.
	Replication *topology.Replication
	// Sentinel is set when the server is a Sentinel (INFO server_mode:
	// sentinel): then only the rules whose targets include sentinel run.
	Sentinel *SentinelFacts
}

// SentinelFacts are what a Sentinel says about itself and its monitors.
type SentinelFacts struct {
	// Config is SENTINEL CONFIG GET * with sentinel-pass as "set" or ""
	// (the value is never kept).
	Config map[string]string
	// Monitors are SENTINEL PRIMARIES (quorum, other Sentinels).
	Monitors []*topology.Monitor
}

// Kind is what the facts describe: "sentinel" or "server".
func (f *Facts) Kind() string {
	if f.Sentinel != nil {
		return TargetSentinel
	}
	return TargetServer
}

// ClusterFacts are what a cluster node says about its cluster.
type ClusterFacts struct {
	// State is cluster_state from CLUSTER INFO (ok or fail).
	State string
	// View is the node's CLUSTER NODES.
	View *topology.ClusterView
}

// ServedCert is the certificate a server presented and where.
type ServedCert struct {
	Address string
	Cert    *CertInfo
}

// KernelInfo holds the host settings Valkey depends on, each read from
// /proc/sys or /sys; a setting that could not be read is absent from Values
// and its reason is in Errors.
type KernelInfo struct {
	// Values by name: vm.overcommit_memory, net.core.somaxconn, and
	// transparent_hugepage (the selected mode: always, madvise or never).
	Values map[string]string
	Errors map[string]string
}

// SandboxInfo says whether the service runs under systemd with the role's
// hardening drop-in.
type SandboxInfo struct {
	// Systemd is false when the host does not run systemd: then the rule
	// does not apply.
	Systemd bool
	// Unit is the service unit of the instance; DropIn the file looked for.
	Unit   string
	DropIn string
	// Found: the drop-in is a regular file owned by root that others cannot
	// write. Problem says why not.
	Found   bool
	Problem string
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

// CertInfo is what the audit read of a certificate file: the first
// certificate (the leaf) and, for the signature check, the certificates
// after it (intermediates).
type CertInfo struct {
	NotAfter time.Time
	Subject  string
	Err      string
	// KeyType and KeyBits describe the leaf's public key ("RSA", 2048);
	// KeyWeakness says why it is too weak ("" when it is not).
	KeyType     string
	KeyBits     int
	KeyWeakness string
	// WeakSignatures lists the certificates of the file signed with SHA-1
	// or MD5 ("CN=x: SHA1-RSA").
	WeakSignatures []string
	// SelfSigned: the leaf is signed by its own key (no CA stands behind it).
	SelfSigned bool
}

// User is what the policy asks about an ACL user. The answers come from
// the server's own model of ACL rules (internal/aclrule), selectors included:
// a right granted by any selector is a right.
type User struct {
	Name        string `json:"name"`
	Enabled     bool   `json:"enabled"`
	NoPass      bool   `json:"nopass"`
	HasPassword bool   `json:"-"`
	// KnownPassword: one of the user's password hashes is the SHA-256 of a
	// well-known password (KnownBadPasswords). The hashes are not kept.
	KnownPassword bool `json:"-"`
	// AllKeys: some selector reaches every key (~*, ~**, %R~*, %W~*).
	AllKeys bool `json:"-"`
	// AllCommands: some selector has +@all with nothing taken back.
	AllCommands bool `json:"-"`
	// Dangerous lists the @dangerous commands some selector allows (sorted;
	// empty when none), e.g. after -@dangerous +flushall.
	Dangerous []string `json:"-"`
	// Grants are the command rules that give something, of every selector
	// in order ("+@all" first when a selector starts from allcommands;
	// "+get", "+@read", "+client|setname"); -rules are left out.
	Grants []string `json:"-"`
}

// FromModel answers the policy's questions about a user of the model.
func FromModel(name string, u *aclrule.User) User {
	f := User{Name: name, Enabled: u.Enabled, NoPass: u.NoPass, HasPassword: len(u.Hashes) > 0, KnownPassword: hasKnownPassword(u.Hashes)}
	seen := map[string]bool{}
	for _, s := range u.AllSelectors() {
		f.AllKeys = f.AllKeys || s.EveryKey()
		f.AllCommands = f.AllCommands || s.EveryCommand()
		if s.AllCommands {
			f.Grants = append(f.Grants, "+@all")
		}
		for _, r := range s.Commands {
			if r[0] == '+' {
				f.Grants = append(f.Grants, r)
			}
		}
		for _, c := range s.DangerousAllowed() {
			if !seen[c] {
				seen[c] = true
				f.Dangerous = append(f.Dangerous, c)
			}
		}
	}
	sort.Strings(f.Dangerous)
	return f
}

// UserFromACLList reads one line of ACL LIST ("user NAME rules…"). A line
// the model cannot read (a newer server's rule) is returned with the error
// as an enabled user with every right: an audit fails closed.
func UserFromACLList(line string) (User, error) {
	name, u, err := aclrule.ParseListLine(line)
	if err != nil {
		return User{Name: name, Enabled: true, AllKeys: true, AllCommands: true, Dangerous: []string{"(unreadable rules)"}}, err
	}
	return FromModel(name, u), nil
}

// UsersFromConfig returns the users of a config file's user lines (nil when
// it has none), and a warning for each line the server would refuse.
func UsersFromConfig(c *conffile.Config) ([]User, []string) {
	var out []User
	var warnings []string
	for _, o := range c.Occurrences("user") {
		name, u, err := aclrule.FromFileLine(o.Args)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s:%d: user %q: %v; the server refuses this line", o.File, o.Line, name, err))
			continue
		}
		out = append(out, FromModel(name, u))
	}
	return out, warnings
}

// UsersFromACLFile reads an aclfile's content the way the server does
// (ACLLoadFromFile): lines as read with fgets, trimmed, comments and blank
// lines skipped, split with the config parser, "user NAME rules…". A line
// the server would refuse (it then refuses the whole file) is a warning.
func UsersFromACLFile(path string, data []byte) ([]User, []string) {
	out := []User{}
	var warnings []string
	lines, nuls := conffile.ReadLikeServer(data)
	for _, n := range nuls {
		warnings = append(warnings, fmt.Sprintf("%s:%d holds a NUL byte: the server ignores the rest of that line, its line break included", path, n))
	}
	for _, l := range lines {
		t := strings.Trim(l.Text, " \t\r\n")
		if t == "" || t[0] == '#' {
			continue
		}
		words, err := conffile.SplitArgs(t)
		if err == nil && (len(words) < 2 || words[0] != "user") {
			err = errors.New("the line does not start with user NAME")
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s:%d: %v; the server refuses this file", path, l.Number, err))
			continue
		}
		name, u, err := aclrule.FromFileLine(words[1:])
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s:%d: user %q: %v; the server refuses this file", path, l.Number, name, err))
			continue
		}
		out = append(out, FromModel(name, u))
	}
	return out, warnings
}

// ImplicitDefault is the default user of a server without ACL
// configuration: on, all rights, and no password unless requirepass is set
// (then its password is requirepass, so a well-known one shows).
func ImplicitDefault(requirepass string) User {
	u := aclrule.NewUser()
	for _, r := range []string{"on", "nopass", "~*", "&*", "+@all"} {
		_ = u.Apply(r) // valid rules
	}
	f := FromModel("default", u)
	f.NoPass, f.HasPassword = requirepass == "", requirepass != ""
	if requirepass != "" {
		sum := sha256.Sum256([]byte(requirepass))
		f.KnownPassword = hasKnownPassword([]string{hex.EncodeToString(sum[:])})
	}
	return f
}

// WithDefaultUser adds the implicit default user when users lacks one (a
// server always has a default user).
func WithDefaultUser(users []User, requirepass string) []User {
	for _, u := range users {
		if u.Name == "default" {
			return users
		}
	}
	return append([]User{ImplicitDefault(requirepass)}, users...)
}
