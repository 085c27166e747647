package testserver

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// WriteAndWait writes a key on the server (a primary) and runs WAIT on
// the same connection until n replicas have acknowledged that write: the
// event that says their links are up and their offsets caught up. WAIT
// only waits for the writes of its own connection, so a WAIT from another
// valkey-cli returns at once. It fails the test unless n replicas
// acknowledged within startTimeout.
func (s *Server) WriteAndWait(n int) {
	s.t.Helper()
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		s.t.Fatalf("testserver: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(startTimeout + 10*time.Second))
	cmd := func(args ...string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		return b.String()
	}
	if s.Password != "" {
		_, _ = c.Write([]byte(cmd("AUTH", s.Password)))
	}
	ms := strconv.Itoa(int(startTimeout / time.Millisecond))
	if _, err := c.Write([]byte(cmd("SET", "testserver:wait", strconv.FormatInt(time.Now().UnixNano(), 10)) + cmd("WAIT", strconv.Itoa(n), ms))); err != nil {
		s.t.Fatalf("testserver: %v", err)
	}
	rd := bufio.NewReader(c)
	var last string
	replies := 2
	if s.Password != "" {
		replies = 3
	}
	for i := 0; i < replies; i++ {
		if last, err = rd.ReadString('\n'); err != nil {
			s.t.Fatalf("testserver: WAIT on %s: %v", s.Addr, err)
		}
	}
	if got := strings.TrimSpace(last); got != ":"+strconv.Itoa(n) {
		s.t.Fatalf("testserver: WAIT %d on %s answered %q: not every replica acknowledged within %s", n, s.Addr, got, startTimeout)
	}
}

// WaitLog returns once the server's log holds line (the server's own
// event: "Connection with replica ... lost"); it fails the test when the
// line does not come within startTimeout. The log is re-read every 10ms:
// the interval of the check, not the synchronisation.
func (s *Server) WaitLog(line string) {
	s.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		if b, _ := os.ReadFile(s.LogPath); strings.Contains(string(b), line) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("testserver: %s never logged %q within %s", s.Addr, line, startTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
