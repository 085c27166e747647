package peer

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

func identify(t *testing.T, network, addr string) *Process {
	t.Helper()
	c, err := net.Dial(network, addr)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // safety net
	defer cancel()
	p, err := Identify(ctx, c)
	require.NoError(t, err)
	require.NotNil(t, p, "a server on this host is found in /proc")
	return p
}

// TestRealServerIsVerified: a valkey-server started from the system's
// binary passes, over TCP and over a unix socket.
func TestRealServerIsVerified(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "valkey.sock")
	srv := testserver.Start(t, "unixsocket "+sock)
	for _, p := range []*Process{identify(t, "tcp", srv.Addr), identify(t, "unix", sock)} {
		assert.NoError(t, p.Verify())
		assert.True(t, slices.Contains(ServerNames, filepath.Base(p.Exe)), p.Exe)
		assert.Equal(t, os.Geteuid(), p.UID)
	}
}

// TestSquatterIsRefused: any other program answering on the port (here
// the test binary itself) is not a server, whatever it replies.
func TestSquatterIsRefused(t *testing.T) {
	sq := testserver.StartSquatter(t, "+OK\r\n")
	p := identify(t, "tcp", "127.0.0.1:"+strconv.Itoa(sq.Port))
	exe, err := os.Executable()
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), p.PID)
	assert.EqualError(t, p.Verify(), "the process (pid "+strconv.Itoa(os.Getpid())+", "+exe+") is not a Valkey server")
	assert.ErrorIs(t, p.Verify(), ErrUntrusted)
}

// TestLoginUserRunningTheRealBinary: a login user can start the genuine
// valkey-server on the port of a stopped server; it is refused by its uid.
func TestLoginUserRunningTheRealBinary(t *testing.T) {
	srv := testserver.StartAs(t, 1234, 1234)
	p := identify(t, "tcp", srv.Addr)
	assert.Equal(t, 1234, p.UID)
	assert.EqualError(t, p.Verify(), "the process runs as uid 1234, a login user, not as root, a system account or uid 0")

	// A subordinate uid (/etc/subuid gives login users 100000 and up for
	// their user namespaces) is no system account.
	srv = testserver.StartAs(t, 100000, 100000)
	assert.EqualError(t, identify(t, "tcp", srv.Addr).Verify(), "the process runs as uid 100000, above the system and login accounts (a user namespace's subordinate uid), not as root, a system account or uid 0")

	// A system account (nobody here, valkey on a real install) is fine.
	srv = testserver.StartAs(t, 65534, 65534)
	assert.NoError(t, identify(t, "tcp", srv.Addr).Verify())
}

// TestServerBinaryOthersCanReplace: a valkey-server executable that a
// non-root user owns (or whose directory it owns) could be anything.
func TestServerBinaryOthersCanReplace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	real, err := filepath.EvalSymlinks(testserver.Bin(t))
	require.NoError(t, err)
	dir, err := os.MkdirTemp("", "valkeyops-bin-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "valkey-server")
	copyFile(t, real, bin)
	require.NoError(t, os.Chown(bin, 65534, 65534))

	port := testserver.FreePort(t)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var c net.Conn
	require.Eventually(t, func() bool { // the server's start-up, not a race of the code under test
		c, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	defer c.Close()
	p, err := Identify(context.Background(), c)
	require.NoError(t, err)
	assert.EqualError(t, p.Verify(), "the server's executable "+bin+" is owned by uid 65534 with mode 0755, not owned by root and writable only by root")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// TestConfigFile: the server's word on its config file is taken from a
// verified local process only, and must match its command line when that
// still holds the arguments.
func TestConfigFile(t *testing.T) {
	var remote *Process
	_, err := remote.ConfigFile("/etc/passwd")
	assert.EqualError(t, err, "the server is on another host, so the config file it reports is not a file here")

	titled := &Process{PID: 7, Args: []string{"valkey-server 127.0.0.1:6379"}}
	path, err := titled.ConfigFile("/etc/valkey/valkey.conf")
	assert.NoError(t, err)
	assert.Equal(t, "/etc/valkey/valkey.conf", path)

	started := &Process{PID: 7, Args: []string{"/usr/bin/valkey-server", "/etc/valkey/valkey.conf", "--port", "0"}}
	_, err = started.ConfigFile("/etc/passwd")
	assert.EqualError(t, err, `the server reports config file "/etc/passwd", but its process (pid 7) was started with "/etc/valkey/valkey.conf"`)
	_, err = started.ConfigFile("etc/valkey.conf")
	assert.EqualError(t, err, `the server reports the relative config file "etc/valkey.conf"`)

	// A real server with set-proc-title no keeps its arguments.
	srv := testserver.Start(t, "set-proc-title no")
	p := identify(t, "tcp", srv.Addr)
	arg, ok := p.ConfigArg()
	assert.True(t, ok)
	assert.Equal(t, srv.ConfPath, arg)
}

// TestLookupIsCheap: the per-task cost of finding and verifying the
// server (the budget is the "ms", not tens of ms).
func TestLookupIsCheap(t *testing.T) {
	srv := testserver.Start(t)
	c, err := net.Dial("tcp", srv.Addr)
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	const n = 20
	for range n {
		p, err := Identify(context.Background(), c)
		require.NoError(t, err)
		require.NoError(t, p.Verify())
	}
	t.Logf("identify+verify: %v per connection", time.Since(start)/n)
}
