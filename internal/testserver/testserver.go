// Package testserver starts a real valkey-server for tests: on a free
// 127.0.0.1 port, in a temporary directory, with a config file the test can
// read and edit. It is test support only; nothing in the binary imports it.
package testserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireEnv, set to "1", turns a missing valkey-server into a test failure
// instead of a skip (for CI, where the server must be there).
const RequireEnv = "VALKEYOPS_REQUIRE_SERVER"

// startTimeout bounds the wait for the first PING answer, and stopTimeout
// the wait for a killed server's port to close. Both are guards against a
// hang, never the synchronisation itself: generous, so a loaded machine
// (make stress) does not trip them.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 60 * time.Second
)

// Options configure a server.
type Options struct {
	// Dir is the server's working directory and where the config file is
	// written (default: a fresh t.TempDir()).
	Dir string
	// ConfDir is where the config file is written (default Dir). The log
	// stays in Dir, so ConfDir can later be made read-only.
	ConfDir string
	// ConfName is the config file's name inside ConfDir (default "valkey.conf").
	ConfName string
	// Extra are config lines appended after the generated ones.
	Extra []string
	// Credential, when set, runs the server as that user and group (the
	// test must be root, and Dir writable by that user): the server's own
	// user then plays the attacker in trust tests.
	Credential *syscall.Credential
	// Sentinel runs the server in Sentinel mode (--sentinel); see sentinel.go.
	Sentinel bool
}

// Server is a running valkey-server.
type Server struct {
	Addr     string // "127.0.0.1:PORT"
	Port     int
	ConfPath string // the config file the server was started with
	Dir      string // working directory (dir), holds the log
	LogPath  string
	// Password, when set, is sent by CLI (for servers with requirepass).
	Password string

	t   testing.TB
	cmd *exec.Cmd
}

// Bin returns the path of valkey-server, skipping (or failing, with
// VALKEYOPS_REQUIRE_SERVER=1) the test when it is missing.
func Bin(t testing.TB) string {
	t.Helper()
	return lookPath(t, "valkey-server")
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s is not on PATH and %s=1", name, RequireEnv)
		}
		t.Skipf("%s is not on PATH", name)
	}
	return p
}

// StartAs starts a server run by uid:gid (the test must be root) in
// OwnedDir(t, uid, gid): the server's own user, which may plant links
// there, as on a real install where valkey owns its directory.
func StartAs(t testing.TB, uid, gid int, extra ...string) *Server {
	t.Helper()
	return StartWith(t, Options{Dir: OwnedDir(t, uid, gid), Extra: extra, Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}})
}

// OwnedDir is a fresh directory owned by uid:gid, mode 0750, directly under
// the system's temp dir so that user can reach it (skips unless root).
func OwnedDir(t testing.TB, uid, gid int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running the server as another user needs root")
	}
	dir, err := os.MkdirTemp("", "valkeyops-as-"+strconv.Itoa(uid)+"-")
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatalf("testserver: %v", err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatalf("testserver: %v", err)
	}
	return dir
}

// Start starts a server with the default options plus extra config lines.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return StartWith(t, Options{Extra: extra})
}

// StartWith starts a server. A port taken between choosing and binding is
// retried with another port.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Bin(t)
	lookPath(t, "valkey-cli")
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.ConfDir == "" {
		o.ConfDir = o.Dir
	}
	if o.ConfName == "" {
		o.ConfName = "valkey.conf"
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s, err := start(t, bin, o)
		if err == nil {
			return s
		}
		lastErr = err
		if !errors.Is(err, errBind) {
			break
		}
	}
	t.Fatalf("testserver: %v", lastErr)
	return nil
}

var errBind = errors.New("port already in use")

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

func start(t testing.TB, bin string, o Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("failed to pick a port: %w", err)
	}
	s := &Server{
		Addr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Port:     port,
		ConfPath: filepath.Join(o.ConfDir, o.ConfName),
		Dir:      o.Dir,
		LogPath:  filepath.Join(o.Dir, fmt.Sprintf("valkey-%d.log", port)),
		t:        t,
	}
	lines := []string{
		"port " + strconv.Itoa(port),
		"bind 127.0.0.1",
		"dir " + quote(o.Dir),
		`save ""`,
		"appendonly no",
		"daemonize no",
		"logfile " + quote(s.LogPath),
	}
	lines = append(lines, o.Extra...)
	if err := os.WriteFile(s.ConfPath, []byte(strings.Join(lines, "\n")+"\n"), 0o640); err != nil {
		return nil, fmt.Errorf("failed to write %s: %w", s.ConfPath, err)
	}
	if c := o.Credential; c != nil {
		if err := os.Chown(s.ConfPath, int(c.Uid), int(c.Gid)); err != nil {
			return nil, fmt.Errorf("failed to chown %s: %w", s.ConfPath, err)
		}
	}
	s.cmd = exec.Command(bin, s.ConfPath)
	if o.Sentinel {
		s.cmd.Args = append(s.cmd.Args, "--sentinel")
	}
	s.cmd.Dir = o.Dir
	s.cmd.SysProcAttr = diesWithTheTest()
	s.cmd.SysProcAttr.Credential = o.Credential
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start valkey-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	stop := func() {
		_ = s.cmd.Process.Kill()
		<-done
	}
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(s.LogPath)
			if strings.Contains(string(log), "Address already in use") {
				return nil, errBind
			}
			return nil, fmt.Errorf("valkey-server exited early; log:\n%s", log)
		default:
		}
		if pingOK(s.Addr) && listensOn(s.cmd.Process.Pid, s.Port) {
			t.Cleanup(stop)
			return s, nil
		}
		if time.Now().After(deadline) {
			stop()
			log, _ := os.ReadFile(s.LogPath)
			return nil, fmt.Errorf("valkey-server did not answer PING on %s within %s; log:\n%s", s.Addr, startTimeout, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// quote renders a config-file argument in double quotes.
func quote(s string) string { return strconv.Quote(s) }

func pingOK(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "*1\r\n$4\r\nPING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	// -NOAUTH (requirepass) also means the server is up and serving.
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH"))
}

// Stop kills the server now (Cleanup would too) and returns once its port
// is closed (the process has exited), so the port can be reused. A port still
// open after stopTimeout fails the test rather than letting it race.
func (s *Server) Stop() {
	s.t.Helper()
	_ = s.cmd.Process.Kill() // an error only says it had exited already
	deadline := time.Now().Add(stopTimeout)
	for !portClosed(s.Addr) {
		if time.Now().After(deadline) {
			s.t.Fatalf("testserver: %s still accepts connections %s after SIGKILL", s.Addr, stopTimeout)
		}
		time.Sleep(10 * time.Millisecond) // poll interval; the event is the closed port
	}
}

func portClosed(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return true
	}
	_ = c.Close()
	return false
}

// CLI runs valkey-cli against the server (as the default user, with
// Password when set) with args and returns its
// raw output, trimmed. It fails the test when valkey-cli fails.
func (s *Server) CLI(args ...string) string {
	s.t.Helper()
	out, err := s.CLIErr(args...)
	if err != nil {
		s.t.Fatalf("valkey-cli %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

// CLIErr runs valkey-cli and returns the output and the exit error.
func (s *Server) CLIErr(args ...string) (string, error) {
	full := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "--no-auth-warning"}, args...)
	cmd := exec.Command("valkey-cli", full...)
	if s.Password != "" {
		cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+s.Password) // not on argv
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimRight(string(out), "\n"), err
}

// ConfigGet returns one parameter's value as CONFIG GET reports it.
func (s *Server) ConfigGet(name string) string {
	s.t.Helper()
	out := s.CLI("--raw", "CONFIG", "GET", name)
	lines := strings.Split(out, "\n")
	if len(lines) < 2 {
		if len(lines) == 1 && lines[0] == name {
			return ""
		}
		s.t.Fatalf("CONFIG GET %s: unexpected reply %q", name, out)
	}
	return strings.Join(lines[1:], "\n")
}

// ConfigSet runs CONFIG SET name value and fails the test unless it says OK.
func (s *Server) ConfigSet(name, value string) {
	s.t.Helper()
	if out := s.CLI("CONFIG", "SET", name, value); out != "OK" {
		s.t.Fatalf("CONFIG SET %s: %s", name, out)
	}
}

// ReadConf returns the config file's current bytes.
func (s *Server) ReadConf() []byte {
	s.t.Helper()
	b, err := os.ReadFile(s.ConfPath)
	if err != nil {
		s.t.Fatalf("failed to read %s: %v", s.ConfPath, err)
	}
	return b
}

// StartFile starts valkey-server on the config file at path exactly as it is
// written; the test's port, dir and log come from the command line, which the
// server reads after the file. It returns the running server, or nil and the
// server's output when the server refused to start with that file.
func StartFile(t testing.TB, path string) (*Server, string) {
	t.Helper()
	bin := Bin(t)
	for attempt := 0; attempt < 5; attempt++ {
		s, out, err := startFile(t, bin, path)
		if !errors.Is(err, errBind) {
			return s, out
		}
	}
	t.Fatalf("testserver: no free port for %s after 5 attempts", path)
	return nil, ""
}

func startFile(t testing.TB, bin, path string) (*Server, string, error) {
	port, err := freePort()
	if err != nil {
		t.Fatalf("testserver: failed to pick a port: %v", err)
	}
	dir := t.TempDir()
	s := &Server{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port,
		ConfPath: path, Dir: dir, LogPath: filepath.Join(dir, "valkey.log"), t: t,
	}
	// A config error is printed to stderr before the log is opened.
	var out strings.Builder
	s.cmd = exec.Command(bin, path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--daemonize", "no", "--logfile", s.LogPath, "--save", "", "--appendonly", "no")
	s.cmd.Dir = dir
	s.cmd.SysProcAttr = diesWithTheTest()
	s.cmd.Stdout = &out
	s.cmd.Stderr = &out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("testserver: failed to start valkey-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(s.LogPath)
			text := out.String() + string(log)
			if strings.Contains(text, "Address already in use") {
				return nil, text, errBind
			}
			return nil, text, nil
		default:
		}
		if pingOK(s.Addr) && listensOn(s.cmd.Process.Pid, s.Port) {
			t.Cleanup(func() { _ = s.cmd.Process.Kill(); <-done })
			return s, "", nil
		}
		if time.Now().After(deadline) {
			_ = s.cmd.Process.Kill()
			<-done
			t.Fatalf("testserver: valkey-server on %s neither answered nor exited within %s", path, startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// diesWithTheTest makes a server die with the test binary that started it:
// a test killed by its -timeout (or a stress run ended by hand) runs no
// Cleanup, and its servers would otherwise outlive it on the machine.
func diesWithTheTest() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// listensOn reports whether process pid holds the listening TCP socket of
// port on 127.0.0.1. A PONG alone does not say whose server answered: when
// the port was taken between freePort and the server's bind (another test,
// another suite running beside this one), ours exits with "Address already
// in use" while the other one answers.
func listensOn(pid, port int) bool { return listensOnIP(pid, "127.0.0.1", port) }
