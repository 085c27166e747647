package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/topology"
)

// member is one node: listed (spec set), or known to the cluster only.
type member struct {
	spec  *NodeSpec // nil for a node the cluster knows but nodes does not list
	index int       // position in nodes (-1 when unlisted)
	addr  string    // host:port the module reaches it at
	host  string    // the host it counts as for placing replicas
	ip    string    // the IP other nodes reach it at (CLUSTER MEET needs one)
	port  int

	client  valkey.Client
	connErr error
	enabled bool  // cluster_enabled:1
	keys    int64 // DBSIZE
	view    *topology.ClusterView
	info    *topology.ClusterInfo
	repl    *topology.Replication // INFO replication, as of the last refresh
}

func (m *member) id() string {
	if m.view == nil {
		return ""
	}
	return m.view.Self().ID
}

// bare: knows no other node and serves no slot (a node that never joined,
// or was reset).
func (m *member) bare() bool {
	return m.view != nil && len(m.view.Nodes) == 1 && m.view.Self().SlotCount() == 0 && len(m.view.Self().Open) == 0
}

func (m *member) name() string {
	if m.spec != nil {
		return m.spec.Address()
	}
	return m.addr
}

// state is what the module read: every listed node, the cluster they
// belong to (nil when creating) and the cluster's nodes nobody listed.
type state struct {
	listed   []*member
	byID     map[string]*member // reachable nodes by node id
	ref      *member            // the listed member whose view is the cluster's (nil: no cluster)
	unlisted []*member          // members of the cluster not in nodes
}

func (s *state) close() {
	for _, m := range append(append([]*member{}, s.listed...), s.unlisted...) {
		if m.client != nil {
			m.client.Close()
		}
	}
}

// nodeOptions are the connection options for one node.
func (o *Options) nodeOptions(host string, port int) *conn.Options {
	c := o.Options
	c.LoginHost, c.LoginPort = host, port
	return &c
}

// read connects to a node and reads its cluster state in one round trip.
func (o *Options) read(ctx context.Context, m *member) {
	m.client, m.connErr = conn.Open(o.nodeOptions(hostOf(m.addr), m.port))
	if m.connErr != nil {
		return
	}
	c := m.client
	r := c.DoMulti(ctx, c.B().Info().Section("cluster").Build(), c.B().Dbsize().Build())
	text, err := r[0].ToString()
	if err != nil {
		m.connErr = fmt.Errorf("INFO cluster failed: %w", err)
		return
	}
	m.enabled = conn.ParseInfo(text)["cluster_enabled"] == "1"
	if m.keys, err = r[1].AsInt64(); err != nil {
		m.connErr = fmt.Errorf("DBSIZE failed: %w", err)
		return
	}
	if !m.enabled {
		return
	}
	m.connErr = m.refresh(ctx)
}

// refresh rereads CLUSTER NODES and CLUSTER INFO.
func (m *member) refresh(ctx context.Context) error {
	c := m.client
	r := c.DoMulti(ctx, c.B().ClusterNodes().Build(), c.B().ClusterInfo().Build(), c.B().Info().Section("replication").Build())
	nodes, err := r[0].ToString()
	if err != nil {
		return fmt.Errorf("CLUSTER NODES failed: %w", err)
	}
	v, err := topology.ParseClusterNodes(strings.TrimPrefix(nodes, verbatimText))
	if err != nil {
		return fmt.Errorf("refusing the reply of %s: %w", m.name(), err)
	}
	text, err := r[1].ToString()
	if err != nil {
		return fmt.Errorf("CLUSTER INFO failed: %w", err)
	}
	info, err := topology.ParseClusterInfo(strings.TrimPrefix(text, verbatimText))
	if err != nil {
		return fmt.Errorf("refusing the reply of %s: %w", m.name(), err)
	}
	text, err = r[2].ToString()
	if err != nil {
		return fmt.Errorf("INFO replication failed: %w", err)
	}
	repl, err := topology.ParseReplication(strings.TrimPrefix(text, verbatimText))
	if err != nil {
		return fmt.Errorf("refusing the reply of %s: %w", m.name(), err)
	}
	m.view, m.info, m.repl = v, info, repl
	return nil
}

// verbatimText starts a RESP3 verbatim string of format txt, which
// valkey-go leaves in the text it returns.
const verbatimText = "txt:"

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}

// refusal is a refusal of the declared layout, found before anything was
// sent but reads.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

func refuse(format string, args ...any) error { return &refusal{fmt.Sprintf(format, args...)} }

// gather reads every listed node, finds the cluster they belong to, and
// reads the cluster's other nodes.
func (o *Options) gather(ctx context.Context) (*state, error) {
	s := &state{byID: map[string]*member{}}
	for i := range o.Nodes {
		n := &o.Nodes[i]
		m := &member{spec: n, index: i, addr: n.Address(), host: n.Host, port: n.port()}
		ips, err := net.DefaultResolver.LookupHost(ctx, n.Host)
		if err != nil || len(ips) == 0 {
			return s, fmt.Errorf("option \"nodes[%d].host\": cannot resolve %q", i, n.Host)
		}
		m.ip = ips[0]
		o.read(ctx, m)
		s.listed = append(s.listed, m)
		if m.connErr == nil && m.view != nil {
			if other, dup := s.byID[m.id()]; dup {
				return s, fmt.Errorf("option \"nodes\": %s and %s are the same server (node id %s); expected each node once", other.name(), m.name(), m.id())
			}
			s.byID[m.id()] = m
		}
	}
	// Unreachable listed nodes are judged once the cluster is known: a
	// failed member is reported, an unknown one stops the task.
	if err := s.findCluster(); err != nil {
		return s, err
	}
	for _, m := range s.listed {
		if m.connErr == nil && !m.enabled {
			return s, refuse("node %s runs without cluster-enabled yes; expected every node started with cluster-enabled yes", m.name())
		}
		if m.connErr == nil {
			continue
		}
		if s.ref != nil {
			if k := s.ref.view.ByID(s.idAt(m)); k != nil && k.Failed() {
				continue // reported as failed, the cluster's business
			}
		}
		return s, fmt.Errorf("cannot read node %s: %w", m.name(), m.connErr)
	}
	if s.ref == nil {
		return s, nil
	}
	// The cluster's nodes that nodes does not list: read them too (a
	// secret goes to each only after conn has verified it).
	for _, k := range s.ref.view.Nodes {
		if s.byID[k.ID] != nil || s.listedAt(k.IP, k.Port) != nil {
			continue
		}
		m := &member{index: -1, addr: k.Addr(), host: k.IP, ip: k.IP, port: k.Port}
		if k.Addr() != "" && !k.Failed() && !k.Has("handshake") {
			o.read(ctx, m)
		} else {
			m.connErr = errors.New("the cluster holds it as failed or without address")
		}
		if m.connErr == nil && m.id() != k.ID {
			m.connErr = fmt.Errorf("the server at %s is node %s, not %s", m.addr, m.id(), k.ID)
			m.client.Close()
			m.client = nil
		}
		if m.connErr == nil {
			s.byID[k.ID] = m
		} else {
			m.view = &topology.ClusterView{Nodes: []topology.ClusterNode{k}}
		}
		s.unlisted = append(s.unlisted, m)
	}
	return s, nil
}

// idAt is the id the cluster knows a listed node by (by its address when
// the node itself did not answer).
func (s *state) idAt(m *member) string {
	if m.view != nil {
		return m.id()
	}
	if s.ref == nil {
		return ""
	}
	for _, k := range s.ref.view.Nodes {
		if k.IP == m.ip && k.Port == m.port {
			return k.ID
		}
	}
	return ""
}

func (s *state) listedAt(ip string, port int) *member {
	for _, m := range s.listed {
		if m.ip == ip && m.port == port {
			return m
		}
	}
	return nil
}

// findCluster groups the listed nodes that already belong to a cluster by
// the node ids they know. The cluster is the group holding the most listed
// nodes; a listed node in another group, or a cluster most of whose
// slot-serving primaries are not listed, is another cluster and refused.
func (s *state) findCluster() error {
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if p, ok := parent[x]; ok && p != x {
			r := find(p)
			parent[x] = r
			return r
		}
		parent[x] = x
		return x
	}
	var joined []*member
	for _, m := range s.listed {
		if m.view == nil || m.bare() {
			continue
		}
		joined = append(joined, m)
		for _, k := range m.view.Nodes {
			parent[find(k.ID)] = find(m.id())
		}
	}
	if len(joined) == 0 {
		return nil
	}
	groups := map[string][]*member{}
	for _, m := range joined {
		root := find(m.id())
		groups[root] = append(groups[root], m)
	}
	roots := make([]string, 0, len(groups))
	for r := range groups {
		roots = append(roots, r)
	}
	sort.Slice(roots, func(a, b int) bool {
		ga, gb := groups[roots[a]], groups[roots[b]]
		if len(ga) != len(gb) {
			return len(ga) > len(gb)
		}
		return ga[0].index < gb[0].index
	})
	main := groups[roots[0]]
	if len(roots) > 1 {
		other := groups[roots[1]][0]
		return refuse("node %s already belongs to another cluster (it knows %d nodes, none of them in the cluster of %s); expected nodes of one cluster or bare nodes", other.name(), len(other.view.Nodes), main[0].name())
	}
	// The reference view: the listed member that knows the most nodes.
	s.ref = main[0]
	for _, m := range main {
		if len(m.view.Nodes) > len(s.ref.view.Nodes) {
			s.ref = m
		}
	}
	serving, listed := 0, 0
	for _, k := range s.ref.view.Nodes {
		if k.SlotCount() == 0 {
			continue
		}
		serving++
		if s.byID[k.ID] != nil || s.listedAt(k.IP, k.Port) != nil {
			listed++
		}
	}
	if serving > 0 && listed*2 <= serving {
		return refuse("node %s already belongs to another cluster (%d of its %d slot-serving primaries are not in nodes); expected nodes of one cluster or bare nodes", s.ref.name(), serving-listed, serving)
	}
	return nil
}
