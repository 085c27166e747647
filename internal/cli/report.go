package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/audit"
	"github.com/valkeyops/secure/internal/report"
	"github.com/valkeyops/secure/internal/safefs"
)

// DefaultReportTitle titles a report when --title is not given.
const DefaultReportTitle = "Valkey audit"

// Report runs `valkeyops report --results results.json [--previous prev.json]
// [--format html|json|junit|sarif] [--title T]`: the report of a run from the
// valkey_audit results a playbook gathered (a JSON list of {host, instance,
// result}), written to stdout.
func Report(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("valkeyops report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	results := fs.String("results", "", "the valkey_audit results: a JSON list of {host, instance, result}")
	previous := fs.String("previous", "", "a previous run's report (--format json) to compare with")
	format := fs.String("format", "html", "output: "+strings.Join(report.Formats, ", "))
	title := fs.String("title", DefaultReportTitle, "the report's title")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: valkeyops report --results results.json [--previous previous.json] [--format html|json|junit|sarif] [--title T]")
		fs.PrintDefaults()
	}
	pos, exit, ok := parseArgs(fs, args)
	if !ok {
		return exit
	}
	if len(pos) != 0 || *results == "" {
		fs.Usage()
		return ExitUsage
	}
	if !slices.Contains(report.Formats, *format) {
		fmt.Fprintf(stderr, "valkeyops report: --format %q is not one of %s\n", *format, strings.Join(report.Formats, ", "))
		return ExitUsage
	}
	run, err := BuildRun(*results, *previous, *title, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "valkeyops report: %v\n", err)
		return ExitUsage
	}
	if err := report.Write(stdout, *format, run); err != nil {
		fmt.Fprintf(stderr, "valkeyops report: failed to write the report: %v\n", err)
		return ExitUsage
	}
	return ExitOK
}

// BuildRun reads the results file (and the previous run, if given) and
// assembles the run.
func BuildRun(resultsPath, previousPath, title string, now time.Time) (*report.Run, error) {
	data, err := safefs.ReadFile(resultsPath, report.MaxInputSize)
	if err != nil {
		return nil, fmt.Errorf("failed to read the results %s: %w", resultsPath, unwrap(err))
	}
	var results []report.Result
	if err := json.Unmarshal(data, &results); err != nil {
		return nil, fmt.Errorf("the results %s are not a JSON list of {host, instance, result}: %v", resultsPath, err)
	}
	instances := make([]report.Instance, 0, len(results))
	for _, res := range results {
		in, err := report.FromResult(res)
		if err != nil {
			return nil, fmt.Errorf("the results %s: %w", resultsPath, err)
		}
		instances = append(instances, in)
	}
	run := report.New(title, Version, now, report.Baseline(), instances)
	if previousPath != "" {
		prev, err := readPrevious(previousPath, "")
		if err != nil {
			return nil, err
		}
		run.Compare(prev)
	}
	return run, nil
}

// readPrevious reads the run to compare with, in the JSON the previous run
// wrote: a report's (valkeyops report, valkey_report), a drift scan's
// (--format json: a list of targets) or, when lintHost names the file linted
// now, lint's (--format json: that file's one report).
func readPrevious(path, lintHost string) (*report.Run, error) {
	data, err := safefs.ReadFile(path, report.MaxInputSize)
	if err != nil {
		return nil, fmt.Errorf("failed to read the previous report %s: %w", path, unwrap(err))
	}
	var generated time.Time
	if st, err := os.Stat(path); err == nil {
		generated = st.ModTime()
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		var targets []map[string]json.RawMessage
		var results []TargetResult
		if json.Unmarshal(data, &targets) == nil && json.Unmarshal(data, &results) == nil {
			for _, t := range targets {
				if t["name"] == nil || t["status"] == nil {
					results = nil
					break
				}
			}
		}
		if results == nil {
			return nil, fmt.Errorf("the previous report %s is a list but not a drift scan's JSON (--format json: targets with name and status)", path)
		}
		return report.New("", "", generated, nil, driftInstances(results)), nil
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err == nil && keys["instances"] == nil && lintHost != "" {
		var rep audit.Report
		if err := json.Unmarshal(data, &rep); err != nil || keys["findings"] == nil {
			return nil, fmt.Errorf("the previous report %s is not lint's JSON (--format json)", path)
		}
		return report.New("", "", generated, nil, []report.Instance{{Host: lintHost, Instance: rep.Instance, Report: &rep}}), nil
	}
	return report.ReadRun(bytes.NewReader(data), path)
}
