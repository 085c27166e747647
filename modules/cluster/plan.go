package cluster

import (
	"fmt"
	"sort"
	"strings"

	"github.com/valkeyops/secure/internal/topology"
)

// replication is one CLUSTER REPLICATE to send.
type replication struct {
	replica *member
	primary *member // the primary as a member (a node of this run or the cluster)
}

// plan is what the task does, in order: assign slots (create), meet, attach
// replicas, move slots (rebalance), forget. Empty: the cluster matches.
type plan struct {
	create    bool
	slots     map[*member][]topology.SlotRange // create: the slots each new primary takes
	meet      []*member                        // nodes that join the cluster
	anchor    *member                          // the node that meets them
	primaries []*member                        // nodes that join as primaries
	replicate []replication
	rebalance bool      // move slots to empty primaries and off leaving ones
	fix       []string  // slots an interrupted move left open ("slot@node"; valkey-cli --cluster fix closes them)
	leaving   []*member // nodes every other node forgets (remove_unlisted)
	moves     map[string]int
}

func (p *plan) empty() bool {
	return !p.create && len(p.meet) == 0 && len(p.replicate) == 0 && !p.rebalance && len(p.leaving) == 0 && len(p.fix) == 0
}

// Plan is the plan as the result reports it (check mode included).
type Plan struct {
	Create      bool           `json:"create"`
	Meet        []string       `json:"meet"`
	Primaries   []string       `json:"new_primaries"`
	Replicate   []Replicate    `json:"replicate"`
	SlotsToMove map[string]int `json:"slots_to_move"`
	Forget      []string       `json:"forget"`
	// CloseOpenSlots are slots an interrupted move left migrating or
	// importing ("slot@node").
	CloseOpenSlots []string `json:"close_open_slots"`
}

// Replicate is a replica to attach.
type Replicate struct {
	Replica string `json:"replica"`
	Primary string `json:"primary"`
}

func (p *plan) report() Plan {
	r := Plan{Create: p.create, Meet: []string{}, Primaries: []string{}, Replicate: []Replicate{}, SlotsToMove: map[string]int{},
		Forget: []string{}, CloseOpenSlots: append([]string{}, p.fix...)}
	for _, m := range p.meet {
		r.Meet = append(r.Meet, m.name())
	}
	for _, m := range p.primaries {
		r.Primaries = append(r.Primaries, m.name())
	}
	for _, x := range p.replicate {
		r.Replicate = append(r.Replicate, Replicate{x.replica.name(), x.primary.name()})
	}
	for k, v := range p.moves {
		if v != 0 {
			r.SlotsToMove[k] = v
		}
	}
	for _, m := range p.leaving {
		r.Forget = append(r.Forget, m.name())
	}
	return r
}

// actions are the plan in sentences (msg, check mode).
func (p *plan) actions() []string {
	var out []string
	r := p.report()
	if p.create {
		out = append(out, fmt.Sprintf("create a cluster of %d primaries", len(p.primaries)))
	}
	if len(p.fix) > 0 {
		out = append(out, "close open slots "+strings.Join(p.fix, ", ")+" (valkey-cli --cluster fix)")
	}
	if len(r.Meet) > 0 {
		out = append(out, "meet "+strings.Join(r.Meet, ", "))
	}
	for _, x := range r.Replicate {
		out = append(out, fmt.Sprintf("attach %s as a replica of %s", x.Replica, x.Primary))
	}
	if p.rebalance {
		keys := make([]string, 0, len(r.SlotsToMove))
		for k := range r.SlotsToMove {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %+d", k, r.SlotsToMove[k])
		}
		out = append(out, "move slots ("+strings.Join(parts, ", ")+")")
	}
	if len(r.Forget) > 0 {
		out = append(out, "forget "+strings.Join(r.Forget, ", "))
	}
	return out
}

// makePlan compares the declared nodes with the state read.
func (o *Options) makePlan(s *state) (*plan, []string, error) {
	if s.ref == nil {
		return o.planCreate(s)
	}
	return o.planChange(s)
}

// planCreate lays out a new cluster: the primaries (initial_role, or
// nodes/(replicas+1) spread over the hosts), all slots evenly, replicas on
// other hosts than their primary.
func (o *Options) planCreate(s *state) (*plan, []string, error) {
	for _, m := range s.listed {
		if m.keys > 0 {
			return nil, nil, refuse("node %s holds %d keys; expected empty nodes to create a cluster from", m.name(), m.keys)
		}
	}
	var primaries, replicas []*member
	explicit := false
	for _, m := range s.listed {
		if m.spec.InitialRole == RolePrimary {
			explicit = true
		}
	}
	if explicit {
		for _, m := range s.listed {
			if m.spec.InitialRole == RolePrimary {
				primaries = append(primaries, m)
			} else {
				replicas = append(replicas, m)
			}
		}
	} else {
		primaries, replicas = spread(s.listed, len(s.listed)/(o.replicas()+1))
	}
	if len(primaries) < MinPrimaries {
		return nil, nil, refuse("the layout has %d primaries (%d nodes, replicas: %d); expected at least %d", len(primaries), len(s.listed), o.replicas(), MinPrimaries)
	}
	p := &plan{create: true, slots: map[*member][]topology.SlotRange{}, moves: map[string]int{}, anchor: primaries[0], primaries: primaries}
	start := 0
	for i, m := range primaries {
		n := topology.ClusterSlots / len(primaries)
		if i < topology.ClusterSlots%len(primaries) {
			n++
		}
		p.slots[m] = []topology.SlotRange{{Start: start, End: start + n - 1}}
		start += n
	}
	for _, m := range s.listed {
		if m != p.anchor {
			p.meet = append(p.meet, m)
		}
	}
	attach, warnings, err := placeReplicas(primaries, nil, replicas, o.replicas())
	if err != nil {
		return nil, nil, err
	}
	p.replicate = attach
	return p, warnings, nil
}

// spread picks n primaries round-robin over the hosts in the order nodes
// lists them (never a node whose initial_role is replica); the rest are
// replicas.
func spread(nodes []*member, n int) (primaries, replicas []*member) {
	var hosts []string
	byHost := map[string][]*member{}
	for _, m := range nodes {
		if m.spec.InitialRole == RoleReplica {
			continue
		}
		if _, ok := byHost[m.host]; !ok {
			hosts = append(hosts, m.host)
		}
		byHost[m.host] = append(byHost[m.host], m)
	}
	chosen := map[*member]bool{}
	for round := 0; len(primaries) < n; round++ {
		took := false
		for _, h := range hosts {
			if round < len(byHost[h]) && len(primaries) < n {
				primaries = append(primaries, byHost[h][round])
				chosen[byHost[h][round]] = true
				took = true
			}
		}
		if !took {
			break
		}
	}
	for _, m := range nodes {
		if !chosen[m] {
			replicas = append(replicas, m)
		}
	}
	return primaries, replicas
}

// placeReplicas attaches replicas to primaries, never on a primary's host:
// in rounds, a maximum matching (augmenting paths) gives each primary one
// more replica until each has want (have counts the replicas they already
// have), then any left over go to the eligible primary with the fewest.
func placeReplicas(primaries []*member, have map[*member]int, replicas []*member, want int) ([]replication, []string, error) {
	count := map[*member]int{}
	for _, p := range primaries {
		count[p] = have[p]
	}
	assigned := map[*member]*member{}
	for round := 0; round < want; round++ {
		var open []*member
		for _, p := range primaries {
			if count[p] <= round {
				open = append(open, p)
			}
		}
		match := map[*member]*member{} // primary -> replica
		for _, r := range replicas {
			if assigned[r] != nil {
				continue
			}
			augment(r, open, match, map[*member]bool{}, assigned)
		}
		for p, r := range match {
			assigned[r] = p
			count[p]++
		}
	}
	for _, r := range replicas {
		if assigned[r] != nil {
			continue
		}
		var best *member
		for _, p := range primaries {
			if p.host != r.host && (best == nil || count[p] < count[best]) {
				best = p
			}
		}
		if best == nil {
			return nil, nil, refuse("replica %s would share host %q with its primary, and a primary with its only replica on one host loses the shard with the host; expected a primary on another host", r.name(), r.host)
		}
		assigned[r] = best
		count[best]++
	}
	var out []replication
	for _, r := range replicas {
		out = append(out, replication{replica: r, primary: assigned[r]})
	}
	var warnings []string
	for _, p := range primaries {
		if count[p] == 0 && want > 0 && len(replicas) > 0 {
			return nil, nil, refuse("the layout leaves primary %s without a replica on another host (replicas: %d); expected nodes on enough hosts to keep each primary's replicas off its host", p.name(), want)
		}
		if count[p] < want {
			warnings = append(warnings, fmt.Sprintf("primary %s will have %d replicas, fewer than replicas: %d (not enough nodes on other hosts)", p.name(), count[p], want))
		}
	}
	return out, warnings, nil
}

// augment finds an augmenting path for replica r (Kuhn's algorithm).
func augment(r *member, open []*member, match map[*member]*member, seen map[*member]bool, assigned map[*member]*member) bool {
	for _, p := range open {
		if p.host == r.host || seen[p] {
			continue
		}
		seen[p] = true
		if cur, taken := match[p]; !taken || augment(cur, open, match, seen, assigned) {
			match[p] = r
			return true
		}
	}
	return false
}

// planChange compares a formed cluster with the nodes: bare listed nodes
// join (as replicas where a primary lacks one, else as primaries that then
// receive slots), unlisted nodes leave with remove_unlisted. Roles of
// members are never changed: after a failover the cluster's choice stands.
func (o *Options) planChange(s *state) (*plan, []string, error) {
	var warnings []string
	view := s.ref.view
	p := &plan{moves: map[string]int{}, anchor: s.ref}
	// Slots an interrupted move left open (a run or valkey-cli killed in
	// the middle), as every reachable node sees them: closed first, by
	// Valkey's own fixer, when every slot is otherwise served (fix would
	// also assign uncovered slots, which is a decision for a person).
	for _, m := range append(append([]*member{}, s.listed...), s.unlisted...) {
		if m.view == nil || m.connErr != nil {
			continue
		}
		for _, o := range m.view.Self().Open {
			p.fix = append(p.fix, fmt.Sprintf("%d@%s", o.Slot, m.name()))
		}
	}
	if len(p.fix) > 0 && len(view.Uncovered()) > 0 {
		return nil, nil, refuse("the cluster has open slots (%s) and slots served by no node (%s); expected a person to decide (valkey-cli --cluster fix assigns the unserved slots)", strings.Join(p.fix, ", "), topology.Ranges(view.Uncovered()))
	}
	leaving := map[string]bool{}
	if o.RemoveUnlisted {
		// Replicas first: they are forgotten before their primaries.
		sort.SliceStable(s.unlisted, func(a, b int) bool {
			return !s.unlisted[a].view.Self().IsPrimary() && s.unlisted[b].view.Self().IsPrimary()
		})
		for _, m := range s.unlisted {
			p.leaving = append(p.leaving, m)
			leaving[viewID(m)] = true
		}
	} else if len(s.unlisted) > 0 {
		names := make([]string, len(s.unlisted))
		for i, m := range s.unlisted {
			names[i] = m.name()
		}
		warnings = append(warnings, fmt.Sprintf("cluster nodes not in nodes, left as they are (remove_unlisted: false): %s", strings.Join(names, ", ")))
	}
	// The primaries that stay, as members, with their replica counts.
	var primaries []*member
	have := map[*member]int{}
	byID := map[string]*member{}
	for i := range view.Nodes {
		k := &view.Nodes[i]
		m := s.memberFor(k)
		byID[k.ID] = m
		if k.IsPrimary() && !leaving[k.ID] && !k.Failed() && m != nil && (k.SlotCount() > 0 || m.spec != nil) {
			primaries = append(primaries, m)
		}
	}
	for i := range view.Nodes {
		k := &view.Nodes[i]
		if pm := byID[k.PrimaryID]; pm != nil && !k.Failed() && !leaving[k.ID] {
			have[pm]++
		}
	}
	var joining []*member
	for _, m := range s.listed {
		if m.view != nil && m.bare() {
			if m.keys > 0 {
				return nil, nil, refuse("node %s holds %d keys; expected an empty node to join the cluster", m.name(), m.keys)
			}
			joining = append(joining, m)
		}
	}
	for _, m := range joining {
		p.meet = append(p.meet, m)
		role := m.spec.InitialRole
		if role == "" {
			role = RolePrimary
			for _, pm := range primaries {
				if pm.host != m.host && have[pm] < o.replicas() {
					role = RoleReplica
					break
				}
			}
		}
		if role == RolePrimary {
			p.primaries = append(p.primaries, m)
			primaries = append(primaries, m)
			continue
		}
		var best *member
		for _, pm := range primaries {
			if pm.host != m.host && (best == nil || have[pm] < have[best]) {
				best = pm
			}
		}
		if best == nil {
			return nil, nil, refuse("replica %s would share host %q with its primary, and a primary with its only replica on one host loses the shard with the host; expected a primary on another host", m.name(), m.host)
		}
		have[best]++
		p.replicate = append(p.replicate, replication{replica: m, primary: best})
	}
	// Slots move when a primary has none (it just joined, or joined in a
	// run that stopped before the move) or a leaving one still has some.
	empty := len(p.primaries) > 0
	for _, pm := range primaries {
		if pm.view != nil && !pm.bare() && pm.view.Self().SlotCount() == 0 {
			empty = true
		}
	}
	serving := false
	for _, m := range p.leaving {
		if k := view.ByID(viewID(m)); k != nil && k.SlotCount() > 0 {
			serving = true
			if k.Failed() || m.client == nil {
				return nil, nil, refuse("unlisted node %s serves %d slots but cannot be reached to move them; expected it up (or its replica promoted) before it is removed", m.name(), k.SlotCount())
			}
		}
	}
	if empty || serving {
		p.rebalance = true
		p.estimateMoves(view, primaries, s)
	}
	if len(primaries) < MinPrimaries && (p.rebalance || len(p.leaving) > 0) {
		return nil, nil, refuse("the cluster would keep %d primaries; expected at least %d", len(primaries), MinPrimaries)
	}
	for _, m := range p.leaving {
		if m.client == nil {
			warnings = append(warnings, fmt.Sprintf("node %s cannot be reached: the other nodes forget it, and it must not be started again with its old nodes.conf", m.name()))
		}
	}
	return p, warnings, nil
}

// estimateMoves is the slots each primary gains (+) or gives (-) when
// slots are spread evenly over the primaries that stay.
func (p *plan) estimateMoves(view *topology.ClusterView, primaries []*member, s *state) {
	for i, pm := range primaries {
		target := topology.ClusterSlots / len(primaries)
		if i < topology.ClusterSlots%len(primaries) {
			target++
		}
		cur := 0
		if k := view.ByID(viewID(pm)); k != nil {
			cur = k.SlotCount()
		}
		p.moves[pm.name()] = target - cur
	}
	for _, m := range p.leaving {
		if k := view.ByID(viewID(m)); k != nil && k.SlotCount() > 0 {
			p.moves[m.name()] = -k.SlotCount()
		}
	}
}

// viewID is the id the cluster knows m by.
func viewID(m *member) string {
	if m.view == nil {
		return ""
	}
	return m.view.Self().ID
}

// memberFor is the member behind a node of the reference view.
func (s *state) memberFor(k *topology.ClusterNode) *member {
	if m := s.byID[k.ID]; m != nil {
		return m
	}
	if m := s.listedAt(k.IP, k.Port); m != nil {
		return m
	}
	for _, m := range s.unlisted {
		if viewID(m) == k.ID {
			return m
		}
	}
	return nil
}
