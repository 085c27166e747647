// Package audit is the valkey_audit module: it evaluates the secure baseline
// (and the user's rules) against the running server, its files and its host,
// and reports drift between a desired state, the server and the file. It
// never changes anything.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/audit"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/outcome"
	"github.com/valkeyops/secure/internal/policy"
)

// Options are valkey_audit's options.
type Options struct {
	conn.Options
	// JournalOptions locate the change journal, read to tell a drifted value
	// set by a recorded change from one changed outside Ansible. The audit
	// itself never writes to it (it changes nothing).
	journal.JournalOptions

	// ConfigFile is the valkey.conf to check (default: INFO server config_file).
	ConfigFile string `json:"config_file" spec:"path"`
	// ACLFile is the aclfile to check (default: the server's aclfile directive).
	ACLFile string `json:"aclfile" spec:"path"`
	// Policy is policy YAML text (rules added to or overriding the baseline).
	Policy string `json:"policy"`
	// PolicyFile is a policy file on the target, applied before Policy.
	PolicyFile string `json:"policy_file" spec:"path"`
	// Baseline uses the shipped baseline (default true).
	Baseline *bool `json:"baseline" spec:"default=true"`
	// SkipRules are rule ids not evaluated.
	SkipRules []string `json:"skip_rules" spec:"default="`
	// Desired is the desired state to compare with (settings, users).
	Desired *audit.Desired `json:"desired"`
	// FailOn: never (default), drift, or a severity; several may be given.
	FailOn StringList `json:"fail_on" spec:"default=never,choices=never|drift|low|medium|high|critical"`
	// CompareKey is the run's key for the cross-node comparison: with it the
	// result carries `fleet` (settings, ACL users and CA of the node, secrets
	// and users as keyed digests) for valkey_report to compare the nodes of
	// a group; the same random key for every host of one run, never kept.
	CompareKey ansible.Secret `json:"compare_key"`
}

// StringList accepts a list of strings or a single string.
type StringList []string

// UnmarshalJSON reads a string or a list of strings.
func (s *StringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = StringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("expected a string or a list of strings")
	}
	*s = many
	return nil
}

// PolicyOptionName names inline policy text in messages.
const PolicyOptionName = "policy (option)"

// loadPolicy builds and validates the policy before anything is read from
// the server: baseline, then policy_file, then policy.
func (o *Options) loadPolicy() (*policy.Policy, error) {
	var files []string
	if o.PolicyFile != "" {
		files = append(files, o.PolicyFile)
	}
	pol, err := policy.Load(o.Baseline != nil && !*o.Baseline, files...)
	if err != nil {
		return nil, err
	}
	if o.Policy != "" {
		if err := pol.Add(policy.Source{Name: PolicyOptionName, Data: []byte(o.Policy)}); err != nil {
			return nil, err
		}
	}
	if len(pol.Rules) == 0 {
		return nil, errors.New("the policy has no rules (baseline: false and no policy or policy_file)")
	}
	for _, id := range o.SkipRules {
		r := pol.Get(id)
		if r == nil {
			return nil, fmt.Errorf("option \"skip_rules\": no rule %q in the policy", id)
		}
		off := false
		r.Enabled = &off
	}
	return pol, nil
}

// isLocal: the server runs on this host (a unix socket, loopback, or an
// address of one of this host's interfaces), so its process, its files and
// the host's kernel settings are the ones to inspect.
func isLocal(o *conn.Options) bool {
	if o.LoginUnixSocket != "" {
		return true
	}
	h := o.LoginHost
	if h == "" || h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// tlsHost is where the TLS port is reached to read the served certificate:
// the login host, or (over a unix socket) the server's first bind address.
func tlsHost(o *conn.Options) string {
	if o.LoginUnixSocket != "" {
		return ""
	}
	if o.LoginHost == "" {
		return "127.0.0.1"
	}
	return o.LoginHost
}

// NothingDone ends the message of every failure before the report.
const NothingDone = "the audit did not run"

// Main is the module's entry point: one task of the outcome protocol that
// only plans (an audit changes nothing, so it never reaches the journal).
func Main(req *ansible.Request) *ansible.Result {
	return outcome.Run(&outcome.Task{Req: req, NothingDone: NothingDone}, &auditRun{req: req})
}

type auditRun struct {
	req   *ansible.Request
	drift audit.Drift
}

// Plan validates the task, gathers the facts and builds the report; a report
// that fails fail_on fails the task with the report in its fields.
func (m *auditRun) Plan(_ context.Context, t *outcome.Task) error {
	req := m.req
	var opts Options
	if err := req.Decode(&opts); err != nil {
		return err
	}
	if err := opts.Options.Validate(); err != nil {
		return err
	}
	if err := opts.JournalOptions.Validate(); err != nil {
		return err
	}
	if err := audit.ValidateFailOn(opts.FailOn); err != nil {
		return fmt.Errorf("option %w", err)
	}
	if opts.Desired != nil {
		secrets, err := audit.ValidateDesired(opts.Desired)
		for _, s := range secrets {
			req.AddSecret(s)
		}
		if err != nil {
			return err
		}
	}
	pol, err := opts.loadPolicy()
	if err != nil {
		return err
	}
	rep, warnings, err := m.gather(&opts, pol)
	if err != nil {
		return err
	}
	fields := &Fields{Report: rep, OutOfBand: []OutOfBand{}}
	res := t.Res
	res.Fields, res.Warnings = fields, append(res.Warnings, warnings...)
	if opts.JournalOptions.Enabled() {
		// The journal on a host holds every server's changes: ask about
		// this one, by its config file or the address it was reached at.
		which := journal.Filter{ConfigFile: rep.ConfigFile, Server: opts.Address()}
		oob, warnings, jerr := outOfBand(opts.JournalOptions.Path(), which, m.drift)
		fields.OutOfBand = oob
		res.Warnings = append(res.Warnings, warnings...)
		if jerr != nil {
			// The out-of-band check is part of the audit: without the
			// journal it cannot tell a recorded change from a hand-made one.
			if opts.JournalOptions.Required() {
				res.Failed = true
				res.Msg = fmt.Sprintf("the audit of %s cannot check for out-of-band changes: %v (journal_required: true; journal_required: false audits without that check, with a warning)", opts.Address(), jerr)
				return nil
			}
			res.Warnings = append(res.Warnings, fmt.Sprintf("out-of-band check skipped: %v", jerr))
		}
	}
	who := opts.Address()
	if rep.Server != nil {
		who = fmt.Sprintf("%s %s at %s", rep.Server.Name, rep.Server.Version, who)
	}
	if why := rep.Failure(opts.FailOn); why != "" {
		res.Failed = true
		res.Msg = fmt.Sprintf("%s fails the audit (fail_on: %s): %s; %s", who, strings.Join(opts.FailOn, ", "), why, rep.Line())
		return nil
	}
	res.Msg = who + ": " + rep.Line()
	return nil
}

// gather reads the server and its files and builds the report.
func (m *auditRun) gather(opts *Options, pol *policy.Policy) (*audit.Report, []string, error) {
	client, err := conn.Open(&opts.Options)
	if err != nil {
		return nil, nil, err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout())
	defer cancel()
	g, err := audit.Gather(ctx, audit.Source{
		Client: client, FS: audit.LocalFS{}, ConfigFile: opts.ConfigFile, ACLFile: opts.ACLFile,
		LocalServer: isLocal(&opts.Options), TLSHost: tlsHost(&opts.Options),
	})
	if err != nil {
		return nil, nil, err
	}
	for _, s := range g.Secrets {
		m.req.AddSecret(s)
	}
	if m.drift, err = audit.ComputeDrift(g, opts.Desired); err != nil {
		return nil, nil, err
	}
	rep := audit.BuildReport(pol, g, m.drift)
	rep.Fleet = audit.FleetOf(g, string(opts.CompareKey))
	if g.Facts.Config != nil {
		// Lines the server could not start with (at its next restart).
		var ver directives.Version
		if g.Server != nil && g.Server.Name == "valkey" {
			ver, _ = directives.ParseVersion(g.Server.Version)
		}
		rep.AddFindings(audit.CheckConfig(g.Facts.Config, ver, g.Facts.Runtime)...)
	}
	return rep, g.Warnings, nil
}

// Apply is never called: the plan changes nothing.
func (m *auditRun) Apply(context.Context, *outcome.Task) error { return nil }

// Record is never called: the plan changes nothing.
func (m *auditRun) Record(bool) journal.Entry { return journal.Entry{} }

// Unchanged has nothing to clear.
func (m *auditRun) Unchanged() {}

// Fields are valkey_audit's return values: the report plus the drifted
// directives no recorded change explains.
type Fields struct {
	*audit.Report
	OutOfBand []OutOfBand `json:"out_of_band"`
}

// OutOfBand is a drifted directive no recorded change explains (the type
// lives in internal/audit, where the HTML report reads it too).
type OutOfBand = audit.OutOfBand

// outOfBand checks every drifted directive's running value against the last
// change the journal recorded for it. Secret directives are skipped: the
// journal never holds their values.
func outOfBand(path string, which journal.Filter, drift audit.Drift) ([]OutOfBand, []string, error) {
	out := []OutOfBand{}
	var warnings []string
	names := make([]string, 0, len(drift.Settings))
	for n := range drift.Settings {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		sd := drift.Settings[name]
		if sd.Runtime == audit.Unknown || sd.Runtime == audit.NotSet {
			continue
		}
		if d, ok := directives.Lookup(name); !ok || d.Secret {
			continue
		}
		which.Directive = name
		rec, err := journal.LastRecordedMatching(path, which)
		if err != nil {
			return []OutOfBand{}, warnings, err
		}
		if rec != nil && rec.Change.After != nil && *rec.Change.After == sd.Runtime {
			continue
		}
		o := OutOfBand{Directive: name, Runtime: sd.Runtime}
		if rec != nil {
			if rec.Change.After != nil {
				o.LastRecorded = *rec.Change.After
			}
			o.RecordedAt = rec.Entry.Time.Format(time.RFC3339)
			if c := rec.Entry.Controller; c != nil {
				o.RecordedBy = c.User
			}
		}
		out = append(out, o)
		warnings = append(warnings, fmt.Sprintf("out-of-band change: %s runs with %s, which no change recorded in %s set", name, sd.Runtime, path))
	}
	return out, warnings, nil
}
