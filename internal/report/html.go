package report

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/audit"
	"github.com/valkeyops/secure/internal/policy"
)

//go:embed report.html.tmpl
var pageTemplate string

//go:embed report.css
var pageCSS string

// csp allows nothing but the page's own style sheet (by its hash): no
// script, no font, no image, no request of any kind. A value that escaped
// html/template could not run, load or send anything.
var csp = "default-src 'none'; style-src 'sha256-" + cssHash() + "'; img-src 'none'; base-uri 'none'; form-action 'none'"

func cssHash() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return base64.StdEncoding.EncodeToString(sum[:])
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper": strings.ToUpper,
	"time":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"join":  strings.Join,
}).Parse(pageTemplate))

// view is what the template shows, computed here so the template only
// prints.
type view struct {
	*Run
	CSS        template.CSS
	CSP        string
	Severities []severityGroup
	Matrix     []matrixRow
	Drift      []driftRow
	Timeline   timeline
	OutOfBand  []oobRow
	Errors     []*Instance
	Warnings   []warningRow
	Topology   []topologyRow
}

// topologyRow is where an instance stands: its role, its primary and link
// (a replica), its replicas (a primary), its group (cross-node rule).
type topologyRow struct {
	Instance, Role, Primary, Link, Group string
	Replicas                             int
}

type severityGroup struct {
	Severity string
	Count    int
	Findings []findingRow
}

type findingRow struct {
	Instance string
	policyFinding
	Accepted bool
}

type policyFinding = policy.Finding

type matrixRow struct {
	Instance string
	Status   string
	Cells    []matrixCell
}

type matrixCell struct {
	Rule   string
	Status string
	Mark   string
	Detail string
}

var marks = map[string]string{CellPass: "✓", CellFail: "✗", CellAccepted: "≈", CellNA: "–", CellUnknown: "?"}

type driftRow struct {
	Instance, Kind, Name, Desired, Runtime, File, Differs string
}

type oobRow struct {
	Instance string
	audit.OutOfBand
}

type warningRow struct {
	Instance, Text string
}

// WriteHTML writes the run as one self-contained HTML page.
func WriteHTML(w io.Writer, r *Run) error {
	v := &view{Run: r, CSS: template.CSS(pageCSS), CSP: csp}
	bySev := map[string]*severityGroup{}
	for i := len(policy.Severities) - 1; i >= 0; i-- {
		g := &severityGroup{Severity: policy.Severities[i]}
		bySev[g.Severity] = g
		v.Severities = append(v.Severities, *g)
	}
	for i := range r.Instances {
		in := &r.Instances[i]
		label := in.Label()
		for _, wn := range in.Warnings {
			v.Warnings = append(v.Warnings, warningRow{label, wn})
		}
		if in.Report == nil {
			v.Errors = append(v.Errors, in)
		}
		row := matrixRow{Instance: label, Status: in.Status}
		for j := range r.Rules {
			c := r.Cell(in, &r.Rules[j])
			row.Cells = append(row.Cells, matrixCell{Rule: r.Rules[j].ID, Status: c.Status, Mark: marks[c.Status], Detail: c.Detail})
		}
		v.Matrix = append(v.Matrix, row)
		for _, o := range in.OutOfBand {
			v.OutOfBand = append(v.OutOfBand, oobRow{label, o})
		}
		if in.Report == nil {
			continue
		}
		if t := topologyOf(in); t != nil {
			v.Topology = append(v.Topology, *t)
		}
		for _, f := range in.Report.Findings {
			if g := bySev[f.Severity]; g != nil {
				g.Findings = append(g.Findings, findingRow{Instance: label, policyFinding: f, Accepted: r.accepted(f)})
			}
		}
		for _, name := range sortedKeys(in.Report.Drift.Settings) {
			sd := in.Report.Drift.Settings[name]
			v.Drift = append(v.Drift, driftRow{label, "directive", name, orDash(sd.Desired), sd.Runtime, sd.File, strings.Join(sd.Differs, ", ")})
		}
		for _, name := range sortedKeys(in.Report.Drift.Users) {
			ud := in.Report.Drift.Users[name]
			v.Drift = append(v.Drift, driftRow{label, "user", name, ud.Desired, ud.Runtime, ud.File, strings.Join(ud.Differs, ", ")})
		}
	}
	for i := range v.Severities {
		g := bySev[v.Severities[i].Severity]
		g.Count = len(g.Findings)
		v.Severities[i] = *g
	}
	v.Timeline = buildTimeline(r)
	return page.Execute(w, v)
}

// timeline places every certificate's expiry on one axis (SVG, no script):
// from 30 days before the report to the latest expiry (at least a year).
type timeline struct {
	Width, Height, Left, Right int
	NowX, WarnWidth            int
	Ticks                      []tick
	Certs                      []certMark
}

type tick struct {
	X     int
	Label string
}

type certMark struct {
	Instance, Path, Subject, NotAfter, Error, Class string
	Days                                            int
	X, Y, BarX, BarW, BarTop, Mid                   int
}

const (
	tlWidth = 960
	tlLeft  = 260 // room for the labels
	tlRight = 20
	tlRow   = 18
	tlTop   = 30
)

func buildTimeline(r *Run) timeline {
	now := r.Generated
	tl := timeline{Width: tlWidth, Left: tlLeft, Right: tlWidth - tlRight}
	start, end := now.Add(-ExpiryWarning), now.Add(365*24*time.Hour)
	type entry struct {
		m certMark
		t time.Time
	}
	var entries []entry
	for i := range r.Instances {
		in := &r.Instances[i]
		if in.Report == nil {
			continue
		}
		for _, c := range in.Report.Certificates {
			m := certMark{Instance: in.Label(), Path: c.Path, Subject: c.Subject, NotAfter: c.NotAfter, Error: c.Error}
			t, err := time.Parse(time.RFC3339, c.NotAfter)
			if err != nil {
				if m.Error == "" {
					m.Error = "no expiry date"
				}
				m.Class = "cert-error"
				entries = append(entries, entry{m: m})
				continue
			}
			if t.After(end) {
				end = t
			}
			left := t.Sub(now)
			m.Days = int(left.Hours() / 24)
			switch {
			case left <= 0:
				m.Class = "cert-expired"
			case left <= ExpiryWarning:
				m.Class = "cert-expiring"
			default:
				m.Class = "cert-ok"
			}
			entries = append(entries, entry{m: m, t: t})
		}
	}
	// Soonest first; unreadable certificates first of all.
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].t.Before(entries[j].t) })
	span := end.Sub(start)
	x := func(t time.Time) int {
		if t.Before(start) {
			t = start
		}
		return tl.Left + int(float64(tl.Right-tl.Left)*float64(t.Sub(start))/float64(span))
	}
	tl.NowX = x(now)
	tl.WarnWidth = x(now.Add(ExpiryWarning)) - tl.NowX
	for m := time.Date(start.Year(), start.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0); m.Before(end); m = m.AddDate(0, 1, 0) {
		months := int(span.Hours() / 24 / 30)
		if step := months/8 + 1; int(m.Month()-1)%step != 0 {
			continue
		}
		tl.Ticks = append(tl.Ticks, tick{X: x(m), Label: m.Format("2006-01")})
	}
	for i, e := range entries {
		m := e.m
		m.Y = tlTop + i*tlRow
		m.BarTop, m.Mid = m.Y-9, m.Y-5
		if !e.t.IsZero() {
			m.X = x(e.t)
			m.BarX, m.BarW = tl.NowX, m.X-tl.NowX
			if m.BarW < 0 {
				m.BarX, m.BarW = m.X, -m.BarW
			}
		}
		tl.Certs = append(tl.Certs, m)
	}
	tl.Height = tlTop + len(entries)*tlRow + 10
	return tl
}

func topologyOf(in *Instance) *topologyRow {
	rep := in.Report
	row := &topologyRow{Instance: in.Label()}
	if rep.Fleet != nil {
		row.Group = rep.Fleet.Group
	}
	switch {
	case rep.Server != nil && rep.Server.Name == "valkey-sentinel":
		row.Role = "sentinel"
	case rep.Topology != nil:
		t := rep.Topology
		row.Role, row.Primary, row.Link, row.Replicas = t.Role, t.Primary, t.LinkStatus, t.ConnectedReplicas
	default:
		return nil
	}
	return row
}
