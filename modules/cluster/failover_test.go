package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
	"github.com/valkeyops/secure/internal/topology"
)

// waitView polls a node's CLUSTER NODES until cond holds (the server has
// no event for a failover; bounded).
func waitView(t *testing.T, n *testserver.ClusterNode, what string, cond func(*topology.ClusterView) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	delay := 10 * time.Millisecond
	for {
		if cond(view(t, n)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60s; %s sees:\n%s", what, n.Addr, n.CLI("CLUSTER", "NODES"))
		}
		time.Sleep(delay) // poll interval; the event is the changed CLUSTER NODES
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

func byAddr(nodes []*testserver.ClusterNode, addr string) *testserver.ClusterNode {
	for _, n := range nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// A primary dies, its replica is promoted: the rerun reports changed=0 and
// the failed node, and when the old primary comes back as a replica, it
// stays one (initial_role is initial only; nothing is pointed back).
func TestFailoverStands(t *testing.T) {
	nodes := testserver.StartCluster(t, 6)
	args := task(nodes, nil)
	callOK(t, args)

	v := view(t, nodes[0])
	var primary, replica *topology.ClusterNode
	for i := range v.Nodes {
		if k := &v.Nodes[i]; k.IsPrimary() && k.SlotCount() > 0 && !k.Myself() {
			primary = k
			break
		}
	}
	require.NotNil(t, primary)
	for i := range v.Nodes {
		if v.Nodes[i].PrimaryID == primary.ID {
			replica = &v.Nodes[i]
		}
	}
	require.NotNil(t, replica)
	// A replica that never synced cannot be elected: wait for its link.
	rep := byAddr(nodes, replica.Addr())
	waitView(t, rep, "the replica's link to its primary", func(*topology.ClusterView) bool {
		return strings.Contains(rep.CLI("INFO", "replication"), "master_link_status:up")
	})
	dead := byAddr(nodes, primary.Addr())
	dead.Kill()
	var watcher *testserver.ClusterNode
	for _, n := range nodes {
		if n != dead && n.Addr != replica.Addr() {
			watcher = n
			break
		}
	}
	waitView(t, watcher, "the replica's promotion", func(v *topology.ClusterView) bool {
		k, old := v.ByID(replica.ID), v.ByID(primary.ID)
		return k != nil && k.IsPrimary() && k.SlotCount() == primary.SlotCount() && old != nil && old.Has("fail")
	})
	waitView(t, watcher, "cluster_state:ok", func(*topology.ClusterView) bool { return clusterState(t, watcher) == "ok" })

	before := snapshot(t, liveNodes(nodes, dead))
	res, f := callOK(t, args)
	require.False(t, res.Changed, res.Msg)
	require.Equal(t, []string{primary.Addr()}, f.Failed)
	require.Contains(t, res.Warnings, fmt.Sprintf("cluster node %s is failing", primary.Addr()))
	require.Equal(t, []string{replica.Addr()}, f.WithoutReplica, "the promoted replica's shard has no replica while the old primary is down")
	require.Equal(t, before, snapshot(t, liveNodes(nodes, dead)))

	// The old primary comes back and rejoins as a replica of the promoted one.
	dead.Restart()
	waitView(t, dead, "the old primary rejoining as a replica", func(v *topology.ClusterView) bool {
		return v.Self().PrimaryID == replica.ID
	})
	waitView(t, watcher, "the old primary seen healthy", func(v *topology.ClusterView) bool {
		k := v.ByID(primary.ID)
		return k != nil && !k.Failed() && k.PrimaryID == replica.ID
	})
	before = snapshot(t, nodes)
	res, f = callOK(t, args)
	require.False(t, res.Changed, res.Msg)
	require.Empty(t, f.Failed)
	require.Equal(t, before, snapshot(t, nodes), "the rerun pointed something back")
	require.Equal(t, replica.ID, view(t, dead).Self().PrimaryID)
}

func liveNodes(nodes []*testserver.ClusterNode, except *testserver.ClusterNode) []*testserver.ClusterNode {
	var out []*testserver.ClusterNode
	for _, n := range nodes {
		if n != except {
			out = append(out, n)
		}
	}
	return out
}
