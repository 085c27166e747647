package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// sshTarget is a real sshd on a loopback port that accepts root with a
// throwaway key, as the bridge tests start one.
type sshTarget struct {
	port    int
	hostPub string
	cmd     *exec.Cmd
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// keyDir is outside the test's 0700 temp root, so sshd can read it.
func keyDir(t *testing.T) (dir, clientKey string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run sshd")
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Skip("sshd is not installed")
	}
	dir, err := os.MkdirTemp("", "valkeyops-drift-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	clientKey = filepath.Join(dir, "client_key")
	require.NoError(t, exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", clientKey).Run())
	pub, err := os.ReadFile(clientKey + ".pub")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o644))
	return dir, clientKey
}

func startSSHD(t *testing.T, dir string, n int) *sshTarget {
	t.Helper()
	hostKey := filepath.Join(dir, fmt.Sprintf("host_key_%d", n))
	require.NoError(t, exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).Run())
	port := freePort(t)
	cfg := filepath.Join(dir, fmt.Sprintf("sshd_config_%d", n))
	require.NoError(t, os.WriteFile(cfg, []byte(strings.Join([]string{
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(dir, fmt.Sprintf("sshd_%d.pid", n)),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"StrictModes no",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"AllowUsers root",
		"AllowTcpForwarding yes",
		"Subsystem sftp internal-sftp",
		"",
	}, "\n")), 0o644))
	_ = os.MkdirAll("/run/sshd", 0o755)
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	pub, err := os.ReadFile(hostKey + ".pub")
	require.NoError(t, err)
	return &sshTarget{port: port, hostPub: strings.TrimSpace(string(pub)), cmd: cmd}
}

func (s *sshTarget) knownHostsLine() string {
	f := strings.Fields(s.hostPub)
	return fmt.Sprintf("[127.0.0.1]:%d %s %s\n", s.port, f[0], f[1])
}

func drift(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := Drift(args, &out, &errb)
	return out.String(), errb.String(), code
}

const driftPassword = "drift-admin-Pw-3e9d71"

// Three real targets on this machine, each an sshd with its own Valkey:
// one drifted at runtime, one as desired, one down.
func TestDriftScanThreeTargetsOneDown(t *testing.T) {
	testserver.Bin(t)
	dir, clientKey := keyDir(t)
	var known strings.Builder
	var sshds []*sshTarget
	var servers []*testserver.Server
	for i := 0; i < 3; i++ {
		s := startSSHD(t, dir, i)
		sshds = append(sshds, s)
		known.WriteString(s.knownHostsLine())
		srv := testserver.Start(t, "maxmemory 100mb", "user admin on >"+driftPassword+" ~* &* +@all", "user default off")
		servers = append(servers, srv)
	}
	knownHosts := filepath.Join(dir, "known_hosts")
	require.NoError(t, os.WriteFile(knownHosts, []byte(known.String()), 0o644))
	// Target 0 drifts: maxmemory changed at runtime only, and a user added by hand.
	adminCLI(t, servers[0], "CONFIG", "SET", "maxmemory", "200mb")
	adminCLI(t, servers[0], "ACL", "SETUSER", "intruder", "on", ">x-Pw-9", "~*", "+@all")
	// A user whose name is markup, made by whoever may run ACL SETUSER.
	adminCLI(t, servers[0], "ACL", "SETUSER", evilUser, "on", ">"+aclSecret, "~*", "+@all")
	// Target 2 is down.
	_ = sshds[2].cmd.Process.Kill()
	_ = sshds[2].cmd.Wait()

	t.Setenv("VALKEYOPS_TEST_PW", driftPassword)
	var targets strings.Builder
	fmt.Fprintf(&targets, `defaults:
  user: root
  identity_file: %s
  known_hosts: %s
  connect_timeout: 3
  valkey_user: admin
  valkey_password_env: VALKEYOPS_TEST_PW
  desired:
    settings: {maxmemory: 100mb}
    users: [{name: default, enabled: false}, {name: admin}]
targets:
`, clientKey, knownHosts)
	for i := range sshds {
		fmt.Fprintf(&targets, "  - {name: vk%d, host: 127.0.0.1, port: %d, valkey_port: %d}\n", i, sshds[i].port, servers[i].Port)
	}
	tf := filepath.Join(dir, "targets.yml")
	require.NoError(t, os.WriteFile(tf, []byte(targets.String()), 0o600))

	out, errOut, code := drift("--targets", tf)
	assert.Equal(t, ExitFindings, code, out+errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out)
	assert.Regexp(t, `^TARGET\s+INSTANCE\s+STATUS\s+FINDINGS`, lines[0])
	assert.Regexp(t, `^vk0\s+default\s+drift\s+\S+\s+maxmemory,user:<script>alert\(1\)</script>,user:intruder\s`, lines[1])
	assert.Regexp(t, `^vk1\s+default\s+findings\s+\S+\s+-\s`, lines[2])
	assert.Regexp(t, `^vk2\s+-\s+unreachable\s+-\s+-\s+ssh 127.0.0.1:\d+: .*connection refused`, lines[3])
	assert.NotContains(t, out+errOut, driftPassword)

	out, _, code = drift("--targets", tf, "--format", "json", "--parallel", "2")
	assert.Equal(t, ExitFindings, code)
	var res []TargetResult
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.Len(t, res, 3)
	assert.Equal(t, "drift", res[0].Status)
	assert.Equal(t, []string{"runtime"}, res[0].Report.Drift.Settings["maxmemory"].Differs)
	assert.Equal(t, "not listed", res[0].Report.Drift.Users["intruder"].Desired)
	assert.Equal(t, "findings", res[1].Status)
	assert.Empty(t, res[1].Report.Drift.Settings)
	// Each report and each finding names the instance (valkey.conf: default).
	assert.Equal(t, "default", res[1].Report.Instance)
	require.NotEmpty(t, res[1].Report.Findings)
	for _, f := range res[1].Report.Findings {
		assert.Equal(t, "default", f.Instance, f.ID)
	}
	assert.Equal(t, "unreachable", res[2].Status)
	// The config file was read over SFTP: its path is the server's.
	assert.Equal(t, servers[1].ConfPath, res[1].Report.ConfigFile)
	assert.NotContains(t, out, driftPassword)

	// Compared with the JSON scan above: the same state, so nothing changed.
	scan := filepath.Join(dir, "scan.json")
	require.NoError(t, os.WriteFile(scan, []byte(out), 0o600))
	page, errOut, _ := drift("--targets", tf, "--format", "html", "--previous", scan)
	assert.Contains(t, page, `<section id="since">`, errOut)
	assert.Contains(t, page, `<p class="none">No change.</p>`)

	// The same scan as one HTML page, JUnit and SARIF: the markup escaped,
	// no password, the drift and the unreachable target shown.
	for _, format := range []string{"html", "junit", "sarif"} {
		out, errOut, code = drift("--targets", tf, "--format", format)
		assert.Equal(t, ExitFindings, code, errOut)
		for _, secret := range []string{driftPassword, aclSecret, "x-Pw-9"} {
			assert.NotContains(t, out, secret, format)
		}
		assert.NotContains(t, out, evilUser, format)
		if format == "html" {
			assert.Contains(t, out, `<tr data-drift="user"><td>vk0/default</td><td>user</td><td>&lt;script&gt;alert(1)&lt;/script&gt;</td>`)
			assert.Contains(t, out, `<tr data-drift="directive"><td>vk0/default</td><td>directive</td><td>maxmemory</td><td>104857600</td><td>209715200</td>`)
			assert.Contains(t, out, `<dd data-count="errors">1</dd>`)
			assert.Contains(t, out, `<tr data-instance="vk2" data-status="error">`)
		}
	}

	// A host key that is not in known_hosts is refused, never trusted.
	require.NoError(t, os.WriteFile(knownHosts, []byte(sshds[1].knownHostsLine()), 0o644))
	out, _, _ = drift("--targets", tf)
	assert.Contains(t, out, "the host key is not in "+knownHosts)
}

func adminCLI(t *testing.T, srv *testserver.Server, args ...string) {
	t.Helper()
	cmd := exec.Command("valkey-cli", append([]string{"-p", strconv.Itoa(srv.Port), "--user", "admin", "--no-auth-warning"}, args...)...)
	cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+driftPassword)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Equal(t, "OK", strings.TrimSpace(string(out)))
}

func TestDriftBadTargetsFile(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct{ doc, want string }{
		"unknown key": {"targets:\n  - host: a\n    usr: root\n", "invalid targets " + dir + "/t.yml:3: unknown field \"usr\""},
		"no host":     {"targets:\n  - name: a\n", "targets[0]: host is required"},
		"no user":     {"targets:\n  - host: a\n", `target "a": user is required`},
		"bad desired": {"defaults: {user: r, desired: {settings: {maxmemory: lots}}}\ntargets:\n  - host: a\n", `target "a": desired.settings`},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, "t.yml")
			require.NoError(t, os.WriteFile(p, []byte(c.doc), 0o600))
			_, errOut, code := drift("--targets", p)
			assert.Equal(t, ExitUsage, code)
			assert.Contains(t, errOut, c.want)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), errOut)
		})
	}
}
