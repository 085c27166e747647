package audit

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/directives"
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

const (
	sentinelAdminPassword = "sentinel-admin-Pw-3f9d"
	sentinelPeerPassword  = "sentinel-peer-Pw-81aa"
	sentinelAuthPassword  = "sentinel-auth-Pw-c4e2"
)

// hardenedSentinel is a real Sentinel that passes every Sentinel rule one
// Sentinel can pass alone (VK-084 needs three): default user off, its own
// admin, peer login, a monitor with its own user, scripts denied.
func hardenedSentinel(t *testing.T) *Gathered {
	t.Helper()
	p := testserver.Start(t)
	s := testserver.StartSentinel(t,
		"user default off",
		"user admin on >"+sentinelAdminPassword+" ~* &* +@all",
		"sentinel sentinel-user peer",
		"sentinel sentinel-pass "+sentinelPeerPassword,
		"sentinel deny-scripts-reconfig yes",
		"sentinel monitor m 127.0.0.1 "+strconv.Itoa(p.Port)+" 1",
		"sentinel auth-user m sentinel",
		"sentinel auth-pass m "+sentinelAuthPassword)
	return gatherServer(t, s, "admin", sentinelAdminPassword)
}

// openSentinel is a real Sentinel left as its defaults and worse: no
// password, scripts reconfigurable, no peer or monitor login.
func openSentinel(t *testing.T) *Gathered {
	t.Helper()
	p := testserver.Start(t)
	s := testserver.StartSentinel(t, "sentinel deny-scripts-reconfig no", "sentinel monitor m 127.0.0.1 "+strconv.Itoa(p.Port)+" 1")
	return gatherServer(t, s, "", "")
}

// sentinelTrio is a primary watched by three real Sentinels with quorum 2:
// the facts of the first once it saw the two others (its +sentinel
// events), then again after SENTINEL SET m quorum 1 on it.
func sentinelTrio(t *testing.T) (majority, minority *Gathered) {
	t.Helper()
	g := testserver.StartGroup(t, 0, 3)
	events := g.Sentinels[0].Subscribe("+sentinel")
	for _, s := range g.Sentinels {
		for _, args := range [][]string{{"SENTINEL", "MONITOR", "m", "127.0.0.1", strconv.Itoa(g.Primary.Port), "2"},
			{"SENTINEL", "SET", "m", "down-after-milliseconds", "5000"}} {
			s.CLI(args...)
		}
	}
	for i := 0; i < 2; i++ {
		events.Wait(t, "+sentinel", 30*time.Second)
	}
	majority = gatherServer(t, g.Sentinels[0], "", "")
	g.Sentinels[0].CLI("SENTINEL", "SET", "m", "quorum", "1")
	return majority, gatherServer(t, g.Sentinels[0], "", "")
}

// The Sentinel rules run on a Sentinel only, and a Sentinel runs no data
// node rule; the messages name the monitor and never a password.
func TestSentinelRuleMessages(t *testing.T) {
	pol := baseline(t)
	open := openSentinel(t)
	out := statuses(pol, open)
	require.Equal(t, "sentinel-user and sentinel-pass not set: this Sentinel logs in to the other Sentinels as their default user", out["VK-081"].Message)
	require.Regexp(t, `^monitor m has no auth-user or auth-pass \(.*sentinel\.conf\)$`, out["VK-082"].Message)
	require.Regexp(t, `sentinel\.conf: sentinel deny-scripts-reconfig no$`, out["VK-080"].Message)
	require.Equal(t, "monitor m is watched by 1 Sentinel", out["VK-084"].Message)
	for _, o := range out {
		if !o.Rule.AppliesTo(policy.TargetSentinel) {
			require.Equal(t, policy.Skip, o.Status, o.Rule.ID)
			require.Equal(t, "not applicable: a rule for data nodes, and this is a Sentinel", o.Message)
		}
	}
	hardened := hardenedSentinel(t)
	require.Contains(t, hardened.Secrets, sentinelPeerPassword) // masked wherever it could be printed
	require.Equal(t, "set", hardened.Facts.Sentinel.Config["sentinel-pass"])
	data := statuses(pol, gatherServer(t, testserver.Start(t), "", ""))
	require.Equal(t, "not applicable: a rule for Sentinels", data["VK-079"].Message)
}

// A Sentinel's config file (rewritten by Sentinel itself) passes the
// config check valkey_audit runs on every file it reads (VK-000).
func TestSentinelConfigPassesTheConfigCheck(t *testing.T) {
	g := hardenedSentinel(t)
	require.NotNil(t, g.Facts.Config)
	require.Empty(t, CheckConfig(g.Facts.Config, directives.Version{}, g.Facts.Runtime))
}
