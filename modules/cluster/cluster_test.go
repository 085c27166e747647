package cluster

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
	"github.com/valkeyops/secure/internal/topology"
)

// assertHealthy: state ok on every node, every slot served, 3 primaries
// with one replica each, none on its primary's host.
func assertHealthy(t *testing.T, nodes []*testserver.ClusterNode, primaries int) {
	t.Helper()
	for _, n := range nodes {
		require.Equal(t, "ok", clusterState(t, n), "cluster_state on %s", n.Addr)
	}
	v := view(t, nodes[0])
	require.Empty(t, v.Uncovered(), "uncovered slots")
	h := v.Health(nil)
	require.Empty(t, h.SameHost, "a replica on its primary's host")
	require.Empty(t, h.WithoutReplica, "a shard without replica")
	got := 0
	for _, k := range v.Nodes {
		if k.IsPrimary() && k.SlotCount() > 0 {
			got++
		}
	}
	require.Equal(t, primaries, got, "primaries serving slots")
}

func TestCreateIdempotentCheckMode(t *testing.T) {
	// A full sync that starts 2 s late (diskless, delayed): the module must
	// still return only once every replica has its primary's data.
	nodes := testserver.StartCluster(t, 6, "repl-diskless-sync yes", "repl-diskless-sync-delay 2")
	args := task(nodes, nil)

	// Check mode: the plan, and nothing sent but reads.
	before := snapshot(t, nodes)
	check := task(nodes, map[string]any{"_ansible_check_mode": true, "_ansible_diff": true})
	res, f := mod.CallOK(t, check)
	require.True(t, res.Changed)
	require.True(t, f.Plan.Create)
	require.Len(t, f.Plan.Meet, 5)
	require.Len(t, f.Plan.Replicate, 3)
	require.Contains(t, res.Msg, "would create a cluster of 3 primaries")
	require.Len(t, res.Diff, 1)
	require.Contains(t, res.Diff[0].After, "primary 0-5461 (5462 slots)")
	require.Equal(t, before, snapshot(t, nodes), "check mode changed a node")

	res, f = mod.CallOK(t, args)
	require.True(t, res.Changed, res.Msg)
	require.Equal(t, "ok", f.State)
	require.Len(t, f.Nodes, 6)
	require.Empty(t, f.Uncovered)
	assertHealthy(t, nodes, 3)
	// Primaries spread over the three hosts, one each.
	hosts := map[string]int{}
	for _, n := range f.Nodes {
		if n.Role == RolePrimary {
			hosts[n.Host]++
		}
	}
	require.Equal(t, map[string]int{"127.0.0.1": 1, "127.0.0.2": 1, "127.0.0.3": 1}, hosts)
	// Every replica synced already (a rolling restart right after finds each primary a replica to move to).
	for _, n := range nodes {
		info := n.CLI("INFO", "replication")
		if strings.Contains(info, "role:slave") {
			require.Contains(t, info, "master_link_status:up", n.Addr)
			require.Contains(t, info, "master_sync_in_progress:0", n.Addr)
		}
	}

	// Rerun: nothing to do, nothing sent but reads.
	before = snapshot(t, nodes)
	res, f = mod.CallOK(t, args)
	require.False(t, res.Changed, res.Msg)
	require.Empty(t, f.Actions)
	require.Equal(t, before, snapshot(t, nodes))
	_ = topology.ClusterSlots
}
