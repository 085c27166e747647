package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/topology"
)

// applyPlan makes the planned change, step by step, each step waiting for
// the cluster to agree before the next one.
func (r *run) applyPlan(ctx context.Context) error {
	s, p, o := r.st, r.plan, &r.opts
	if len(p.fix) > 0 {
		if err := r.verifiedForCLI(ctx); err != nil {
			return err
		}
		if _, err := o.runCLI(ctx, "fix", p.anchor.addrForCLI()); err != nil {
			return err
		}
		r.changes = append(r.changes, change{p.anchor.name(), "closed open slots " + strings.Join(p.fix, ", ")})
	}
	if p.create {
		for i, m := range s.listed {
			if err := do(ctx, m, m.client.B().ClusterSetConfigEpoch().ConfigEpoch(int64(i+1)).Build()); err != nil {
				return err
			}
		}
		for _, m := range p.primaries {
			cmd := m.client.B().ClusterAddslotsrange().StartSlotEndSlot()
			for _, rg := range p.slots[m] {
				cmd = cmd.StartSlotEndSlot(int64(rg.Start), int64(rg.End))
			}
			if err := do(ctx, m, cmd.Build()); err != nil {
				return err
			}
			r.did(m, "took slots "+topology.Ranges(p.slots[m]))
		}
	}
	for _, m := range p.meet {
		self := m.view.Self()
		cmd := p.anchor.client.B().ClusterMeet().Ip(m.ip).Port(int64(self.Port)).ClusterBusPort(int64(self.BusPort)).Build()
		if err := do(ctx, p.anchor, cmd); err != nil {
			return err
		}
		r.did(m, "met by "+p.anchor.name())
	}
	if len(p.meet) > 0 {
		if err := r.waitAgree(ctx, "know every node", false); err != nil {
			return err
		}
	}
	for _, x := range p.replicate {
		if err := do(ctx, x.replica, x.replica.client.B().ClusterReplicate().NodeId(x.primary.id()).Build()); err != nil {
			return err
		}
		r.did(x.replica, "replica of "+x.primary.name())
	}
	if p.create {
		return r.waitAgree(ctx, "reach cluster_state:ok with every slot served", true)
	}
	if p.rebalance {
		if err := r.waitAgree(ctx, "agree on the slots before moving them", true); err != nil {
			return err
		}
		args := []string{p.anchor.addrForCLI(), "--cluster-use-empty-primaries"}
		for _, m := range p.leaving {
			if m.view != nil && m.view.Self().SlotCount() > 0 {
				args = append(args, "--cluster-weight", m.id()+"=0")
			}
		}
		if err := r.verifiedForCLI(ctx); err != nil {
			return err
		}
		if _, err := o.runCLI(ctx, "rebalance", args...); err != nil {
			return err
		}
		for name, n := range p.moves {
			r.changes = append(r.changes, change{name, fmt.Sprintf("slots %+d", n)})
		}
	}
	if len(p.leaving) > 0 {
		// Every node, the leaving ones too, must know the moved slots' new
		// owners first: a node that forgets a node it still believes serves
		// a slot drops that slot, reports cluster_state:fail and answers
		// CLUSTERDOWN until gossip teaches it the owner again (seen as seconds
		// of CLUSTERDOWN under traffic in the lab's shrink); and a client
		// refreshes its slot map from any node it knows, the leaving ones
		// included, so their map must be the right one before they go.
		r.withLeaving = true
		err := r.waitAgree(ctx, "agree on the moved slots' owners before forgetting the leaving nodes", true)
		r.withLeaving = false
		if err != nil {
			return err
		}
		if err := r.forget(ctx); err != nil {
			return err
		}
		r.forgotten = true
	}
	return r.waitAgree(ctx, "reach cluster_state:ok with every slot served", true)
}

// verifiedForCLI refuses to run valkey-cli, which is given the password
// and connects to every node the cluster lists, when a node listening at
// its address was not verified as a server by this task (conn: the local
// process, or a remote one over verified TLS): gossip can name any address,
// and a process squatting on a dead node's port would get the password.
// An address nothing listens on is harmless.
func (r *run) verifiedForCLI(ctx context.Context) error {
	anchor := r.plan.anchor
	if err := anchor.refresh(ctx); err != nil {
		return err
	}
	verified := map[string]bool{}
	for _, m := range append(append([]*member{}, r.st.listed...), r.st.unlisted...) {
		if m.client != nil && m.connErr == nil {
			verified[m.id()] = true
		}
	}
	for _, k := range anchor.view.Nodes {
		if verified[k.ID] || k.Addr() == "" {
			continue
		}
		c, err := net.DialTimeout("tcp", k.Addr(), r.opts.nodeOptions(k.IP, k.Port).Timeout()/6)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue // nothing listens there
			}
			return fmt.Errorf("refusing to run valkey-cli: cluster node %s cannot be reached to verify it (%v), and valkey-cli would send it the password", k.Name(), err)
		}
		_ = c.Close()
		client, err := conn.Open(r.opts.nodeOptions(k.IP, k.Port))
		if err != nil {
			return fmt.Errorf("refusing to run valkey-cli: cluster node %s is not a server this task can verify (%v), and valkey-cli would send it the password", k.Name(), err)
		}
		client.Close()
	}
	return nil
}

// addrForCLI is how valkey-cli reaches the node: its IP (valkey-cli's
// cluster manager compares addresses with what CLUSTER NODES says).
func (m *member) addrForCLI() string { return net.JoinHostPort(m.ip, strconv.Itoa(m.port)) }

// forget removes the leaving nodes: replicas of a leaving primary that stay
// are attached to another primary, every staying node forgets each leaving
// one, then each leaving node that answers is reset (it forgets the cluster
// within the minute the others refuse its gossip).
func (r *run) forget(ctx context.Context) error {
	staying := r.staying()
	leaving := map[string]bool{}
	for _, m := range r.plan.leaving {
		leaving[viewID(m)] = true
	}
	for _, m := range staying {
		if err := m.refresh(ctx); err != nil {
			return err
		}
	}
	var primaries []*member
	have := map[string]int{}
	for _, m := range staying {
		if self := m.view.Self(); self.IsPrimary() && self.SlotCount() > 0 {
			primaries = append(primaries, m)
		} else if !self.IsPrimary() {
			have[self.PrimaryID]++
		}
	}
	for _, m := range staying {
		self := m.view.Self()
		if self.IsPrimary() || !leaving[self.PrimaryID] {
			continue
		}
		var best *member
		for _, pm := range primaries {
			if pm.host != m.host && (best == nil || have[pm.id()] < have[best.id()]) {
				best = pm
			}
		}
		if best == nil {
			return fmt.Errorf("replica %s of a leaving primary has no primary on another host to replicate", m.name())
		}
		have[best.id()]++
		if err := do(ctx, m, m.client.B().ClusterReplicate().NodeId(best.id()).Build()); err != nil {
			return err
		}
		r.did(m, "replica of "+best.name())
	}
	for _, l := range r.plan.leaving {
		id := viewID(l)
		for _, m := range staying {
			err := do(ctx, m, m.client.B().ClusterForget().NodeId(id).Build())
			if err != nil && !strings.Contains(err.Error(), "Unknown node") {
				return err
			}
		}
	}
	for _, l := range r.plan.leaving {
		if !r.opts.resetRemoved() {
			r.did(l, "forgotten by every node; not reset, it redirects clients until it stops")
			continue
		}
		if l.client != nil {
			if err := do(ctx, l, l.client.B().ClusterReset().Soft().Build()); err != nil {
				return err
			}
		}
		r.did(l, "forgotten by every node")
	}
	return nil
}

// staying are the reachable nodes that stay in the cluster.
func (r *run) staying() []*member {
	leaving := map[*member]bool{}
	for _, m := range r.plan.leaving {
		leaving[m] = true
	}
	var out []*member
	for _, m := range append(append([]*member{}, r.st.listed...), r.st.unlisted...) {
		if m.client != nil && m.connErr == nil && !leaving[m] {
			out = append(out, m)
		}
	}
	return out
}

// waitAgree polls every staying node (and with withLeaving the leaving
// ones that answer) (CLUSTER NODES and CLUSTER INFO:
// the server offers no event for it) with a growing interval until each
// knows every other staying node and, once they were forgotten, none of
// the leaving ones, none is in
// handshake, and with full set: cluster_state is ok, every slot is served,
// no slot is open and all agree on who serves which. Bounded by wait_timeout.
func (r *run) waitAgree(ctx context.Context, what string, full bool) error {
	staying := r.staying()
	if r.withLeaving {
		for _, m := range r.plan.leaving {
			if m.client != nil && m.connErr == nil {
				staying = append(staying, m)
			}
		}
	}
	leaving := map[string]bool{}
	if r.forgotten {
		for _, m := range r.plan.leaving {
			leaving[viewID(m)] = true
		}
	}
	deadline := time.Now().Add(time.Duration(r.opts.waitTimeout()) * time.Second)
	delay := 10 * time.Millisecond
	for {
		why, err := agreed(ctx, staying, leaving, full)
		if err != nil {
			return err
		}
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster did not %s within wait_timeout (%d s): %s", what, r.opts.waitTimeout(), why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if delay *= 2; delay > 500*time.Millisecond {
			delay = 500 * time.Millisecond
		}
	}
}

// agreed says why the staying nodes do not agree yet ("" when they do).
func agreed(ctx context.Context, staying []*member, leaving map[string]bool, full bool) (string, error) {
	ids := map[string]bool{}
	for _, m := range staying {
		if err := m.refresh(ctx); err != nil {
			return "", err
		}
		ids[m.id()] = true
	}
	first := ""
	for _, m := range staying {
		known := map[string]bool{}
		for _, k := range m.view.Nodes {
			known[k.ID] = true
			if k.Has("handshake") {
				return fmt.Sprintf("%s is still in handshake with %s", m.name(), k.Name()), nil
			}
			if leaving[k.ID] {
				return fmt.Sprintf("%s still knows %s", m.name(), k.Name()), nil
			}
		}
		for id := range ids {
			if !known[id] {
				return fmt.Sprintf("%s does not know node %s yet", m.name(), id), nil
			}
		}
		if !full {
			continue
		}
		if st := m.info.State; st != "ok" {
			return fmt.Sprintf("%s reports cluster_state:%s", m.name(), st), nil
		}
		if u := m.view.Uncovered(); len(u) > 0 {
			return fmt.Sprintf("%s sees %d slot ranges unserved", m.name(), len(u)), nil
		}
		fp := slotMap(m.view)
		if fp == "" {
			return fmt.Sprintf("%s has an open slot", m.name()), nil
		}
		if first == "" {
			first = fp
		} else if fp != first {
			return fmt.Sprintf("%s does not agree with the others on who serves which slot yet", m.name()), nil
		}
	}
	return "", nil
}

// slotMap is a view's slot owners as one string ("" when a slot is open).
func slotMap(v *topology.ClusterView) string {
	var parts []string
	for _, n := range v.Nodes {
		if len(n.Open) > 0 {
			return ""
		}
		if n.SlotCount() > 0 {
			parts = append(parts, n.ID+" "+topology.Ranges(n.Slots))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ";")
}

// do sends one command to a node and turns a failure into a sentence.
func do(ctx context.Context, m *member, cmd valkey.Completed) error {
	err := m.client.Do(ctx, cmd).Error()
	if err != nil {
		var verr *valkey.ValkeyError
		what := strings.Join(cmd.Commands()[:min(2, len(cmd.Commands()))], " ")
		if errors.As(err, &verr) {
			return fmt.Errorf("%s on %s failed: %s", what, m.name(), verr.Error())
		}
		return fmt.Errorf("%s on %s failed: %w", what, m.name(), err)
	}
	return nil
}
