package audit

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/policy"
	"github.com/valkeyops/secure/internal/testserver"
)

// clusterPair is a real cluster of two nodes: a primary on 127.0.0.1 that
// serves every slot (slots: false leaves them unassigned) and, when
// replicaIP is set, a replica of it on replicaIP. It returns the facts
// gathered from the primary.
func clusterPair(t *testing.T, slots bool, replicaIP string) *Gathered {
	t.Helper()
	p := testserver.StartClusterNode(t, "127.0.0.1")
	var replicas []*testserver.ClusterNode
	if replicaIP != "" {
		replicas = append(replicas, testserver.StartClusterNode(t, replicaIP))
	}
	testserver.FormCluster(t, p, slots, replicas...)
	return gatherServer(t, p.Server, "", "")
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

// A cluster replica's replication is the cluster's (CLUSTER REPLICATE, in
// nodes.conf): its config file's missing replicaof line is no VK-031 (the
// lab's cluster scenario reported it on every replica).
func TestClusterReplicaHasNoReplicaOfFinding(t *testing.T) {
	p := testserver.StartClusterNode(t, "127.0.0.1")
	r := testserver.StartClusterNode(t, "127.0.0.2")
	testserver.FormCluster(t, p, true, r)
	c, err := conn.Open(&conn.Options{LoginHost: r.IP, LoginPort: r.Port})
	require.NoError(t, err)
	defer c.Close()
	g, err := Gather(context.Background(), Source{Client: c})
	require.NoError(t, err)
	topo, findings := CheckTopology(g)
	require.Equal(t, "replica", topo.Role)
	require.NotEmpty(t, topo.ReplicaOf.Runtime, "the cluster replica reports its primary as replicaof")
	require.Empty(t, findings)
}
