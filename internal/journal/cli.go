package journal

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// CLIUsage is the one-line synopsis of `valkeyops journal`.
const CLIUsage = "valkeyops journal [--since T] [--directive D] [--instance I] [--format json|table] [--path P]"

// CLI is `valkeyops journal`: it prints the journal of this host, filtered.
// args are the arguments after "journal". It returns the exit code: 0, 1
// when the journal cannot be read, 2 for bad usage.
func CLI(args []string, stdout, stderr io.Writer, now time.Time) int {
	fs := flag.NewFlagSet("journal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	since := fs.String("since", "", "only entries at or after `T`: RFC 3339 time (2026-01-02T15:04:05Z), date (2026-01-02, UTC) or age (24h, 7d)")
	directive := fs.String("directive", "", "only changes of directive `D` (any of its names)")
	instance := fs.String("instance", "", "only entries of instance `I` (default for valkey.conf, NAME for valkey-NAME.conf)")
	format := fs.String("format", "table", "output `format`: table or json (one entry per line, as stored)")
	path := fs.String("path", DefaultPath, "the journal `file`")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n", CLIUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "valkeyops journal: unexpected argument %q\nusage: %s\n", fs.Arg(0), CLIUsage)
		return 2
	}
	if *format != "table" && *format != "json" {
		fmt.Fprintf(stderr, "valkeyops journal: --format %q is not one of json, table\n", *format)
		return 2
	}
	var f Filter
	f.Directive = *directive
	f.Instance = *instance
	if *since != "" {
		t, err := ParseSince(*since, now)
		if err != nil {
			fmt.Fprintf(stderr, "valkeyops journal: %v\n", err)
			return 2
		}
		f.Since = t
	}
	entries, skipped, err := Read(*path, f)
	if err != nil {
		fmt.Fprintf(stderr, "valkeyops journal: %v\n", err)
		return 1
	}
	if skipped > 0 {
		fmt.Fprintf(stderr, "valkeyops journal: skipped %d line(s) of %s that are not journal entries\n", skipped, *path)
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return 1
			}
		}
		return 0
	}
	writeTable(stdout, entries)
	return 0
}

// ParseSince reads --since: an RFC 3339 time, a date (midnight UTC) or an
// age before now (Go duration, or a number of days such as 7d).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && n >= 0 && fmt.Sprint(n) == days {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: expected an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02) or an age (24h, 7d)", s)
}

// writeTable prints one row per change.
func writeTable(w io.Writer, entries []Entry) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tMODULE\tHOST\tINSTANCE\tSERVER\tCHANGE\tBEFORE\tAFTER\tBY\tCOMMIT")
	for _, e := range entries {
		by, commit := "-", "-"
		if c := e.Controller; c != nil {
			if c.User != "" {
				by = c.User
			}
			if c.GitCommit != "" {
				commit = c.GitCommit
				if len(commit) > 12 {
					commit = commit[:12]
				}
				if c.GitDirty != nil && *c.GitDirty {
					commit += "+dirty"
				}
			}
		}
		for _, c := range e.Changes {
			before, after := cell(c.Before), cell(c.After)
			if c.Secret {
				before, after = "(hidden)", "(hidden)"
			}
			name := c.Name
			if c.Kind != KindDirective {
				name = c.Kind + " " + c.Name
			}
			if c.RestartRequired {
				after += " (restart required)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				e.Time.UTC().Format(time.RFC3339), e.Module, e.Host, dash(e.Instance), dash(e.Server), name, before, after, by, commit)
		}
	}
	tw.Flush()
}

func cell(v *string) string {
	if v == nil {
		return "-"
	}
	if *v == "" {
		return `""`
	}
	return strings.NewReplacer("\t", " ", "\n", " ").Replace(*v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
