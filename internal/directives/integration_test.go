package directives

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

// These tests run against a real valkey-server when one is on PATH. They talk
// RESP2 over a plain TCP connection so that this package needs no client
// library.

type respConn struct {
	c net.Conn
	r *bufio.Reader
}

type respError string

func (e respError) Error() string { return string(e) }

func (rc *respConn) do(args ...string) (any, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = rc.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(rc.c, b.String()); err != nil {
		return nil, err
	}
	return rc.read()
}

func (rc *respConn) read() (any, error) {
	line, err := rc.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty RESP line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, respError(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rc.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, err
		}
		out := make([]any, 0, max(n, 0))
		for i := 0; i < n; i++ {
			v, err := rc.read()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected RESP line %q", line)
}

func (rc *respConn) configGet(t *testing.T, pattern string) map[string]string {
	t.Helper()
	v, err := rc.do("CONFIG", "GET", pattern)
	require.NoError(t, err)
	arr, ok := v.([]any)
	require.True(t, ok, "CONFIG GET reply %#v", v)
	out := map[string]string{}
	for i := 0; i+1 < len(arr); i += 2 {
		out[arr[i].(string)] = arr[i+1].(string)
	}
	return out
}

func (rc *respConn) get1(t *testing.T, name string) string {
	t.Helper()
	m := rc.configGet(t, name)
	v, ok := m[name]
	require.True(t, ok, "CONFIG GET %s returned %v", name, m)
	return v
}

// TestRequireServerFails runs one server test of this package again, in a
// child test binary with no valkey-server on PATH: with
// VALKEYOPS_REQUIRE_SERVER=1 it must fail, not skip (CI sets it, so a
// missing server can never pass CI as a row of skips).
func TestRequireServerFails(t *testing.T) {
	run := func(require string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^(TestServerAgreesWithCanonical|TestServerReadsFileArgs)$", "-test.v")
		cmd.Env = append(os.Environ(), "PATH="+t.TempDir(), testserver.RequireEnv+"="+require)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("1")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(out, "valkey-server is not on PATH and VALKEYOPS_REQUIRE_SERVER=1") {
		t.Errorf("with %s=1 and no server: err %v, output:\n%s", testserver.RequireEnv, err, out)
	}
	if out, err := run(""); err != nil || !strings.Contains(out, "--- SKIP: TestServerAgreesWithCanonical") || !strings.Contains(out, "--- SKIP: TestServerReadsFileArgs") {
		t.Errorf("without %s and no server: err %v, want a skip; output:\n%s", testserver.RequireEnv, err, out)
	}
}

// startServer starts valkey-server on a free 127.0.0.1 port in a temporary
// directory and returns a connection to it. conf, when not empty, is a config
// file path (it must come first on the command line); without one snapshots
// are disabled with --save "". extra is appended to the command line.
func startServer(t *testing.T, conf string, extra ...string) *respConn {
	t.Helper()
	bin := testserver.Bin(t) // skips, or fails with VALKEYOPS_REQUIRE_SERVER=1
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	var args []string
	if conf != "" {
		args = append(args, conf)
	}
	if conf == "" {
		// Without a config file, disable snapshots; with one, the file must
		// say (a --save on the command line would override its save lines).
		args = append(args, "--save", "")
	}
	args = append(args, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "valkey.log"),
		"--pidfile", filepath.Join(dir, "valkey.pid"))
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(60 * time.Second) // a guard; the event is the PONG
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "valkey.log"))
			t.Fatalf("valkey-server exited early: %s", log)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			rc := &respConn{c: c, r: bufio.NewReader(c)}
			t.Cleanup(func() { _ = c.Close() })
			if v, err := rc.do("PING"); err == nil && v == "PONG" {
				return rc
			}
			_ = c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("valkey-server did not answer on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServerAgreesWithCanonical sets several spellings of the same value and
// checks that what the server reports normalises to the desired canonical
// form.
func TestServerAgreesWithCanonical(t *testing.T) {
	rc := startServer(t, "")
	tests := []struct {
		name      string
		directive string // the name used for CONFIG SET (may be an alias)
		spellings []any
	}{
		{"memory 1gb", "maxmemory", []any{"1gb", "1GB", "1Gb", "1024mb", "1048576kb", "1073741824", float64(1073741824), json.Number("1073741824")}},
		{"memory 1g", "maxmemory", []any{"1g", "1G", "1000m", "1000000k", "1000000000", float64(1e9)}},
		{"memory bytes unit", "maxmemory", []any{"100b", "100"}},
		{"memory percent", "maxmemory-clients", []any{"10%", " 10% "}},
		{"memory zero percent", "maxmemory-clients", []any{"0%", "0", float64(0)}},
		{"memory unit on value config", "hash-max-listpack-value", []any{"1kb", "1024"}},
		{"bool yes", "activerehashing", []any{true, "yes", "YES", "true", "On"}},
		{"bool no", "activerehashing", []any{false, "no", "No", "FALSE", "off"}},
		{"bool alias", "slave-read-only", []any{false, "no"}},
		{"int", "hz", []any{float64(25), "25", json.Number("25"), " 25 "}},
		{"int negative", "slowlog-log-slower-than", []any{"-1", float64(-1)}},
		{"int alias", "lua-time-limit", []any{float64(4000), "4000"}},
		{"enum case", "maxmemory-policy", []any{"ALLKEYS-LRU", "allkeys-lru", "AllKeys-Lru"}},
		{"enum yaml no", "appendfsync", []any{false, "no", "NO"}},
		{"enum alias relative", "oom-score-adj", []any{"relative", "yes", true}},
		{"enum oom back to no", "oom-score-adj", []any{"no", false}},
		{"enum loglevel", "loglevel", []any{"WARNING", "warning"}},
		{"flags", "shutdown-on-sigterm", []any{"now save", "SAVE NOW", []any{"now", "save"}, "default save now"}},
		{"flags force", "shutdown-on-sigint", []any{"force now", []any{"now", "force"}}},
		{"flags default", "shutdown-on-sigint", []any{"default", []any{"default"}}},
		{"save odd whitespace", "save", []any{"3600 1 300 100", "  3600   1\t 300  100  ", []any{"3600 1", "300 100"},
			[]any{[]any{float64(3600), float64(1)}, []any{float64(300), float64(100)}}, "300 100 3600 1"}},
		{"save disabled", "save", []any{"", nil, []any{}}},
		{"save zero changes", "save", []any{"3600 0"}},
		{"bind", "bind", []any{"127.0.0.1", []any{"127.0.0.1"}, " 127.0.0.1 "}},
		{"bind optional ipv6", "bind", []any{"127.0.0.1 -::1", []any{"-::1", "127.0.0.1"}}},
		{"bind back", "bind", []any{"127.0.0.1"}},
		{"cobl replica units", "client-output-buffer-limit", []any{
			"replica 256mb 64mb 60", "slave 268435456 67108864 60", "REPLICA 256MB 64MB 60",
			"normal 0 0 0 replica 256mb 64mb 60 pubsub 32mb 8mb 60",
		}},
		{"cobl mixed units", "client-output-buffer-limit", []any{
			"slave 1gb 1g 0 normal 1k 1kb 5", []any{"normal 1000 1024 5", "replica 1073741824 1000000000 0"},
		}},
		{"cobl back to defaults", "client-output-buffer-limit", []any{"normal 0 0 0"}},
		{"kse orders", "notify-keyspace-events", []any{"KEA", "AKE", "EKA", "AEK", "Kg$lshzxetdE"}},
		{"kse partial", "notify-keyspace-events", []any{"Ex", "xE"}},
		{"kse key miss", "notify-keyspace-events", []any{"mKd", "dKm", "Kmd"}},
		{"kse new key", "notify-keyspace-events", []any{"nd", "dn"}},
		{"kse new key hidden by A", "notify-keyspace-events", []any{"KEAn", "AKE", "KEA"}},
		{"kse none", "notify-keyspace-events", []any{"", nil}},
		{"percentiles", "latency-tracking-info-percentiles", []any{"50 99 99.9", "50.0 99.00 99.900", []any{float64(50), float64(99), 99.9}}},
		{"percentiles exponent and rounding", "latency-tracking-info-percentiles", []any{"1e1 33.3333333333", []any{float64(10), 33.333333}}},
		{"percentiles empty", "latency-tracking-info-percentiles", []any{"", []any{}}},
		{"oom values", "oom-score-adj-values", []any{"0 200 800", []any{float64(0), float64(200), float64(800)}, " 0  200 800"}},
		{"oom values negative", "oom-score-adj-values", []any{"-1000 0 1000"}},
		{"string", "proc-title-template", []any{"{title} {listen-addr}", "  {title} {listen-addr} "}},
		{"secret via alias", "masterauth", []any{"s3cret"}},
		{"secret keeps its spaces", "masterauth", []any{" s3cret "}},
		{"secret number", "masterauth", []any{float64(123456), "123456"}},
		{"secret user via alias", "masteruser", []any{"replicator"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustLookup(t, tt.directive)
			var first string
			for i, x := range tt.spellings {
				v, err := d.Desired(x)
				require.NoError(t, err, "spelling %#v", x)
				if i == 0 {
					first = v.Canonical
				} else {
					assert.Equal(t, first, v.Canonical, "spelling %#v has a different canonical form", x)
				}
				_, err = rc.do("CONFIG", "SET", tt.directive, v.Set)
				require.NoError(t, err, "CONFIG SET %s %q (spelling %#v)", tt.directive, v.Set, x)
				// Read back under the canonical name, even when set by alias.
				got := rc.get1(t, d.Name)
				s, err := d.FromServer(got)
				require.NoError(t, err)
				assert.Equal(t, v.Canonical, s.Canonical, "spelling %#v: server has %q", x, got)
			}
		})
	}
}

// TestServerImmutableAndMutable checks the Immutable and Protected flags
// against the server: re-setting the current value of an immutable directive
// is refused as immutable, of a protected one as protected, and of every
// other directive it is accepted.
func TestServerImmutableAndMutable(t *testing.T) {
	rc := startServer(t, "")
	current := rc.configGet(t, "*")
	serverNames := map[string]bool{}
	for n := range current {
		serverNames[n] = true
	}
	checked := 0
	for _, d := range All() {
		if !d.IsKnownTo(serverNames) {
			continue // newer than this server, or hidden
		}
		name := d.NameFor(serverNames)
		val := current[name]
		t.Run(d.Name, func(t *testing.T) {
			// The value the server printed must normalise and be re-settable.
			v, err := d.FromServer(val)
			require.NoError(t, err)
			set := v.Set
			_, err = rc.do("CONFIG", "SET", name, set)
			switch {
			case d.Immutable:
				require.Error(t, err, "%s is marked Immutable but CONFIG SET was accepted", name)
				assert.Contains(t, err.Error(), "can't set immutable config")
			case d.Protected:
				require.Error(t, err, "%s is marked Protected but CONFIG SET was accepted", name)
				assert.Contains(t, err.Error(), "can't set protected config")
			default:
				assert.NoError(t, err, "CONFIG SET %s %q", name, set)
			}
			checked++
		})
	}
	assert.Greater(t, checked, 150)
	// Immutable aliases are refused too.
	_, err := rc.do("CONFIG", "SET", "slaveof", "no one")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "can't set immutable config")
}

// quoteArg quotes a config-file argument for the server's sdssplitargs.
func quoteArg(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestServerReadsFileArgs writes Args of desired values into a config file,
// starts the server with it and checks the server's values normalise to the
// desired canonical forms; FromFile of the same Args must agree.
// unixsocketperm is immutable, so this is also where its string forms are
// checked against the server.
func TestServerReadsFileArgs(t *testing.T) {
	testserver.Bin(t) // skips, or fails with VALKEYOPS_REQUIRE_SERVER=1
	for _, perm := range []string{"0700", "700", "0770", "0"} {
		t.Run("unixsocketperm "+perm, func(t *testing.T) {
			dir := t.TempDir()
			desired := []struct {
				name string
				val  any
			}{
				{"unixsocket", filepath.Join(dir, "s.sock")},
				{"unixsocketperm", perm},
				{"maxmemory", "1gb"},
				{"save", []any{"3600 1", "300 100"}},
				{"client-output-buffer-limit", "replica 512mb 128mb 30"},
				{"notify-keyspace-events", "KEA"},
				{"latency-tracking-info-percentiles", "50.0 99.90"},
				{"shutdown-on-sigterm", "now SAVE"},
				{"oom-score-adj", "relative"},
				{"databases", float64(4)},
				{"io-threads", float64(1)},
			}
			var conf strings.Builder
			want := map[string]Value{}
			for _, x := range desired {
				d := mustLookup(t, x.name)
				v, err := d.Desired(x.val)
				require.NoError(t, err)
				f, err := d.FromFile(v.Args)
				require.NoError(t, err)
				assert.Equal(t, v.Canonical, f.Canonical, "FromFile(Args) of %s", x.name)
				want[d.Name] = v
				conf.WriteString(d.Name)
				for _, a := range v.Args {
					conf.WriteString(" " + quoteArg(a))
				}
				conf.WriteString("\n")
			}
			path := filepath.Join(dir, "valkey.conf")
			require.NoError(t, os.WriteFile(path, []byte(conf.String()), 0o600))
			rc := startServer(t, path)
			for name, v := range want {
				d := mustLookup(t, name)
				got := rc.get1(t, name)
				s, err := d.FromServer(got)
				require.NoError(t, err)
				assert.Equal(t, v.Canonical, s.Canonical, "%s: server has %q", name, got)
			}
			f, err := mustLookup(t, "unixsocketperm").FromFile([]string{perm})
			require.NoError(t, err)
			assert.Equal(t, f.Canonical, rc.get1(t, "unixsocketperm"))
		})
	}
}
