package audit

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/policy"
)

// FailOn values besides the severities.
const (
	FailNever = "never"
	FailDrift = "drift"
)

// FailOnChoices are the accepted fail_on / --fail-on values.
var FailOnChoices = append([]string{FailNever, FailDrift}, policy.Severities...)

// Report is what valkey_audit returns and the CLI prints.
type Report struct {
	Server     *ServerInfo `json:"server,omitempty"`
	ConfigFile string      `json:"config_file,omitempty"`
	// Instance names the server on its host, from its config file
	// (journal.InstanceName); every finding carries it too.
	Instance string           `json:"instance,omitempty"`
	ACLFile  string           `json:"aclfile,omitempty"`
	Findings []policy.Finding `json:"findings"`
	Skipped  []Skipped        `json:"skipped_rules"`
	Drift    Drift            `json:"drift"`
	// Topology is the server's place in its replication group (nil when
	// INFO replication was not read): reported, never drift.
	Topology *Topology `json:"topology,omitempty"`
	Summary  Summary   `json:"summary"`
	// Passed: no finding and no drift.
	Passed bool `json:"passed"`

	// PassedRules are the ids of the rules that held (the HTML report's
	// matrix tells a passed rule from one that was not evaluated).
	PassedRules []string `json:"passed_rules"`
	// Certificates are the server's certificate files and their expiry.
	Certificates []Certificate `json:"certificates"`
	// Fleet is what the run's report compares with the other nodes of the
	// node's group (nil without a compare key or a group).
	Fleet *Fleet `json:"fleet,omitempty"`
}

// Skipped is a rule that did not apply or lacked facts.
type Skipped struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// OutOfBand is a drifted directive whose running value was not set by any
// change recorded in the journal: it was changed outside Ansible.
type OutOfBand struct {
	Directive string `json:"directive"`
	Runtime   string `json:"runtime"`
	// LastRecorded is the value the last recorded change set (empty when the
	// journal holds no change of this directive), with when and by whom.
	LastRecorded string `json:"last_recorded,omitempty"`
	RecordedAt   string `json:"recorded_at,omitempty"`
	RecordedBy   string `json:"recorded_by,omitempty"`
}

// Certificate is one certificate file the server uses: its subject and
// expiry, or why it could not be read.
type Certificate struct {
	Path     string `json:"path"`
	Subject  string `json:"subject,omitempty"`
	NotAfter string `json:"not_after,omitempty"` // RFC 3339, UTC
	Error    string `json:"error,omitempty"`
}

// Summary counts.
type Summary struct {
	Critical        int `json:"critical"`
	High            int `json:"high"`
	Medium          int `json:"medium"`
	Low             int `json:"low"`
	Findings        int `json:"findings"`
	RulesPassed     int `json:"rules_passed"`
	RulesSkipped    int `json:"rules_skipped"`
	DriftedSettings int `json:"drifted_settings"`
	DriftedUsers    int `json:"drifted_users"`
}

// BuildReport evaluates the policy and assembles the report.
func BuildReport(pol *policy.Policy, g *Gathered, drift Drift) *Report {
	outs := pol.Evaluate(g.Facts)
	r := &Report{Server: g.Server, ACLFile: g.ACLFile, Findings: policy.Findings(outs), Skipped: []Skipped{},
		PassedRules: []string{}, Certificates: certificates(g.Facts.Certs), Drift: drift}
	if r.Findings == nil {
		r.Findings = []policy.Finding{}
	}
	if g.Facts.Config != nil {
		r.ConfigFile = g.Facts.Config.Path
	}
	r.Instance = journal.InstanceName(r.ConfigFile)
	var topo []policy.Finding
	r.Topology, topo = CheckTopology(g)
	r.Findings = append(topo, r.Findings...)
	for i := range r.Findings {
		r.Findings[i].Instance = r.Instance
	}
	for _, o := range outs {
		switch o.Status {
		case policy.Pass:
			r.Summary.RulesPassed++
			r.PassedRules = append(r.PassedRules, o.Rule.ID)
		case policy.Skip:
			r.Summary.RulesSkipped++
			r.Skipped = append(r.Skipped, Skipped{ID: o.Rule.ID, Reason: o.Message})
		}
	}
	r.count()
	r.Summary.DriftedSettings, r.Summary.DriftedUsers = drift.Count()
	r.Passed = r.Summary.Findings == 0 && r.Summary.DriftedSettings == 0 && r.Summary.DriftedUsers == 0
	return r
}

func certificates(certs map[string]*policy.CertInfo) []Certificate {
	out := []Certificate{}
	for _, p := range sortedKeys(certs) {
		c := certs[p]
		cert := Certificate{Path: p, Subject: c.Subject, Error: c.Err}
		if !c.NotAfter.IsZero() {
			cert.NotAfter = c.NotAfter.UTC().Format(time.RFC3339)
		}
		out = append(out, cert)
	}
	return out
}

// AddFindings puts findings made outside the policy (lint's CheckConfig)
// first and updates the counts.
func (r *Report) AddFindings(fs ...policy.Finding) {
	r.Findings = append(append([]policy.Finding{}, fs...), r.Findings...) // [] in JSON, never null
	r.count()
	r.Passed = r.Passed && len(fs) == 0
}

func (r *Report) count() {
	r.Summary.Critical, r.Summary.High, r.Summary.Medium, r.Summary.Low = 0, 0, 0, 0
	for _, f := range r.Findings {
		switch f.Severity {
		case "critical":
			r.Summary.Critical++
		case "high":
			r.Summary.High++
		case "medium":
			r.Summary.Medium++
		case "low":
			r.Summary.Low++
		}
	}
	r.Summary.Findings = len(r.Findings)
}

// ValidateFailOn checks fail_on values.
func ValidateFailOn(vals []string) error {
	for _, v := range vals {
		if !slices.Contains(FailOnChoices, v) {
			return fmt.Errorf("fail_on: %q is not one of %s", v, strings.Join(FailOnChoices, ", "))
		}
	}
	return nil
}

// Failure returns why the report fails under failOn ("" when it does not):
// a severity fails on findings at or above it, drift on any drift.
func (r *Report) Failure(failOn []string) string {
	var why []string
	for _, v := range failOn {
		switch v {
		case FailNever, "":
		case FailDrift:
			if r.Summary.DriftedSettings+r.Summary.DriftedUsers > 0 {
				why = append(why, r.driftText())
			}
		default:
			n := 0
			for _, f := range r.Findings {
				if policy.SeverityRank(f.Severity) >= policy.SeverityRank(v) {
					n++
				}
			}
			if n > 0 {
				why = append(why, fmt.Sprintf("%d %s at or above %s", n, plural(n, "finding", "findings"), v))
			}
		}
	}
	return strings.Join(why, " and ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (r *Report) driftText() string {
	var parts []string
	if n := r.Summary.DriftedSettings; n > 0 {
		parts = append(parts, fmt.Sprintf("%d drifted %s (%s)", n, plural(n, "directive", "directives"), strings.Join(sortedKeys(r.Drift.Settings), ", ")))
	}
	if n := r.Summary.DriftedUsers; n > 0 {
		parts = append(parts, fmt.Sprintf("%d drifted %s (%s)", n, plural(n, "user", "users"), strings.Join(sortedKeys(r.Drift.Users), ", ")))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Line is a one-line summary: "3 findings (1 critical, 2 high); 1 drifted directive (maxmemory)".
func (r *Report) Line() string {
	s := r.Summary
	var parts []string
	if s.Findings == 0 {
		parts = append(parts, fmt.Sprintf("no findings (%d rules passed, %d skipped)", s.RulesPassed, s.RulesSkipped))
	} else {
		var sev []string
		for _, x := range []struct {
			n    int
			name string
		}{{s.Critical, "critical"}, {s.High, "high"}, {s.Medium, "medium"}, {s.Low, "low"}} {
			if x.n > 0 {
				sev = append(sev, fmt.Sprintf("%d %s", x.n, x.name))
			}
		}
		ids := make([]string, len(r.Findings))
		for i, f := range r.Findings {
			ids[i] = f.ID
		}
		parts = append(parts, fmt.Sprintf("%d %s (%s): %s", s.Findings, plural(s.Findings, "finding", "findings"), strings.Join(sev, ", "), strings.Join(ids, " ")))
	}
	if d := r.driftText(); d != "" {
		parts = append(parts, d)
	} else {
		parts = append(parts, "no drift")
	}
	return strings.Join(parts, "; ")
}
