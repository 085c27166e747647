// Package report is the valkey_report module: it writes the report of a
// whole audit run (the valkey_audit results a playbook gathered from every
// host and instance) as one self-contained HTML page, plus JSON (the next
// run's previous report), JUnit XML and SARIF beside it. It runs where the
// report is wanted, usually the controller (delegate_to: localhost). It
// changes no Valkey server.
package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/outcome"
	"github.com/valkeyops/secure/internal/report"
	"github.com/valkeyops/secure/internal/safefs"
)

// FileMode is the mode of every file written: the report shows where the
// fleet is weak, so it is the writer's alone.
const FileMode = 0o600

// DefaultFormats are the files written when formats is not given.
var DefaultFormats = []string{"html", "json"}

// DefaultTitle titles a report when title is not given.
const DefaultTitle = "Valkey audit"

// Version is the binary's version, shown in the report (set by main).
var Version = "dev"

// Options are valkey_report's options.
type Options struct {
	// Results are the valkey_audit results to report, one per instance.
	Results []Result `json:"results" spec:"required"`
	// Hosts are every host of the run: one without a result is shown as
	// not audited (unreachable, or failed before its audit).
	Hosts []string `json:"hosts" spec:"default="`
	// Path is the HTML report's path (absolute); the other formats are
	// written beside it with the same name and their own extension.
	Path string `json:"path" spec:"path,required"`
	// Formats are the files written (default html and json).
	Formats []string `json:"formats" spec:"default=html|json,choices=html|json|junit|sarif"`
	// Previous is a previous run's JSON report to compare with; a missing
	// file is a warning (the first run has none).
	Previous string `json:"previous" spec:"path"`
	// Title is the report's title (default DefaultTitle).
	Title string `json:"title" spec:"default=Valkey audit"`
}

// Result is one instance's valkey_audit result.
type Result struct {
	// Host is the inventory host.
	Host string `json:"host" spec:"required"`
	// Instance is the instance's name on the host.
	Instance string `json:"instance"`
	// Result is the registered valkey_audit result (empty: not audited).
	Result map[string]any `json:"result"`
}

// extensions name the files of each format: <stem><ext>.
var extensions = map[string]string{"html": ".html", "json": ".json", "junit": ".junit.xml", "sarif": ".sarif"}

// NoResult is the error shown for a host of the run without a result.
const NoResult = "no audit result: the host was unreachable or failed before its audit"

// NothingDone ends the message of every failure before a file is written.
const NothingDone = "no report was written"

// Main is the module's entry point.
func Main(req *ansible.Request) *ansible.Result {
	off := false
	return outcome.Run(&outcome.Task{Req: req, NothingDone: NothingDone, Timeout: time.Minute,
		// Writing a report changes no server: nothing for the journal.
		Journal: journal.JournalOptions{Journal: &off}}, &reportRun{req: req})
}

type reportRun struct {
	req   *ansible.Request
	files map[string][]byte // path -> content, in Plan; written by Apply
	order []string
}

// Fields are valkey_report's return values.
type Fields struct {
	// Files are the paths written, by format.
	Files map[string]string `json:"files"`
	// Summary counts the run; SummaryLine says it in one line.
	Summary     report.Summary `json:"summary"`
	SummaryLine string         `json:"summary_line"`
	// Passed: every instance was audited and had no finding and no drift.
	Passed bool `json:"passed"`
}

// validate completes what the spec checks (absolute paths, choices).
func (o *Options) validate() error {
	if strings.HasSuffix(o.Path, "/") {
		return fmt.Errorf("option \"path\": %q names a directory; expected the report's file, e.g. %sreport.html", o.Path, o.Path)
	}
	if len(o.Formats) == 0 {
		o.Formats = DefaultFormats
	}
	if o.Title == "" {
		o.Title = DefaultTitle
	}
	return nil
}

// stem is the report's path without its .html extension.
func (o *Options) stem() string { return strings.TrimSuffix(o.Path, ".html") }

// Plan validates, reads the previous report and renders every format in
// memory; the paths are checked (every directory root's or the user's,
// writable by no one else) before anything is written.
func (m *reportRun) Plan(_ context.Context, t *outcome.Task) error {
	var opts Options
	if err := m.req.Decode(&opts); err != nil {
		return err
	}
	if err := opts.validate(); err != nil {
		return err
	}
	instances := make([]report.Instance, 0, len(opts.Results))
	for i, r := range opts.Results {
		raw, err := json.Marshal(r.Result)
		if err != nil {
			return fmt.Errorf("option \"results\": results[%d] (%s): %v", i, r.Host, err)
		}
		if r.Result == nil {
			raw = nil
		}
		in, err := report.FromResult(report.Result{Host: r.Host, Instance: r.Instance, Result: raw})
		if err != nil {
			return fmt.Errorf("option \"results\": results[%d]: %v", i, err)
		}
		instances = append(instances, in)
	}
	seen := map[string]bool{}
	for _, r := range opts.Results {
		seen[r.Host] = true
	}
	for _, h := range opts.Hosts {
		if !seen[h] {
			seen[h] = true
			instances = append(instances, report.Instance{Host: h, Error: NoResult})
		}
	}
	run := report.New(opts.Title, Version, time.Now(), report.Baseline(), instances)
	if opts.Previous != "" {
		data, err := safefs.ReadFile(opts.Previous, report.MaxInputSize)
		switch {
		case errors.Is(err, os.ErrNotExist):
			t.Res.Warn("no previous report at %s: this report compares with none", opts.Previous)
		case err != nil:
			return fmt.Errorf("failed to read the previous report %s: %v", opts.Previous, unwrap(err))
		default:
			prev, err := report.ReadRun(bytes.NewReader(data), opts.Previous)
			if err != nil {
				return err
			}
			run.Compare(prev)
		}
	}
	fields := &Fields{Files: map[string]string{}, Summary: run.Summary, SummaryLine: run.Summary.Line(),
		Passed: run.Summary.Instances == run.Summary.Passed}
	m.files = map[string][]byte{}
	for _, f := range report.Formats { // a fixed order
		if !slices.Contains(opts.Formats, f) {
			continue
		}
		var b bytes.Buffer
		if err := report.Write(&b, f, run); err != nil {
			return fmt.Errorf("failed to render the %s report: %v", f, err)
		}
		p := opts.stem() + extensions[f]
		if err := safefs.Check(p, safefs.Trust{}); err != nil {
			return fmt.Errorf("cannot write the report %s: %v", p, unwrap(err))
		}
		m.files[p] = b.Bytes()
		m.order = append(m.order, p)
		fields.Files[f] = p
		before := ""
		if st, err := os.Stat(p); err == nil {
			before = fmt.Sprintf("an earlier report (%s)\n", safefs.Size(st.Size()))
		}
		t.Res.Diff = append(t.Res.Diff, ansible.DiffEntry{BeforeHeader: p, AfterHeader: p, Before: before,
			After: fmt.Sprintf("the %s report of %s (%s)\n", f, run.Summary.Line(), safefs.Size(int64(b.Len())))})
	}
	t.Res.Fields = fields
	t.Res.Msg = fmt.Sprintf("report of %s in %s", run.Summary.Line(), strings.Join(m.order, ", "))
	// A report is new on every run (it says when it was made).
	t.Res.Changed = true
	return nil
}

// Apply writes the files atomically, mode 0600, never through a link it
// did not make.
func (m *reportRun) Apply(_ context.Context, _ *outcome.Task) error {
	for i, p := range m.order {
		if err := write(p, m.files[p]); err != nil {
			if i > 0 {
				return outcome.Partial("wrote %s, then failed to write %s: %v", strings.Join(m.order[:i], ", "), p, err)
			}
			return fmt.Errorf("failed to write the report %s: %v", p, err)
		}
	}
	return nil
}

func write(path string, data []byte) error {
	d, name, err := safefs.OpenParent(path, safefs.Trust{})
	if err != nil {
		return unwrap(err)
	}
	defer d.Close()
	return d.WriteFile(name, data, safefs.Attr{Mode: FileMode, UID: -1, GID: -1})
}

// Record has nothing to record: no server changed.
func (m *reportRun) Record(bool) journal.Entry { return journal.Entry{} }

// Unchanged clears the files of a failed task.
func (m *reportRun) Unchanged() {}

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
