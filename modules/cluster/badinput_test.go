package cluster

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

// Every refusal: the exact sentence, changed=false, and every node exactly
// as it was (CLUSTER NODES of each, keys included).
func TestRefusals(t *testing.T) {
	six := testserver.StartCluster(t, 6)
	// Six nodes on one host: every replica would share its primary's host.
	// Four on one host and two on another: one primary is left without a
	// replica on another host.
	var oneHost, twoHosts []*testserver.ClusterNode
	for i := 0; i < 6; i++ {
		oneHost = append(oneHost, testserver.StartClusterNode(t, "127.0.0.1"))
		twoHosts = append(twoHosts, testserver.StartClusterNode(t, testserver.ClusterHosts[i/4]))
	}
	plain := testserver.Start(t) // no cluster-enabled
	// A formed cluster of three primaries.
	other := testserver.StartCluster(t, 3)
	mod.CallOK(t, task(other, map[string]any{"replicas": 0}))
	other2 := testserver.StartCluster(t, 3)
	mod.CallOK(t, task(other2, map[string]any{"replicas": 0}))

	// A key on a bare node (DEBUG POPULATE writes below the cluster's
	// slot checks, as an RDB loaded at start would).
	withKeys := testserver.StartCluster(t, 5)
	withKeys = append(withKeys, testserver.StartClusterNode(t, "127.0.0.3", "enable-debug-command yes"))
	withKeys[5].CLI("DEBUG", "POPULATE", "1")
	require.Equal(t, "1", withKeys[5].CLI("DBSIZE"))

	withPlain := append(append([]any{}, nodeArgs(six[:5])...), map[string]any{"host": "127.0.0.1", "port": plain.Port})
	dup := append(nodeArgs(six), map[string]any{"host": six[0].IP, "port": six[0].Port})
	sameServer := append(nodeArgs(six), map[string]any{"host": "localhost", "port": six[0].Port})
	stolen := append(nodeArgs(six[:5]), map[string]any{"host": other[1].IP, "port": other[1].Port})

	all := append(append(append(append(append([]*testserver.ClusterNode{}, six...), oneHost...), twoHosts...), other...), withKeys...)
	all = append(all, other2...)
	for _, c := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"listed twice", map[string]any{"nodes": dup},
			fmt.Sprintf("option \"nodes\": nodes[0] and nodes[6] are both %s; expected each node once; nothing was changed", six[0].Addr)},
		{"same server by two names", map[string]any{"nodes": sameServer},
			fmt.Sprintf("option \"nodes\": %s and localhost:%d are the same server (node id %s); expected each node once; nothing was changed", six[0].Addr, six[0].Port, view(t, six[0]).Self().ID)},
		{"fewer than 3 primaries", task(six[:4], nil),
			"the layout has 2 primaries (4 nodes, replicas: 1); expected at least 3; nothing was changed"},
		{"fewer than 3 primaries given", task(six, map[string]any{"nodes": []any{
			map[string]any{"host": six[0].IP, "port": six[0].Port, "initial_role": "primary"},
			map[string]any{"host": six[1].IP, "port": six[1].Port, "initial_role": "primary"},
			map[string]any{"host": six[2].IP, "port": six[2].Port}}}),
			"the layout has 2 primaries (3 nodes, replicas: 1); expected at least 3; nothing was changed"},
		{"replica on its primary's host", task(oneHost, nil),
			fmt.Sprintf("replica %s would share host \"127.0.0.1\" with its primary, and a primary with its only replica on one host loses the shard with the host; expected a primary on another host; nothing was changed", oneHost[3].Addr)},
		{"primary left without a replica off its host", task(twoHosts, nil),
			fmt.Sprintf("the layout leaves primary %s without a replica on another host (replicas: 1); expected nodes on enough hosts to keep each primary's replicas off its host; nothing was changed", twoHosts[1].Addr)},
		{"keys when creating", task(withKeys, nil),
			fmt.Sprintf("node %s holds 1 keys; expected empty nodes to create a cluster from; nothing was changed", withKeys[5].Addr)},
		{"no cluster-enabled", map[string]any{"nodes": withPlain},
			fmt.Sprintf("node %s runs without cluster-enabled yes; expected every node started with cluster-enabled yes; nothing was changed", plain.Addr)},
		{"a node of another cluster", map[string]any{"nodes": stolen},
			fmt.Sprintf("node %s already belongs to another cluster (2 of its 3 slot-serving primaries are not in nodes); expected nodes of one cluster or bare nodes; nothing was changed", other[1].Addr)},
		{"two clusters", task(append(append([]*testserver.ClusterNode{}, other...), other2...), map[string]any{"replicas": 0}),
			fmt.Sprintf("node %s already belongs to another cluster (it knows 3 nodes, none of them in the cluster of %s); expected nodes of one cluster or bare nodes; nothing was changed", other2[0].Addr, other[0].Addr)},
		{"login_host", task(six, map[string]any{"login_host": "127.0.0.1"}),
			"options \"login_host\", \"login_port\" and \"login_unix_socket\" are not used by valkey_cluster: list every node in \"nodes\"; nothing was changed"},
		{"empty nodes", map[string]any{"nodes": []any{}},
			"option \"nodes\": the list is empty; expected every node of the cluster; nothing was changed"},
		{"replicas out of range", task(six, map[string]any{"replicas": -1}),
			"option \"replicas\": -1 is out of range; expected 0-16 replicas per primary; nothing was changed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := snapshot(t, all)
			keys := withKeys[5].CLI("DBSIZE")
			res, _ := mod.Call(t, c.args)
			require.True(t, res.Failed, "the task did not fail: %s", res.Msg)
			require.False(t, res.Changed)
			require.Equal(t, c.want, res.Msg)
			require.Equal(t, before, snapshot(t, all), "a node changed")
			require.Equal(t, keys, withKeys[5].CLI("DBSIZE"))
		})
	}
}
