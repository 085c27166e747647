package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible/ansibletest"
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
	mod.CallOK(t, args)

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
	// Gossip reaches the nodes one by one: every live node must have seen the
	// promotion before the snapshot, or a later gossip message looks like the rerun's doing.
	for _, n := range liveNodes(nodes, dead) {
		waitView(t, n, "the replica's promotion", func(v *topology.ClusterView) bool {
			k, old := v.ByID(replica.ID), v.ByID(primary.ID)
			return k != nil && k.IsPrimary() && k.SlotCount() == primary.SlotCount() && old != nil && old.Has("fail")
		})
	}
	waitView(t, watcher, "cluster_state:ok", func(*topology.ClusterView) bool { return clusterState(t, watcher) == "ok" })

	before := snapshot(t, liveNodes(nodes, dead))
	res, f := mod.CallOK(t, args)
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
	for _, n := range nodes {
		waitView(t, n, "the old primary seen healthy, as a replica", func(v *topology.ClusterView) bool {
			k := v.ByID(primary.ID)
			return k != nil && !k.Failed() && k.PrimaryID == replica.ID
		})
	}
	before = snapshot(t, nodes)
	res, f = mod.CallOK(t, args)
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

// A slot left open by an interrupted move (migrating on its owner,
// importing on another primary) is closed by valkey-cli --cluster fix; the
// rerun reports nothing to do.
func TestOpenSlotClosed(t *testing.T) {
	nodes := testserver.StartCluster(t, 3)
	args := task(nodes, map[string]any{"replicas": 0})
	mod.CallOK(t, args)
	owner, other := nodes[0], nodes[1]
	ownerID, otherID := view(t, owner).Self().ID, view(t, other).Self().ID
	require.Contains(t, topology.Ranges(view(t, owner).Self().Slots), "0-")
	require.Equal(t, "OK", other.CLI("CLUSTER", "SETSLOT", "5", "IMPORTING", ownerID))
	require.Equal(t, "OK", owner.CLI("CLUSTER", "SETSLOT", "5", "MIGRATING", otherID))

	res, f := mod.CallOK(t, ansibletest.Args(args, map[string]any{"_ansible_check_mode": true}))
	require.True(t, res.Changed)
	require.ElementsMatch(t, []string{"5@" + owner.Addr, "5@" + other.Addr}, f.Plan.CloseOpenSlots)
	require.NotEmpty(t, view(t, owner).Self().Open, "check mode closed the slot")

	res, _ = mod.CallOK(t, args)
	require.True(t, res.Changed, res.Msg)
	for _, n := range nodes {
		require.Empty(t, view(t, n).Self().Open, "slot still open on %s", n.Addr)
	}
	res, _ = mod.CallOK(t, args)
	require.False(t, res.Changed, res.Msg)
}

// A dead node that is no longer listed is forgotten by every node with
// remove_unlisted (after its replica took its slots over).
func TestForgetDeadNode(t *testing.T) {
	nodes := testserver.StartCluster(t, 6)
	mod.CallOK(t, task(nodes, nil))
	v := view(t, nodes[0])
	var dead *testserver.ClusterNode
	var deadID, replicaID string
	for _, k := range v.Nodes {
		if k.IsPrimary() && k.SlotCount() > 0 && !k.Myself() {
			dead, deadID = byAddr(nodes, k.Addr()), k.ID
		}
	}
	for _, k := range v.Nodes {
		if k.PrimaryID == deadID {
			replicaID = k.ID
			rep := byAddr(nodes, k.Addr())
			waitView(t, rep, "the replica's link", func(*topology.ClusterView) bool {
				return strings.Contains(rep.CLI("INFO", "replication"), "master_link_status:up")
			})
		}
	}
	dead.Kill()
	waitView(t, nodes[0], "the failover", func(v *topology.ClusterView) bool {
		k := v.ByID(replicaID)
		return k != nil && k.IsPrimary() && k.SlotCount() > 0 && v.ByID(deadID).Has("fail")
	})
	live := liveNodes(nodes, dead)
	res, f := mod.CallOK(t, task(live, map[string]any{"remove_unlisted": true}))
	require.True(t, res.Changed, res.Msg)
	require.Contains(t, res.Warnings, fmt.Sprintf("node %s cannot be reached: the other nodes forget it, and it must not be started again with its old nodes.conf", dead.Addr))
	require.Len(t, f.Nodes, 5)
	for _, n := range live {
		require.Nil(t, view(t, n).ByID(deadID), "%s still knows the dead node", n.Addr)
	}
	res, _ = mod.CallOK(t, task(live, map[string]any{"remove_unlisted": true}))
	require.False(t, res.Changed, res.Msg)
}
