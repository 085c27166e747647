package policy

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/valkeyops/secure/internal/directives"
)

// Predicate is one condition about the facts. Exactly one kind is given:
// a directive (with one operator), acl, file, process, version, cert, or a
// combination any/all of predicates.
type Predicate struct {
	// Directive names a directive; its value comes from the running server,
	// else the config file, else the policy's defaults. Operators (one):
	Directive string `yaml:"directive"`
	Equals    any    `yaml:"equals"`     // the same value, compared by meaning
	NotEquals any    `yaml:"not_equals"` // any other value
	OneOf     []any  `yaml:"one_of"`     // one of these values
	Empty     *bool  `yaml:"empty"`      // true: empty value; false: set
	Min       any    `yaml:"min"`        // numbers and memory sizes
	Max       any    `yaml:"max"`
	Excludes  []any  `yaml:"excludes"` // none of these words (case-insensitive)
	MaxMode   string `yaml:"max_mode"` // octal permission: no bit beyond these
	Absent    *bool  `yaml:"absent"`   // true: no line in the config file
	InFile    *bool  `yaml:"in_file"`  // true: the config file sets it
	// LoopbackOnly true: every address of the value (bind) is a loopback
	// address ("-" prefixes stripped; localhost counts).
	LoopbackOnly *bool `yaml:"loopback_only"`
	// ExcludesCiphers: no cipher the value enables (an OpenSSL cipher list:
	// entries split at ":", ",", spaces; "!x", "-x" entries remove and are
	// ignored) has one of these words as a part (parts split at "-", "_").
	ExcludesCiphers []string `yaml:"excludes_ciphers"`
	// LimitsClasses: client-output-buffer-limit has a hard or soft limit for
	// each of these classes (replica, pubsub, normal).
	LimitsClasses []string `yaml:"limits_classes"`

	ACL     *ACLPredicate     `yaml:"acl"`
	File    *FilePredicate    `yaml:"file"`
	Process *ProcessPredicate `yaml:"process"`
	Version *VersionPredicate `yaml:"version"`
	Cert    *CertPredicate    `yaml:"cert"`
	Host    *HostPredicate    `yaml:"host"`
	Cluster *ClusterPredicate `yaml:"cluster"`
	// Replication is about the server's role (INFO replication).
	Replication *ReplicationPredicate `yaml:"replication"`
	// Sentinel is about a Sentinel and its monitors.
	Sentinel *SentinelPredicate `yaml:"sentinel"`
	// Persistence is about INFO persistence (backup evidence).
	Persistence *PersistencePredicate `yaml:"persistence"`
	Any         []*Predicate          `yaml:"any"`
	All         []*Predicate          `yaml:"all"`

	dir *directives.Directive
}

// ACLPredicate is about the ACL users selected by Users.
type ACLPredicate struct {
	// Users: all, enabled, default, non_default, non_admin (enabled users
	// not in the policy's admins).
	Users string `yaml:"users"`
	// Forbid: none of the selected enabled users has this property:
	// nopass, all_commands, dangerous_commands, all_keys.
	Forbid string `yaml:"forbid"`
	// Exists true: at least one selected user exists.
	Exists *bool `yaml:"exists"`
	// OnlyCommands: the selected enabled users are granted no command
	// beyond these (no category, no +@all, no other command); with users
	// primaryuser the user must also exist (every node of a group holds
	// the same users, and a replica promoted later logs in with it).
	OnlyCommands []string `yaml:"only_commands"`
}

// ReplicationPredicate is about the server's place in its replication
// group, from INFO replication (skipped without it). Role primary or
// replica; MinReplicas: at least this many replicas are connected.
type ReplicationPredicate struct {
	Role        string `yaml:"role"`
	MinReplicas int    `yaml:"min_replicas"`
}

var replicationRoles = []string{"primary", "replica"}

// SentinelPredicate is about a Sentinel (skipped on a data node). One test:
// Require deny_scripts_reconfig (the config file does not turn it off),
// peer_auth (sentinel-user and sentinel-pass set), monitor_auth (every
// monitor has auth-user and auth-pass in the config file), quorum_majority
// (every monitor's quorum is more than half of the Sentinels that watch it);
// or MinSentinels: every monitor is watched by at least this many Sentinels.
type SentinelPredicate struct {
	Require      string `yaml:"require"`
	MinSentinels int    `yaml:"min_sentinels"`
}

var sentinelRequire = []string{"deny_scripts_reconfig", "peer_auth", "monitor_auth", "quorum_majority"}

// filePaths are the names a file predicate's path may be besides a directive.
var filePaths = []string{"config", "loadmodule", "data"}

// bufferClasses are client-output-buffer-limit's classes (slave is replica).
var bufferClasses = []string{"normal", "replica", "pubsub"}

// FilePredicate is about a file on the host.
type FilePredicate struct {
	// Path is "config" (the config file), "loadmodule" (every module the
	// config file loads), "data" (the RDB file and the files of the AOF
	// directory that exist) or a directive whose value is a path (aclfile, dir,
	// tls-key-file, ...). Skipped when not set.
	Path    string   `yaml:"path"`
	MaxMode string   `yaml:"max_mode"` // no permission bit beyond these
	Owners  []string `yaml:"owners"`   // owner among these (default: the policy's owners)
}

// ProcessPredicate is about the server process.
type ProcessPredicate struct {
	NotUser string `yaml:"not_user"` // e.g. root
}

// VersionPredicate fails for a server version with known vulnerabilities.
type VersionPredicate struct {
	// Fixed maps a release line ("8.0") to its first version without the
	// listed CVEs.
	Fixed map[string]string `yaml:"fixed"`
	// CVEs are named in the finding.
	CVEs []string `yaml:"cves"`
}

// CertPredicate is about a certificate file named by a directive. One test:
type CertPredicate struct {
	Directive   string `yaml:"directive"`
	MinDaysLeft int    `yaml:"min_days_left"`
	// StrongKey true: the leaf's key is RSA of at least 2048 bits, EC of at
	// least 256 bits, or Ed25519 (x509check's rule at deploy time).
	StrongKey *bool `yaml:"strong_key"`
	// StrongSignature true: no certificate of the file is signed with SHA-1 or MD5.
	StrongSignature *bool `yaml:"strong_signature"`
	// NotSelfSigned true: the leaf is issued by a CA, not signed by its own key.
	NotSelfSigned *bool `yaml:"not_self_signed"`
}

func (c *CertPredicate) tests() []string {
	var t []string
	for name, set := range map[string]bool{"min_days_left": c.MinDaysLeft != 0, "strong_key": c.StrongKey != nil,
		"strong_signature": c.StrongSignature != nil, "not_self_signed": c.NotSelfSigned != nil} {
		if set {
			t = append(t, name)
		}
	}
	return sortedCopy(t)
}

// HostPredicate is about the host's kernel and service manager. One test:
type HostPredicate struct {
	// Sysctl names a kernel setting (vm.overcommit_memory, net.core.somaxconn)
	// compared with Equals, or with AtLeastDirective: at least the value of
	// that directive (tcp-backlog).
	Sysctl           string `yaml:"sysctl"`
	Equals           string `yaml:"equals"`
	AtLeastDirective string `yaml:"at_least_directive"`
	// THP: the host's transparent huge page mode is one of these.
	THP []string `yaml:"thp"`
	// Sandbox true: under systemd, the instance's unit has the role's
	// hardening drop-in (not applicable without systemd).
	Sandbox *bool `yaml:"sandbox"`

	atLeast *directives.Directive
}

// Sysctls are the kernel settings a host predicate may name (the audit reads these).
var Sysctls = []string{"vm.overcommit_memory", "net.core.somaxconn"}

// THPModes are the values of /sys/kernel/mm/transparent_hugepage/enabled.
var THPModes = []string{"always", "madvise", "never"}

// PersistencePredicate is about INFO persistence. One test:
type PersistencePredicate struct {
	// LastBGSaveOK true: the last RDB save and AOF rewrite/write succeeded.
	LastBGSaveOK *bool `yaml:"last_bgsave_ok"`
	// MaxAgeHours: when keys changed since the last save, that save is at
	// most this old.
	MaxAgeHours int `yaml:"max_age_hours"`
}

// ClusterPredicate is about the cluster, as the node sees it (CLUSTER
// NODES, CLUSTER INFO); skipped on a server without cluster-enabled.
type ClusterPredicate struct {
	// Require: healthy (cluster_state:ok, no node failing), slots_covered,
	// replicated (every slot-serving primary has a healthy replica),
	// replicas_off_host (no replica on its primary's IP), announce_bound
	// (cluster-announce-ip, when set, is an address the node binds, or it
	// binds every address).
	Require string `yaml:"require"`
}

var clusterRequire = []string{"healthy", "slots_covered", "replicated", "replicas_off_host", "announce_bound"}

var aclUsers = []string{"all", "enabled", "default", "non_default", "non_admin", "primaryuser"}
var aclForbid = []string{"nopass", "all_commands", "dangerous_commands", "all_keys", "disabled", "known_password"}

// yamlValue turns what go-yaml decoded into what directives.Desired reads.
func yamlValue(v any) any {
	switch x := v.(type) {
	case int:
		return json.Number(strconv.Itoa(x))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case uint64:
		return json.Number(strconv.FormatUint(x, 10))
	case float64:
		return x
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = yamlValue(x[i])
		}
		return out
	}
	return v
}

// fileOnly lists the directives that exist only in files (not CONFIG GET).
var fileOnly = map[string]bool{"rename-command": true, "include": true, "user": true, "loadmodule": true}

func lookupDirective(name string) (*directives.Directive, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if fileOnly[n] {
		return &directives.Directive{Name: n, Kind: directives.List}, nil
	}
	d, ok := directives.Lookup(n)
	if !ok {
		return nil, fmt.Errorf("unknown directive %q", name)
	}
	return d, nil
}

func (p *Predicate) kinds() []string {
	var k []string
	if p.Directive != "" {
		k = append(k, "directive")
	}
	for name, set := range map[string]bool{"acl": p.ACL != nil, "file": p.File != nil, "process": p.Process != nil,
		"version": p.Version != nil, "cert": p.Cert != nil, "host": p.Host != nil, "persistence": p.Persistence != nil,
		"cluster": p.Cluster != nil, "replication": p.Replication != nil, "sentinel": p.Sentinel != nil,
		"any": p.Any != nil, "all": p.All != nil} {
		if set {
			k = append(k, name)
		}
	}
	return k
}

func (p *Predicate) ops() []string {
	var ops []string
	for name, set := range map[string]bool{"equals": p.Equals != nil, "not_equals": p.NotEquals != nil, "one_of": p.OneOf != nil,
		"empty": p.Empty != nil, "min": p.Min != nil, "max": p.Max != nil, "excludes": p.Excludes != nil,
		"max_mode": p.MaxMode != "", "absent": p.Absent != nil, "in_file": p.InFile != nil,
		"loopback_only": p.LoopbackOnly != nil, "excludes_ciphers": p.ExcludesCiphers != nil, "limits_classes": p.LimitsClasses != nil} {
		if set {
			ops = append(ops, name)
		}
	}
	return ops
}

func parseMode(s string) (uint64, error) {
	m, err := strconv.ParseUint(strings.TrimPrefix(s, "0o"), 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("mode %q is not an octal permission such as \"0640\"", s)
	}
	return m, nil
}

func (p *Predicate) validate(pol *Policy) error {
	k := p.kinds()
	if len(k) != 1 {
		if len(k) == 0 {
			return fmt.Errorf("expected one of directive, acl, file, process, version, cert, host, persistence, cluster, replication, sentinel, any, all")
		}
		return fmt.Errorf("give one of %s, not several", strings.Join(sortedCopy(k), ", "))
	}
	switch k[0] {
	case "directive":
		d, err := lookupDirective(p.Directive)
		if err != nil {
			return err
		}
		p.dir = d
		ops := p.ops()
		if len(ops) != 1 {
			return fmt.Errorf("directive %s: expected exactly one operator (equals, not_equals, one_of, empty, min, max, excludes, max_mode, absent, in_file, loopback_only, excludes_ciphers, limits_classes), got %d", d.Name, len(ops))
		}
		if fileOnly[d.Name] && ops[0] != "absent" && ops[0] != "in_file" {
			return fmt.Errorf("directive %s exists only in files: use absent or in_file", d.Name)
		}
		for _, v := range append(append([]any{p.Equals, p.NotEquals}, p.OneOf...), p.Min, p.Max) {
			if v == nil {
				continue
			}
			if _, err := d.Desired(yamlValue(v)); err != nil {
				return err
			}
		}
		if p.Min != nil || p.Max != nil {
			if d.Kind != directives.Int && d.Kind != directives.Memory {
				return fmt.Errorf("directive %s: min and max need a number or memory directive", d.Name)
			}
		}
		if p.MaxMode != "" {
			if _, err := parseMode(p.MaxMode); err != nil {
				return fmt.Errorf("directive %s: %v", d.Name, err)
			}
		}
		if p.LoopbackOnly != nil && !*p.LoopbackOnly {
			return fmt.Errorf("directive %s: loopback_only can only be true", d.Name)
		}
		if p.ExcludesCiphers != nil && len(p.ExcludesCiphers) == 0 {
			return fmt.Errorf("directive %s: excludes_ciphers needs at least one word", d.Name)
		}
		if p.LimitsClasses != nil {
			if d.Name != "client-output-buffer-limit" {
				return fmt.Errorf("directive %s: limits_classes is for client-output-buffer-limit", d.Name)
			}
			for _, c := range p.LimitsClasses {
				if !contains(bufferClasses, c) {
					return fmt.Errorf("directive %s: class %q is not one of %s", d.Name, c, strings.Join(bufferClasses, ", "))
				}
			}
		}
	case "acl":
		if !contains(aclUsers, p.ACL.Users) {
			return fmt.Errorf("acl: users %q is not one of %s", p.ACL.Users, strings.Join(aclUsers, ", "))
		}
		if n := btoi(p.ACL.Forbid != "") + btoi(p.ACL.Exists != nil) + btoi(p.ACL.OnlyCommands != nil); n != 1 {
			return fmt.Errorf("acl: give one of forbid, exists, only_commands")
		}
		if p.ACL.Forbid != "" && !contains(aclForbid, p.ACL.Forbid) {
			return fmt.Errorf("acl: forbid %q is not one of %s", p.ACL.Forbid, strings.Join(aclForbid, ", "))
		}
	case "file":
		if !contains(filePaths, p.File.Path) {
			if _, err := lookupDirective(p.File.Path); err != nil {
				return fmt.Errorf("file: path must be config or a directive naming a path: %v", err)
			}
		}
		if p.File.MaxMode == "" && p.File.Owners == nil && len(pol.Owners) == 0 {
			return fmt.Errorf("file: give max_mode or owners")
		}
		if p.File.MaxMode != "" {
			if _, err := parseMode(p.File.MaxMode); err != nil {
				return fmt.Errorf("file: %v", err)
			}
		}
	case "process":
		if p.Process.NotUser == "" {
			return fmt.Errorf("process: not_user is required")
		}
	case "version":
		if len(p.Version.Fixed) == 0 {
			return fmt.Errorf("version: fixed is required (release line: first fixed version)")
		}
		for line, v := range p.Version.Fixed {
			if parseVersion(line) == nil || parseVersion(v) == nil {
				return fmt.Errorf("version: %q: %q is not a version such as 8.0.7", line, v)
			}
		}
	case "cert":
		if _, err := lookupDirective(p.Cert.Directive); err != nil {
			return fmt.Errorf("cert: %v", err)
		}
		switch t := p.Cert.tests(); {
		case len(t) != 1:
			return fmt.Errorf("cert: give one of min_days_left, strong_key, strong_signature, not_self_signed")
		case t[0] == "min_days_left" && p.Cert.MinDaysLeft < 0:
			return fmt.Errorf("cert: min_days_left must be a positive number of days")
		case (p.Cert.StrongKey != nil && !*p.Cert.StrongKey) || (p.Cert.StrongSignature != nil && !*p.Cert.StrongSignature) ||
			(p.Cert.NotSelfSigned != nil && !*p.Cert.NotSelfSigned):
			return fmt.Errorf("cert: %s can only be true", t[0])
		}
	case "host":
		h := p.Host
		n := 0
		for _, set := range []bool{h.Sysctl != "", h.THP != nil, h.Sandbox != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("host: give one of sysctl, thp, sandbox")
		}
		switch {
		case h.Sysctl != "":
			if !contains(Sysctls, h.Sysctl) {
				return fmt.Errorf("host: sysctl %q is not one the audit reads (%s)", h.Sysctl, strings.Join(Sysctls, ", "))
			}
			if (h.Equals == "") == (h.AtLeastDirective == "") {
				return fmt.Errorf("host: sysctl %s needs equals or at_least_directive", h.Sysctl)
			}
			if h.AtLeastDirective != "" {
				d, err := lookupDirective(h.AtLeastDirective)
				if err != nil || d.Kind != directives.Int {
					return fmt.Errorf("host: at_least_directive %q is not a number directive", h.AtLeastDirective)
				}
				h.atLeast = d
			}
		case h.THP != nil:
			for _, m := range h.THP {
				if !contains(THPModes, m) {
					return fmt.Errorf("host: thp %q is not one of %s", m, strings.Join(THPModes, ", "))
				}
			}
		case !*h.Sandbox:
			return fmt.Errorf("host: sandbox can only be true")
		}
	case "persistence":
		pp := p.Persistence
		if (pp.LastBGSaveOK != nil) == (pp.MaxAgeHours != 0) {
			return fmt.Errorf("persistence: give one of last_bgsave_ok, max_age_hours")
		}
		if pp.LastBGSaveOK != nil && !*pp.LastBGSaveOK {
			return fmt.Errorf("persistence: last_bgsave_ok can only be true")
		}
		if pp.MaxAgeHours < 0 {
			return fmt.Errorf("persistence: max_age_hours must be a positive number of hours")
		}
	case "cluster":
		if !contains(clusterRequire, p.Cluster.Require) {
			return fmt.Errorf("cluster: require %q is not one of %s", p.Cluster.Require, strings.Join(clusterRequire, ", "))
		}
	case "replication":
		rp := p.Replication
		if !contains(replicationRoles, rp.Role) {
			return fmt.Errorf("replication: role %q is not one of %s", rp.Role, strings.Join(replicationRoles, ", "))
		}
		if rp.MinReplicas < 0 || (rp.MinReplicas > 0 && rp.Role != "primary") {
			return fmt.Errorf("replication: min_replicas is a positive number, for role primary")
		}
	case "sentinel":
		sp := p.Sentinel
		if (sp.Require == "") == (sp.MinSentinels == 0) {
			return fmt.Errorf("sentinel: give one of require, min_sentinels")
		}
		if sp.Require != "" && !contains(sentinelRequire, sp.Require) {
			return fmt.Errorf("sentinel: require %q is not one of %s", sp.Require, strings.Join(sentinelRequire, ", "))
		}
		if sp.MinSentinels < 0 {
			return fmt.Errorf("sentinel: min_sentinels must be a positive number")
		}
	case "any", "all":
		list := p.Any
		if k[0] == "all" {
			list = p.All
		}
		if len(list) == 0 {
			return fmt.Errorf("%s: expected a non-empty list of conditions", k[0])
		}
		for i, q := range list {
			if q == nil {
				return fmt.Errorf("%s[%d]: empty condition", k[0], i)
			}
			if err := q.validate(pol); err != nil {
				return fmt.Errorf("%s[%d]: %v", k[0], i, err)
			}
		}
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// parseVersion reads "8.0.1" (or "8.0") as numbers; nil when it is not one.
func parseVersion(s string) []*big.Int {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 || len(parts) > 3 {
		return nil
	}
	out := make([]*big.Int, 0, 3)
	for _, p := range parts {
		n, ok := new(big.Int).SetString(p, 10)
		if !ok || n.Sign() < 0 {
			return nil
		}
		out = append(out, n)
	}
	for len(out) < 3 {
		out = append(out, big.NewInt(0))
	}
	return out
}

func compareVersion(a, b []*big.Int) int {
	for i := range a {
		if c := a[i].Cmp(b[i]); c != 0 {
			return c
		}
	}
	return 0
}
