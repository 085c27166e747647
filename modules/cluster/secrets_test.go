package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/ansible/ansibletest"
	"github.com/valkeyops/secure/internal/testserver"
	"github.com/valkeyops/secure/internal/topology"
	"github.com/valkeyops/secure/internal/x509check/certtest"
)

const clusterPassword = "cluster-admin-pw-7f3a9c"

// tlsCluster starts six TLS nodes (bus and replication over TLS too) that
// require clusterPassword, and returns them with the task arguments that
// reach them over verified TLS.
func tlsCluster(t *testing.T) ([]*testserver.ClusterNode, map[string]any, string) {
	t.Helper()
	dir := t.TempDir()
	ca := certtest.NewCA(t, "cluster test CA")
	leaf := ca.Issue(t, certtest.Options{Names: testserver.ClusterHosts})
	f := testserver.TLSFiles{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "node.crt"), Key: filepath.Join(dir, "node.key")}
	require.NoError(t, os.WriteFile(f.CA, ca.PEM, 0o644))
	require.NoError(t, os.WriteFile(f.Cert, leaf.CertPEM, 0o644))
	require.NoError(t, os.WriteFile(f.Key, leaf.KeyPEM, 0o600))
	var nodes []*testserver.ClusterNode
	var list []any
	for i := 0; i < 6; i++ {
		n := testserver.StartTLSClusterNode(t, testserver.ClusterHosts[i%3], f, "requirepass "+clusterPassword, "masterauth "+clusterPassword)
		n.Password = clusterPassword
		nodes = append(nodes, n)
		list = append(list, map[string]any{"host": n.IP, "port": n.TLSPort})
	}
	args := map[string]any{"nodes": list, "login_password": clusterPassword, "tls": true, "tls_ca_cert": f.CA, "wait_timeout": 60}
	return nodes, args, f.CA
}

// A TLS cluster behind a password: created over verified TLS; the password
// is in no output at any verbosity and with diff; valkey-cli gets it in
// its environment, never on its command line (which every local user can
// read in /proc), and verifies the nodes with the CA.
func TestPasswordTLSCluster(t *testing.T) {
	nodes, args, caFile := tlsCluster(t)
	check := ansibletest.Args(args, map[string]any{"_ansible_check_mode": true, "_ansible_diff": true, "_ansible_verbosity": 4})
	ansibletest.WithJournal(t, check)
	out, _, code := ansibletest.Printed(t, "valkey_cluster", Main, check)
	require.Equal(t, 0, code, out)
	require.NotContains(t, out, clusterPassword)

	apply := ansibletest.Args(args, map[string]any{"_ansible_diff": true, "_ansible_verbosity": 4})
	ansibletest.WithJournal(t, apply)
	out, doc, code := ansibletest.Printed(t, "valkey_cluster", Main, apply)
	require.Equal(t, 0, code, out)
	require.Equal(t, true, doc["changed"], out)
	require.Equal(t, "ok", doc["state"], out)
	require.NotContains(t, out, clusterPassword)
	assertHealthy(t, nodes, 3)
	journal, err := os.ReadFile(apply["journal_path"].(string))
	require.NoError(t, err)
	require.NotContains(t, string(journal), clusterPassword)
	require.Contains(t, string(journal), `"kind":"cluster_node"`)

	// valkey-cli as the module runs it (the runner of its slot moves).
	var opts Options
	req, err := ansible.ParseRequest("valkey_cluster", mustJSON(t, args))
	require.NoError(t, err)
	require.NoError(t, req.Decode(&opts))
	var cmdline, environ []byte
	cliStarted = func(pid int) {
		cmdline, _ = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		environ, _ = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	}
	t.Cleanup(func() { cliStarted = nil })
	text, err := opts.runCLI(context.Background(), "check", nodes[0].IP+":"+strconv.Itoa(nodes[0].TLSPort))
	require.NoError(t, err, text)
	require.Contains(t, text, "[OK] All 16384 slots covered.")
	require.NotEmpty(t, cmdline, "valkey-cli's command line was not read while it ran")
	require.NotContains(t, string(cmdline), clusterPassword)
	require.Contains(t, strings.Split(string(cmdline), "\x00"), "--cacert")
	require.Contains(t, bytes.Split(environ, []byte{0}), []byte("REDISCLI_AUTH="+clusterPassword))
	require.NotContains(t, text, clusterPassword)

	// valkey-cli verifies the nodes: another CA's bundle fails the handshake.
	other := certtest.NewCA(t, "another CA")
	otherFile := filepath.Join(t.TempDir(), "other.crt")
	require.NoError(t, os.WriteFile(otherFile, other.PEM, 0o644))
	_ = caFile
	opts.TLSCACert = otherFile
	_, err = opts.runCLI(context.Background(), "check", nodes[0].IP+":"+strconv.Itoa(nodes[0].TLSPort))
	require.Error(t, err)
	require.NotContains(t, err.Error(), clusterPassword)

	// The argv built never holds the password, whatever the options.
	opts.LoginUser = "admin"
	argv := strings.Join(opts.cliArgv("rebalance", "127.0.0.1:1", "--cluster-use-empty-primaries"), " ")
	require.NotContains(t, argv, clusterPassword)
	require.Contains(t, argv, "--user admin")
	require.Contains(t, opts.cliEnv(), "REDISCLI_AUTH="+clusterPassword)
}

// A process squatting on a listed node's port, answering with a hostile
// CLUSTER NODES line: refused before the password is sent, nothing changed.
func TestSquatterNodeGetsNothing(t *testing.T) {
	nodes := testserver.StartCluster(t, 5)
	hostile := "+" + strings.Repeat("f", 40) + " 127.0.0.1:1@2 myself,master - 0 0 1 connected 0-16383\r\n"
	sq := testserver.StartSquatter(t, hostile)
	args := task(nodes, map[string]any{"login_password": clusterPassword})
	args["nodes"] = append(args["nodes"].([]any), map[string]any{"host": "127.0.0.1", "port": sq.Port})
	before := snapshot(t, nodes)
	res, _ := mod.Call(t, args)
	require.True(t, res.Failed)
	require.Contains(t, res.Msg, "refusing the server")
	require.Contains(t, res.Msg, "nothing was changed")
	require.NotContains(t, string(sq.Received()), clusterPassword)
	require.Equal(t, before, snapshot(t, nodes))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// A login user's server in the cluster (as gossip can bring in): the task
// never reads it with the password, and refuses to run valkey-cli, which
// would connect to it with the password; nothing is changed.
func TestUnverifiedNodeGetsNoCLI(t *testing.T) {
	testserver.NeedRoot(t)
	pw := "requirepass " + clusterPassword
	var nodes []*testserver.ClusterNode
	for i := 0; i < 3; i++ {
		n := testserver.StartClusterNode(t, testserver.ClusterHosts[i], pw, "masterauth "+clusterPassword)
		n.Password = clusterPassword
		nodes = append(nodes, n)
	}
	args := task(nodes, map[string]any{"replicas": 0, "login_password": clusterPassword})
	mod.CallOK(t, args)
	// uid 1500: a login user (peer.LoginUIDMin..Max), running the genuine binary.
	evil := testserver.StartClusterNodeAs(t, "127.0.0.2", 1500, 1500)
	nodes[0].CLI("CLUSTER", "MEET", evil.IP, strconv.Itoa(evil.Port), strconv.Itoa(evil.BusPort))
	waitView(t, nodes[0], "the login user's node in the cluster", func(v *topology.ClusterView) bool {
		for _, k := range v.Nodes {
			if k.Addr() == evil.Addr && !k.Has("handshake") {
				return true
			}
		}
		return false
	})
	// An open slot: the task would run valkey-cli --cluster fix.
	owner, other := nodes[0], nodes[1]
	require.Equal(t, "OK", other.CLI("CLUSTER", "SETSLOT", "5", "IMPORTING", view(t, owner).Self().ID))
	require.Equal(t, "OK", owner.CLI("CLUSTER", "SETSLOT", "5", "MIGRATING", view(t, other).Self().ID))
	ran := false
	cliStarted = func(int) { ran = true }
	t.Cleanup(func() { cliStarted = nil })

	res, _ := mod.Call(t, args)
	require.True(t, res.Failed)
	require.False(t, res.Changed)
	require.False(t, ran, "valkey-cli was started")
	require.Regexp(t, `^refusing to run valkey-cli: cluster node `+regexp.QuoteMeta(evil.Addr)+` is not a server this task can verify \(.*\), and valkey-cli would send it the password; nothing was changed$`, res.Msg)
	require.NotEmpty(t, view(t, owner).Self().Open, "the open slot was closed")
	require.NotContains(t, res.Msg, clusterPassword)
}
