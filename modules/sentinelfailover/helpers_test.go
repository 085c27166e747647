package sentinelfailover

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible/ansibletest"
	"github.com/valkeyops/secure/internal/testserver"
)

// mod runs valkey_sentinel_failover in tests as the binary does (ansibletest.Module).
var mod = ansibletest.Module[Fields]{Name: "valkey_sentinel_failover", Main: Main}

// The group's passwords: the data nodes' requirepass (also their
// masterauth) and the Sentinels' requirepass. Neither may appear in any
// output of the module.
const (
	dataPass     = "Data-node-pass-7f3a91"
	sentinelPass = "Sentinel-pass-c0de55"
	groupName    = "grp"
)

// group is a replication group watched by three Sentinels, every server
// with a password, each Sentinel knowing the replicas and the two others.
type group struct {
	*testserver.Group
}

// startGroup starts a primary with replicas replicas (extra lines to
// every data node) and three Sentinels monitoring it, and returns once each
// Sentinel has announced every replica (+slave) and the other Sentinels
// (+sentinel): the events a failover needs.
func startGroup(t *testing.T, replicas int, extra ...string) *group {
	t.Helper()
	g := testserver.StartGroup(t, replicas, 0, append([]string{"requirepass " + dataPass, "masterauth " + dataPass}, extra...)...)
	for _, s := range append([]*testserver.Server{g.Primary}, g.Replicas...) {
		s.Password = dataPass
	}
	if replicas > 0 {
		g.Primary.WriteAndWait(replicas) // every replica synced, its link up
	}
	var subs []*testserver.Subscription
	for i := 0; i < 3; i++ {
		s := testserver.StartSentinel(t, "requirepass "+sentinelPass)
		s.Password = sentinelPass
		g.Sentinels = append(g.Sentinels, s)
		sub := s.Subscribe("+slave", "+sentinel")
		subs = append(subs, sub)
		s.CLI("SENTINEL", "MONITOR", groupName, "127.0.0.1", strconv.Itoa(g.Primary.Port), "2")
		s.CLI("SENTINEL", "SET", groupName, "auth-pass", dataPass, "down-after-milliseconds", "5000", "failover-timeout", "15000")
	}
	for _, sub := range subs {
		waitEvents(t, sub, map[string]int{"+slave": replicas, "+sentinel": 2})
	}
	return &group{g}
}

// waitEvents waits until sub has seen want[channel] messages on each channel.
func waitEvents(t *testing.T, sub *testserver.Subscription, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for {
		done := true
		for ch, n := range want {
			if got[ch] < n {
				done = false
			}
		}
		if done {
			return
		}
		ch, _ := sub.Next(t, 60*time.Second)
		got[ch]++
	}
}

// task is the module's arguments for a move starting at primary p through
// the first Sentinel, plus args.
func (g *group) task(p *testserver.Server, args map[string]any) map[string]any {
	return ansibletest.Args(map[string]any{
		"login_port": p.Port, "login_password": dataPass,
		"group": groupName, "sentinel_port": g.Sentinels[0].Port, "sentinel_password": sentinelPass,
		"_ansible_diff": true,
	}, args)
}

// info is one field of s's INFO.
func info(t *testing.T, s *testserver.Server, field string) string {
	t.Helper()
	for _, line := range strings.Split(s.CLI("INFO", "everything"), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == field {
			return v
		}
	}
	return ""
}

// pauses is how often s ran CLIENT PAUSE (its command statistics).
func pauses(t *testing.T, s *testserver.Server) string {
	t.Helper()
	return info(t, s, "cmdstat_client|pause")
}

// writable fails the test unless a write on primary s is answered within
// a few seconds: a pause left behind would hold it.
func writable(t *testing.T, s *testserver.Server) {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(3*time.Second)))
	_, err = fmt.Fprintf(c, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n*3\r\n$3\r\nSET\r\n$8\r\nwritable\r\n$1\r\n1\r\n", len(dataPass), dataPass)
	require.NoError(t, err)
	rd := bufio.NewReader(c)
	for i := 0; i < 2; i++ {
		line, err := rd.ReadString('\n')
		require.NoError(t, err, "a write on %s was not answered: a pause is left", s.Addr)
		require.Equal(t, "+OK\r\n", line, "reply %d", i)
	}
}

// named is the primary Sentinel s names for the group.
func named(t *testing.T, s *testserver.Server) string {
	t.Helper()
	f := strings.Split(s.CLI("SENTINEL", "GET-MASTER-ADDR-BY-NAME", groupName), "\n")
	require.Len(t, f, 2)
	return f[0] + ":" + f[1]
}
