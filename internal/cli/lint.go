// Package cli holds the human subcommands of the valkeyops binary: lint
// (the policy checks that need no server, for CI on a config repository)
// and drift (a read-only fleet scan over SSH).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/audit"
	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/policy"
	"github.com/valkeyops/secure/internal/report"
)

// Version is the binary's version, shown in reports (set by main).
var Version = "dev"

// lintFormats are lint's --format values.
var lintFormats = []string{"text", "json", "junit", "sarif", "html"}

// Exit codes of the subcommands.
const (
	ExitOK       = 0
	ExitFindings = 1 // findings at or above --fail-on (lint), drift or unreachable targets (drift)
	ExitUsage    = 2 // bad arguments, unreadable or invalid input
)

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// parseInterspersed parses flags that may come after positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseArgs parses a subcommand's flags (interspersed with its positional
// arguments). ok false: the subcommand ends with exit (help asked: ExitOK;
// a bad flag, which the flag package reported: ExitUsage).
func parseArgs(fs *flag.FlagSet, args []string) (pos []string, exit int, ok bool) {
	pos, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return nil, ExitOK, false
	case err != nil:
		return nil, ExitUsage, false
	}
	return pos, 0, true
}

// Lint runs `valkeyops lint valkey.conf [flags]`.
func Lint(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("valkeyops lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	aclfile := fs.String("aclfile", "", "the aclfile to check (default: the file's aclfile directive)")
	var policies multiFlag
	fs.Var(&policies, "policy", "a policy file adding or overriding rules (repeatable)")
	noBaseline := fs.Bool("no-baseline", false, "do not use the shipped baseline")
	format := fs.String("format", "text", "output: text, json, junit, sarif or html")
	failOn := fs.String("fail-on", "low", "exit 1 on findings at or above: low, medium, high, critical, never")
	verbose := fs.Bool("verbose", false, "text output: list skipped rules too")
	previous := fs.String("previous", "", "html: show what changed since this earlier run's --format json output")
	valkeyVersion := fs.String("valkey-version", "", "the Valkey release the file is for, e.g. 8.0.1 (default: the installed valkey-server's)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: valkeyops lint valkey.conf [--aclfile F] [--policy P]... [--valkey-version V] [--format text|json|junit|sarif|html] [--previous lint.json] [--fail-on SEV]")
		fs.PrintDefaults()
	}
	pos, exit, ok := parseArgs(fs, args)
	if !ok {
		return exit
	}
	if len(pos) != 1 {
		fs.Usage()
		return ExitUsage
	}
	if *failOn != audit.FailNever && policy.SeverityRank(*failOn) == 0 {
		fmt.Fprintf(stderr, "valkeyops lint: --fail-on %q is not one of never, %s\n", *failOn, strings.Join(policy.Severities, ", "))
		return ExitUsage
	}
	if !slices.Contains(lintFormats, *format) {
		fmt.Fprintf(stderr, "valkeyops lint: --format %q is not one of %s\n", *format, strings.Join(lintFormats, ", "))
		return ExitUsage
	}
	var ver directives.Version
	var err error
	if *valkeyVersion != "" {
		if ver, err = directives.ParseVersion(*valkeyVersion); err != nil {
			fmt.Fprintf(stderr, "valkeyops lint: --valkey-version: %v\n", err)
			return ExitUsage
		}
	}
	pol, err := policy.Load(*noBaseline, policies...)
	if err != nil {
		fmt.Fprintf(stderr, "valkeyops lint: %v\n", err)
		return ExitUsage
	}
	g, err := audit.Gather(context.Background(), audit.Source{ConfigFile: pos[0], ACLFile: *aclfile})
	if err != nil {
		fmt.Fprintf(stderr, "valkeyops lint: %v\n", err)
		return ExitUsage
	}
	if g.Facts.Config == nil {
		// Gather only warns: for lint the file is the whole point.
		fmt.Fprintf(stderr, "valkeyops lint: %s\n", strings.Join(g.Warnings, "; "))
		return ExitUsage
	}
	if !ver.Known() {
		v, _, err := directives.InstalledVersion(context.Background())
		if err != nil {
			g.Warnings = append(g.Warnings, fmt.Sprintf("the Valkey release is unknown (%v): names and values are not checked against one; give --valkey-version", err))
		}
		ver = v
	}
	rep := audit.BuildReport(pol, g, audit.Drift{Settings: map[string]audit.SettingDrift{}, Users: map[string]audit.UserDrift{}})
	rep.AddFindings(audit.CheckConfig(g.Facts.Config, ver, nil)...)
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(struct {
			*audit.Report
			Warnings []string `json:"warnings"`
		}{rep, nonNil(g.Warnings)})
	case "junit", "sarif", "html":
		in := report.Instance{Host: pos[0], Instance: rep.Instance, Report: rep, Warnings: g.Warnings}
		run := report.New("valkeyops lint "+pos[0], Version, time.Now(), report.Rules(pol), []report.Instance{in})
		if *previous != "" {
			prev, err := readPrevious(*previous, pos[0])
			if err != nil {
				fmt.Fprintf(stderr, "valkeyops lint: %v\n", err)
				return ExitUsage
			}
			run.Compare(prev)
		}
		if err := report.Write(stdout, *format, run); err != nil {
			fmt.Fprintf(stderr, "valkeyops lint: failed to write the report: %v\n", err)
			return ExitUsage
		}
	default:
		writeText(stdout, pos[0], rep, g.Warnings, *verbose)
	}
	if *failOn != audit.FailNever && rep.Failure([]string{*failOn}) != "" {
		return ExitFindings
	}
	return ExitOK
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeText(w io.Writer, name string, rep *audit.Report, warnings []string, verbose bool) {
	for _, wn := range warnings {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
	for _, f := range rep.Findings {
		fmt.Fprintf(w, "%s: %-8s %s %s\n", name, strings.ToUpper(f.Severity), f.ID, f.Title)
		fmt.Fprintf(w, "    %s\n    fix: %s\n", f.Message, f.Remediation)
	}
	if verbose {
		for _, s := range rep.Skipped {
			fmt.Fprintf(w, "%s: skipped  %s: %s\n", name, s.ID, s.Reason)
		}
	}
	fmt.Fprintf(w, "%s: %s\n", name, rep.Line())
}
