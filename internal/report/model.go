// Package report renders the audit of a whole run (every host and instance)
// as one self-contained HTML page, JUnit XML, SARIF 2.1.0 or JSON: findings
// by severity, the instance × rule matrix, drift (desired, runtime, file),
// certificate expiry, out-of-band changes and what changed since a previous
// run. Every value in the input is untrusted (user names, config values,
// journal entries come from the servers and their hosts): the HTML goes
// through html/template, the XML and JSON through their encoders.
//
// The input never holds a secret: valkey_audit masks them before its result
// leaves the target, and the report shows only what that result holds.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/audit"
	"github.com/valkeyops/secure/internal/policy"
)

// MaxInputSize bounds a results or previous-run document.
const MaxInputSize = 256 << 20

// Instance statuses.
const (
	StatusPassed   = "passed"   // no finding, no drift
	StatusFindings = "findings" // findings, no drift
	StatusDrift    = "drift"    // drift (findings or not)
	StatusError    = "error"    // the audit did not run: no report
)

// Cell statuses of the matrix.
const (
	CellPass     = "pass"
	CellFail     = "fail"
	CellAccepted = "accepted"       // failed, with its severity lowered by the site's policy
	CellNA       = "not-applicable" // skipped: not applicable, facts unknown, or not evaluated
	CellUnknown  = "unknown"        // the instance has no report
)

// Run is one audit run: the JSON form of the report (the input of a later
// run's diff).
type Run struct {
	Title     string     `json:"title"`
	Generated time.Time  `json:"generated"`
	Version   string     `json:"version"`
	Summary   Summary    `json:"summary"`
	Instances []Instance `json:"instances"`
	// Rules are the rules the matrix shows, in id order.
	Rules []Rule `json:"rules"`
	// Previous is the summary of the run compared with, if any.
	Previous *Diff `json:"previous,omitempty"`
	// Groups are the replication groups, clusters and Sentinel sets of the
	// run with what their nodes disagree on (the cross-node rule, VK-090).
	Groups []Group `json:"groups"`
}

// Instance is one server's audit.
type Instance struct {
	Host      string            `json:"host"`
	Instance  string            `json:"instance"`
	Address   string            `json:"address,omitempty"`
	Status    string            `json:"status"`
	Error     string            `json:"error,omitempty"`
	Report    *audit.Report     `json:"report,omitempty"`
	OutOfBand []audit.OutOfBand `json:"out_of_band,omitempty"`
	Warnings  []string          `json:"warnings,omitempty"`
}

// Key identifies an instance across runs.
func (in *Instance) Key() string { return in.Host + "\x00" + in.Instance }

// Label names the instance for people: host/instance.
func (in *Instance) Label() string {
	if in.Instance == "" {
		return in.Host
	}
	return in.Host + "/" + in.Instance
}

// Rule is a rule's metadata: from the baseline, else from a finding.
type Rule struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Severity    string `json:"severity"` // the baseline's (default) severity
	Rationale   string `json:"rationale,omitempty"`
	Remediation string `json:"remediation,omitempty"`
}

// Summary counts the run. The severity counts are the sums of the
// instances' own report summaries (accepted risks included, at the severity
// they were reported with).
type Summary struct {
	Instances       int `json:"instances"`
	Passed          int `json:"passed"`
	WithFindings    int `json:"with_findings"`
	Drifted         int `json:"drifted"`
	Errors          int `json:"errors"`
	Findings        int `json:"findings"`
	Critical        int `json:"critical"`
	High            int `json:"high"`
	Medium          int `json:"medium"`
	Low             int `json:"low"`
	AcceptedRisks   int `json:"accepted_risks"`
	DriftedSettings int `json:"drifted_settings"`
	DriftedUsers    int `json:"drifted_users"`
	OutOfBand       int `json:"out_of_band"`
	CertsExpired    int `json:"certificates_expired"`
	CertsExpiring   int `json:"certificates_expiring"` // within ExpiryWarning
}

// ExpiryWarning is how close to its expiry a certificate is flagged.
const ExpiryWarning = 30 * 24 * time.Hour

// Line is the one-line summary published to AWX (set_stats) and logs.
func (s Summary) Line() string {
	return fmt.Sprintf("%d instances: %d passed, %d with findings, %d drifted, %d not audited; "+
		"%d findings (%d critical, %d high, %d medium, %d low, %d accepted); %d out-of-band changes; %d certificates expired, %d expiring",
		s.Instances, s.Passed, s.WithFindings, s.Drifted, s.Errors,
		s.Findings, s.Critical, s.High, s.Medium, s.Low, s.AcceptedRisks, s.OutOfBand, s.CertsExpired, s.CertsExpiring)
}

// Baseline returns the shipped baseline's rule metadata (the source of the
// rules' default severities and of SARIF's rule descriptions).
func Baseline() []Rule {
	pol, err := policy.Build(false)
	if err != nil { // the embedded baseline is tested to load
		panic(err)
	}
	return RulesOf(pol)
}

// RulesOf returns a policy's rule metadata.
func RulesOf(pol *policy.Policy) []Rule {
	out := make([]Rule, 0, len(pol.Rules))
	for _, r := range pol.Rules {
		out = append(out, Rule{ID: r.ID, Title: r.Title, Severity: r.Severity,
			Rationale: strings.TrimSpace(r.Rationale), Remediation: strings.TrimSpace(r.Remediation)})
	}
	return out
}

// Rules returns the metadata of a policy's rules for a report: a baseline
// rule keeps the baseline's severity (a lower one in a finding is then an
// accepted risk), the policy's own rules come as the policy gives them.
func Rules(pol *policy.Policy) []Rule {
	out := Baseline()
	seen := map[string]bool{}
	for _, r := range out {
		seen[r.ID] = true
	}
	for _, r := range RulesOf(pol) {
		if !seen[r.ID] {
			out = append(out, r)
		}
	}
	return out
}

// New assembles a run from the instances' audits: the rules (the baseline's
// and any other a finding or skip names), each instance's status and the
// summary. now is the report's time (certificate expiry is measured from it).
func New(title, version string, now time.Time, baseline []Rule, instances []Instance) *Run {
	r := &Run{Title: title, Generated: now.UTC(), Version: version, Instances: instances}
	if r.Instances == nil {
		r.Instances = []Instance{}
	}
	rules := map[string]Rule{}
	for _, b := range baseline {
		rules[b.ID] = b
	}
	r.Groups = crossNode(r.Instances)
	for _, in := range r.Instances {
		if in.Report != nil && in.Report.Fleet != nil {
			rules[CrossNodeID] = CrossNodeRule
		}
	}
	for i := range r.Instances {
		in := &r.Instances[i]
		in.Status = status(in)
		if in.Report == nil {
			continue
		}
		for _, f := range in.Report.Findings {
			if _, ok := rules[f.ID]; !ok {
				rules[f.ID] = Rule{ID: f.ID, Title: f.Title, Severity: f.Severity, Remediation: f.Remediation}
			}
		}
		ids := slices.Clone(in.Report.PassedRules)
		for _, s := range in.Report.Skipped {
			ids = append(ids, s.ID)
		}
		for _, id := range ids {
			if _, ok := rules[id]; !ok {
				rules[id] = Rule{ID: id, Title: id}
			}
		}
	}
	for _, id := range sortedKeys(rules) {
		r.Rules = append(r.Rules, rules[id])
	}
	if r.Rules == nil {
		r.Rules = []Rule{}
	}
	r.count(now)
	return r
}

func status(in *Instance) string {
	switch {
	case in.Report == nil:
		return StatusError
	case in.Report.Summary.DriftedSettings+in.Report.Summary.DriftedUsers > 0:
		return StatusDrift
	case in.Report.Summary.Findings > 0:
		return StatusFindings
	}
	return StatusPassed
}

func (r *Run) count(now time.Time) {
	s := Summary{Instances: len(r.Instances)}
	for i := range r.Instances {
		in := &r.Instances[i]
		switch in.Status {
		case StatusPassed:
			s.Passed++
		case StatusFindings:
			s.WithFindings++
		case StatusDrift:
			s.Drifted++
		default:
			s.Errors++
		}
		s.OutOfBand += len(in.OutOfBand)
		if in.Report == nil {
			continue
		}
		rs := in.Report.Summary
		s.Findings += rs.Findings
		s.Critical += rs.Critical
		s.High += rs.High
		s.Medium += rs.Medium
		s.Low += rs.Low
		s.DriftedSettings += rs.DriftedSettings
		s.DriftedUsers += rs.DriftedUsers
		for _, f := range in.Report.Findings {
			if r.accepted(f) {
				s.AcceptedRisks++
			}
		}
		for _, c := range in.Report.Certificates {
			switch left, ok := certLeft(c, now); {
			case !ok:
			case left <= 0:
				s.CertsExpired++
			case left <= ExpiryWarning:
				s.CertsExpiring++
			}
		}
	}
	r.Summary = s
}

func certLeft(c audit.Certificate, now time.Time) (time.Duration, bool) {
	t, err := time.Parse(time.RFC3339, c.NotAfter)
	if err != nil {
		return 0, false
	}
	return t.Sub(now), true
}

// rule returns the rule with the id (nil when unknown).
func (r *Run) rule(id string) *Rule {
	i, ok := slices.BinarySearchFunc(r.Rules, id, func(x Rule, id string) int { return strings.Compare(x.ID, id) })
	if !ok {
		return nil
	}
	return &r.Rules[i]
}

// accepted reports whether a finding is an accepted risk: the site's policy
// lowered its severity below the rule's default.
func (r *Run) accepted(f policy.Finding) bool {
	rule := r.rule(f.ID)
	return rule != nil && policy.SeverityRank(f.Severity) < policy.SeverityRank(rule.Severity)
}

// Cell is one instance × rule status, with the finding or reason behind it.
type Cell struct {
	Status string
	Detail string
}

// Cell returns the matrix cell of an instance and a rule.
func (r *Run) Cell(in *Instance, rule *Rule) Cell {
	rep := in.Report
	if rep == nil {
		return Cell{CellUnknown, "not audited: " + in.Error}
	}
	var msgs []string
	accepted := true
	for _, f := range rep.Findings {
		if f.ID == rule.ID {
			msgs = append(msgs, f.Message)
			accepted = accepted && r.accepted(f)
		}
	}
	if len(msgs) > 0 {
		if accepted {
			return Cell{CellAccepted, "accepted risk: " + strings.Join(msgs, "; ")}
		}
		return Cell{CellFail, strings.Join(msgs, "; ")}
	}
	for _, s := range rep.Skipped {
		if s.ID == rule.ID {
			return Cell{CellNA, s.Reason}
		}
	}
	if rep.PassedRules == nil || slices.Contains(rep.PassedRules, rule.ID) {
		// An audit from before passed_rules: a rule neither failed nor
		// skipped passed.
		return Cell{CellPass, "passed"}
	}
	return Cell{CellNA, "not evaluated (turned off by the policy or skip_rules)"}
}

// Diff is what changed since a previous run.
type Diff struct {
	Generated       time.Time `json:"generated"`
	Summary         Summary   `json:"summary"`
	NewFindings     []Change  `json:"new_findings"`
	ResolvedFinding []Change  `json:"resolved_findings"`
	NewDrift        []Change  `json:"new_drift"`
	ResolvedDrift   []Change  `json:"resolved_drift"`
	NewInstances    []string  `json:"new_instances"`
	GoneInstances   []string  `json:"gone_instances"`
}

// Change is one finding or drifted name that appeared or went away.
type Change struct {
	Instance string `json:"instance"` // host/instance
	ID       string `json:"id"`       // rule id, or "directive NAME" / "user NAME"
	Severity string `json:"severity,omitempty"`
	Message  string `json:"message,omitempty"`
}

// Compare records in the run what changed since prev.
func (r *Run) Compare(prev *Run) {
	d := &Diff{Generated: prev.Generated, Summary: prev.Summary, NewFindings: []Change{}, ResolvedFinding: []Change{},
		NewDrift: []Change{}, ResolvedDrift: []Change{}, NewInstances: []string{}, GoneInstances: []string{}}
	old := map[string]*Instance{}
	for i := range prev.Instances {
		old[prev.Instances[i].Key()] = &prev.Instances[i]
	}
	seen := map[string]bool{}
	for i := range r.Instances {
		in := &r.Instances[i]
		seen[in.Key()] = true
		was, ok := old[in.Key()]
		if !ok {
			d.NewInstances = append(d.NewInstances, in.Label())
			continue
		}
		if in.Report == nil || was.Report == nil {
			continue // nothing to compare with
		}
		now, before := findingSet(in), findingSet(was)
		d.NewFindings = append(d.NewFindings, minus(now, before)...)
		d.ResolvedFinding = append(d.ResolvedFinding, minus(before, now)...)
		now, before = driftSet(in), driftSet(was)
		d.NewDrift = append(d.NewDrift, minus(now, before)...)
		d.ResolvedDrift = append(d.ResolvedDrift, minus(before, now)...)
	}
	for i := range prev.Instances {
		if !seen[prev.Instances[i].Key()] {
			d.GoneInstances = append(d.GoneInstances, prev.Instances[i].Label())
		}
	}
	r.Previous = d
}

// findingSet keys an instance's findings by rule id (and message for the
// config check, which may fail on several lines).
func findingSet(in *Instance) map[string]Change {
	out := map[string]Change{}
	for _, f := range in.Report.Findings {
		k := f.ID
		if f.ID == audit.ConfigCheckID {
			k += "\x00" + f.Message
		}
		out[k] = Change{Instance: in.Label(), ID: f.ID, Severity: f.Severity, Message: f.Message}
	}
	return out
}

func driftSet(in *Instance) map[string]Change {
	out := map[string]Change{}
	for name, sd := range in.Report.Drift.Settings {
		out["d\x00"+name] = Change{Instance: in.Label(), ID: "directive " + name,
			Message: fmt.Sprintf("desired %s, runtime %s, file %s", orDash(sd.Desired), sd.Runtime, sd.File)}
	}
	for name, ud := range in.Report.Drift.Users {
		out["u\x00"+name] = Change{Instance: in.Label(), ID: "user " + name,
			Message: fmt.Sprintf("desired %s, runtime %s, file %s", ud.Desired, ud.Runtime, ud.File)}
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func minus(a, b map[string]Change) []Change {
	var out []Change
	for _, k := range sortedKeys(a) {
		if _, ok := b[k]; !ok {
			out = append(out, a[k])
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// ReadRun reads a run written by WriteJSON (a previous report).
func ReadRun(r io.Reader, name string) (*Run, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputSize+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read the previous report %s: %w", name, err)
	}
	if len(data) > MaxInputSize {
		return nil, fmt.Errorf("the previous report %s is larger than %d MiB", name, MaxInputSize>>20)
	}
	var run Run
	if err := json.Unmarshal(data, &run); err != nil {
		return nil, fmt.Errorf("the previous report %s is not a report's JSON: %v", name, err)
	}
	if run.Instances == nil {
		return nil, fmt.Errorf("the previous report %s is not a report's JSON: it has no instances list", name)
	}
	return &run, nil
}

// Result is one valkey_audit task result as the playbook gathers it.
type Result struct {
	Host     string          `json:"host"`
	Instance string          `json:"instance"`
	Result   json.RawMessage `json:"result"`
}

// moduleResult is the part of a valkey_audit result the report reads: the
// audit report's fields and out_of_band at its top level, msg and warnings.
type moduleResult struct {
	audit.Report
	OutOfBand []audit.OutOfBand `json:"out_of_band"`
	Msg       string            `json:"msg"`
	Warnings  []string          `json:"warnings"`
	// Summary present tells a report from a failure before it.
	HasSummary *json.RawMessage `json:"summary"`
}

// FromResult turns a valkey_audit result into an Instance. A result
// without a report (the audit did not run) is an instance in error with the
// task's message.
func FromResult(res Result) (Instance, error) {
	in := Instance{Host: res.Host, Instance: res.Instance}
	if len(res.Result) == 0 || string(res.Result) == "null" {
		in.Error = "no audit result (the task did not run)"
		return in, nil
	}
	var m moduleResult
	if err := json.Unmarshal(res.Result, &m); err != nil {
		return in, fmt.Errorf("the result of %s is not a valkey_audit result: %v", in.Label(), err)
	}
	in.Warnings, in.OutOfBand = m.Warnings, m.OutOfBand
	if m.HasSummary == nil {
		in.Error = m.Msg
		if in.Error == "" {
			in.Error = "the audit did not run"
		}
		return in, nil
	}
	rep := m.Report
	if err := json.Unmarshal(*m.HasSummary, &rep.Summary); err != nil {
		return in, fmt.Errorf("the result of %s has a bad summary: %v", in.Label(), err)
	}
	if in.Instance == "" {
		in.Instance = rep.Instance
	}
	in.Report = &rep
	return in, nil
}

// ErrNoResults is returned for an empty results list.
var ErrNoResults = errors.New("no audit results to report")
