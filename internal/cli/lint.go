// Package cli holds the human subcommands of the valkeyops binary: lint
// (the policy checks that need no server, for CI on a config repository)
// and drift (a read-only fleet scan over SSH).
package cli

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/valkeyops/secure/internal/audit"
	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/policy"
)

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

// Lint runs `valkeyops lint valkey.conf [flags]`.
func Lint(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("valkeyops lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	aclfile := fs.String("aclfile", "", "the aclfile to check (default: the file's aclfile directive)")
	var policies multiFlag
	fs.Var(&policies, "policy", "a policy file adding or overriding rules (repeatable)")
	noBaseline := fs.Bool("no-baseline", false, "do not use the shipped baseline")
	format := fs.String("format", "text", "output: text, json or junit")
	failOn := fs.String("fail-on", "low", "exit 1 on findings at or above: low, medium, high, critical, never")
	verbose := fs.Bool("verbose", false, "text output: list skipped rules too")
	valkeyVersion := fs.String("valkey-version", "", "the Valkey release the file is for, e.g. 8.0.1 (default: the installed valkey-server's)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: valkeyops lint valkey.conf [--aclfile F] [--policy P]... [--valkey-version V] [--format text|json|junit] [--fail-on SEV]")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if len(pos) != 1 {
		fs.Usage()
		return ExitUsage
	}
	if *failOn != audit.FailNever && policy.SeverityRank(*failOn) == 0 {
		fmt.Fprintf(stderr, "valkeyops lint: --fail-on %q is not one of never, %s\n", *failOn, strings.Join(policy.Severities, ", "))
		return ExitUsage
	}
	if *format != "text" && *format != "json" && *format != "junit" {
		fmt.Fprintf(stderr, "valkeyops lint: --format %q is not one of text, json, junit\n", *format)
		return ExitUsage
	}
	var ver directives.Version
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
	lines := audit.CheckConfig(g.Facts.Config, ver, nil)
	rep.AddFindings(lines...)
	outs := pol.Evaluate(g.Facts)
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(struct {
			*audit.Report
			Warnings []string `json:"warnings"`
		}{rep, nonNil(g.Warnings)})
	case "junit":
		writeJUnit(stdout, pos[0], lines, outs)
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

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

func writeJUnit(w io.Writer, name string, lines []policy.Finding, outs []policy.Outcome) {
	s := junitSuite{Name: "valkeyops lint " + name}
	for _, f := range lines {
		s.Failures++
		s.Cases = append(s.Cases, junitCase{Name: f.ID + " " + f.Message, ClassName: name,
			Failure: &junitFailure{Message: f.Message, Type: f.Severity, Text: "fix: " + f.Remediation}})
	}
	for _, o := range outs {
		c := junitCase{Name: o.Rule.ID + " " + o.Rule.Title, ClassName: name}
		switch o.Status {
		case policy.Fail:
			s.Failures++
			c.Failure = &junitFailure{Message: o.Message, Type: o.Rule.Severity, Text: "fix: " + strings.TrimSpace(o.Rule.Remediation)}
		case policy.Skip:
			s.Skipped++
			c.Skipped = &junitSkipped{Message: o.Message}
		}
		s.Cases = append(s.Cases, c)
	}
	s.Tests = len(s.Cases)
	_, _ = io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	_ = enc.Encode(s)
	_, _ = io.WriteString(w, "\n")
}
