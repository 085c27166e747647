package audit

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/policy"
	"github.com/valkeyops/secure/internal/testserver"
	"github.com/valkeyops/secure/internal/topology"
)

// clusterPair is a real cluster of two nodes: a primary on 127.0.0.1 that
// serves every slot (slots: false leaves them unassigned) and, when
// replicaIP is set, a replica of it on replicaIP. It returns the facts
// gathered from the primary.
func clusterPair(t *testing.T, slots bool, replicaIP string) *Gathered {
	t.Helper()
	p := testserver.StartClusterNode(t, "127.0.0.1")
	if slots {
		p.CLI("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
	}
	if replicaIP != "" {
		r := testserver.StartClusterNode(t, replicaIP)
		pid := strings.TrimSpace(p.CLI("CLUSTER", "MYID"))
		rid := strings.TrimSpace(r.CLI("CLUSTER", "MYID"))
		r.CLI("CLUSTER", "MEET", p.IP, strconv.Itoa(p.Port), strconv.Itoa(p.BusPort))
		waitCluster(t, r, func(v *topology.ClusterView) bool {
			k := v.ByID(pid)
			return k != nil && !k.Has("handshake")
		})
		r.CLI("CLUSTER", "REPLICATE", pid)
		waitCluster(t, p, func(v *topology.ClusterView) bool {
			k := v.ByID(rid)
			return k != nil && k.PrimaryID == pid && !k.Failed() && !k.Has("handshake")
		})
	}
	if slots {
		waitCluster(t, p, func(*topology.ClusterView) bool {
			return strings.Contains(p.CLI("CLUSTER", "INFO"), "cluster_state:ok")
		})
	}
	return gatherServer(t, p.Server, "", "")
}

// waitCluster polls a node's CLUSTER NODES until cond holds (bounded; the
// server has no event for it).
func waitCluster(t *testing.T, n *testserver.ClusterNode, cond func(*topology.ClusterView) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := topology.ParseClusterNodes(n.CLI("CLUSTER", "NODES") + "\n")
		if err != nil {
			t.Fatal(err)
		}
		if cond(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the cluster did not get there in 30s:\n%s", n.Addr, n.CLI("CLUSTER", "NODES"))
		}
		time.Sleep(20 * time.Millisecond) // poll interval; the event is the changed CLUSTER NODES
	}
}

// The cluster rules say what is wrong, by address, and are skipped on a
// server without cluster-enabled.
func TestClusterRuleMessages(t *testing.T) {
	pol := baseline(t)
	same := statuses(pol, clusterPair(t, true, "127.0.0.1"))
	require.Equal(t, policy.Fail, same["VK-043"].Status)
	require.Regexp(t, `^127\.0\.0\.1:\d+ replicates 127\.0\.0\.1:\d+ on 127\.0\.0\.1$`, same["VK-043"].Message)
	bare := statuses(pol, clusterPair(t, false, ""))
	require.Equal(t, "cluster_state:fail", bare["VK-040"].Message)
	require.Equal(t, "slots served by no node: 0-16383", bare["VK-041"].Message)
	standalone := statuses(pol, gatherServer(t, testserver.Start(t), "", ""))
	for _, id := range []string{"VK-040", "VK-041", "VK-042", "VK-043"} {
		require.Equal(t, policy.Skip, standalone[id].Status, id)
		require.Contains(t, standalone[id].Message, "not a cluster node")
	}
}
