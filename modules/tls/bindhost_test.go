package tls

import "testing"

// Over a unix socket the handshake goes to the address the server binds: a
// lab host's (or a real host's) server bound to its own address listens on
// no 127.0.0.1, where another host's server may answer instead.
func TestBindHost(t *testing.T) {
	for _, tc := range []struct{ bind, want string }{
		{"127.0.0.1 -::1", "127.0.0.1"},
		{"127.0.0.11", "127.0.0.11"},
		{"-10.0.0.5 127.0.0.1", "10.0.0.5"},
		{"* -::*", "127.0.0.1"},
		{"0.0.0.0", "127.0.0.1"},
		{"::", "::1"},
		{"", "127.0.0.1"},
	} {
		if got := bindHost(tc.bind); got != tc.want {
			t.Errorf("bind %q: handshake host %q, want %q", tc.bind, got, tc.want)
		}
	}
}
