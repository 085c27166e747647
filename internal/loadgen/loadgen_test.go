package loadgen

import (
	"context"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

// KeySlot agrees with the server's CLUSTER KEYSLOT (hash tags included).
func TestKeySlotIsTheServers(t *testing.T) {
	n := testserver.StartClusterNode(t, "127.0.0.1")
	r := rand.New(rand.NewSource(1))
	keys := []string{"foo", "{user1000}.following", "a{}b", "{}", "x{y", "{a}{b}"}
	for i := 0; i < 50; i++ {
		b := make([]byte, r.Intn(12)+1)
		for j := range b {
			b[j] = "ab{}xyZ09-"[r.Intn(10)]
		}
		keys = append(keys, string(b))
	}
	for _, k := range keys {
		require.Equal(t, n.CLI("CLUSTER", "KEYSLOT", k), strconv.Itoa(KeySlot(k)), "key %q", k)
	}
	tags := SlotTags()
	for s, tag := range tags {
		require.Equal(t, s, KeySlot("{"+tag+"}"))
	}
}

// A standalone run: writes acknowledged, nothing lost, no error.
func TestStandaloneRun(t *testing.T) {
	srv := testserver.Start(t)
	g, err := New(Config{Addrs: []string{srv.Addr}, Ops: 20000, Workers: 4})
	require.NoError(t, err)
	defer g.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := g.Run(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, rep.AckedWrites, int64(20000))
	require.Zero(t, rep.LostKeys)
	require.Empty(t, rep.Errors)
	require.Positive(t, rep.Latency.P50)
}

// A lost key is found: a key deleted behind the generator's back.
func TestLostKeyIsCounted(t *testing.T) {
	srv := testserver.Start(t)
	g, err := New(Config{Addrs: []string{srv.Addr}, Ops: 16384 * 2, Workers: 2})
	require.NoError(t, err)
	defer g.Close()
	rep, err := g.Run(context.Background())
	require.NoError(t, err)
	require.Zero(t, rep.LostKeys)
	srv.CLI("DEL", g.keys[7])
	lost, err := g.verify()
	require.NoError(t, err)
	require.Equal(t, 1, lost)
}

// WAIT through the cluster client: every acknowledged write reached the
// replica (WAIT on the key's node); against a shard whose replica is
// gone, no write is acknowledged.
func TestClusterWait(t *testing.T) {
	p := testserver.StartClusterNode(t, "127.0.0.1")
	r := testserver.StartClusterNode(t, "127.0.0.2")
	testserver.FormCluster(t, p, true, r)
	g, err := New(Config{Addrs: []string{p.Addr}, Cluster: true, Wait: 1, Ops: 5000, Workers: 4, OpTimeout: 2 * time.Second})
	require.NoError(t, err)
	defer g.Close()
	rep, err := g.Run(context.Background())
	require.NoError(t, err)
	require.GreaterOrEqual(t, rep.AckedWrites, int64(5000))
	require.Zero(t, rep.LostKeys)
	require.Empty(t, rep.Errors)

	r.Kill()
	g2, err := New(Config{Addrs: []string{p.Addr}, Cluster: true, Wait: 1, Duration: 3 * time.Second, Workers: 2, OpTimeout: 500 * time.Millisecond, Prefix: "w2"})
	require.NoError(t, err)
	defer g2.Close()
	rep, err = g2.Run(context.Background())
	require.NoError(t, err)
	require.Zero(t, rep.AckedWrites, "a write was acknowledged without its replica")
	require.Positive(t, rep.Errors[KindUnreplicated])
	require.NotEmpty(t, rep.Outages)
	require.Equal(t, KindUnreplicated, rep.Outages[0].Kind)
	require.Contains(t, rep.Outages[0].Error, errUnreplicated.Error())
	require.Positive(t, rep.Outages[0].Failures)
}

// Long windows of one kind never crowd a short window of another out of
// the report: each kind keeps its MaxOutages longest.
func TestOutagesKeptPerKind(t *testing.T) {
	g := &Gen{}
	for i := range MaxOutages + 5 {
		g.noteOutage(Outage{Ms: 5000 + float64(i), Kind: KindUnreplicated, Error: "not acknowledged", Failures: 1})
	}
	g.noteOutage(Outage{Ms: 60, Kind: KindConnection, Error: "dial tcp 127.0.0.1:7000: connect: connection refused", Failures: 3})
	g.noteOutage(Outage{Ms: 10, Kind: KindConnection, Error: "too short to keep"})
	require.Len(t, g.outages, MaxOutages+1)
	require.Equal(t, 5000+float64(MaxOutages+4), g.outages[0].Ms, "longest first")
	last := g.outages[len(g.outages)-1]
	require.Equal(t, KindConnection, last.Kind)
	require.Equal(t, 3, last.Failures)
	require.Contains(t, last.Error, "127.0.0.1:7000")
	require.Equal(t, 5000+float64(MaxOutages+4), ms(g.outage))
}

// A coordinated failover (CLUSTER FAILOVER on the replica) under WAIT 1
// traffic: the writes that land on the old primary are redirected (MOVED)
// and followed to the new one, never counted as errors; no acknowledged
// write is lost.
func TestClusterWaitFollowsAFailover(t *testing.T) {
	p := testserver.StartClusterNode(t, "127.0.0.1")
	r := testserver.StartClusterNode(t, "127.0.0.2")
	testserver.FormCluster(t, p, true, r)
	g, err := New(Config{Addrs: []string{p.Addr}, Cluster: true, Wait: 1, Workers: 4, OpTimeout: 5 * time.Second})
	require.NoError(t, err)
	defer g.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := runAsync(ctx, g)
	require.Eventually(t, func() bool { return g.Acked() >= 1000 }, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, "OK", r.CLI("CLUSTER", "FAILOVER"))
	require.Eventually(t, func() bool { return strings.HasPrefix(r.CLI("ROLE"), "master") }, 30*time.Second, 10*time.Millisecond)
	moved := g.Acked()
	require.Eventually(t, func() bool { return g.Acked() >= moved+1000 }, 30*time.Second, 10*time.Millisecond)
	cancel()
	rep := (<-done).report(t)
	require.Zero(t, rep.LostKeys)
	require.Zero(t, rep.StaleReads)
	require.NotContains(t, rep.Errors, KindMoved)
	require.NotContains(t, rep.Errors, KindAsk)
	require.Positive(t, rep.Redirections[KindMoved], "no write was redirected: the failover happened under no traffic")
	t.Logf("longest window without a write: %.1f ms; errors %v", rep.LongestOutage, rep.Errors)
}

// run is what a Run in the background ended with.
type run struct {
	rep *Report
	err error
}

func (r run) report(t *testing.T) *Report {
	t.Helper()
	require.NoError(t, r.err)
	return r.rep
}

// runAsync runs g until ctx ends; the result arrives on the channel.
func runAsync(ctx context.Context, g *Gen) <-chan run {
	done := make(chan run, 1)
	go func() {
		rep, err := g.Run(ctx)
		done <- run{rep, err}
	}()
	return done
}

// With -sentinel the client asks the Sentinels for the primary and follows
// it through a failover: writes acknowledged by a replica (WAIT 1) before
// and after SENTINEL FAILOVER, none lost.
func TestSentinelFollowsFailover(t *testing.T) {
	grp := testserver.StartGroup(t, 1, 1)
	s := grp.Sentinels[0]
	s.CLI("SENTINEL", "MONITOR", "main", "127.0.0.1", strconv.Itoa(grp.Primary.Port), "1")
	s.CLI("SENTINEL", "SET", "main", "down-after-milliseconds", "1000")
	grp.Primary.WriteAndWait(1)
	g, err := New(Config{Addrs: []string{s.Addr}, Sentinel: "main", Wait: 1, Workers: 2, Rate: 2000, Duration: time.Minute})
	require.NoError(t, err)
	defer g.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := runAsync(ctx, g)
	sub := s.Subscribe("+switch-master")
	require.Eventually(t, func() bool { return g.Acked() >= 100 }, 30*time.Second, 10*time.Millisecond)
	// Sentinel knows the replica from the primary's INFO: wait for it.
	require.Eventually(t, func() bool { return strings.Contains(s.CLI("SENTINEL", "REPLICAS", "main"), "slave") }, 30*time.Second, 100*time.Millisecond)
	s.CLI("SENTINEL", "FAILOVER", "main")
	sub.Wait(t, "+switch-master", 30*time.Second)
	before := g.Acked()
	require.Eventually(t, func() bool { return g.Acked() > before+100 }, 30*time.Second, 50*time.Millisecond)
	cancel()
	rep := (<-done).report(t)
	require.Equal(t, "sentinel", rep.Mode)
	require.Zero(t, rep.LostKeys)
}

// The rolling restart's hazard, on two nodes: the primary's slots move to
// its replica while the client writes nothing, then the old primary goes
// down. Without Refresh the client's slot map still names the old node and
// its first write (on the dedicated connection WAIT needs) fails with a
// refused connection; with Refresh the client re-reads the map on its own,
// and once it has (two CLUSTER SHARDS calls on the new primary after its
// takeover: the first one's answer is applied before the second starts)
// no write reaches the old node.
func TestClusterRefreshFollowsAnUnseenMove(t *testing.T) {
	for _, refresh := range []time.Duration{0, 100 * time.Millisecond} {
		t.Run("refresh="+refresh.String(), func(t *testing.T) {
			p := testserver.StartClusterNode(t, "127.0.0.1")
			r := testserver.StartClusterNode(t, "127.0.0.2")
			testserver.FormCluster(t, p, true, r)
			cfg := Config{Addrs: []string{p.Addr, r.Addr}, Cluster: true, Wait: 1, Workers: 1, Duration: time.Second,
				OpTimeout: 500 * time.Millisecond, Refresh: refresh}
			g, err := New(cfg)
			require.NoError(t, err)
			defer g.Close()
			p.Kill()
			require.Equal(t, "OK", r.CLI("CLUSTER", "FAILOVER", "TAKEOVER"))
			require.Eventually(t, func() bool { return strings.HasPrefix(r.CLI("ROLE"), "master") }, 30*time.Second, 10*time.Millisecond)
			if refresh > 0 {
				base := shardsCalls(t, r)
				require.Eventually(t, func() bool { return shardsCalls(t, r) >= base+2 }, 30*time.Second, 10*time.Millisecond)
			}
			rep, err := g.Run(context.Background())
			require.NoError(t, err)
			if refresh == 0 {
				require.Positive(t, rep.Errors[KindConnection], "the stale slot map sent no write to the stopped node: %v", rep.Errors)
				return
			}
			require.Zero(t, rep.Errors[KindConnection], "a write reached the stopped node: %v %v", rep.Errors, rep.Outages)
			// r has no replica left: its writes are applied, never acknowledged.
			require.Positive(t, rep.Errors[KindUnreplicated])
		})
	}
}

// shardsCalls is how many CLUSTER SHARDS (or SLOTS) calls n has answered.
func shardsCalls(t *testing.T, n *testserver.ClusterNode) int {
	t.Helper()
	total := 0
	for _, line := range strings.Split(n.CLI("INFO", "commandstats"), "\n") {
		for _, cmd := range []string{"cmdstat_cluster|shards:", "cmdstat_cluster|slots:"} {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), cmd); ok {
				calls, _ := strings.CutPrefix(strings.Split(rest, ",")[0], "calls=")
				c, err := strconv.Atoi(calls)
				require.NoError(t, err, line)
				total += c
			}
		}
	}
	return total
}
