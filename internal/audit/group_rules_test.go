package audit

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/policy"
	"github.com/valkeyops/secure/internal/testserver"
)

const (
	groupDefaultPassword = "group-default-Pw-5e1a"
	groupReplPassword    = "group-repl-Pw-0c7b"
)

// replicationGroup is a real primary and replica sharing one aclfile: the
// default user (with a password, for WriteAndWait) and the replication user
// "repl" with replRules. The replica logs in with replicaLogin lines
// (primaryuser, primaryauth; none for a replica that does not
// authenticate, whose primary then must not require it). primaryExtra goes
// to the primary's config. It returns the facts of the primary (once the
// replica acknowledged a write) and of the replica.
func replicationGroup(t *testing.T, replRules string, replicaLogin, primaryExtra []string) (primary, replica *Gathered) {
	t.Helper()
	acl := filepath.Join(t.TempDir(), "users.acl")
	users := "user default on nopass ~* &* +@all\n"
	if len(replicaLogin) > 0 {
		users = "user default on >" + groupDefaultPassword + " ~* &* +@all\n"
	}
	require.NoError(t, os.WriteFile(acl, []byte(users+"user repl on >"+groupReplPassword+" "+replRules+"\n"), 0o640))
	p := testserver.Start(t, append([]string{"aclfile " + acl}, primaryExtra...)...)
	r := testserver.Start(t, append([]string{"aclfile " + acl, "replicaof 127.0.0.1 " + strconv.Itoa(p.Port)}, replicaLogin...)...)
	password := ""
	if len(replicaLogin) > 0 {
		password = groupDefaultPassword
	}
	p.Password, r.Password = password, password
	p.WriteAndWait(1)
	return gatherServer(t, p, "", password), gatherServer(t, r, "", password)
}

// replLogin is how a replica logs in as the replication user.
var replLogin = []string{"primaryuser repl", "primaryauth " + groupReplPassword}

// clusterNode is a lone real cluster node with extra config lines.
func clusterNode(t *testing.T, extra ...string) *Gathered {
	t.Helper()
	return gatherServer(t, testserver.StartClusterNode(t, "127.0.0.1", extra...).Server, "", "")
}

// tlsClusterNode is a lone cluster node with TLS on and tls-cluster as
// given (set at runtime, as an operator's CONFIG SET would).
func tlsClusterNode(t *testing.T, tlsCluster string) *Gathered {
	t.Helper()
	ca, cert, key := writeIssuedCert(t, t.TempDir())
	n := testserver.StartTLSClusterNode(t, "127.0.0.1", testserver.TLSFiles{Cert: cert, Key: key, CA: ca})
	n.CLI("CONFIG", "SET", "tls-cluster", tlsCluster)
	return gatherServer(t, n.Server, "", "")
}

// The replication rules say what is wrong without naming the replication
// user (primaryuser is a secret of the config) or its password.
func TestReplicationRuleMessages(t *testing.T) {
	pol := baseline(t)
	_, wide := replicationGroup(t, "~* &* +@all -@dangerous +psync +replconf +ping", replLogin, nil)
	got := statuses(pol, wide)["VK-077"]
	require.Equal(t, policy.Fail, got.Status)
	require.Equal(t, "the replication user (primaryuser) is granted +@all beyond psync, replconf, ping (from ACL LIST)", got.Message)

	primary, replica := replicationGroup(t, "-@all +psync +replconf +ping", nil, []string{"min-replicas-to-write 0"})
	out := statuses(pol, replica)
	require.Equal(t, policy.Fail, out["VK-076"].Status)
	require.Equal(t, "primaryauth is not set", out["VK-076"].Message)
	require.Equal(t, policy.Skip, out["VK-077"].Status)
	require.Equal(t, "not applicable: the server is a replica", statuses(pol, replica)["VK-078"].Message)
	out = statuses(pol, primary)
	require.Equal(t, policy.Fail, out["VK-078"].Status)
	require.Equal(t, "not applicable: the server is a primary", out["VK-076"].Message)

	// A replication user the node does not hold (a primary too: once a
	// failover made it a replica, it logs in with it).
	acl := filepath.Join(t.TempDir(), "users.acl")
	require.NoError(t, os.WriteFile(acl, []byte("user default on nopass ~* &* +@all\n"), 0o640))
	lone := testserver.Start(t, "aclfile "+acl, "primaryuser nobody", "primaryauth x")
	got = statuses(pol, gatherServer(t, lone, "", ""))["VK-077"]
	require.Equal(t, policy.Fail, got.Status)
	require.Contains(t, got.Message, "the user primaryuser names is not an ACL user of this server")
	require.NotContains(t, got.Message, "nobody")
}

func TestClusterConfigRuleMessages(t *testing.T) {
	pol := baseline(t)
	out := statuses(pol, clusterNode(t, "cluster-announce-ip 127.0.0.9"))
	require.Equal(t, policy.Fail, out["VK-046"].Status)
	require.Equal(t, "cluster-announce-ip 127.0.0.9 is not one of the addresses the node binds (127.0.0.1)", out["VK-046"].Message)
	require.Equal(t, policy.Fail, out["VK-045"].Status)
	require.Equal(t, policy.Skip, out["VK-044"].Status)
	out = statuses(pol, tlsClusterNode(t, "no"))
	require.Equal(t, policy.Fail, out["VK-044"].Status)
	require.Equal(t, `tls-cluster is "no"; expected "yes"`, out["VK-044"].Message)
	standalone := statuses(pol, gatherServer(t, testserver.Start(t), "", ""))
	for _, id := range []string{"VK-044", "VK-045", "VK-046"} {
		require.Equal(t, policy.Skip, standalone[id].Status, id)
	}
}
