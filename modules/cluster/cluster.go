package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/outcome"
	"github.com/valkeyops/secure/internal/topology"
)

// Main is the module's entry point.
func Main(req *ansible.Request) *ansible.Result {
	var opts Options
	if err := req.Decode(&opts); err != nil {
		return outcome.Fail(err)
	}
	if err := opts.Validate(); err != nil {
		return outcome.Fail(err)
	}
	// Waits are bounded by wait_timeout each; slot moves by this (a move of
	// many keys takes as long as it takes; the task is not cut short).
	timeout := time.Duration(opts.waitTimeout())*4*time.Second + time.Hour
	r := &run{req: req, opts: opts}
	res := outcome.Run(&outcome.Task{Req: req, Journal: opts.JournalOptions, Timeout: timeout}, r)
	if r.st != nil {
		r.st.close()
	}
	return res
}

// run is one task.
type run struct {
	req     *ansible.Request
	opts    Options
	st      *state
	plan    *plan
	changes []change
	fields  *Fields
	// forgotten: the leaving nodes were forgotten (waits then check that
	// no node knows them any more).
	forgotten bool
	// withLeaving: waitAgree also waits for the leaving nodes that answer
	// (before they are forgotten).
	withLeaving bool
}

type change struct{ node, what string }

func (r *run) did(m *member, what string) { r.changes = append(r.changes, change{m.name(), what}) }

// Fields are valkey_cluster's return values: the cluster as it is (after
// the change; before it in check mode) and the plan.
type Fields struct {
	// State is cluster_state (ok or fail), or "none" before the cluster exists.
	State string     `json:"state"`
	Nodes []NodeFact `json:"nodes"`
	topology.ClusterHealth
	// Unlisted are cluster nodes nodes does not list.
	Unlisted []string `json:"unlisted_nodes"`
	Plan     Plan     `json:"plan"`
	Actions  []string `json:"actions"`
}

// NodeFact is one node of the cluster.
type NodeFact struct {
	ID        string   `json:"id"`
	Address   string   `json:"address"`
	Host      string   `json:"host"`
	Role      string   `json:"role"`
	PrimaryID string   `json:"primary_id"`
	Slots     []string `json:"slots"`
	SlotCount int      `json:"slot_count"`
	Flags     []string `json:"flags"`
	LinkState string   `json:"link_state"`
	Listed    bool     `json:"listed"`
}

// Plan reads every node, plans, and reports; check mode stops here.
func (r *run) Plan(ctx context.Context, t *outcome.Task) error {
	st, err := r.opts.gather(ctx)
	r.st = st
	if err != nil {
		return err
	}
	p, warnings, err := r.opts.makePlan(st)
	if err != nil {
		return err
	}
	r.plan = p
	for _, w := range warnings {
		t.Res.Warn("%s", w)
	}
	r.fields = r.facts()
	r.fields.Plan, r.fields.Actions = p.report(), p.actions()
	if r.fields.Actions == nil {
		r.fields.Actions = []string{}
	}
	for _, f := range r.fields.Failed {
		t.Res.Warn("cluster node %s is failing", f)
	}
	t.Res.Fields = r.fields
	t.Res.Changed = !p.empty()
	if !t.Res.Changed {
		t.Res.Msg = fmt.Sprintf("the cluster of %d nodes matches (cluster_state:%s)", len(r.fields.Nodes), r.fields.State)
		return nil
	}
	t.Res.Msg = strings.Join(p.actions(), "; ")
	if t.Req.CheckMode {
		t.Res.Msg = "would " + t.Res.Msg
	}
	t.Res.Diff = []ansible.DiffEntry{{BeforeHeader: "cluster layout", AfterHeader: "cluster layout", Before: r.layoutBefore(), After: r.layoutAfter()}}
	return nil
}

// Apply makes the change; a failure after the first command says what was
// done (Partial), the next run continues from what it finds.
func (r *run) Apply(ctx context.Context, t *outcome.Task) error {
	err := r.applyPlan(ctx)
	if r.st.ref == nil {
		r.st.ref = r.plan.anchor
	}
	if rerr := r.st.ref.refresh(ctx); rerr == nil {
		r.fields = r.refacts()
		t.Res.Fields = r.fields
	}
	if err == nil {
		return nil
	}
	if len(r.changes) == 0 {
		return err
	}
	done := make([]string, len(r.changes))
	for i, c := range r.changes {
		done[i] = c.node + " " + c.what
	}
	return outcome.Partial("the cluster change stopped: %v; done so far: %s; run the task again to continue from there", err, strings.Join(done, ", "))
}

// Record lists the nodes changed.
func (r *run) Record(partial bool) journal.Entry {
	anchor := r.plan.anchor
	e := journal.NewEntry(r.req, anchor.ip, anchor.port)
	for _, c := range r.changes {
		e.Changes = append(e.Changes, journal.Change{Kind: journal.KindClusterNode, Name: c.node, Detail: c.what})
	}
	return e
}

// Unchanged clears the plan.
func (r *run) Unchanged() {
	if r.fields != nil {
		r.fields.Plan, r.fields.Actions = Plan{}, []string{}
	}
}

// facts are the cluster as read in Plan.
func (r *run) facts() *Fields {
	if r.st.ref == nil {
		f := &Fields{State: "none", Nodes: []NodeFact{}, Unlisted: []string{}}
		f.ClusterHealth = topology.ClusterHealth{Uncovered: []topology.SlotRange{{Start: 0, End: topology.ClusterSlots - 1}}, Failed: []string{}, WithoutReplica: []string{}, SameHost: []topology.SameHost{}}
		return f
	}
	return r.refacts()
}

// refacts are the facts of the reference view.
func (r *run) refacts() *Fields {
	s := r.st
	v := s.ref.view
	f := &Fields{State: s.ref.info.State, Nodes: []NodeFact{}, Unlisted: []string{}}
	hostOf := func(k *topology.ClusterNode) string {
		if m := s.memberFor(k); m != nil {
			return m.host
		}
		return k.IP
	}
	f.ClusterHealth = v.Health(hostOf)
	for i := range v.Nodes {
		k := &v.Nodes[i]
		m := s.memberFor(k)
		nf := NodeFact{ID: k.ID, Address: k.Name(), Host: hostOf(k), Role: RoleReplica, PrimaryID: k.PrimaryID,
			Slots: []string{}, SlotCount: k.SlotCount(), Flags: k.Flags, LinkState: k.LinkState, Listed: m != nil && m.spec != nil}
		if k.IsPrimary() {
			nf.Role = RolePrimary
		}
		if m != nil && m.spec != nil {
			nf.Address = m.spec.Address()
		}
		for _, rg := range k.Slots {
			nf.Slots = append(nf.Slots, rg.String())
		}
		f.Nodes = append(f.Nodes, nf)
		if !nf.Listed {
			f.Unlisted = append(f.Unlisted, nf.Address)
		}
	}
	sort.Slice(f.Nodes, func(a, b int) bool { return f.Nodes[a].Address < f.Nodes[b].Address })
	return f
}

// layoutBefore is the diff's before: one line per node.
func (r *run) layoutBefore() string {
	if r.st.ref == nil {
		var lines []string
		for _, m := range r.st.listed {
			lines = append(lines, m.name()+" bare")
		}
		return strings.Join(lines, "\n") + "\n"
	}
	names := map[string]string{}
	for _, n := range r.fields.Nodes {
		names[n.ID] = n.Address
	}
	var lines []string
	for _, n := range r.fields.Nodes {
		lines = append(lines, layoutLine(n.Address, n.Role, strings.Join(n.Slots, " "), n.SlotCount, names[n.PrimaryID]))
	}
	return strings.Join(lines, "\n") + "\n"
}

// layoutAfter is the diff's after: the planned layout (slot counts as
// estimated when slots move).
func (r *run) layoutAfter() string {
	p := r.plan
	lines := map[string]string{}
	if r.st.ref != nil {
		names := map[string]string{}
		for _, n := range r.fields.Nodes {
			names[n.ID] = n.Address
		}
		for _, n := range r.fields.Nodes {
			ranges := strings.Join(n.Slots, " ")
			count := n.SlotCount
			if d, moved := p.moves[n.Address]; moved && d != 0 {
				count, ranges = n.SlotCount+d, "~"
			}
			lines[n.Address] = layoutLine(n.Address, n.Role, ranges, count, names[n.PrimaryID])
		}
	}
	for _, m := range p.primaries {
		count, ranges := p.moves[m.name()], "~"
		if rg, ok := p.slots[m]; ok {
			ranges, count = topology.Ranges(rg), rg[0].Count()
		}
		lines[m.name()] = layoutLine(m.name(), RolePrimary, ranges, count, "")
	}
	for _, x := range p.replicate {
		lines[x.replica.name()] = layoutLine(x.replica.name(), RoleReplica, "", 0, x.primary.name())
	}
	for _, m := range p.leaving {
		delete(lines, m.name())
	}
	keys := make([]string, 0, len(lines))
	for k := range lines {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = lines[k]
	}
	return strings.Join(out, "\n") + "\n"
}

func layoutLine(addr, role, ranges string, count int, primary string) string {
	if role == RoleReplica {
		return addr + " replica of " + primary
	}
	if ranges == "" {
		return fmt.Sprintf("%s primary (no slots)", addr)
	}
	return fmt.Sprintf("%s primary %s (%d slots)", addr, ranges, count)
}
