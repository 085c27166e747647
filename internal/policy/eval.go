package policy

import (
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/topology"
)

// Status of one rule on one set of facts.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip" // not applicable, or the facts it needs are unknown
)

// Outcome is one rule's result.
type Outcome struct {
	Rule   *Rule
	Status Status
	// Message says what was found (for Fail) or why the rule was skipped.
	// It never holds a secret value.
	Message string
}

// Finding is a failed rule, as reported.
type Finding struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Severity    string `json:"severity"`
	Message     string `json:"message"`
	Remediation string `json:"remediation"`
	// Source is where the rule's advice comes from (a URL), when it says.
	Source string `json:"source,omitempty"`
	// Instance names the server on its host (set by the audit report).
	Instance string `json:"instance,omitempty"`
}

// Evaluate runs every enabled rule against the facts, in id order.
func (p *Policy) Evaluate(f *Facts) []Outcome {
	e := &evaluator{p: p, f: f}
	var out []Outcome
	for _, r := range p.Rules {
		if !r.IsEnabled() {
			continue
		}
		if kind := f.Kind(); !r.AppliesTo(kind) {
			why := "not applicable: a rule for data nodes, and this is a Sentinel"
			if kind == TargetServer {
				why = "not applicable: a rule for Sentinels"
			}
			out = append(out, Outcome{Rule: r, Status: Skip, Message: why})
			continue
		}
		if r.When != nil {
			st, msg := e.eval(r.When)
			if st != Pass {
				if st == Fail {
					msg = "not applicable: " + msg
				}
				out = append(out, Outcome{Rule: r, Status: Skip, Message: msg})
				continue
			}
		}
		st, msg := e.eval(r.Check)
		out = append(out, Outcome{Rule: r, Status: st, Message: msg})
	}
	return out
}

// Findings returns the failed outcomes, most severe first, then by id.
func Findings(outs []Outcome) []Finding {
	var fs []Finding
	for _, o := range outs {
		if o.Status == Fail {
			fs = append(fs, Finding{ID: o.Rule.ID, Title: o.Rule.Title, Severity: o.Rule.Severity,
				Message: o.Message, Remediation: strings.TrimSpace(o.Rule.Remediation), Source: o.Rule.Reference})
		}
	}
	sort.SliceStable(fs, func(i, j int) bool {
		ri, rj := SeverityRank(fs[i].Severity), SeverityRank(fs[j].Severity)
		if ri != rj {
			return ri > rj
		}
		return fs[i].ID < fs[j].ID
	})
	return fs
}

type evaluator struct {
	p *Policy
	f *Facts
}

func (e *evaluator) eval(p *Predicate) (Status, string) {
	switch {
	case p.Directive != "":
		return e.directive(p)
	case p.ACL != nil:
		return e.acl(p.ACL)
	case p.File != nil:
		return e.file(p.File)
	case p.Process != nil:
		return e.process(p.Process)
	case p.Version != nil:
		return e.version(p.Version)
	case p.Cert != nil:
		return e.cert(p.Cert)
	case p.Host != nil:
		return e.host(p.Host)
	case p.Persistence != nil:
		return e.persistence(p.Persistence)
	case p.Cluster != nil:
		return e.cluster(p.Cluster)
	case p.Replication != nil:
		return e.replication(p.Replication)
	case p.Sentinel != nil:
		return e.sentinel(p.Sentinel)
	case p.Any != nil:
		var fails, skips []string
		for _, q := range p.Any {
			st, msg := e.eval(q)
			switch st {
			case Pass:
				return Pass, ""
			case Fail:
				fails = append(fails, msg)
			default:
				skips = append(skips, msg)
			}
		}
		if len(fails) == 0 {
			return Skip, strings.Join(skips, "; ")
		}
		return Fail, strings.Join(fails, "; ")
	case p.All != nil:
		var skips []string
		for _, q := range p.All {
			st, msg := e.eval(q)
			if st == Fail {
				return Fail, msg
			}
			if st == Skip {
				skips = append(skips, msg)
			}
		}
		if len(skips) > 0 {
			return Skip, strings.Join(skips, "; ")
		}
		return Pass, ""
	}
	return Skip, "empty condition"
}

// value is a directive's effective value and where it came from.
type value struct {
	v      directives.Value
	source string // "runtime", "file", "default"
}

// lookup finds the value of d: the running server, else the file, else
// the policy's default. The string is why it is unknown.
func (e *evaluator) lookup(d *directives.Directive) (*value, string) {
	if e.f.Runtime != nil {
		names := make(map[string]bool, len(e.f.Runtime))
		for k := range e.f.Runtime {
			names[k] = true
		}
		if d.IsKnownTo(names) {
			v, err := d.FromServer(e.f.Runtime[d.NameFor(names)])
			if err != nil {
				return nil, fmt.Sprintf("cannot read the server's %s: %v", d.Name, err)
			}
			return &value{v, "runtime"}, ""
		}
		// CONFIG GET * does not list every directive (hidden ones): the file may.
	}
	if e.f.Config != nil {
		if args, last, ok := e.f.Config.Effective(d.Accumulates, d.Names()...); ok {
			v, err := d.FromFile(args)
			if err != nil {
				return nil, fmt.Sprintf("%s:%d: %v", last.File, last.Line, err)
			}
			return &value{v, "file"}, ""
		}
	}
	if e.f.Runtime == nil || e.f.Config != nil {
		for _, n := range d.Names() {
			if def, ok := e.p.Defaults[n]; ok {
				v, err := d.Desired(yamlValue(def))
				if err != nil {
					return nil, fmt.Sprintf("the policy's default for %s: %v", d.Name, err)
				}
				return &value{v, "default"}, ""
			}
		}
	}
	if e.f.Runtime != nil {
		return nil, fmt.Sprintf("%s is not known to this server", d.Name)
	}
	if e.f.Config == nil {
		return nil, fmt.Sprintf("%s: needs the config file or the server", d.Name)
	}
	return nil, fmt.Sprintf("%s is not set in the file and the policy has no default for it", d.Name)
}

// show renders a value for a message; secrets only as set or empty.
func show(d *directives.Directive, v *value) string {
	if d.Secret {
		if v.v.Canonical == "" {
			return "empty"
		}
		return "set"
	}
	s := strconv.Quote(v.v.Set)
	if v.source == "default" {
		s += " (the default)"
	}
	return s
}

func want(d *directives.Directive, x any) directives.Value {
	v, _ := d.Desired(yamlValue(x)) // validated when the policy was loaded
	return v
}

func (e *evaluator) directive(p *Predicate) (Status, string) {
	d := p.dir
	if p.Absent != nil || p.InFile != nil {
		if e.f.Config == nil {
			return Skip, d.Name + ": needs the config file"
		}
		occ := e.f.Config.Occurrences(d.Names()...)
		if p.Absent != nil {
			if (len(occ) == 0) == *p.Absent {
				return Pass, ""
			}
			if *p.Absent {
				return Fail, fmt.Sprintf("%s is used at %s:%d", d.Name, occ[0].File, occ[0].Line)
			}
			return Fail, fmt.Sprintf("%s is not in %s", d.Name, e.f.Config.Path)
		}
		if (len(occ) > 0) == *p.InFile {
			return Pass, ""
		}
		if *p.InFile {
			return Fail, fmt.Sprintf("%s is not set in %s (the server default applies)", d.Name, e.f.Config.Path)
		}
		return Fail, fmt.Sprintf("%s is set at %s:%d", d.Name, occ[0].File, occ[0].Line)
	}
	v, why := e.lookup(d)
	if v == nil {
		return Skip, why
	}
	got := v.v.Canonical
	switch {
	case p.Equals != nil:
		w := want(d, p.Equals)
		if got == w.Canonical {
			return Pass, ""
		}
		return Fail, fmt.Sprintf("%s is %s; expected %s", d.Name, show(d, v), showWant(d, w))
	case p.NotEquals != nil:
		w := want(d, p.NotEquals)
		if got != w.Canonical {
			return Pass, ""
		}
		return Fail, fmt.Sprintf("%s is %s", d.Name, show(d, v))
	case p.OneOf != nil:
		var ws []string
		for _, x := range p.OneOf {
			w := want(d, x)
			if got == w.Canonical {
				return Pass, ""
			}
			ws = append(ws, showWant(d, w))
		}
		return Fail, fmt.Sprintf("%s is %s; expected one of %s", d.Name, show(d, v), strings.Join(ws, ", "))
	case p.Empty != nil:
		if (got == "") == *p.Empty {
			return Pass, ""
		}
		if *p.Empty {
			return Fail, fmt.Sprintf("%s is %s; expected it empty", d.Name, show(d, v))
		}
		return Fail, fmt.Sprintf("%s is not set", d.Name)
	case p.Min != nil || p.Max != nil:
		n, ok := new(big.Int).SetString(got, 10)
		if !ok {
			return Skip, fmt.Sprintf("%s is %s, not a number", d.Name, show(d, v))
		}
		if p.Min != nil {
			w := want(d, p.Min)
			m, _ := new(big.Int).SetString(w.Canonical, 10)
			if m != nil && n.Cmp(m) < 0 {
				return Fail, fmt.Sprintf("%s is %s; expected at least %s", d.Name, show(d, v), showWant(d, w))
			}
		}
		if p.Max != nil {
			w := want(d, p.Max)
			m, _ := new(big.Int).SetString(w.Canonical, 10)
			if m != nil && n.Cmp(m) > 0 {
				return Fail, fmt.Sprintf("%s is %s; expected at most %s", d.Name, show(d, v), showWant(d, w))
			}
		}
		return Pass, ""
	case p.Excludes != nil:
		words := strings.Fields(strings.ToLower(got))
		var bad []string
		for _, x := range p.Excludes {
			xs := strings.ToLower(fmt.Sprint(x))
			for _, w := range words {
				if w == xs {
					bad = append(bad, fmt.Sprint(x))
				}
			}
		}
		if len(bad) == 0 {
			return Pass, ""
		}
		return Fail, fmt.Sprintf("%s is %s, which includes %s", d.Name, show(d, v), strings.Join(bad, ", "))
	case p.MaxMode != "":
		maxm, _ := parseMode(p.MaxMode)
		m, err := strconv.ParseUint(got, 8, 32)
		if err != nil {
			return Skip, fmt.Sprintf("%s is %s, not an octal permission", d.Name, show(d, v))
		}
		if m&^maxm == 0 {
			return Pass, ""
		}
		return Fail, fmt.Sprintf("%s is %04o, which allows more than %04o", d.Name, m, maxm)
	case p.LoopbackOnly != nil:
		var beyond []string
		for _, w := range strings.Fields(got) {
			if !isLoopback(strings.TrimPrefix(w, "-")) {
				beyond = append(beyond, w)
			}
		}
		if len(beyond) == 0 {
			return Pass, ""
		}
		return Fail, fmt.Sprintf("%s is %s: %s %s beyond loopback", d.Name, show(d, v), strings.Join(beyond, ", "), isWord(len(beyond)))
	case p.ExcludesCiphers != nil:
		if weak := weakCiphers(got, p.ExcludesCiphers); len(weak) > 0 {
			return Fail, fmt.Sprintf("%s is %s, which enables %s", d.Name, show(d, v), strings.Join(weak, ", "))
		}
		return Pass, ""
	case p.LimitsClasses != nil:
		if open := unlimitedClasses(v.v.Args, p.LimitsClasses); len(open) > 0 {
			return Fail, fmt.Sprintf("%s is %s: no limit for the %s %s", d.Name, show(d, v), strings.Join(open, ", "), plural(len(open), "class", "classes"))
		}
		return Pass, ""
	}
	return Skip, "no operator"
}

func showWant(d *directives.Directive, w directives.Value) string {
	if d.Secret {
		return "a value"
	}
	return strconv.Quote(w.Set)
}

func (e *evaluator) selectUsers(sel string) []User {
	var out []User
	for _, u := range e.f.Users {
		ok := false
		switch sel {
		case "all":
			ok = true
		case "enabled":
			ok = u.Enabled
		case "default":
			ok = u.Name == "default"
		case "non_default":
			ok = u.Name != "default"
		case "non_admin":
			ok = !contains(e.p.Admins, u.Name)
		case "primaryuser":
			name, _ := e.primaryUser()
			ok = name != "" && u.Name == name
		}
		if ok {
			out = append(out, u)
		}
	}
	return out
}

// primaryUser is the user a replica logs in to its primary with ("" and
// why when it is not set or unknown).
func (e *evaluator) primaryUser() (string, string) {
	d, _ := lookupDirective("primaryuser")
	v, why := e.lookup(d)
	if v == nil {
		return "", why
	}
	if v.v.Canonical == "" {
		return "", "primaryuser is not set"
	}
	return v.v.Canonical, ""
}

// onlyCommands fails for the enabled selected users granted a command
// rule beyond the list (a category, +@all, another command).
func (e *evaluator) onlyCommands(a *ACLPredicate, users []User) (Status, string) {
	var problems []string
	for _, u := range users {
		if !u.Enabled {
			continue
		}
		var extra []string
		for _, g := range u.Grants {
			parent, _, _ := strings.Cut(g[1:], "|")
			if strings.HasPrefix(g, "+@") || !contains(a.OnlyCommands, parent) {
				extra = append(extra, g)
			}
		}
		if len(extra) == 0 {
			continue
		}
		who := fmt.Sprintf("ACL user %q", u.Name)
		if a.Users == "primaryuser" {
			who = "the replication user (primaryuser)"
		}
		problems = append(problems, fmt.Sprintf("%s is granted %s beyond %s", who, strings.Join(extra, " "), strings.Join(a.OnlyCommands, ", ")))
	}
	if len(problems) == 0 {
		return Pass, ""
	}
	return Fail, strings.Join(problems, "; ") + fmt.Sprintf(" (from %s)", e.f.UsersFrom)
}

func (e *evaluator) replication(rp *ReplicationPredicate) (Status, string) {
	r := e.f.Replication
	if r == nil {
		return Skip, "INFO replication is unknown (needs the running server)"
	}
	if r.Role != rp.Role {
		return Fail, "the server is a " + r.Role
	}
	if r.ConnectedReplicas < rp.MinReplicas {
		return Fail, fmt.Sprintf("the primary has %d connected %s", r.ConnectedReplicas, plural(r.ConnectedReplicas, "replica", "replicas"))
	}
	return Pass, ""
}

var forbidText = map[string]string{
	"nopass":             "no password (nopass)",
	"all_commands":       "every command (+@all)",
	"dangerous_commands": "dangerous commands (+@dangerous)",
	"all_keys":           "every key (~*)",
	"known_password":     "a well-known password (its hash is that of a password on every list)",
}

func (e *evaluator) acl(a *ACLPredicate) (Status, string) {
	if e.f.Users == nil {
		return Skip, "the ACL users are unknown"
	}
	users := e.selectUsers(a.Users)
	if a.Users == "primaryuser" {
		name, why := e.primaryUser()
		if name == "" {
			return Skip, why
		}
		if len(users) == 0 {
			// The name is a secret of the server's config (never shown).
			return Fail, fmt.Sprintf("the user primaryuser names is not an ACL user of this server (from %s): "+
				"a replica logs in with it, and a promoted node must hold it too", e.f.UsersFrom)
		}
	}
	if a.OnlyCommands != nil {
		return e.onlyCommands(a, users)
	}
	if a.Exists != nil {
		if (len(users) > 0) == *a.Exists {
			return Pass, ""
		}
		if *a.Exists {
			return Fail, "no such ACL user"
		}
		return Fail, fmt.Sprintf("ACL users exist: %s", userNames(users))
	}
	var bad []User
	for _, u := range users {
		if a.Forbid == "disabled" {
			if !u.Enabled {
				bad = append(bad, u)
			}
			continue
		}
		if !u.Enabled {
			continue
		}
		var has bool
		switch a.Forbid {
		case "known_password":
			has = u.KnownPassword
		case "nopass":
			has = u.NoPass
		case "all_commands":
			has = u.AllCommands
		case "dangerous_commands":
			has = len(u.Dangerous) > 0
		case "all_keys":
			has = u.AllKeys
		}
		if has {
			bad = append(bad, u)
		}
	}
	if len(bad) == 0 {
		return Pass, ""
	}
	if a.Forbid == "disabled" {
		return Fail, fmt.Sprintf("disabled ACL %s %s (from %s)", plural(len(bad), "user", "users"), userNames(bad), e.f.UsersFrom)
	}
	msg := fmt.Sprintf("enabled ACL user %s %s %s (from %s)", userNames(bad), hasWord(len(bad)), forbidText[a.Forbid], e.f.UsersFrom)
	if a.Forbid == "dangerous_commands" {
		// Name a few, since the right may come from a category that does
		// not say "dangerous" (+@read includes KEYS).
		d := bad[0].Dangerous
		more := ""
		if len(d) > 3 {
			d, more = d[:3], fmt.Sprintf(" and %d more", len(bad[0].Dangerous)-3)
		}
		msg += fmt.Sprintf("; %q may run %s%s", bad[0].Name, strings.Join(d, ", "), more)
	}
	return Fail, msg
}

func hasWord(n int) string {
	if n == 1 {
		return "has"
	}
	return "have"
}

func userNames(us []User) string {
	ns := make([]string, len(us))
	for i, u := range us {
		ns[i] = strconv.Quote(u.Name)
	}
	return strings.Join(ns, ", ")
}

// path resolves a file predicate's path: "" and a reason when not set.
func (e *evaluator) path(name string) (string, string) {
	if name == "config" {
		if e.f.Config == nil {
			return "", "the config file is unknown"
		}
		return e.f.Config.Path, ""
	}
	d, _ := lookupDirective(name)
	v, why := e.lookup(d)
	if v == nil {
		return "", why
	}
	if v.v.Set == "" {
		return "", d.Name + " is not set"
	}
	return v.v.Set, ""
}

func (e *evaluator) file(fp *FilePredicate) (Status, string) {
	if !e.f.Host {
		return Skip, "needs the target host (file modes and owners are not checked by lint)"
	}
	if fp.Path == "config" || !contains(filePaths, fp.Path) {
		path, why := e.path(fp.Path)
		if path == "" {
			return Skip, why
		}
		return e.oneFile(fp, path)
	}
	paths := e.f.Paths[fp.Path]
	if len(paths) == 0 {
		return Skip, fmt.Sprintf("no %s file", fp.Path)
	}
	var fails, skips []string
	for _, p := range paths {
		switch st, msg := e.oneFile(fp, p); st {
		case Fail:
			fails = append(fails, msg)
		case Skip:
			skips = append(skips, msg)
		}
	}
	switch {
	case len(fails) > 3:
		return Fail, fmt.Sprintf("%s and %d more", strings.Join(fails[:3], "; "), len(fails)-3)
	case len(fails) > 0:
		return Fail, strings.Join(fails, "; ")
	case len(skips) == len(paths):
		return Skip, strings.Join(skips, "; ")
	}
	return Pass, ""
}

func (e *evaluator) oneFile(fp *FilePredicate, path string) (Status, string) {
	fi := e.f.Files[path]
	switch {
	case fi == nil:
		return Skip, path + " was not inspected"
	case fi.Err != "":
		return Skip, fmt.Sprintf("cannot inspect %s: %s", path, fi.Err)
	case !fi.Exists:
		return Skip, path + " does not exist"
	}
	var problems []string
	if fp.MaxMode != "" {
		maxm, _ := parseMode(fp.MaxMode)
		if uint64(fi.Mode.Perm())&^maxm != 0 {
			problems = append(problems, fmt.Sprintf("mode %04o allows more than %04o", fi.Mode.Perm(), maxm))
		}
	}
	owners := fp.Owners
	if owners == nil {
		owners = e.p.Owners
	}
	if len(owners) > 0 && !contains(owners, fi.Owner) {
		problems = append(problems, fmt.Sprintf("owner %s is not one of %s", fi.Owner, strings.Join(owners, ", ")))
	}
	if len(problems) == 0 {
		return Pass, ""
	}
	return Fail, path + ": " + strings.Join(problems, "; ")
}

func (e *evaluator) process(pp *ProcessPredicate) (Status, string) {
	if e.f.Process == nil {
		return Skip, "the server process is unknown (needs the running server on the target host)"
	}
	if e.f.Process.User == pp.NotUser || (pp.NotUser == "root" && e.f.Process.UID == 0) {
		return Fail, fmt.Sprintf("the server (pid %d) runs as %s", e.f.Process.PID, e.f.Process.User)
	}
	return Pass, ""
}

func (e *evaluator) cluster(cp *ClusterPredicate) (Status, string) {
	c := e.f.Cluster
	if c == nil {
		return Skip, "not a cluster node (cluster-enabled is off, or the cluster state could not be read)"
	}
	h := c.View.Health(nil)
	switch cp.Require {
	case "healthy":
		var problems []string
		if c.State != "ok" {
			problems = append(problems, "cluster_state:"+c.State)
		}
		if len(h.Failed) > 0 {
			problems = append(problems, "failing nodes: "+strings.Join(h.Failed, ", "))
		}
		if len(problems) > 0 {
			return Fail, strings.Join(problems, "; ")
		}
	case "slots_covered":
		if len(h.Uncovered) > 0 {
			return Fail, fmt.Sprintf("slots served by no node: %s", topology.Ranges(h.Uncovered))
		}
	case "replicated":
		if len(h.WithoutReplica) > 0 {
			return Fail, "primaries without a healthy replica: " + strings.Join(h.WithoutReplica, ", ")
		}
	case "replicas_off_host":
		var pairs []string
		for _, s := range h.SameHost {
			pairs = append(pairs, fmt.Sprintf("%s replicates %s on %s", s.Replica, s.Primary, s.Host))
		}
		if len(pairs) > 0 {
			return Fail, strings.Join(pairs, "; ")
		}
	case "announce_bound":
		return e.announceBound()
	}
	return Pass, ""
}

// announceBound: a cluster-announce-ip the node does not bind is an address
// its peers and clients are sent to where it does not listen (or, worse,
// where another server does).
func (e *evaluator) announceBound() (Status, string) {
	ann, _ := lookupDirective("cluster-announce-ip")
	bind, _ := lookupDirective("bind")
	a, why := e.lookup(ann)
	if a == nil {
		return Skip, why
	}
	if a.v.Canonical == "" {
		return Pass, ""
	}
	b, why := e.lookup(bind)
	if b == nil {
		return Skip, why
	}
	for _, w := range strings.Fields(b.v.Canonical) {
		w = strings.TrimPrefix(w, "-")
		if w == a.v.Canonical || w == "*" || w == "::*" || w == "0.0.0.0" || w == "::" {
			return Pass, ""
		}
	}
	return Fail, fmt.Sprintf("cluster-announce-ip %s is not one of the addresses the node binds (%s)", a.v.Canonical, b.v.Canonical)
}

func (e *evaluator) version(vp *VersionPredicate) (Status, string) {
	if e.f.Info == nil {
		return Skip, "needs the running server"
	}
	ver := e.f.Info["valkey_version"]
	if ver == "" {
		return Skip, "not a Valkey server"
	}
	v := parseVersion(ver)
	if v == nil {
		return Skip, fmt.Sprintf("cannot read the version %q", ver)
	}
	line := fmt.Sprintf("%s.%s", v[0], v[1])
	cves := ""
	if len(vp.CVEs) > 0 {
		cves = " (" + strings.Join(vp.CVEs, ", ") + ")"
	}
	if fixed, ok := vp.Fixed[line]; ok {
		if compareVersion(v, parseVersion(fixed)) < 0 {
			return Fail, fmt.Sprintf("Valkey %s has known vulnerabilities fixed in %s%s", ver, fixed, cves)
		}
		return Pass, ""
	}
	newest := ""
	for l := range vp.Fixed {
		if newest == "" || compareVersion(parseVersion(l), parseVersion(newest)) > 0 {
			newest = l
		}
	}
	if compareVersion(parseVersion(line), parseVersion(newest)) > 0 {
		return Pass, "" // a newer release line than the policy knows
	}
	return Fail, fmt.Sprintf("Valkey %s is a release line with no fixed version in the policy (unsupported)%s", ver, cves)
}

// cert checks the certificate file the directive names and, for
// tls-cert-file, the certificate the server serves (they differ until a
// reload): a failure of either fails the rule, naming which.
func (e *evaluator) cert(cp *CertPredicate) (Status, string) {
	if !e.f.Host {
		return Skip, "needs the target host (certificates are not checked by lint)"
	}
	type named struct {
		label string
		info  *CertInfo
	}
	var certs []named
	path, why := e.path(cp.Directive)
	if path != "" {
		c := e.f.Certs[path]
		if c == nil {
			return Skip, path + " was not inspected"
		}
		if c.Err != "" {
			return Fail, fmt.Sprintf("cannot read the certificate %s: %s", path, c.Err)
		}
		certs = append(certs, named{path, c})
	}
	if s := e.f.Served; s != nil && cp.Directive == "tls-cert-file" {
		certs = append(certs, named{"served on " + s.Address, s.Cert})
	}
	if len(certs) == 0 {
		return Skip, why
	}
	var fails []string
	for _, c := range certs {
		if msg := e.certProblem(cp, c.label, c.info); msg != "" {
			fails = append(fails, msg)
		}
	}
	if len(fails) == 0 {
		return Pass, ""
	}
	return Fail, strings.Join(fails, "; ")
}

// certProblem says what is wrong with one certificate ("" when nothing is).
func (e *evaluator) certProblem(cp *CertPredicate, label string, c *CertInfo) string {
	switch {
	case cp.StrongKey != nil:
		if c.KeyWeakness != "" {
			return fmt.Sprintf("the certificate %s has %s", label, c.KeyWeakness)
		}
	case cp.StrongSignature != nil:
		if len(c.WeakSignatures) > 0 {
			return fmt.Sprintf("the certificate %s is signed with a broken hash: %s", label, strings.Join(c.WeakSignatures, "; "))
		}
	case cp.NotSelfSigned != nil:
		if c.SelfSigned {
			return fmt.Sprintf("the certificate %s (%s) is self-signed: no CA stands behind it", label, c.Subject)
		}
	default:
		left := c.NotAfter.Sub(e.f.Now)
		days := int(left.Hours() / 24)
		if left <= 0 {
			return fmt.Sprintf("the certificate %s expired on %s", label, c.NotAfter.UTC().Format("2006-01-02"))
		}
		if days < cp.MinDaysLeft {
			return fmt.Sprintf("the certificate %s expires on %s (in %d days; expected at least %d)", label, c.NotAfter.UTC().Format("2006-01-02"), days, cp.MinDaysLeft)
		}
	}
	return ""
}

func (e *evaluator) sentinel(sp *SentinelPredicate) (Status, string) {
	s := e.f.Sentinel
	if s == nil {
		return Skip, "not a Sentinel"
	}
	if sp.MinSentinels > 0 || sp.Require == "quorum_majority" {
		if len(s.Monitors) == 0 {
			return Skip, "the Sentinel monitors no primary"
		}
		var bad []string
		for _, m := range s.Monitors {
			n := m.NumOtherSentinels + 1
			switch {
			case sp.MinSentinels > 0 && n < sp.MinSentinels:
				bad = append(bad, fmt.Sprintf("monitor %s is watched by %d %s", m.Name, n, plural(n, "Sentinel", "Sentinels")))
			case sp.Require == "quorum_majority" && m.Quorum*2 <= n:
				bad = append(bad, fmt.Sprintf("monitor %s has quorum %d of %d Sentinels", m.Name, m.Quorum, n))
			}
		}
		if len(bad) > 0 {
			return Fail, strings.Join(bad, "; ")
		}
		return Pass, ""
	}
	switch sp.Require {
	case "peer_auth":
		var missing []string
		for _, k := range []string{"sentinel-user", "sentinel-pass"} {
			if s.Config[k] == "" {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			return Fail, strings.Join(missing, " and ") + " not set: this Sentinel logs in to the other Sentinels as their default user"
		}
		return Pass, ""
	}
	if e.f.Config == nil {
		return Skip, "the Sentinel's config file was not read"
	}
	lines := map[string]map[string]bool{} // sentinel option -> monitors (or "" for global)
	for _, o := range e.f.Config.Occurrences("sentinel") {
		if len(o.Args) < 2 {
			continue
		}
		opt := strings.ToLower(o.Args[0])
		if lines[opt] == nil {
			lines[opt] = map[string]bool{}
		}
		lines[opt][o.Args[1]] = true
	}
	switch sp.Require {
	case "deny_scripts_reconfig":
		// The last line counts; without one Sentinel denies (the default).
		deny := "yes"
		for _, o := range e.f.Config.Occurrences("sentinel") {
			if len(o.Args) == 2 && strings.EqualFold(o.Args[0], "deny-scripts-reconfig") {
				deny = strings.ToLower(o.Args[1])
			}
		}
		if deny != "yes" {
			return Fail, e.f.Config.Path + ": sentinel deny-scripts-reconfig " + deny
		}
	case "monitor_auth":
		var bad []string
		for _, o := range e.f.Config.Occurrences("sentinel") {
			if len(o.Args) < 2 || !strings.EqualFold(o.Args[0], "monitor") {
				continue
			}
			name := o.Args[1]
			var missing []string
			for _, k := range []string{"auth-user", "auth-pass"} {
				if !lines[k][name] {
					missing = append(missing, k)
				}
			}
			if len(missing) > 0 {
				bad = append(bad, fmt.Sprintf("monitor %s has no %s", name, strings.Join(missing, " or ")))
			}
		}
		if len(bad) > 0 {
			return Fail, strings.Join(bad, "; ") + " (" + e.f.Config.Path + ")"
		}
	}
	return Pass, ""
}
