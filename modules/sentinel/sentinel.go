package sentinel

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/outcome"
	"github.com/valkeyops/secure/internal/safefs"
)

// Fields are valkey_sentinel's return values.
type Fields struct {
	// ConfigFile is the Sentinel's config file (read, never written here).
	ConfigFile string `json:"config_file"`
	// Monitors are every monitor the Sentinel has after the task.
	Monitors []MonitorReport `json:"monitors"`
	// Created, Updated, Removed and Reset name the monitors the task
	// changed (or would change, in check mode).
	Created []string `json:"created"`
	Updated []string `json:"updated"`
	Removed []string `json:"removed"`
	Reset   []string `json:"reset"`
	// Settings are the Sentinel-global settings the task changed, by name.
	Settings []string `json:"settings"`
	// Disagreements are one sentence each where the Sentinel's view differs
	// from the task and the module leaves it so (a failover moved the primary).
	Disagreements []string `json:"disagreements"`
	// CurrentEpoch is the file's `sentinel current-epoch` (-1 unknown).
	CurrentEpoch int64 `json:"current_epoch"`
	// DenyScriptsReconfig is false when the file says
	// `sentinel deny-scripts-reconfig no`.
	DenyScriptsReconfig bool `json:"deny_scripts_reconfig"`
}

// MonitorReport is one monitor as the Sentinel sees it.
type MonitorReport struct {
	Name                  string   `json:"name"`
	CurrentPrimary        string   `json:"current_primary"`
	Quorum                int      `json:"quorum"`
	DownAfterMilliseconds int      `json:"down_after_milliseconds"`
	FailoverTimeout       int      `json:"failover_timeout"`
	ParallelSyncs         int      `json:"parallel_syncs"`
	AuthUser              string   `json:"auth_user"`
	AuthPassSet           bool     `json:"auth_pass_set"`
	Flags                 []string `json:"flags"`
	ConfigEpoch           int64    `json:"config_epoch"`
	LeaderEpoch           int64    `json:"leader_epoch"`
	Replicas              Peers    `json:"replicas"`
	Sentinels             Peers    `json:"sentinels"`
	CKQuorum              Quorum   `json:"ckquorum"`
}

// Peers are a count and the addresses.
type Peers struct {
	Count     int      `json:"count"`
	Addresses []string `json:"addresses"`
}

// Quorum is SENTINEL CKQUORUM's answer.
type Quorum struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// Main is the module's entry point.
func Main(req *ansible.Request) *ansible.Result {
	var opts Options
	if err := req.Decode(&opts); err != nil {
		return outcome.Fail(err)
	}
	if err := opts.Validate(); err != nil {
		return outcome.Fail(err)
	}
	opts.Options.CarriesSecrets = opts.carriesSecrets()
	m := &run{req: req, opts: &opts, fields: &Fields{}}
	m.Unchanged()
	res := outcome.Run(&outcome.Task{Req: req, Journal: opts.JournalOptions, Timeout: opts.Options.Timeout()}, m)
	if m.client != nil {
		m.client.Close()
	}
	return res
}

// step is one SENTINEL command of the plan.
type step struct {
	args    []string
	changes []journal.Change
}

type run struct {
	req    *ansible.Request
	opts   *Options
	fields *Fields
	client valkey.Client
	before *sentinelState
	trust  safefs.Trust // Sentinel's user may own the config file's directory
	steps  []step
	diff   []ansible.DiffEntry
	done   []journal.Change
}

// Unchanged empties the fields that name changes (lists, never null).
func (r *run) Unchanged() {
	f := r.fields
	f.Created, f.Updated, f.Removed, f.Reset, f.Settings = []string{}, []string{}, []string{}, []string{}, []string{}
	if f.Disagreements == nil {
		f.Disagreements = []string{}
	}
	if f.Monitors == nil {
		f.Monitors = []MonitorReport{}
	}
}

func (r *run) Plan(ctx context.Context, t *outcome.Task) error {
	o := r.opts
	c, p, err := conn.OpenPeer(&o.Options)
	if err != nil {
		return err
	}
	r.client = c
	reported, err := isSentinel(ctx, c, o.Options.Address())
	if err != nil {
		return err
	}
	file := o.ConfigFile
	if p != nil {
		checked, err := p.ConfigFile(reported)
		if err != nil {
			return fmt.Errorf("cannot trust the Sentinel's config file: %v", err)
		}
		if file == "" {
			file = checked
		} else if checked != "" && checked != file {
			return fmt.Errorf("option \"config_file\": %q is not the file the Sentinel at %s runs with (%q)", file, o.Options.Address(), checked)
		}
	}
	if file == "" && r.needsFile() {
		return fmt.Errorf("cannot tell whether the task's passwords are set: Sentinel does not report auth-pass at runtime and its config file cannot be read here (give config_file, or run the task on the Sentinel's host)")
	}
	if file != "" {
		if err := t.Lock(file); err != nil {
			return err
		}
	}
	r.trust = p.Trust()
	st, err := readState(ctx, c, file, r.trust)
	if err != nil {
		return err
	}
	r.before = st
	if err := r.plan(st); err != nil {
		return err
	}
	r.report(st)
	t.Res.Fields = r.fields
	t.Res.Changed = len(r.steps) > 0
	t.Res.Diff = r.diff
	if !st.denyScripts {
		t.Res.Warn("the Sentinel allows scripts to be reconfigured at runtime (sentinel deny-scripts-reconfig no in %s); set it to yes in the file and restart the Sentinel, it cannot be changed at runtime", file)
	}
	return nil
}

func (r *run) needsFile() bool {
	if r.opts.SentinelPass.IsSet() {
		return false // sentinel-pass is reported at runtime
	}
	for _, m := range r.opts.Monitors {
		if m.AuthPass.IsSet() {
			return true
		}
	}
	return false
}

// plan builds the steps and the diff from st.
func (r *run) plan(st *sentinelState) error {
	o := r.opts
	var before, after []string
	for i := range o.Monitors {
		m := &o.Monitors[i]
		cur := st.monitors[m.Name]
		switch {
		case m.state() == StateAbsent && cur != nil:
			r.add([]string{"SENTINEL", "REMOVE", m.Name}, journal.Change{Kind: journal.KindDirective, Name: "sentinel monitor " + m.Name, Detail: "removed"})
			r.fields.Removed = append(r.fields.Removed, m.Name)
			before = append(before, "monitor "+m.Name)
		case m.state() == StateAbsent:
		case cur == nil:
			if err := m.createError(i); err != nil {
				return err
			}
			r.add([]string{"SENTINEL", "MONITOR", m.Name, m.PrimaryHost, strconv.Itoa(m.port()), strconv.Itoa(*m.Quorum)},
				journal.Change{Kind: journal.KindDirective, Name: "sentinel monitor " + m.Name, Detail: "created"})
			set, b, a := r.sets(m, &monitorState{leaderEpoch: -1})
			r.addSet(m.Name, set)
			r.fields.Created = append(r.fields.Created, m.Name)
			after = append(after, fmt.Sprintf("monitor %s %s %d", m.Name, m.PrimaryHost, m.port()))
			before, after = append(before, b...), append(after, a...)
		default:
			set, b, a := r.sets(m, cur)
			if len(set) > 0 {
				r.addSet(m.Name, set)
				r.fields.Updated = append(r.fields.Updated, m.Name)
				before, after = append(before, b...), append(after, a...)
			}
			if m.PrimaryHost != "" && (m.PrimaryHost != cur.host || m.port() != cur.port) {
				r.fields.Disagreements = append(r.fields.Disagreements, fmt.Sprintf(
					"monitor %q follows primary %s, not %s as the task says: Sentinel moved it (a failover or switchover), and the module never points it back; primary_host and primary_port are used only to create a monitor",
					m.Name, addr(cur.host, cur.port), addr(m.PrimaryHost, m.port())))
			}
		}
	}
	if o.Exclusive {
		var names []string
		for name := range st.monitors {
			if o.monitor(name) == nil {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			r.add([]string{"SENTINEL", "REMOVE", name}, journal.Change{Kind: journal.KindDirective, Name: "sentinel monitor " + name, Detail: "removed"})
			r.fields.Removed = append(r.fields.Removed, name)
			before = append(before, "monitor "+name)
		}
	}
	gb, ga := r.planSettings(st)
	before, after = append(before, gb...), append(after, ga...)
	for _, name := range o.Reset {
		m := o.monitor(name)
		if st.monitors[name] == nil && (m == nil || m.state() == StateAbsent) {
			return fmt.Errorf("option \"reset\": the Sentinel has no monitor %q and the task does not create it", name)
		}
		r.add([]string{"SENTINEL", "RESET", globEscape(name)}, journal.Change{Kind: journal.KindDirective, Name: "sentinel reset " + name, Detail: "reset"})
		r.fields.Reset = append(r.fields.Reset, name)
		after = append(after, "reset "+name)
	}
	if len(before)+len(after) > 0 {
		where := "Sentinel " + r.opts.Options.Address()
		r.diff = []ansible.DiffEntry{{BeforeHeader: where, AfterHeader: where, Before: lines(before), After: lines(after)}}
	}
	return nil
}

func lines(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

// globEscape quotes SENTINEL RESET's glob characters: RESET takes a
// pattern, so a monitor named "*" would otherwise reset every monitor.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (r *run) add(args []string, ch journal.Change) {
	r.steps = append(r.steps, step{args: args, changes: []journal.Change{ch}})
}

type setParam struct {
	name, value string
	change      journal.Change
}

func (r *run) addSet(name string, set []setParam) {
	if len(set) == 0 {
		return
	}
	s := step{args: []string{"SENTINEL", "SET", name}}
	for _, p := range set {
		s.args = append(s.args, p.name, p.value)
		s.changes = append(s.changes, p.change)
	}
	r.steps = append(r.steps, s)
}

// sets compares a monitor's settings with cur and returns the SENTINEL SET
// parameters and the diff lines (secrets as "(changed)").
func (r *run) sets(m *Monitor, cur *monitorState) (set []setParam, before, after []string) {
	num := func(param, opt string, want *int, have int) {
		if want == nil || *want == have {
			return
		}
		b, a := strconv.Itoa(have), strconv.Itoa(*want)
		set = append(set, setParam{param, a, journal.Change{Kind: journal.KindDirective, Name: "sentinel " + param + " " + m.Name, Before: &b, After: &a, Where: []string{"runtime", "file"}}})
		before = append(before, fmt.Sprintf("%s %s: %s", m.Name, opt, b))
		after = append(after, fmt.Sprintf("%s %s: %s", m.Name, opt, a))
	}
	num("quorum", "quorum", m.Quorum, cur.quorum)
	num("down-after-milliseconds", "down_after_milliseconds", m.DownAfterMilliseconds, cur.downAfter)
	num("failover-timeout", "failover_timeout", m.FailoverTimeout, cur.failoverTO)
	num("parallel-syncs", "parallel_syncs", m.ParallelSyncs, cur.parallelS)
	if cur.name == "" { // a new monitor: its create line carries the quorum
		set = set[:0]
		before, after = nil, nil
		for _, p := range []struct {
			param, opt string
			want       *int
		}{{"down-after-milliseconds", "down_after_milliseconds", m.DownAfterMilliseconds}, {"failover-timeout", "failover_timeout", m.FailoverTimeout}, {"parallel-syncs", "parallel_syncs", m.ParallelSyncs}} {
			if p.want != nil {
				a := strconv.Itoa(*p.want)
				set = append(set, setParam{p.param, a, journal.Change{Kind: journal.KindDirective, Name: "sentinel " + p.param + " " + m.Name, After: &a, Where: []string{"runtime", "file"}}})
				after = append(after, fmt.Sprintf("%s %s: %s", m.Name, p.opt, a))
			}
		}
	}
	if m.AuthUser != "" && m.AuthUser != cur.authUser {
		b, a := cur.authUser, m.AuthUser
		set = append(set, setParam{"auth-user", a, journal.Change{Kind: journal.KindDirective, Name: "sentinel auth-user " + m.Name, Before: &b, After: &a, Where: []string{"runtime", "file"}}})
		before = append(before, fmt.Sprintf("%s auth_user: %s", m.Name, b))
		after = append(after, fmt.Sprintf("%s auth_user: %s", m.Name, a))
	}
	if m.AuthPass.IsSet() && m.AuthPass.Reveal() != cur.authPass {
		set = append(set, setParam{"auth-pass", m.AuthPass.Reveal(), journal.Change{Kind: journal.KindDirective, Name: "sentinel auth-pass " + m.Name, Secret: true, Where: []string{"runtime", "file"}}})
		before = append(before, fmt.Sprintf("%s auth_pass: %s", m.Name, setOrNot(cur.authPass != "")))
		after = append(after, fmt.Sprintf("%s auth_pass: (changed)", m.Name))
	}
	return set, before, after
}

func setOrNot(b bool) string {
	if b {
		return "(set)"
	}
	return "(not set)"
}

// planSettings plans the Sentinel-global settings (one SENTINEL CONFIG SET).
func (r *run) planSettings(st *sentinelState) (before, after []string) {
	o := r.opts
	s := step{args: []string{"SENTINEL", "CONFIG", "SET"}}
	one := func(name, want string, secret bool) {
		have := st.settings[name]
		if secret {
			have = st.sentinelPass
		}
		if want == have {
			return
		}
		s.args = append(s.args, name, want)
		ch := journal.Change{Kind: journal.KindDirective, Name: "sentinel " + name, Where: []string{"runtime", "file"}}
		r.fields.Settings = append(r.fields.Settings, name)
		if secret {
			ch.Secret = true
			before = append(before, name+": "+setOrNot(have != ""))
			after = append(after, name+": (changed)")
		} else {
			b, a := have, want
			ch.Before, ch.After = &b, &a
			before = append(before, name+": "+b)
			after = append(after, name+": "+a)
		}
		s.changes = append(s.changes, ch)
	}
	yesno := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	if o.ResolveHostnames != nil {
		one("resolve-hostnames", yesno(*o.ResolveHostnames), false)
	}
	if o.AnnounceHostnames != nil {
		one("announce-hostnames", yesno(*o.AnnounceHostnames), false)
	}
	if o.AnnounceIP != nil {
		one("announce-ip", *o.AnnounceIP, false)
	}
	if o.AnnouncePort != nil {
		one("announce-port", strconv.Itoa(*o.AnnouncePort), false)
	}
	if o.SentinelUser != nil {
		one("sentinel-user", *o.SentinelUser, false)
	}
	if o.SentinelPass.IsSet() {
		one("sentinel-pass", o.SentinelPass.Reveal(), true)
	}
	if len(s.changes) > 0 {
		r.steps = append(r.steps, s)
	}
	return before, after
}

// report fills the monitors' report from st.
func (r *run) report(st *sentinelState) {
	r.fields.ConfigFile = st.configFile
	r.fields.CurrentEpoch = st.currentEpoch
	r.fields.DenyScriptsReconfig = st.denyScripts
	r.fields.Monitors = r.fields.Monitors[:0]
	names := make([]string, 0, len(st.monitors))
	for n := range st.monitors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ms := st.monitors[n]
		r.fields.Monitors = append(r.fields.Monitors, MonitorReport{
			Name: n, CurrentPrimary: addr(ms.host, ms.port), Quorum: ms.quorum,
			DownAfterMilliseconds: ms.downAfter, FailoverTimeout: ms.failoverTO, ParallelSyncs: ms.parallelS,
			AuthUser: ms.authUser, AuthPassSet: ms.authPass != "", Flags: ms.flags,
			ConfigEpoch: ms.configEpoch, LeaderEpoch: ms.leaderEpoch,
			Replicas:  Peers{len(ms.replicas), nonNil(ms.replicas)},
			Sentinels: Peers{len(ms.sentinels), nonNil(ms.sentinels)},
			CKQuorum:  ms.ckquorum,
		})
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
