package info

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible/ansibletest"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/testserver"
	"github.com/valkeyops/secure/internal/topology"
)

// eventTimeout bounds every wait for an event (a Pub/Sub
// message, a WAIT reply): a guard against a hang, never the sync itself.
const eventTimeout = 30 * time.Second

func call(t *testing.T, port int, extra ...any) *Info {
	t.Helper()
	args := map[string]any{"login_port": port}
	for i := 0; i+1 < len(extra); i += 2 {
		args[extra[i].(string)] = extra[i+1]
	}
	res, f := ansibletest.CallOK[Fields](t, "valkey_info", Main, args)
	require.False(t, res.Changed, "valkey_info never changes anything")
	return f.Info
}

// group starts a primary and two replicas and waits (WAIT) until both
// have acknowledged a write. No Sentinel yet: Sentinel's hello messages are
// PUBLISHed through the primary and move the offsets.
func group(t *testing.T) (primary *testserver.Server, replicas []*testserver.Server) {
	t.Helper()
	primary = testserver.Start(t, "repl-ping-replica-period 3600", "repl-diskless-sync-delay 0")
	for i := 0; i < 2; i++ {
		replicas = append(replicas, testserver.Start(t, fmt.Sprintf("replicaof 127.0.0.1 %d", primary.Port)))
	}
	primary.WriteAndWait(2)
	return primary, replicas
}

// TestInfoAgainstALiveGroup asserts each field against what the servers
// themselves say.
func TestInfoAgainstALiveGroup(t *testing.T) {
	primary, replicas := group(t)
	offset, err := strconv.ParseInt(infoField(t, primary, "replication", "master_repl_offset"), 10, 64)
	require.NoError(t, err)
	require.Positive(t, offset)

	p := call(t, primary.Port, "config_file", "/etc/valkey/valkey-orders.conf")
	assert.Equal(t, "valkey", p.Name)
	assert.Equal(t, infoField(t, primary, "server", "valkey_version"), p.Version)
	assert.Equal(t, infoField(t, primary, "server", "run_id"), p.RunID)
	assert.Equal(t, "orders", p.Instance, "named by the config_file option")
	assert.Equal(t, topology.ModeStandalone, p.Mode)
	assert.Equal(t, topology.RolePrimary, p.Role)
	r := p.Replication
	require.NotNil(t, r)
	assert.Equal(t, topology.RolePrimary, r.Role)
	assert.Equal(t, offset, r.PrimaryReplOffset, "the offset the primary reports after WAIT")
	assert.Equal(t, 2, r.ConnectedReplicas)
	require.Len(t, r.Replicas, 2)
	ports := map[int]bool{}
	for _, rep := range r.Replicas {
		ports[rep.Port] = true
		assert.Equal(t, "127.0.0.1", rep.IP)
		assert.Equal(t, "online", rep.State)
		// The acknowledged offset: at least the write WAIT waited for, at
		// most the primary's (WAIT's own REPLCONF GETACK follows the write
		// in the stream, and is acknowledged at the next periodic ACK).
		assert.Positive(t, rep.Offset)
		assert.LessOrEqual(t, rep.Offset, offset)
		assert.GreaterOrEqual(t, rep.Lag, int64(0))
	}
	assert.Equal(t, map[int]bool{replicas[0].Port: true, replicas[1].Port: true}, ports)
	assert.Nil(t, r.ReplicaReplOffset)
	assert.Equal(t, &topology.Persistence{LastBgsaveStatus: "ok"}, p.Persistence)
	assert.Nil(t, p.Sentinel)
	assert.Nil(t, p.Cluster)

	for _, rs := range replicas {
		ri := call(t, rs.Port)
		assert.Equal(t, rs.ConfPath, ri.ConfigFile)
		assert.Equal(t, journal.DefaultInstance, ri.Instance, "journal.InstanceName of valkey.conf")
		assert.Equal(t, topology.RoleReplica, ri.Role)
		rr := ri.Replication
		assert.Equal(t, "127.0.0.1", rr.PrimaryHost)
		assert.Equal(t, primary.Port, rr.PrimaryPort)
		assert.Equal(t, "up", rr.LinkStatus)
		assert.False(t, rr.SyncInProgress)
		require.NotNil(t, rr.ReplicaReplOffset)
		assert.Equal(t, offset, *rr.ReplicaReplOffset, "the replica processed the whole stream, GETACK included")
		assert.Equal(t, 0, rr.ConnectedReplicas)
	}

	// A replica dies: the primary's count drops once it has seen the link close.
	replicas[1].Stop()
	primary.WaitLog(fmt.Sprintf("Connection with replica 127.0.0.1:%d lost", replicas[1].Port))
	p = call(t, primary.Port)
	assert.Equal(t, 1, p.Replication.ConnectedReplicas)
	require.Len(t, p.Replication.Replicas, 1)
	assert.Equal(t, replicas[0].Port, p.Replication.Replicas[0].Port)

	// The primary dies: the replica reports its link down.
	primary.Stop()
	replicas[0].WaitLog("Connection with primary lost")
	ri := call(t, replicas[0].Port)
	assert.Equal(t, "down", ri.Replication.LinkStatus)
	assert.Equal(t, primary.Port, ri.Replication.PrimaryPort)
}

func TestInfoFromSentinels(t *testing.T) {
	primary, replicas := group(t)
	s1 := startSentinel(t, primary.Port)
	s2 := startSentinel(t, primary.Port)
	// Each Sentinel learns the two replicas (from the primary's INFO) and
	// the other Sentinel (from its hello message): wait on those events.
	for _, s := range []*sentinel{s1, s2} {
		s.waitFor(t, func() bool {
			m := call(t, s.port).Sentinel.Monitors[0]
			return len(m.Replicas) == 2 && len(m.Sentinels) == 1
		})
	}
	si := call(t, s1.port)
	assert.Equal(t, topology.ModeSentinel, si.Mode)
	assert.Equal(t, topology.RoleSentinel, si.Role)
	assert.Equal(t, s1.conf, si.ConfigFile)
	assert.Len(t, si.RunID, 40)
	assert.Nil(t, si.Replication)
	assert.Nil(t, si.Persistence)
	require.Len(t, si.Sentinel.Monitors, 1)
	m := si.Sentinel.Monitors[0]
	assert.Equal(t, "mymaster", m.Name)
	assert.Equal(t, topology.Address{Host: "127.0.0.1", Port: primary.Port}, m.Primary)
	assert.Equal(t, 2, m.Quorum)
	assert.Equal(t, []string{"master"}, m.Flags)
	assert.Equal(t, 2, m.NumReplicas)
	assert.Equal(t, 1, m.NumOtherSentinels)
	ports := map[int]bool{}
	for _, r := range m.Replicas {
		ports[r.Port] = true
		assert.Equal(t, "ok", r.LinkStatus)
		assert.Equal(t, []string{"slave"}, r.Flags)
	}
	assert.Equal(t, map[int]bool{replicas[0].Port: true, replicas[1].Port: true}, ports)
	require.Len(t, m.Sentinels, 1)
	assert.Equal(t, s2.port, m.Sentinels[0].Port)
	id, err := s2.cliErr("SENTINEL", "MYID")
	require.NoError(t, err)
	assert.Equal(t, id, m.Sentinels[0].ID)
}

// A monitoring user with exactly the documented rule works; one without
// it gets one sentence naming the command and the rule.
func TestMinimalRights(t *testing.T) {
	node := testserver.Start(t, "cluster-enabled yes", "cluster-config-file nodes.conf")
	node.CLI("ACL", "SETUSER", "monitor", "on", ">monitor-pw-7f3a", "resetchannels", "-@all")
	node.CLI(append([]string{"ACL", "SETUSER", "monitor"}, strings.Fields(DataNodeRule)...)...)
	node.CLI("ACL", "SETUSER", "blind", "on", ">blind-pw-7f3a", "-@all", "+info")
	got := call(t, node.Port, "login_user", "monitor", "login_password", "monitor-pw-7f3a")
	assert.Equal(t, topology.ModeCluster, got.Mode)
	require.NotNil(t, got.Cluster)
	assert.Equal(t, topology.ClusterInfo{State: "fail", KnownNodes: 1}, *got.Cluster)
	node.CLI("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
	got = call(t, node.Port, "login_user", "monitor", "login_password", "monitor-pw-7f3a")
	assert.Equal(t, 16384, got.Cluster.SlotsAssigned)
	assert.Equal(t, 16384, got.Cluster.SlotsOK)
	// cluster_size and cluster_state wait CLUSTER_WRITABLE_DELAY after a
	// start: not asserted, the counts above come straight from the slots.

	out, doc, code := ansibletest.Printed(t, "valkey_info", Main, map[string]any{"login_port": node.Port, "login_user": "blind", "login_password": "blind-pw-7f3a"})
	assert.Equal(t, 1, code)
	assert.Equal(t, false, doc["changed"])
	assert.Equal(t, fmt.Sprintf(`the login user "blind" may not run CLUSTER INFO on 127.0.0.1:%d; valkey_info needs a user with the ACL rule %q; nothing was changed`, node.Port, DataNodeRule), doc["msg"])
	assert.NotContains(t, out, "blind-pw-7f3a")

	s := startSentinel(t, node.Port)
	s.cli(t, "ACL", "SETUSER", "monitor", "on", ">monitor-pw-7f3a", "-@all")
	s.cli(t, append([]string{"ACL", "SETUSER", "monitor"}, strings.Fields(SentinelRule)...)...)
	s.cli(t, "ACL", "SETUSER", "blind", "on", ">blind-pw-7f3a", "-@all", "+info", "+role")
	si := call(t, s.port, "login_user", "monitor", "login_password", "monitor-pw-7f3a")
	assert.Equal(t, "mymaster", si.Sentinel.Monitors[0].Name)
	_, doc, _ = ansibletest.Printed(t, "valkey_info", Main, map[string]any{"login_port": s.port, "login_user": "blind", "login_password": "blind-pw-7f3a"})
	assert.Equal(t, fmt.Sprintf(`the login user "blind" may not run SENTINEL PRIMARIES on 127.0.0.1:%d; valkey_info needs a user with the ACL rule %q; nothing was changed`, s.port, SentinelRule), doc["msg"])
}

// Check mode is the same read.
func TestCheckMode(t *testing.T) {
	srv := testserver.Start(t)
	_, doc, code := ansibletest.Printed(t, "valkey_info", Main, map[string]any{"login_port": srv.Port, "_ansible_check_mode": true})
	assert.Equal(t, 0, code)
	assert.Equal(t, false, doc["changed"])
	assert.Equal(t, "primary", doc["info"].(map[string]any)["role"])
}

func infoField(t *testing.T, s *testserver.Server, section, key string) string {
	t.Helper()
	f, err := topology.ParseFields("INFO", strings.ReplaceAll(s.CLI("INFO", section), "\r", ""))
	require.NoError(t, err)
	return f[key]
}

// sentinel is a minimal Sentinel starter, kept here until the sentinel
// helper's internal/testserver/sentinel.go lands (the lead folds them).
type sentinel struct {
	port int
	conf string
}

func startSentinel(t *testing.T, primaryPort int) *sentinel {
	t.Helper()
	bin := testserver.Bin(t)
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	s := &sentinel{port: port, conf: filepath.Join(dir, "sentinel.conf")}
	conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %q\nlogfile %q\nsentinel monitor mymaster 127.0.0.1 %d 2\n",
		port, dir, filepath.Join(dir, "sentinel.log"), primaryPort)
	require.NoError(t, os.WriteFile(s.conf, []byte(conf), 0o640))
	cmd := exec.Command(bin, s.conf, "--sentinel")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	deadline := time.Now().Add(eventTimeout)
	for {
		if out, err := s.cliErr("PING"); err == nil && out == "PONG" {
			return s
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "sentinel.log"))
			t.Fatalf("sentinel exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("sentinel did not answer PING")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *sentinel) cliErr(args ...string) (string, error) {
	out, err := exec.Command("valkey-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port)}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (s *sentinel) cli(t *testing.T, args ...string) {
	t.Helper()
	out, err := s.cliErr(args...)
	require.NoError(t, err, out)
	require.Equal(t, "OK", out)
}

// waitFor returns once done() holds, re-checking on every event the
// Sentinel publishes (+slave, +sentinel, ...): subscribed first, then
// checked, so no event between the check and the wait is missed.
func (s *sentinel) waitFor(t *testing.T, done func() bool) {
	t.Helper()
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(eventTimeout)))
	_, err = c.Write([]byte("*2\r\n$10\r\nPSUBSCRIBE\r\n$1\r\n*\r\n"))
	require.NoError(t, err)
	rd := bufio.NewReader(c)
	for i := 0; i < 6; i++ { // *3 $10 psubscribe $1 * :1
		_, err := rd.ReadString('\n')
		require.NoError(t, err)
	}
	for !done() {
		if _, err := rd.ReadString('\n'); err != nil {
			t.Fatalf("sentinel on %d: no event came within %s: %v", s.port, eventTimeout, err)
		}
	}
}

// A replica announces what it likes as its address (replica-announce-ip),
// and the primary lists it verbatim in INFO replication. A hostile replica
// that forges fields there (its own port, state and offset) makes the
// reply malformed: refused with one sentence, never half-read.
func TestHostileReplicaAnnouncement(t *testing.T) {
	primary := testserver.Start(t, "repl-diskless-sync-delay 0")
	forged := "10.9.9.9,port=1,state=online,offset=999999,lag=0"
	testserver.Start(t, fmt.Sprintf("replicaof 127.0.0.1 %d", primary.Port), fmt.Sprintf("replica-announce-ip %q", forged))
	primary.WriteAndWait(1)
	require.Contains(t, primary.CLI("INFO", "replication"), "slave0:ip="+forged, "the server lists the announcement as is")
	_, doc, code := ansibletest.Printed(t, "valkey_info", Main, map[string]any{"login_port": primary.Port})
	assert.Equal(t, 1, code)
	assert.Equal(t, false, doc["changed"])
	assert.Equal(t, `the server's INFO replication reply has slave0:"ip=10.9.9.9,port=1,state=online,offset=9..."; expected port= once; nothing was changed`, doc["msg"])
}

// A full sync in progress: the primary's background save (slowed by
// rdb-key-save-delay, so it lasts while the test looks) and the replica
// waiting for it, synchronised on the replica's "Full resync" log line.
func TestSyncAndBgsaveInProgress(t *testing.T) {
	primary := testserver.Start(t, "repl-diskless-sync no", "rdb-key-save-delay 30000000")
	// SHUTDOWN NOSAVE ends the saving child too (a SIGKILL of the server would leave it).
	t.Cleanup(func() { _, _ = primary.CLIErr("SHUTDOWN", "NOSAVE") })
	primary.CLI("SET", "k", "v")
	replica := testserver.Start(t, fmt.Sprintf("replicaof 127.0.0.1 %d", primary.Port))
	replica.WaitLog("Full resync from primary")

	p := call(t, primary.Port)
	assert.True(t, p.Persistence.BgsaveInProgress)
	require.Len(t, p.Replication.Replicas, 1)
	assert.Equal(t, "wait_bgsave", p.Replication.Replicas[0].State)
	r := call(t, replica.Port)
	assert.True(t, r.Replication.SyncInProgress)
	assert.Equal(t, "down", r.Replication.LinkStatus)
	assert.Equal(t, topology.RoleReplica, r.Role)
}

// The documentation states the two ACL rules: it is a copy of the
// constants, so a test fails when they part.
func TestDocumentedRulesAreTheConstants(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "plugins", "modules", "valkey_info.py"))
	require.NoError(t, err)
	text := strings.Join(strings.Fields(string(doc)), " ") // the doc wraps lines
	for _, rule := range []string{DataNodeRule, SentinelRule} {
		assert.Contains(t, text, "C("+rule+")")
	}
}
