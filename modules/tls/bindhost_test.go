package tls

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/valkeyops/secure/internal/x509check"
)

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

// A server bound only to its host's own address (127.0.0.2 here, as a lab host
// binds 127.0.0.11), reached over its unix socket: the handshake that verifies
// the served certificate must go there (0.1.0 dialed 127.0.0.1 and failed).
func TestHandshakeGoesToTheAddressTheServerBinds(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "valkey.sock")
	l := newLab(t, "unixsocket "+sock, "unixsocketperm 700")
	l.srv.ConfigSet("bind", "127.0.0.2")
	_, f := mod.CallOK(t, l.args(map[string]any{"login_port": nil, "login_unix_socket": sock}))
	assert.Equal(t, x509check.Fingerprint(l.leaf.Cert.Raw), f.ServedFingerprint)
}
