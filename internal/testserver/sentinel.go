package testserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Group is a replication group watched by Sentinels: one primary, its
// replicas and the Sentinels, each a real valkey-server on a free port,
// started and ended by pid like every other test server. The Sentinels start
// with no monitor: the test creates them (with the module under test).
type Group struct {
	Primary   *Server
	Replicas  []*Server
	Sentinels []*Server
}

// StartGroup starts a primary, replicas replicas of it and sentinels
// Sentinels. extra lines go to every data node's config.
func StartGroup(t testing.TB, replicas, sentinels int, extra ...string) *Group {
	t.Helper()
	g := &Group{Primary: Start(t, extra...)}
	for i := 0; i < replicas; i++ {
		g.Replicas = append(g.Replicas, Start(t, append([]string{fmt.Sprintf("replicaof 127.0.0.1 %d", g.Primary.Port)}, extra...)...))
	}
	for i := 0; i < sentinels; i++ {
		g.Sentinels = append(g.Sentinels, StartSentinel(t))
	}
	return g
}

// StartSentinel starts a Sentinel with an empty monitor list; its config
// file (ConfPath, sentinel.conf) is Sentinel's own to rewrite.
func StartSentinel(t testing.TB, extra ...string) *Server {
	t.Helper()
	return StartWith(t, Options{ConfName: "sentinel.conf", Sentinel: true, Extra: extra})
}

// Subscription is a raw RESP subscription to a server's pub/sub channels,
// for waiting on Sentinel's events (+switch-master, +slave, +sentinel).
type Subscription struct {
	c net.Conn
	r *bufio.Reader
}

// Subscribe subscribes to channels on s (after AUTH with s.Password when
// set); the subscription ends with the test.
func (s *Server) Subscribe(channels ...string) *Subscription {
	s.t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		s.t.Fatalf("subscribe: %v", err)
	}
	s.t.Cleanup(func() { _ = c.Close() })
	var b strings.Builder
	if s.Password != "" {
		fmt.Fprintf(&b, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(s.Password), s.Password)
	}
	fmt.Fprintf(&b, "*%d\r\n$9\r\nSUBSCRIBE\r\n", len(channels)+1)
	for _, ch := range channels {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(ch), ch)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		s.t.Fatalf("subscribe: %v", err)
	}
	sub := &Subscription{c: c, r: bufio.NewReader(c)}
	if s.Password != "" {
		_ = c.SetReadDeadline(time.Now().Add(startTimeout))
		if line, err := sub.r.ReadString('\n'); err != nil || line != "+OK\r\n" {
			s.t.Fatalf("subscribe: AUTH answered %q: %v", line, err)
		}
	}
	for range channels { // one confirmation per channel
		if _, _, err := sub.next(startTimeout); err != nil {
			s.t.Fatalf("subscribe: %v", err)
		}
	}
	return sub
}

// Wait returns the payload of the next message on channel, failing the
// test when none arrives within timeout (a guard against a hang, not the
// synchronisation: the message is).
func (sub *Subscription) Wait(t testing.TB, channel string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		kind, parts, err := sub.next(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for a message on %s: %v", channel, err)
		}
		if kind == "message" && len(parts) == 2 && parts[0] == channel {
			return parts[1]
		}
	}
}

// next reads one pub/sub push: its kind and the rest of its strings.
func (sub *Subscription) next(timeout time.Duration) (string, []string, error) {
	if timeout <= 0 {
		return "", nil, fmt.Errorf("timed out")
	}
	_ = sub.c.SetReadDeadline(time.Now().Add(timeout))
	line, err := sub.r.ReadString('\n')
	if err != nil {
		return "", nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return "", nil, fmt.Errorf("unexpected reply %q", line)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	var items []string
	for i := 0; i < n; i++ {
		h, err := sub.r.ReadString('\n')
		if err != nil {
			return "", nil, err
		}
		h = strings.TrimSpace(h)
		switch h[0] {
		case ':':
			items = append(items, h[1:])
		case '$':
			size, _ := strconv.Atoi(h[1:])
			buf := make([]byte, size+2)
			if _, err := io.ReadFull(sub.r, buf); err != nil {
				return "", nil, err
			}
			items = append(items, string(buf[:size]))
		default:
			return "", nil, fmt.Errorf("unexpected item %q", h)
		}
	}
	if len(items) == 0 {
		return "", nil, fmt.Errorf("empty push")
	}
	return items[0], items[1:], nil
}

// Next returns the channel and payload of the next message, failing the
// test when none arrives within timeout.
func (sub *Subscription) Next(t testing.TB, timeout time.Duration) (string, string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		kind, parts, err := sub.next(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for a message: %v", err)
		}
		if kind == "message" && len(parts) == 2 {
			return parts[0], parts[1]
		}
	}
}
