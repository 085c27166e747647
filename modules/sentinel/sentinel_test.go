package sentinel

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

// A monitor is created at runtime and Sentinel persists it; a rerun changes
// nothing; a changed quorum reaches the runtime and the file; auth_pass is
// never in the output, its diff line says "(changed)".
func TestCreateRerunAndChange(t *testing.T) {
	g := testserver.StartGroup(t, 0, 1)
	s := g.Sentinels[0]
	args := task(s, map[string]any{"monitors": []any{monitor("grp", g.Primary, map[string]any{
		"down_after_milliseconds": 5000, "failover_timeout": 60000, "parallel_syncs": 2,
		"auth_user": "sentinel-dn", "auth_pass": authPass,
	})}})
	args["_ansible_diff"] = true
	out, doc, code := mod.Printed(t, args)
	require.Equal(t, 0, code, out)
	assert.Equal(t, true, doc["changed"])
	assert.NotContains(t, out, authPass)
	assert.Contains(t, out, "grp auth_pass: (changed)")
	assert.Equal(t, []any{"grp"}, doc["created"])

	assert.Equal(t, "2", primaryField(t, s, "grp", "quorum"))
	assert.Equal(t, "5000", primaryField(t, s, "grp", "down-after-milliseconds"))
	assert.Equal(t, "60000", primaryField(t, s, "grp", "failover-timeout"))
	assert.Equal(t, "2", primaryField(t, s, "grp", "parallel-syncs"))
	assert.Equal(t, []string{fmt.Sprintf("sentinel monitor grp 127.0.0.1 %d 2", g.Primary.Port)}, sentinelLines(t, s.ConfPath, "monitor"))
	assert.Equal(t, []string{"sentinel auth-user grp sentinel-dn"}, sentinelLines(t, s.ConfPath, "auth-user"))
	assert.Equal(t, []string{"sentinel auth-pass grp " + authPass}, sentinelLines(t, s.ConfPath, "auth-pass"))

	before := s.ReadConf()
	res, f := mod.CallOK(t, args)
	assert.False(t, res.Changed, "second run")
	assert.Empty(t, res.Diff)
	assert.Equal(t, before, s.ReadConf(), "a rerun leaves the file as it was")
	require.Len(t, f.Monitors, 1)
	m := f.Monitors[0]
	assert.Equal(t, "127.0.0.1:"+strconv.Itoa(g.Primary.Port), m.CurrentPrimary)
	assert.True(t, m.AuthPassSet)
	assert.Equal(t, "sentinel-dn", m.AuthUser)
	assert.Contains(t, m.Flags, "master")
	assert.Empty(t, f.Disagreements)

	// quorum 2 -> 1: runtime and file.
	args["monitors"].([]any)[0].(map[string]any)["quorum"] = 1
	res, f = mod.CallOK(t, args)
	assert.True(t, res.Changed)
	assert.Equal(t, []string{"grp"}, f.Updated)
	assert.Equal(t, "1", primaryField(t, s, "grp", "quorum"))
	assert.Equal(t, []string{fmt.Sprintf("sentinel monitor grp 127.0.0.1 %d 1", g.Primary.Port)}, sentinelLines(t, s.ConfPath, "monitor"))
	assert.True(t, f.Monitors[0].CKQuorum.OK, f.Monitors[0].CKQuorum.Message)

	// A new auth_pass: changed, the diff says so without the value.
	args["monitors"].([]any)[0].(map[string]any)["auth_pass"] = authPass + "-2"
	out, doc, code = mod.Printed(t, args)
	require.Equal(t, 0, code, out)
	assert.Equal(t, true, doc["changed"])
	assert.NotContains(t, out, authPass)
	assert.Contains(t, out, "grp auth_pass: (set)")
	assert.Equal(t, []string{"sentinel auth-pass grp " + authPass + "-2"}, sentinelLines(t, s.ConfPath, "auth-pass"))

	// The journal names the changes, never the password.
	journal := string(readFile(t, args["journal_path"].(string)))
	assert.Contains(t, journal, `"name":"sentinel auth-pass grp","secret":true`)
	assert.Contains(t, journal, `"name":"sentinel quorum grp","before":"2","after":"1"`)
	assert.NotContains(t, journal, authPass)
	assert.Contains(t, journal, `"instance":"sentinel"`)
}

// Check mode plans the same change as a real run and changes nothing.
func TestCheckModeChangesNothing(t *testing.T) {
	g := testserver.StartGroup(t, 0, 1)
	s := g.Sentinels[0]
	before := s.ReadConf()
	args := task(s, map[string]any{"monitors": []any{monitor("grp", g.Primary, nil)}, "_ansible_check_mode": true})
	res, f := mod.CallOK(t, args)
	assert.True(t, res.Changed)
	assert.Equal(t, []string{"grp"}, f.Created)
	assert.Equal(t, before, s.ReadConf())
	assert.Equal(t, "", s.CLI("SENTINEL", "MASTERS"))
}

// Global settings go through SENTINEL CONFIG SET, by value; sentinel_pass
// is never shown.
func TestGlobalSettings(t *testing.T) {
	s := testserver.StartSentinel(t)
	args := task(s, map[string]any{
		"sentinel_user": "sentinel-peer", "sentinel_pass": authPass, "resolve_hostnames": true,
		"announce_ip": "127.0.0.5", "announce_port": 26999, "_ansible_diff": true,
	})
	out, doc, code := mod.Printed(t, args)
	require.Equal(t, 0, code, out)
	assert.Equal(t, true, doc["changed"])
	assert.NotContains(t, out, authPass)
	assert.Contains(t, out, "sentinel-pass: (changed)")
	assert.Equal(t, []string{"sentinel sentinel-user sentinel-peer"}, sentinelLines(t, s.ConfPath, "sentinel-user"))
	assert.Equal(t, []string{"sentinel sentinel-pass " + authPass}, sentinelLines(t, s.ConfPath, "sentinel-pass"))
	assert.Equal(t, []string{"sentinel resolve-hostnames yes"}, sentinelLines(t, s.ConfPath, "resolve-hostnames"))
	assert.Equal(t, []string{`sentinel announce-ip "127.0.0.5"`}, sentinelLines(t, s.ConfPath, "announce-ip"))
	res, _ := mod.CallOK(t, args)
	assert.False(t, res.Changed, "second run")
}

// After a failover, a rerun of the same task changes nothing: the monitor
// is not removed and re-added, Sentinel's state lines stay byte-identical,
// the new primary is reported and the disagreement is named.
func TestFailoverRerunKeepsSentinelState(t *testing.T) {
	g := testserver.StartGroup(t, 2, 3)
	var subs []*testserver.Subscription
	for _, s := range g.Sentinels {
		subs = append(subs, s.Subscribe("+slave", "+sentinel", "+switch-master"))
	}
	argsOf := func(s *testserver.Server) map[string]any {
		return task(s, map[string]any{"monitors": []any{monitor("grp", g.Primary, map[string]any{"down_after_milliseconds": 2000, "failover_timeout": 10000})}})
	}
	for _, s := range g.Sentinels {
		res, _ := mod.CallOK(t, argsOf(s))
		require.True(t, res.Changed)
	}
	// Each Sentinel finds both replicas and the two other Sentinels.
	for _, sub := range subs {
		waitEvents(t, sub, map[string]int{"+slave": 2, "+sentinel": 2})
	}
	failover(t, g.Sentinels[0], "grp")
	var newPrimary string
	for _, sub := range subs {
		// +switch-master: "grp OLDIP OLDPORT NEWIP NEWPORT"
		f := strings.Fields(sub.Wait(t, "+switch-master", 60*time.Second))
		require.Len(t, f, 5)
		newPrimary = f[3] + ":" + f[4]
	}
	require.NotEqual(t, g.Primary.Addr, newPrimary)

	before := map[string][]byte{}
	for _, s := range g.Sentinels {
		before[s.ConfPath] = s.ReadConf()
	}
	for _, s := range g.Sentinels {
		res, f := mod.CallOK(t, argsOf(s))
		assert.False(t, res.Changed, "rerun after the failover on %s", s.Addr)
		require.Len(t, f.Monitors, 1)
		assert.Equal(t, newPrimary, f.Monitors[0].CurrentPrimary)
		assert.Equal(t, []string{fmt.Sprintf("monitor \"grp\" follows primary %s, not %s as the task says: Sentinel moved it (a failover or switchover), and the module never points it back; primary_host and primary_port are used only to create a monitor", newPrimary, g.Primary.Addr)}, f.Disagreements)
		assert.Equal(t, 2, f.Monitors[0].Sentinels.Count)
		assert.Equal(t, 2, f.Monitors[0].Replicas.Count)
		assert.GreaterOrEqual(t, f.Monitors[0].ConfigEpoch, int64(1))
	}
	for _, s := range g.Sentinels {
		assert.Equal(t, string(before[s.ConfPath]), string(s.ReadConf()), "%s after the rerun", s.ConfPath)
		assert.Contains(t, sentinelLines(t, s.ConfPath, "monitor")[0], newPrimary[len("127.0.0.1:"):])
	}
}

// waitEvents waits until sub has seen want[channel] messages on each channel.
func waitEvents(t *testing.T, sub *testserver.Subscription, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	done := func() bool {
		for ch, n := range want {
			if got[ch] < n {
				return false
			}
		}
		return true
	}
	for !done() {
		ch, _ := sub.Next(t, 60*time.Second)
		got[ch]++
	}
}

// failover asks s to fail grp over. Sentinel refuses (NOGOODSLAVE) until it
// has an INFO reply from a replica; each retry follows Sentinel's answer.
func failover(t *testing.T, s *testserver.Server, name string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := s.CLI("SENTINEL", "FAILOVER", name)
		if out == "OK" {
			return
		}
		if !strings.Contains(out, "NOGOODSLAVE") || time.Now().After(deadline) {
			t.Fatalf("SENTINEL FAILOVER %s: %s", name, out)
		}
		time.Sleep(200 * time.Millisecond) // Sentinel refreshes replica INFO every 10 s at most; the reply is the event
	}
}

// SENTINEL RESET runs only when asked, is reported, and resets exactly the
// monitor named, even one whose name is a glob pattern.
func TestResetOnlyWhenAsked(t *testing.T) {
	g := testserver.StartGroup(t, 0, 1)
	s := g.Sentinels[0]
	args := task(s, map[string]any{"monitors": []any{monitor("g*", g.Primary, nil), monitor("gx", g.Primary, nil)}})
	mod.CallOK(t, args)
	sub := s.Subscribe("+reset-master")
	res, f := mod.CallOK(t, args)
	assert.False(t, res.Changed)
	assert.Empty(t, f.Reset)

	args["reset"] = []any{"g*"}
	res, f = mod.CallOK(t, args)
	assert.True(t, res.Changed)
	assert.Equal(t, []string{"g*"}, f.Reset)
	assert.True(t, strings.HasPrefix(sub.Wait(t, "+reset-master", 30*time.Second), "master g* "))

	args["reset"] = []any{"nosuch"}
	res, _ = mod.Call(t, args)
	assert.True(t, res.Failed)
	assert.Equal(t, `option "reset": the Sentinel has no monitor "nosuch" and the task does not create it; nothing was changed`, res.Msg)
}

// Removing a monitor, and exclusive removing the unlisted ones.
func TestAbsentAndExclusive(t *testing.T) {
	g := testserver.StartGroup(t, 0, 1)
	s := g.Sentinels[0]
	mod.CallOK(t, task(s, map[string]any{"monitors": []any{monitor("a", g.Primary, nil), monitor("b", g.Primary, nil), monitor("c", g.Primary, nil)}}))
	res, f := mod.CallOK(t, task(s, map[string]any{"monitors": []any{map[string]any{"name": "a", "state": "absent"}}}))
	assert.True(t, res.Changed)
	assert.Equal(t, []string{"a"}, f.Removed)
	res, f = mod.CallOK(t, task(s, map[string]any{"monitors": []any{monitor("b", g.Primary, nil)}, "exclusive": true}))
	assert.True(t, res.Changed)
	assert.Equal(t, []string{"c"}, f.Removed)
	assert.Equal(t, []string{fmt.Sprintf("sentinel monitor b 127.0.0.1 %d 2", g.Primary.Port)}, sentinelLines(t, s.ConfPath, "monitor"))
}
