package sentinelfailover

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/outcome"
	"github.com/valkeyops/secure/internal/topology"
)

// PollInterval is how often a wait inside the pause asks again: each ask
// is one command on a local socket, and every millisecond waited is a
// millisecond the clients cannot write.
const PollInterval = 2 * time.Millisecond

// Step names, in the order they run (Fields.Steps).
const (
	StepPause    = "pause"              // CLIENT PAUSE WRITE answered
	StepCaughtUp = "replicas_caught_up" // every replica acknowledged master_repl_offset
	StepFailover = "sentinel_failover"  // SENTINEL FAILOVER answered
	StepPromoted = "promoted"           // the replica the Sentinel chose left this primary (REPLICAOF NO ONE)
	StepFollow   = "old_primary_follows"
	StepUnpause  = "unpause"
	// StepConfirmed: after the pause, the Sentinel names the new primary
	// (it has read role:master from it).
	StepConfirmed = "sentinel_names_it"
)

// Fields are valkey_sentinel_failover's return values.
type Fields struct {
	// Group is the Sentinel monitor's name.
	Group string `json:"group"`
	// Sentinel is where the module reached the Sentinel that moves the role.
	Sentinel string `json:"sentinel"`
	// OldPrimary is the primary before the move, as the Sentinel names it.
	OldPrimary string `json:"old_primary"`
	// NewPrimary is the replica the Sentinel promoted ("" in check mode and
	// when the move did not happen).
	NewPrimary string `json:"new_primary"`
	// Candidates are the primary's replicas with their link up before the
	// move (the Sentinel chooses among them; to names one).
	Candidates []string `json:"candidates"`
	// PauseMs is how long writes were paused on the primary, measured by
	// the module from before CLIENT PAUSE to the reply of CLIENT UNPAUSE
	// (0 in check mode or when no pause began).
	PauseMs float64 `json:"pause_ms"`
	// Steps are the steps that ran, each with its duration.
	Steps []Step `json:"steps"`
}

// Step is one step of the move and how long it took.
type Step struct {
	Name string  `json:"name"`
	Ms   float64 `json:"ms"`
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
	r := &run{req: req, opts: &opts, fields: &Fields{Group: opts.Group, Candidates: []string{}, Steps: []Step{}}}
	timeout := opts.Options.Timeout() + 2*time.Duration(opts.timeout())*time.Millisecond
	res := outcome.Run(&outcome.Task{Req: req, Journal: opts.JournalOptions, Timeout: timeout}, r)
	for _, c := range []valkey.Client{r.primary, r.sentinel} {
		if c != nil {
			c.Close()
		}
	}
	return res
}

type run struct {
	req      *ansible.Request
	opts     *Options
	fields   *Fields
	primary  valkey.Client
	sentinel valkey.Client
	// From the plan: the Sentinel's name of the primary, the primary's
	// replicas with their link up, its config file (the journal's instance).
	old        topology.Address
	candidates map[string]topology.Replica
	configFile string
	// newHost and newPort are the promoted replica as this primary listed
	// it; followed is set once the old primary was pointed at it.
	newHost  string
	newPort  int
	followed bool
}

// Unchanged clears the field that names a change; the measurements stay.
func (r *run) Unchanged() { r.fields.NewPrimary = "" }

// Plan connects to the primary and the Sentinel and checks, before
// anything changes, that this server is the primary the Sentinel names for
// the group and that the target (if any) is one of its replicas with its
// link up. It changes nothing: check mode ends here.
func (r *run) Plan(ctx context.Context, t *outcome.Task) error {
	o := r.opts
	c, p, err := conn.OpenPeer(&o.Options)
	if err != nil {
		return err
	}
	r.primary = c
	where := o.Options.Address()
	infos := c.DoMulti(ctx, c.B().Info().Section("server").Build(), c.B().Info().Section("replication").Build())
	serverText, err := infos[0].ToString()
	if err != nil {
		return fmt.Errorf("failed to read INFO server from %s: %w", where, err)
	}
	server, err := topology.ParseFields("INFO server", serverText)
	if err != nil {
		return err
	}
	replText, err := infos[1].ToString()
	if err != nil {
		return fmt.Errorf("failed to read INFO replication from %s: %w", where, err)
	}
	repl, err := topology.ParseReplication(replText)
	if err != nil {
		return err
	}
	if p != nil {
		if file, err := p.ConfigFile(server["config_file"]); err == nil {
			r.configFile = file
		}
	}

	so := o.sentinel()
	s, _, err := conn.OpenPeer(so)
	if err != nil {
		return fmt.Errorf("the Sentinel: %w", err)
	}
	r.sentinel = s
	r.fields.Sentinel = so.Address()
	mon, runID, err := r.monitor(ctx)
	if err != nil {
		return err
	}
	r.old = mon.Primary
	r.fields.OldPrimary = address(mon.Primary.Host, mon.Primary.Port)
	switch {
	case runID == "" || runID != server["run_id"]:
		what := "a primary"
		if repl.Role == topology.RoleReplica {
			what = "a replica of " + address(repl.PrimaryHost, repl.PrimaryPort)
		}
		return fmt.Errorf("the server at %s is not the primary of group %q: the Sentinel at %s names %s (run id %q), and this server (run id %q) is %s; run the task on the current primary's host",
			where, o.Group, r.fields.Sentinel, r.fields.OldPrimary, runID, server["run_id"], what)
	case repl.Role != topology.RolePrimary:
		return fmt.Errorf("the server at %s is the one the Sentinel at %s names for group %q, but it says it is a replica of %s; wait until the group settles",
			where, r.fields.Sentinel, o.Group, address(repl.PrimaryHost, repl.PrimaryPort))
	case topology.HasFlag(mon.Flags, "failover_in_progress"):
		return fmt.Errorf("the Sentinel at %s is already failing over group %q; wait until it has finished", r.fields.Sentinel, o.Group)
	}

	r.candidates = map[string]topology.Replica{}
	var listed []string
	for _, rep := range repl.Replicas {
		a := address(rep.IP, rep.Port)
		listed = append(listed, a+" "+rep.State)
		if rep.State == "online" {
			r.candidates[strings.ToLower(a)] = rep
			r.fields.Candidates = append(r.fields.Candidates, a)
		}
	}
	sort.Strings(r.fields.Candidates)
	if len(r.candidates) == 0 {
		return fmt.Errorf("the primary %s of group %q has no replica with its link up (replicas: %s); there is nothing to fail over to", r.fields.OldPrimary, o.Group, orNone(listed))
	}
	if o.To != "" {
		if _, ok := r.candidates[strings.ToLower(o.To)]; !ok {
			return fmt.Errorf("option \"to\": %s is not a replica of the primary %s with its link up (replicas: %s); expected one of them", o.To, r.fields.OldPrimary, orNone(listed))
		}
		if err := r.sentinelKnows(ctx, o.To); err != nil {
			return err
		}
	}

	target := o.To
	if target == "" {
		target = "the replica the Sentinel chooses among " + strings.Join(r.fields.Candidates, ", ")
	}
	head := fmt.Sprintf("group %s (Sentinel %s)", o.Group, r.fields.Sentinel)
	t.Res.Diff = []ansible.DiffEntry{{BeforeHeader: head, AfterHeader: head,
		Before: fmt.Sprintf("primary: %s\n", r.fields.OldPrimary),
		After:  fmt.Sprintf("primary: %s\n%s: replica of it\n", target, r.fields.OldPrimary),
	}}
	t.Res.Changed = true
	t.Res.Fields = r.fields
	t.Res.Msg = fmt.Sprintf("pause writes on %s, fail group %s over through the Sentinel at %s to %s, and make %s its replica",
		r.fields.OldPrimary, o.Group, r.fields.Sentinel, target, r.fields.OldPrimary)
	if t.Req.CheckMode {
		t.Res.Msg = "would " + t.Res.Msg
	}
	return nil
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// monitor reads SENTINEL MASTER group from a verified Sentinel: the
// primary it names and that primary's run id.
func (r *run) monitor(ctx context.Context) (*topology.Monitor, string, error) {
	s, where, group := r.sentinel, r.fields.Sentinel, r.opts.Group
	text, err := s.Do(ctx, s.B().Info().Section("server").Build()).ToString()
	if err != nil {
		return nil, "", fmt.Errorf("failed to read INFO server from the Sentinel at %s: %w", where, err)
	}
	if info := conn.ParseInfo(text); info["server_mode"] != "sentinel" && info["redis_mode"] != "sentinel" {
		return nil, "", fmt.Errorf("the server at %s is not a Sentinel; point sentinel_unix_socket or sentinel_host/sentinel_port at one", where)
	}
	m, err := s.Do(ctx, s.B().Arbitrary("SENTINEL", "MASTER").Args(group).Build()).AsStrMap()
	if err != nil {
		if strings.Contains(err.Error(), "No such master") {
			return nil, "", fmt.Errorf("option \"group\": the Sentinel at %s has no monitor %q; expected the name of the group it watches", where, group)
		}
		return nil, "", fmt.Errorf("failed to read SENTINEL MASTER %q from %s: %w", group, where, err)
	}
	mon, err := topology.ParseMonitor(m)
	if err != nil {
		return nil, "", err
	}
	runID := m["runid"]
	if runID != "" && !isHex40(runID) {
		return nil, "", fmt.Errorf("the Sentinel at %s names a run id for group %q that is not 40 hex digits", where, group)
	}
	return mon, runID, nil
}

func isHex40(s string) bool {
	if len(s) != 40 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

// sentinelKnows checks that the Sentinel lists to among the group's
// replicas and does not think it is down: else it cannot promote it.
func (r *run) sentinelKnows(ctx context.Context, to string) error {
	reps, err := r.sentinelReplicas(ctx)
	if err != nil {
		return err
	}
	for _, rep := range reps {
		if !strings.EqualFold(address(rep.Host, rep.Port), to) {
			continue
		}
		if topology.HasFlag(rep.Flags, "s_down") || topology.HasFlag(rep.Flags, "disconnected") {
			return fmt.Errorf("option \"to\": the Sentinel at %s sees %s as down (flags %s); expected a replica it can promote", r.fields.Sentinel, to, strings.Join(rep.Flags, ","))
		}
		return nil
	}
	return fmt.Errorf("option \"to\": the Sentinel at %s does not list %s among the replicas of group %q (it learns them from the primary's INFO every 10 s); expected a replica it knows", r.fields.Sentinel, to, r.opts.Group)
}

// sentinelReplicas is SENTINEL REPLICAS group, parsed and bounded.
func (r *run) sentinelReplicas(ctx context.Context) ([]topology.SentinelReplica, error) {
	s := r.sentinel
	arr, err := s.Do(ctx, s.B().SentinelReplicas().Master(r.opts.Group).Build()).ToArray()
	if err != nil {
		return nil, fmt.Errorf("failed to read SENTINEL REPLICAS %s from %s: %w", r.opts.Group, r.fields.Sentinel, err)
	}
	if len(arr) > topology.MaxReplicas {
		return nil, fmt.Errorf("the Sentinel at %s lists %d replicas of group %q, more than the limit of %d", r.fields.Sentinel, len(arr), r.opts.Group, topology.MaxReplicas)
	}
	out := make([]topology.SentinelReplica, 0, len(arr))
	for _, e := range arr {
		m, err := e.AsStrMap()
		if err != nil {
			return nil, fmt.Errorf("failed to read SENTINEL REPLICAS %s from %s: %w", r.opts.Group, r.fields.Sentinel, err)
		}
		rep, err := topology.ParseSentinelReplica(m)
		if err != nil {
			return nil, err
		}
		out = append(out, rep)
	}
	return out, nil
}

// failure is an error inside the pause, with whether the move began
// (SENTINEL FAILOVER accepted): before it nothing stays changed.
type failure struct {
	err   error
	moved bool
}

// Apply pauses the writes, moves the role and always ends the pause; the
// message of a failure says what was done and that the pause ended.
func (r *run) Apply(ctx context.Context, t *outcome.Task) error {
	o, c := r.opts, r.primary
	timeout := o.timeout()
	begin := time.Now()
	if err := c.Do(ctx, c.B().ClientPause().Timeout(int64(timeout)).Write().Build()).Error(); err != nil {
		return fmt.Errorf("the primary %s refused CLIENT PAUSE WRITE: %w", r.fields.OldPrimary, err)
	}
	r.step(StepPause, begin)
	// Every wait ends before the pause would end by itself: a write
	// accepted by the old primary after a replica was promoted would be
	// acknowledged and then lost.
	deadline := begin.Add(time.Duration(timeout) * time.Millisecond * 4 / 5)
	f := r.move(ctx, deadline)

	ended := time.Now()
	uerr := c.Do(context.WithoutCancel(ctx), c.B().ClientUnpause().Build()).Error()
	r.step(StepUnpause, ended)
	r.fields.PauseMs = ms(time.Since(begin))
	pause := fmt.Sprintf("writes were paused %.0f ms and the pause has ended", r.fields.PauseMs)
	if uerr != nil {
		pause = fmt.Sprintf("writes were paused and ending the pause failed (%v): it ends by itself %d ms after it began", uerr, timeout)
	}
	t.Res.Fields = r.fields
	if f == nil {
		t0 := time.Now()
		if err := r.confirm(ctx, t0.Add(time.Duration(timeout)*time.Millisecond)); err != nil {
			return outcome.Partial("SENTINEL FAILOVER %s was accepted by the Sentinel at %s and %s now replicates %s (%s), but %v",
				o.Group, r.fields.Sentinel, r.fields.OldPrimary, r.fields.NewPrimary, pause, err)
		}
		r.step(StepConfirmed, t0)
	}
	switch {
	case f == nil && uerr == nil:
		t.Res.Msg = fmt.Sprintf("moved the primary of group %s from %s to %s through the Sentinel at %s; %s", o.Group, r.fields.OldPrimary, r.fields.NewPrimary, r.fields.Sentinel, pause)
		return nil
	case f == nil:
		return outcome.Partial("moved the primary of group %s from %s to %s through the Sentinel at %s, but %s", o.Group, r.fields.OldPrimary, r.fields.NewPrimary, r.fields.Sentinel, pause)
	case !f.moved && uerr == nil:
		return fmt.Errorf("%v; %s", f.err, pause) // the runner adds: nothing was changed
	case !f.moved:
		return outcome.Stated("%v; %s; nothing else was changed", f.err, pause)
	}
	return outcome.Partial("SENTINEL FAILOVER %s was accepted by the Sentinel at %s, but %v; %s", o.Group, r.fields.Sentinel, f.err, pause)
}

// move runs the steps inside the pause.
func (r *run) move(ctx context.Context, deadline time.Time) *failure {
	o, c, s := r.opts, r.primary, r.sentinel
	within := fmt.Sprintf("within %d ms", time.Until(deadline).Milliseconds())

	t0 := time.Now()
	var behind []string
	for {
		var err error
		if behind, err = r.behind(ctx); err != nil {
			return &failure{err: err}
		}
		if len(behind) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return &failure{err: fmt.Errorf("the replicas did not acknowledge every write of the primary %s %s (behind: %s)", r.fields.OldPrimary, within, strings.Join(behind, ", "))}
		}
		time.Sleep(PollInterval)
	}
	r.step(StepCaughtUp, t0)

	t0 = time.Now()
	if err := s.Do(ctx, s.B().SentinelFailover().Master(o.Group).Build()).Error(); err != nil {
		return &failure{err: fmt.Errorf("the Sentinel at %s refused SENTINEL FAILOVER %s: %v", r.fields.Sentinel, o.Group, err)}
	}
	r.step(StepFailover, t0)

	t0 = time.Now()
	for {
		done, err := r.promoted(ctx)
		if err != nil {
			return &failure{err: err, moved: true}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return &failure{moved: true, err: fmt.Errorf("%s no replica the Sentinel chose left %s (the Sentinel may still finish the failover and will then make %s a replica)",
				within, r.fields.OldPrimary, r.fields.OldPrimary)}
		}
		time.Sleep(PollInterval)
	}
	r.step(StepPromoted, t0)

	t0 = time.Now()
	host, port := r.newHost, r.newPort
	if err := c.Do(ctx, c.B().Replicaof().Host(host).Port(int64(port)).Build()).Error(); err != nil {
		return &failure{moved: true, err: fmt.Errorf("the old primary %s refused REPLICAOF %s: %v (the Sentinel will make it a replica of the new primary %s itself)", r.fields.OldPrimary, r.fields.NewPrimary, err, r.fields.NewPrimary)}
	}
	r.followed = true
	r.step(StepFollow, t0)
	if o.To != "" && !strings.EqualFold(o.To, r.fields.NewPrimary) {
		return &failure{moved: true, err: fmt.Errorf("it promoted %s, not %s as option \"to\" asked (make the other replicas ineligible with replica-priority 0); %s now replicates %s", r.fields.NewPrimary, o.To, r.fields.OldPrimary, r.fields.NewPrimary)}
	}
	return nil
}

// behind lists the replicas whose acknowledged offset is not yet the
// primary's (or that are not online); nil when every one has every write.
func (r *run) behind(ctx context.Context) ([]string, error) {
	repl, err := r.replication(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rep := range repl.Replicas {
		if rep.State != "online" || rep.Offset != repl.PrimaryReplOffset {
			out = append(out, fmt.Sprintf("%s %s at offset %d of %d", address(rep.IP, rep.Port), rep.State, rep.Offset, repl.PrimaryReplOffset))
		}
	}
	if len(repl.Replicas) == 0 {
		out = append(out, "no replica connected")
	}
	return out, nil
}

func (r *run) replication(ctx context.Context) (*topology.Replication, error) {
	c := r.primary
	text, err := c.Do(ctx, c.B().Info().Section("replication").Build()).ToString()
	if err != nil {
		return nil, fmt.Errorf("failed to read INFO replication from %s: %w", r.fields.OldPrimary, err)
	}
	return topology.ParseReplication(text)
}

// promoted says whether the replica the Sentinel chose has become a
// primary: the Sentinel marks its choice (flag "promoted" in SENTINEL
// REPLICAS) and sends it REPLICAOF NO ONE; the replica then leaves this
// primary's replica list at once, which this module sees itself on the
// primary's socket. Waiting instead for the Sentinel to name it (it does
// so after the promoted replica's INFO, read once a second, says
// role:master) would hold the writes up to a second longer; that answer
// is awaited after the pause (confirm). A choice that was not a replica of
// this primary with its link up is refused: the old primary is never
// pointed at an address the plan did not see.
func (r *run) promoted(ctx context.Context) (bool, error) {
	reps, err := r.sentinelReplicas(ctx)
	if err != nil {
		return false, err
	}
	var chosen []string
	for _, rep := range reps {
		if topology.HasFlag(rep.Flags, "promoted") {
			chosen = append(chosen, address(rep.Host, rep.Port))
		}
	}
	if len(chosen) == 0 {
		return false, nil
	}
	if len(chosen) > 1 {
		return false, fmt.Errorf("the Sentinel marks %d replicas as promoted (%s); expected one", len(chosen), strings.Join(chosen, ", "))
	}
	named := chosen[0]
	rep, ok := r.candidates[strings.ToLower(named)]
	if !ok {
		return false, fmt.Errorf("it promotes %q, which was not a replica of %s with its link up; %s was not pointed at it", named, r.fields.OldPrimary, r.fields.OldPrimary)
	}
	repl, err := r.replication(ctx)
	if err != nil {
		return false, err
	}
	for _, still := range repl.Replicas {
		if strings.EqualFold(address(still.IP, still.Port), named) {
			return false, nil
		}
	}
	r.newHost, r.newPort = rep.IP, rep.Port
	r.fields.NewPrimary = address(rep.IP, rep.Port)
	return true, nil
}

// confirm waits, after the pause, until the Sentinel names the new primary
// (it has read role:master from it), so the task ends with the move done
// as the Sentinel sees it.
func (r *run) confirm(ctx context.Context, deadline time.Time) error {
	s := r.sentinel
	for {
		addr, err := s.Do(ctx, s.B().SentinelGetMasterAddrByName().Master(r.opts.Group).Build()).AsStrSlice()
		if err != nil {
			return fmt.Errorf("failed to read SENTINEL GET-MASTER-ADDR-BY-NAME %s: %v", r.opts.Group, err)
		}
		if len(addr) != 2 {
			return fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME %s answered %d strings, expected a host and a port", r.opts.Group, len(addr))
		}
		named := addr[0] + ":" + addr[1]
		if host, port, err := splitAddress(named); err == nil {
			named = address(host, port)
		}
		switch {
		case strings.EqualFold(named, r.fields.NewPrimary):
			return nil
		case !strings.EqualFold(named, r.fields.OldPrimary):
			return fmt.Errorf("the Sentinel names %q as the primary, neither %s nor %s", named, r.fields.OldPrimary, r.fields.NewPrimary)
		case time.Now().After(deadline):
			return fmt.Errorf("the Sentinel still names %s, not %s, %d ms after the pause ended", r.fields.OldPrimary, r.fields.NewPrimary, r.opts.timeout())
		}
		time.Sleep(PollInterval)
	}
}

func (r *run) step(name string, since time.Time) {
	r.fields.Steps = append(r.fields.Steps, Step{Name: name, Ms: ms(time.Since(since))})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()/100) / 10 }

// Record is the journal entry: the old primary now replicates the new one.
func (r *run) Record(partial bool) journal.Entry {
	e := journal.NewEntry(r.req, r.opts.Options.Address(), r.opts.Options.LoginPort)
	e.Instance = journal.InstanceName(r.configFile)
	e.Partial = partial
	detail := fmt.Sprintf("switchover of group %s through the Sentinel at %s", r.opts.Group, r.fields.Sentinel)
	if r.followed {
		e.Changes = append(e.Changes, journal.Change{Kind: journal.KindDirective, Name: "replicaof", Before: journal.Value("no one"),
			After: journal.Value(r.newHost + " " + fmt.Sprint(r.newPort)), Where: []string{"runtime"}, Detail: detail})
	} else {
		e.Changes = append(e.Changes, journal.Change{Kind: journal.KindDirective, Name: "sentinel failover " + r.opts.Group, Detail: detail + " (incomplete)"})
	}
	return e
}
