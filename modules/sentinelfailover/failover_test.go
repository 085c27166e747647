package sentinelfailover

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/loadgen"
	"github.com/valkeyops/secure/internal/testserver"
)

// The move under load: a client following the Sentinels writes with WAIT 1
// throughout. The new primary is a former replica, the old one replicates
// it, every Sentinel names the new one, no acknowledged write is lost, a
// write succeeds right after (the pause ended), and the same task run on
// the new primary moves the role back to the chosen replica.
func TestSwitchoverUnderLoad(t *testing.T) {
	g := startGroup(t, 2)
	var subs []*testserver.Subscription
	for _, s := range g.Sentinels {
		subs = append(subs, s.Subscribe("+switch-master"))
	}
	gen, err := loadgen.New(loadgen.Config{
		Addrs: []string{g.Sentinels[0].Addr, g.Sentinels[1].Addr}, Sentinel: groupName, SentinelPassword: sentinelPass,
		Password: dataPass, Wait: 1, Workers: 4, Rate: 2000,
	})
	require.NoError(t, err)
	defer gen.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *loadgen.Report, 1)
	go func() {
		rep, err := gen.Run(ctx)
		assert.NoError(t, err)
		done <- rep
	}()
	require.Eventually(t, func() bool { return gen.Acked() >= 200 }, 30*time.Second, 10*time.Millisecond)

	replicas := map[string]*testserver.Server{}
	for _, r := range g.Replicas {
		replicas[r.Addr] = r
	}
	args := g.task(g.Primary, nil)
	out, doc, code := mod.Printed(t, args)
	require.Equal(t, 0, code, "%s", doc["msg"])
	assert.NotContains(t, out, dataPass)
	assert.NotContains(t, out, sentinelPass)
	assert.Equal(t, true, doc["changed"])
	assert.Equal(t, g.Primary.Addr, doc["old_primary"])
	newAddr, _ := doc["new_primary"].(string)
	promoted := replicas[newAddr]
	require.NotNil(t, promoted, "new_primary %q is not a former replica", newAddr)
	assert.Equal(t, "slave", info(t, g.Primary, "role"))
	assert.Equal(t, strconv.Itoa(promoted.Port), info(t, g.Primary, "master_port"))
	assert.Equal(t, "master", info(t, promoted, "role"))
	var steps []string
	for _, s := range doc["steps"].([]any) {
		steps = append(steps, s.(map[string]any)["name"].(string))
	}
	assert.Equal(t, []string{StepPause, StepCaughtUp, StepFailover, StepPromoted, StepFollow, StepUnpause, StepConfirmed}, steps)
	t.Logf("pause_ms %v, steps %v", doc["pause_ms"], doc["steps"])
	// The journal names the old primary's new place.
	entries, _, err := journal.Read(args["journal_path"].(string), journal.Filter{})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, "valkey_sentinel_failover", entries[0].Module)
	assert.False(t, entries[0].Partial)
	require.Len(t, entries[0].Changes, 1)
	ch := entries[0].Changes[0]
	assert.Equal(t, "replicaof", ch.Name)
	assert.Equal(t, "no one", *ch.Before)
	assert.Equal(t, "127.0.0.1 "+strconv.Itoa(promoted.Port), *ch.After)
	for i, sub := range subs {
		f := strings.Fields(sub.Wait(t, "+switch-master", 60*time.Second))
		require.Len(t, f, 5)
		assert.Equal(t, newAddr, f[3]+":"+f[4], "Sentinel %d", i)
		assert.Equal(t, newAddr, named(t, g.Sentinels[i]))
	}
	// The client writes again, on the new primary, after the move.
	acked := gen.Acked()
	require.Eventually(t, func() bool { return gen.Acked() > acked+200 }, 30*time.Second, 10*time.Millisecond)
	writable(t, promoted)

	// Back to the old primary, now a replica (its link up, both replicas
	// acknowledging), chosen with to.
	promoted.WriteAndWait(2)
	sub := g.Sentinels[0].Subscribe("+switch-master")
	require.Eventually(t, func() bool {
		return strings.Contains(g.Sentinels[0].CLI("SENTINEL", "REPLICAS", groupName), strconv.Itoa(g.Primary.Port)) &&
			!strings.Contains(g.Sentinels[0].CLI("SENTINEL", "MASTER", groupName), "failover_in_progress")
	}, 30*time.Second, 20*time.Millisecond)
	for _, r := range g.Replicas {
		if r != promoted {
			r.ConfigSet("replica-priority", "0") // to is the only candidate: the caller's part
		}
	}
	waitPriorities(t, g.Sentinels[0], g.Primary.Addr)
	res, f := mod.Call(t, g.task(promoted, map[string]any{"to": g.Primary.Addr}))
	require.False(t, res.Failed, res.Msg)
	assert.Equal(t, g.Primary.Addr, f.NewPrimary)
	assert.Equal(t, "slave", info(t, promoted, "role"))
	sub.Wait(t, "+switch-master", 60*time.Second)
	acked = gen.Acked()
	require.Eventually(t, func() bool { return gen.Acked() > acked+200 }, 30*time.Second, 10*time.Millisecond)
	cancel()
	rep := <-done
	require.NotNil(t, rep)
	assert.Zero(t, rep.LostKeys, "acknowledged writes lost")
	t.Logf("acked %d, longest window %.0f ms, errors %v", rep.AckedWrites, rep.LongestOutage, rep.Errors)
}

// waitPriorities waits until Sentinel s sees replica-priority 0 on every
// replica but keep (it reads a replica's INFO every 10 s).
func waitPriorities(t *testing.T, s *testserver.Server, keep string) {
	t.Helper()
	require.Eventually(t, func() bool {
		lines := strings.Split(s.CLI("--raw", "SENTINEL", "REPLICAS", groupName), "\n")
		ok := true
		var ip, port string
		for i := 0; i+1 < len(lines); i += 2 {
			switch lines[i] {
			case "ip":
				ip = lines[i+1]
			case "port":
				port = lines[i+1]
			case "slave-priority":
				if (ip+":"+port == keep) != (lines[i+1] != "0") {
					ok = false
				}
			}
		}
		return ok
	}, 30*time.Second, 50*time.Millisecond)
}

// Check mode says what it would do and pauses nothing.
func TestCheckModePausesNothing(t *testing.T) {
	g := startGroup(t, 1)
	res, f := mod.Call(t, g.task(g.Primary, map[string]any{"_ansible_check_mode": true, "to": g.Replicas[0].Addr}))
	require.False(t, res.Failed, res.Msg)
	assert.True(t, res.Changed)
	assert.Equal(t, "would pause writes on "+g.Primary.Addr+", fail group grp over through the Sentinel at "+g.Sentinels[0].Addr+
		" to "+g.Replicas[0].Addr+", and make "+g.Primary.Addr+" its replica", res.Msg)
	assert.Equal(t, []string{g.Replicas[0].Addr}, f.Candidates)
	assert.Empty(t, f.NewPrimary)
	assert.Zero(t, f.PauseMs)
	assert.Empty(t, pauses(t, g.Primary))
	assert.Equal(t, "master", info(t, g.Primary, "role"))
}

// Every bad input is refused with one sentence before anything changes:
// exit 1, changed false, no password in the output, no CLIENT PAUSE ever
// sent, the primary still the primary.
func TestBadInputChangesNothing(t *testing.T) {
	g := startGroup(t, 1)
	r := g.Replicas[0]
	s := g.Sentinels[0].Addr
	tests := []struct {
		name string
		node *testserver.Server
		args map[string]any
		msg  string
	}{
		{"not the primary", r, nil, `the server at ` + r.Addr + ` is not the primary of group "grp": the Sentinel at ` + s + ` names ` + g.Primary.Addr +
			` (run id "` + info(t, g.Primary, "run_id") + `"), and this server (run id "` + info(t, r, "run_id") + `") is a replica of ` + g.Primary.Addr +
			`; run the task on the current primary's host; nothing was changed`},
		{"unknown target", g.Primary, map[string]any{"to": "127.0.0.1:1"}, `option "to": 127.0.0.1:1 is not a replica of the primary ` + g.Primary.Addr +
			` with its link up (replicas: ` + r.Addr + ` online); expected one of them; nothing was changed`},
		{"the primary as target", g.Primary, map[string]any{"to": g.Primary.Addr}, `option "to": ` + g.Primary.Addr + ` is not a replica of the primary ` + g.Primary.Addr +
			` with its link up (replicas: ` + r.Addr + ` online); expected one of them; nothing was changed`},
		{"wrong group", g.Primary, map[string]any{"group": "other"}, `option "group": the Sentinel at ` + s + ` has no monitor "other"; expected the name of the group it watches; nothing was changed`},
		{"a data node as Sentinel", g.Primary, map[string]any{"sentinel_port": r.Port, "sentinel_password": dataPass}, `the server at ` + r.Addr +
			` is not a Sentinel; point sentinel_unix_socket or sentinel_host/sentinel_port at one; nothing was changed`},
		{"group with space", g.Primary, map[string]any{"group": "a b"}, `option "group": "a b" contains whitespace, a quote or a control character; expected the name of the Sentinel's monitor; nothing was changed`},
		{"to without port", g.Primary, map[string]any{"to": "127.0.0.1"}, `option "to": "127.0.0.1" is not host:port; expected host:port of a replica as the primary lists it; nothing was changed`},
		{"to port 0", g.Primary, map[string]any{"to": "127.0.0.1:0"}, `option "to": "127.0.0.1:0" has no port from 1 to 65535; expected host:port of a replica as the primary lists it; nothing was changed`},
		{"timeout too short", g.Primary, map[string]any{"timeout": 10}, `option "timeout": 10 is out of range; expected 500-300000 milliseconds; nothing was changed`},
		{"sentinel port", g.Primary, map[string]any{"sentinel_port": 70000}, `option "sentinel_port": 70000 is not a port; expected 1-65535; nothing was changed`},
		{"sentinel cert without key", g.Primary, map[string]any{"sentinel_tls": true, "sentinel_tls_cert": "/x.crt"}, `options "sentinel_tls_cert" and "sentinel_tls_key" go together: give both or neither; nothing was changed`},
		{"sentinel CA without TLS", g.Primary, map[string]any{"sentinel_tls_ca_cert": "/ca.crt"}, `options "sentinel_tls_ca_cert", "sentinel_tls_cert", "sentinel_tls_key" and "sentinel_tls_server_name" need "sentinel_tls: true"; nothing was changed`},
		{"sentinel password with a line break", g.Primary, map[string]any{"sentinel_password": sentinelPass + "\n"}, `option "sentinel_password": the value contains a line break; nothing was changed`},
		{"wrong sentinel password", g.Primary, map[string]any{"sentinel_password": sentinelPass + "x"}, `the Sentinel: cannot connect to ` + s +
			`: authentication failed (wrong user name or password, or the user is disabled); nothing was changed`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, doc, code := mod.Printed(t, g.task(tc.node, tc.args))
			assert.Equal(t, 1, code)
			assert.Equal(t, tc.msg, doc["msg"])
			assert.Equal(t, false, doc["changed"])
			assert.NotContains(t, out, dataPass)
			assert.NotContains(t, out, sentinelPass)
			assert.Empty(t, pauses(t, g.Primary))
			assert.Equal(t, "master", info(t, g.Primary, "role"))
			assert.Equal(t, g.Primary.Addr, named(t, g.Sentinels[0]))
		})
	}
}

// A failover the Sentinel refuses (no replica may be promoted: every one
// has replica-priority 0) ends the pause and says so; nothing else changed.
func TestRefusedFailoverEndsThePause(t *testing.T) {
	g := startGroup(t, 1, "replica-priority 0")
	args := g.task(g.Primary, nil)
	res, f := mod.Call(t, args)
	require.True(t, res.Failed)
	assert.False(t, res.Changed)
	assert.Regexp(t, regexp.MustCompile(`^the Sentinel at `+regexp.QuoteMeta(g.Sentinels[0].Addr)+
		` refused SENTINEL FAILOVER grp: NOGOODSLAVE No suitable replica to promote; writes were paused \d+ ms and the pause has ended; nothing was changed$`), res.Msg)
	require.NotNil(t, f)
	assert.Empty(t, f.NewPrimary)
	assert.Contains(t, pauses(t, g.Primary), "calls=1,")
	assert.Contains(t, info(t, g.Primary, "cmdstat_client|unpause"), "calls=1,")
	writable(t, g.Primary)
	assert.Equal(t, "master", info(t, g.Primary, "role"))
	assert.Equal(t, g.Primary.Addr, named(t, g.Sentinels[0]))
	entries, _, err := journal.Read(args["journal_path"].(string), journal.Filter{})
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing changed, nothing journalled")
}
