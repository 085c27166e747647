package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

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
		data, err := safefs.ReadFile(previousPath, report.MaxInputSize)
		if err != nil {
			return nil, fmt.Errorf("failed to read the previous report %s: %w", previousPath, unwrap(err))
		}
		prev, err := report.ReadRun(bytes.NewReader(data), previousPath)
		if err != nil {
			return nil, err
		}
		run.Compare(prev)
	}
	return run, nil
}
