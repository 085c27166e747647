package cluster

import (
	"strings"
	"testing"

	"github.com/valkeyops/secure/internal/ansible/ansibletest"
	"github.com/valkeyops/secure/internal/testserver"
	"github.com/valkeyops/secure/internal/topology"
)

// mod runs valkey_cluster in tests as the binary does (ansibletest.Module).
var mod = ansibletest.Module[Fields]{Name: "valkey_cluster", Main: Main}

// nodeArgs lists nodes as the nodes option.
func nodeArgs(nodes []*testserver.ClusterNode) []any {
	out := make([]any, len(nodes))
	for i, n := range nodes {
		out[i] = map[string]any{"host": n.IP, "port": n.Port}
	}
	return out
}

// task is the arguments for nodes plus args.
func task(nodes []*testserver.ClusterNode, args map[string]any) map[string]any {
	return ansibletest.Args(map[string]any{"nodes": nodeArgs(nodes), "wait_timeout": 60}, args)
}

// view is a node's own CLUSTER NODES, parsed.
func view(t *testing.T, n *testserver.ClusterNode) *topology.ClusterView {
	t.Helper()
	v, err := topology.ParseClusterNodes(n.CLI("CLUSTER", "NODES") + "\n")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// clusterState is a node's cluster_state (CLUSTER INFO).
func clusterState(t *testing.T, n *testserver.ClusterNode) string {
	t.Helper()
	c, err := topology.ParseClusterInfo(n.CLI("CLUSTER", "INFO"))
	if err != nil {
		t.Fatal(err)
	}
	return c.State
}

// snapshot is every node's CLUSTER NODES without the volatile fields
// (ping/pong times, link state), to prove a task changed nothing.
func snapshot(t *testing.T, nodes []*testserver.ClusterNode) string {
	t.Helper()
	var b strings.Builder
	for _, n := range nodes {
		v := view(t, n)
		for _, k := range v.Nodes {
			b.WriteString(n.Addr + " sees " + k.ID + " " + k.Addr() + " " + strings.Join(k.Flags, ",") + " " + k.PrimaryID + " " + topology.Ranges(k.Slots) + "\n")
		}
	}
	return b.String()
}

// hostByAddr maps each node's address to its host (IP).
func hostByAddr(nodes []*testserver.ClusterNode) map[string]string {
	m := map[string]string{}
	for _, n := range nodes {
		m[n.Addr] = n.IP
	}
	return m
}
