package testserver

import (
	"net"
	"sync"
	"testing"
)

// Squatter is a process squatting on a port: not a Valkey server, it
// answers every read with a canned reply and records every byte it
// receives, so a test can assert that no password ever reached it. It runs
// in the test's own process (whose executable is not a server binary).
type Squatter struct {
	Port int
	l    net.Listener
	mu   sync.Mutex
	got  []byte
	// Accepted is closed when the first connection is accepted.
	Accepted chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

// StartSquatter listens on a free 127.0.0.1 port and answers with reply.
func StartSquatter(t testing.TB, reply string) *Squatter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("squatter: %v", err)
	}
	s := &Squatter{Port: l.Addr().(*net.TCPAddr).Port, l: l, Accepted: make(chan struct{})}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			s.once.Do(func() { close(s.Accepted) })
			go s.serve(c, reply)
		}
	}()
	t.Cleanup(func() { _ = l.Close() })
	return s
}

func (s *Squatter) serve(c net.Conn, reply string) {
	defer s.wg.Done()
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			s.mu.Lock()
			s.got = append(s.got, buf[:n]...)
			s.mu.Unlock()
			if _, werr := c.Write([]byte(reply)); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Wait returns once a connection was accepted and every accepted
// connection was closed by its client: all it was sent is then recorded.
func (s *Squatter) Wait() {
	<-s.Accepted
	s.wg.Wait()
}

// Received is every byte the squatter was sent so far.
func (s *Squatter) Received() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.got...)
}
