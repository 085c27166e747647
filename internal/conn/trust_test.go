package conn

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/peer"
	"github.com/valkeyops/secure/internal/testserver"
)

// TestSquatterNeverGetsThePassword: the server is down and something else
// answers on its port (here the test binary, replying like a server whose
// config file is /etc/passwd). 0.1.0 sent HELLO with AUTH and the admin
// password to it. Now nothing is sent: the squatter records every byte.
func TestSquatterNeverGetsThePassword(t *testing.T) {
	sq := testserver.StartSquatter(t, "$45\r\n# Server\r\nconfig_file:/etc/passwd\r\nvalkey_ver\r\n")
	o := &Options{LoginPort: sq.Port, LoginUser: "admin", LoginPassword: ansible.Secret("s3cret-admin-pw")}
	_, err := Open(o)
	require.Error(t, err)
	exe, _ := os.Executable()
	assert.Equal(t, "cannot connect to 127.0.0.1:"+strconv.Itoa(sq.Port)+": refusing the server: the process (pid "+
		strconv.Itoa(os.Getpid())+", "+exe+") is not a Valkey server; nothing was sent to it", err.Error())
	assert.ErrorIs(t, err, peer.ErrUntrusted, "a refused peer stays distinguishable from an unreachable one")
	sq.Wait() // the client closed the connection: all it sent is recorded
	assert.Empty(t, sq.Received())
}

// TestVerifiedServerNamesItself: OpenPeer returns the verified process of
// a real server.
func TestVerifiedServerNamesItself(t *testing.T) {
	srv := testserver.Start(t)
	c, p, err := OpenPeer(&Options{LoginPort: srv.Port})
	require.NoError(t, err)
	defer c.Close()
	require.NotNil(t, p)
	assert.NoError(t, p.Verify())
	assert.Equal(t, os.Geteuid(), p.UID)
}

// fakeReply makes a client whose server answers the first command (HELLO)
// with reply, through the guard as Open does.
func fakeReply(t *testing.T, reply string) error {
	t.Helper()
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		buf := make([]byte, 4096)
		if _, err := server.Read(buf); err != nil {
			return
		}
		// Write in pieces, as a slow peer would: the guard sees the
		// header before the body arrives.
		for len(reply) > 0 {
			n := min(len(reply), 1000)
			if _, err := server.Write([]byte(reply[:n])); err != nil {
				return
			}
			reply = reply[n:]
		}
	}()
	c, err := valkey.NewClient(valkey.ClientOption{
		InitAddress: []string{"fake:6379"}, DisableCache: true, DisableRetry: true, ForceSingleClient: true,
		ClientSetInfo: valkey.DisableClientSetInfo, ConnWriteTimeout: 30 * time.Second,
		DialCtxFn: func(context.Context, string, *net.Dialer, *tls.Config) (net.Conn, error) {
			return &guardConn{Conn: client}, nil
		},
	})
	if err == nil {
		c.Close()
	}
	return err
}

// TestHugeReplies: a peer announcing a terabyte string or a trillion
// elements made valkey-go allocate it (out of memory on 0.1.0); nesting and
// endless lines are bounded too. Each is refused with one sentence.
func TestHugeReplies(t *testing.T) {
	tests := []struct{ name, reply, want string }{
		{"huge bulk", "$999999999999\r\n", "the server announced a string of 999999999999 bytes, more than the limit of 64 MiB; refusing the reply"},
		{"huge array", "*999999999999\r\n", "the server announced 999999999999 elements, more than the limit of 1048576; refusing the reply"},
		{"huge map", "%999999999999\r\n", "the server announced 999999999999 elements, more than the limit of 1048576; refusing the reply"},
		{"deep nesting", strings.Repeat("*1\r\n", 100) + ":1\r\n", "the server sent aggregates nested deeper than 64; refusing the reply"},
		{"endless line", "+" + strings.Repeat("a", 2<<20), "the server sent a reply line longer than 1 MiB; refusing it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := fakeReply(t, tc.reply)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestGuardFollowsValidReplies: RESP2 and RESP3 replies of every type,
// fed whole and one byte at a time, pass and leave the guard at rest.
func TestGuardFollowsValidReplies(t *testing.T) {
	stream := "+OK\r\n-ERR x\r\n:1\r\n$3\r\nabc\r\n$-1\r\n$0\r\n\r\n*2\r\n$1\r\na\r\n*0\r\n" +
		"%1\r\n+k\r\n~2\r\n_\r\n#t\r\n" + "|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n" +
		"$?\r\n;2\r\nab\r\n;0\r\n" + "*?\r\n:1\r\n*1\r\n,1.5\r\n.\r\n" + ">2\r\n+message\r\n=7\r\ntxt:abc\r\n" + "!3\r\nerr\r\n(123\r\n"
	for _, step := range []int{len(stream), 1, 7} {
		var g respGuard
		for i := 0; i < len(stream); i += step {
			require.NoError(t, g.feed([]byte(stream[i:min(i+step, len(stream))])), "step %d at %d", step, i)
		}
		assert.Empty(t, g.stack, "step %d", step)
		assert.Zero(t, g.total, "step %d", step)
		assert.False(t, g.inLine, "step %d", step)
		assert.Zero(t, g.skip, "step %d", step)
	}
}

// TestRemoteServerGetsPasswordOnlyOverVerifiedTLS: a server that is not in
// this host's socket table (played here by a squatter that Identify is
// told is remote: one machine cannot make a second host) gets a password
// only over TLS with certificate validation; without a password, plain
// TCP is fine.
func TestRemoteServerGetsPasswordOnlyOverVerifiedTLS(t *testing.T) {
	identify = func(context.Context, net.Conn) (*peer.Process, error) { return nil, nil }
	t.Cleanup(func() { identify = peer.Identify })
	off := false
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"plain TCP", Options{LoginPassword: "remote-pw-5c1d"}},
		{"TLS without validation", Options{LoginPassword: "remote-pw-5c1d", TLS: true, ValidateCerts: &off}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sq := testserver.StartSquatter(t, "+OK\r\n")
			tc.o.LoginPort = sq.Port
			_, err := Open(&tc.o)
			require.Error(t, err)
			assert.Equal(t, "cannot connect to 127.0.0.1:"+strconv.Itoa(sq.Port)+": refusing to send the password to 127.0.0.1:"+strconv.Itoa(sq.Port)+
				": the server is not on this host, and a password goes to another host only over TLS with a verified certificate (tls: true, validate_certs: true); nothing was sent to it", err.Error())
			sq.Wait()
			assert.Empty(t, sq.Received())
		})
	}
	// No login password, but the task's commands carry secrets (a
	// requirepass value, ACL password hashes): refused the same way.
	sq := testserver.StartSquatter(t, "+OK\r\n")
	_, err := Open(&Options{LoginPort: sq.Port, CarriesSecrets: true})
	require.Error(t, err)
	assert.Equal(t, "cannot connect to 127.0.0.1:"+strconv.Itoa(sq.Port)+": refusing to send the task's secrets to 127.0.0.1:"+strconv.Itoa(sq.Port)+
		": the server is not on this host, and a secret goes to another host only over TLS with a verified certificate (tls: true, validate_certs: true); nothing was sent to it", err.Error())
	sq.Wait()
	assert.Empty(t, sq.Received())

	// No password: nothing secret to protect, the connection goes ahead
	// (the squatter's "+OK" is not a HELLO reply, so the client then fails
	// on the protocol, not on trust).
	sq = testserver.StartSquatter(t, "+OK\r\n")
	_, err = Open(&Options{LoginPort: sq.Port})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "refusing")
	sq.Wait()
	assert.NotContains(t, string(sq.Received()), "AUTH")
}
