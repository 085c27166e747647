package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/audit"
	"github.com/valkeyops/secure/internal/policy"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// Attacker-controlled bytes: a user name made by whoever can run ACL SETUSER,
// a config value set with CONFIG SET, a journal entry's user.
const (
	evilUser   = `<script>alert(1)</script>`
	evilValue  = `x" onmouseover="alert(1)" y="`
	evilRecord = `<img src=x onerror=alert(2)>`
)

func rules() []Rule {
	return []Rule{
		{ID: "VK-001", Title: "protected mode", Severity: "high", Remediation: "turn it on"},
		{ID: "VK-002", Title: "a password", Severity: "critical", Remediation: "set one"},
		{ID: "VK-003", Title: "tls", Severity: "medium", Remediation: "use tls"},
		{ID: "VK-004", Title: "cluster only", Severity: "low", Remediation: "n/a"},
	}
}

// fleet is three instances: one failing two rules (one of them lowered by
// the site's policy), with drift, an out-of-band change and a certificate
// about to expire; one passing; one that was not audited.
func fleet() []Instance {
	bad := &audit.Report{
		Instance: "cache", ConfigFile: "/etc/valkey/valkey-cache.conf",
		Findings: []policy.Finding{
			{ID: "VK-001", Title: "protected mode", Severity: "high", Message: "protected-mode is " + evilValue, Remediation: "turn it on"},
			{ID: "VK-003", Title: "tls", Severity: "low", Message: "no tls", Remediation: "use tls"},
		},
		Skipped:     []audit.Skipped{{ID: "VK-004", Reason: "not applicable: cluster-enabled is no"}},
		PassedRules: []string{"VK-002"},
		Drift: audit.Drift{
			Settings: map[string]audit.SettingDrift{"maxmemory-policy": {Desired: "noeviction", Runtime: evilValue, File: "noeviction", Differs: []string{"runtime"}}},
			Users:    map[string]audit.UserDrift{evilUser: {Desired: "not listed", Runtime: "enabled", File: "absent", Differs: []string{"runtime"}}},
		},
		Certificates: []audit.Certificate{{Path: "/etc/valkey/tls/cache.crt", Subject: "CN=" + evilUser, NotAfter: now.Add(10 * 24 * time.Hour).Format(time.RFC3339)}},
		Summary:      audit.Summary{High: 1, Low: 1, Findings: 2, RulesPassed: 1, RulesSkipped: 1, DriftedSettings: 1, DriftedUsers: 1},
	}
	good := &audit.Report{
		Instance: "default", Findings: []policy.Finding{}, Skipped: []audit.Skipped{}, PassedRules: []string{"VK-001", "VK-002", "VK-003", "VK-004"},
		Drift:        audit.Drift{Settings: map[string]audit.SettingDrift{}, Users: map[string]audit.UserDrift{}},
		Certificates: []audit.Certificate{{Path: "/etc/valkey/tls/valkey.crt", NotAfter: now.Add(400 * 24 * time.Hour).Format(time.RFC3339)}},
		Summary:      audit.Summary{RulesPassed: 4},
	}
	return []Instance{
		{Host: "web1", Instance: "cache", Report: bad, OutOfBand: []audit.OutOfBand{{Directive: "maxmemory-policy", Runtime: evilValue, RecordedBy: evilRecord}}},
		{Host: "web2", Instance: "default", Report: good},
		{Host: "web3", Instance: "default", Error: "cannot connect to /run/valkey/valkey.sock: connection refused; the audit did not run"},
	}
}

func render(t *testing.T, format string, r *Run) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, Write(&b, format, r))
	return b.String()
}

func TestSummaryAddsTheInstancesReports(t *testing.T) {
	r := New("Fleet audit", "1.0.0", now, rules(), fleet())
	assert.Equal(t, Summary{Instances: 3, Passed: 1, Drifted: 1, Errors: 1, Findings: 2, High: 1, Low: 1, AcceptedRisks: 1,
		DriftedSettings: 1, DriftedUsers: 1, OutOfBand: 1, CertsExpiring: 1}, r.Summary)
	assert.Equal(t, []string{StatusDrift, StatusPassed, StatusError}, []string{r.Instances[0].Status, r.Instances[1].Status, r.Instances[2].Status})
}

func TestMatrixCells(t *testing.T) {
	r := New("Fleet audit", "1.0.0", now, rules(), fleet())
	for _, c := range []struct {
		instance int
		rule     string
		want     string
	}{
		{0, "VK-001", CellFail},
		{0, "VK-002", CellPass},
		{0, "VK-003", CellAccepted}, // medium lowered to low by the site's policy
		{0, "VK-004", CellNA},
		{1, "VK-003", CellPass},
		{2, "VK-001", CellUnknown},
	} {
		t.Run(c.rule, func(t *testing.T) {
			assert.Equal(t, c.want, r.Cell(&r.Instances[c.instance], r.rule(c.rule)).Status)
		})
	}
	// A rule turned off is not evaluated: not a pass.
	in := fleet()[1]
	in.Report.PassedRules = []string{"VK-001"}
	assert.Equal(t, CellNA, r.Cell(&in, r.rule("VK-002")).Status)
}

func TestHTMLEscapesEveryValue(t *testing.T) {
	page := render(t, "html", New("Fleet <b>audit</b>", "1.0.0", now, rules(), fleet()))
	for _, raw := range []string{evilUser, evilValue, evilRecord, `" onmouseover=`, "<script", "<img", "<b>"} {
		assert.NotContains(t, page, raw)
	}
	// The values are there, escaped.
	assert.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.Contains(t, page, "x&#34; onmouseover=&#34;alert(1)&#34; y=&#34;")
	assert.Contains(t, page, "&lt;img src=x onerror=alert(2)&gt;")
	// Nothing is loaded or run: no script, no URL but the CSP's own.
	// (html/template writes + as &#43; in an attribute; the browser reads it back.)
	assert.Contains(t, page, `content="default-src &#39;none&#39;; style-src &#39;sha256-`+strings.ReplaceAll(cssHash(), "+", "&#43;"))
	for _, ref := range []string{` src="`, "href=", "@import", "url("} {
		assert.NotContains(t, page, ref)
	}
}

func TestHTMLShowsCountsCellsAndSections(t *testing.T) {
	page := render(t, "html", New("Fleet audit", "1.0.0", now, rules(), fleet()))
	for _, want := range []string{
		`<dd data-count="findings">2</dd>`, `<dd data-count="high">1</dd>`, `<dd data-count="accepted_risks">1</dd>`,
		`<dd data-count="errors">1</dd>`, `<dd data-count="certificates_expiring">1</dd>`,
		`<tr data-instance="web1/cache" data-status="drift">`,
		`<td class="c fail" data-rule="VK-001" data-status="fail"`,
		`<td class="c accepted" data-rule="VK-003" data-status="accepted"`,
		`<tr data-drift="user">`, `<g class="cert-expiring">`,
		"cannot connect to /run/valkey/valkey.sock",
	} {
		assert.Contains(t, page, want)
	}
	assert.Equal(t, 3, strings.Count(page, `data-rule="VK-001"`), "one cell per instance")
}

func TestDiffAgainstPreviousRun(t *testing.T) {
	prevInstances := fleet()
	prevInstances[0].Report.Findings = prevInstances[0].Report.Findings[1:] // VK-001 is new
	prevInstances[0].Report.Findings = append(prevInstances[0].Report.Findings, policy.Finding{ID: "VK-002", Severity: "critical", Message: "no password"})
	prevInstances[0].Report.Drift.Users = map[string]audit.UserDrift{}
	prevInstances = append(prevInstances[:1], prevInstances[2:]...) // web2 is new
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, New("Fleet audit", "1.0.0", now.Add(-24*time.Hour), rules(), prevInstances)))
	prev, err := ReadRun(&b, "prev.json")
	require.NoError(t, err)

	r := New("Fleet audit", "1.0.0", now, rules(), fleet())
	r.Compare(prev)
	d := r.Previous
	assert.Equal(t, []Change{{Instance: "web1/cache", ID: "VK-001", Severity: "high", Message: "protected-mode is " + evilValue}}, d.NewFindings)
	assert.Equal(t, []Change{{Instance: "web1/cache", ID: "VK-002", Severity: "critical", Message: "no password"}}, d.ResolvedFinding)
	assert.Len(t, d.NewDrift, 1)
	assert.Equal(t, "user "+evilUser, d.NewDrift[0].ID)
	assert.Empty(t, d.ResolvedDrift)
	assert.Equal(t, []string{"web2/default"}, d.NewInstances)
	assert.Empty(t, d.GoneInstances)

	page := render(t, "html", r)
	assert.Contains(t, page, `<tr class="new" data-change="new-finding"><td>new finding</td><td>web1/cache</td><td>VK-001</td>`)
	assert.Contains(t, page, `data-change="resolved-finding"`)
	assert.NotContains(t, page, evilUser)

	_, err = ReadRun(strings.NewReader(`{"title": "x"}`), "old.json")
	assert.EqualError(t, err, "the previous report old.json is not a report's JSON: it has no instances list")
}

func TestJUnit(t *testing.T) {
	out := render(t, "junit", New("Fleet audit", "1.0.0", now, rules(), fleet()))
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Type    string `xml:"type,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	require.NoError(t, xml.Unmarshal([]byte(out), &doc))
	assert.Equal(t, []int{9, 2, 1, 1}, []int{doc.Tests, doc.Failures, doc.Errors, doc.Skipped})
	require.Len(t, doc.Suites, 3)
	assert.Equal(t, "web1/cache", doc.Suites[0].Name)
	assert.Equal(t, "protected-mode is "+evilValue, doc.Suites[0].Cases[0].Failure.Message)
	assert.Equal(t, "high", doc.Suites[0].Cases[0].Failure.Type)
	assert.NotContains(t, out, evilUser) // escaped by the encoder
}

func TestSARIF(t *testing.T) {
	out := render(t, "sarif", New("Fleet audit", "1.0.0", now, rules(), fleet()))
	var doc struct {
		Schema  string `json:"$schema"`
		Version string
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string
					Rules []struct {
						ID                   string
						ShortDescription     struct{ Text string }
						DefaultConfiguration struct{ Level string }
						Properties           map[string]string
					}
				}
			}
			Results []struct {
				RuleID    string
				RuleIndex int
				Level     string
				Message   struct{ Text string }
				Locations []struct {
					PhysicalLocation struct{ ArtifactLocation struct{ URI string } }
					LogicalLocations []struct{ FullyQualifiedName string }
				}
				Properties map[string]string
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.Equal(t, "2.1.0", doc.Version)
	require.Len(t, doc.Runs, 1)
	run := doc.Runs[0]
	assert.Equal(t, "valkeyops", run.Tool.Driver.Name)
	require.Len(t, run.Tool.Driver.Rules, 4)
	assert.Equal(t, "protected mode", run.Tool.Driver.Rules[0].ShortDescription.Text)
	assert.Equal(t, "error", run.Tool.Driver.Rules[0].DefaultConfiguration.Level)
	assert.Equal(t, "8.0", run.Tool.Driver.Rules[0].Properties["security-severity"])
	require.Len(t, run.Results, 2)
	res := run.Results[1]
	assert.Equal(t, "VK-003", res.RuleID)
	assert.Equal(t, "VK-003", run.Tool.Driver.Rules[res.RuleIndex].ID)
	assert.Equal(t, "note", res.Level)
	assert.Equal(t, "true", res.Properties["accepted_risk"])
	assert.Equal(t, "file:///etc/valkey/valkey-cache.conf", res.Locations[0].PhysicalLocation.ArtifactLocation.URI)
	assert.Equal(t, "web1/cache", res.Locations[0].LogicalLocations[0].FullyQualifiedName)
}

func TestFromResult(t *testing.T) {
	in, err := FromResult(Result{Host: "h1", Result: json.RawMessage(`{"failed": true, "msg": "cannot connect; the audit did not run"}`)})
	require.NoError(t, err)
	assert.Nil(t, in.Report)
	assert.Equal(t, "cannot connect; the audit did not run", in.Error)

	in, err = FromResult(Result{Host: "h1", Result: json.RawMessage(`{"failed": true, "msg": "fails the audit", "instance": "cache",
		"findings": [{"id": "VK-001", "severity": "high", "message": "m"}], "skipped_rules": [], "passed_rules": ["VK-002"],
		"summary": {"high": 1, "findings": 1}, "drift": {"settings": {}, "users": {}},
		"out_of_band": [{"directive": "maxmemory", "runtime": "1"}], "warnings": ["w"]}`)})
	require.NoError(t, err)
	require.NotNil(t, in.Report)
	assert.Equal(t, "cache", in.Instance)
	assert.Equal(t, 1, in.Report.Summary.High)
	assert.Equal(t, []string{"VK-002"}, in.Report.PassedRules)
	assert.Equal(t, "maxmemory", in.OutOfBand[0].Directive)
	assert.Equal(t, []string{"w"}, in.Warnings)

	_, err = FromResult(Result{Host: "h1", Instance: "x", Result: json.RawMessage(`[1]`)})
	assert.ErrorContains(t, err, "the result of h1/x is not a valkey_audit result")
}

func TestBaselineLoads(t *testing.T) {
	b := Baseline()
	require.NotEmpty(t, b)
	for _, r := range b {
		assert.NotZero(t, policy.SeverityRank(r.Severity), r.ID)
	}
}
