package cluster

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// valkey-cli is Valkey's own cluster manager: slots move with its
// rebalance (MIGRATE with ASK redirections, so clients never lose a key),
// not with a second resharding engine here.

// cliPath is where valkey-cli is looked up: the system's directories only,
// never the task's or a user's PATH.
const cliPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// maxCLIOutput bounds what is kept of valkey-cli's output (its last bytes).
const maxCLIOutput = 64 << 10

// cliStarted, when set (tests), is called with the pid of every valkey-cli
// the module starts, while it runs.
var cliStarted func(pid int)

// cliArgv is valkey-cli's command line for a cluster command: the login
// user and TLS flags, never the password (it goes in REDISCLI_AUTH, in
// the environment only the process and root can read, not the command
// line every local user can).
func (o *Options) cliArgv(sub string, args ...string) []string {
	argv := append([]string{"--cluster", sub}, args...)
	argv = append(argv, "--cluster-yes")
	if o.LoginUser != "" {
		argv = append(argv, "--user", o.LoginUser)
	}
	if o.TLS {
		argv = append(argv, "--tls")
		if o.TLSCACert != "" {
			argv = append(argv, "--cacert", o.TLSCACert)
		}
		if o.TLSCert != "" {
			argv = append(argv, "--cert", o.TLSCert, "--key", o.TLSKey)
		}
		if o.TLSServerName != "" {
			argv = append(argv, "--sni", o.TLSServerName)
		}
		if o.ValidateCerts != nil && !*o.ValidateCerts {
			argv = append(argv, "--insecure")
		}
	}
	return argv
}

// cliEnv is valkey-cli's whole environment: the system PATH and the password.
func (o *Options) cliEnv() []string {
	env := []string{"PATH=" + cliPath, "HOME=/nonexistent"}
	if o.LoginPassword.IsSet() {
		env = append(env, "REDISCLI_AUTH="+o.LoginPassword.Reveal())
	}
	return env
}

// tail keeps the last bytes written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > maxCLIOutput {
		t.b = t.b[len(t.b)-maxCLIOutput:]
	}
	return len(p), nil
}

// lookCLI finds valkey-cli in the system's directories.
func lookCLI() (string, error) {
	for _, dir := range strings.Split(cliPath, ":") {
		if p, err := exec.LookPath(dir + "/valkey-cli"); err == nil {
			return p, nil
		}
	}
	return "", errors.New("valkey-cli (Valkey's cluster manager, from the valkey-tools or valkey-server package) is not installed on the target")
}

// runCLI runs valkey-cli --cluster sub args and returns its output.
func (o *Options) runCLI(ctx context.Context, sub string, args ...string) (string, error) {
	bin, err := lookCLI()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, bin, o.cliArgv(sub, args...)...)
	cmd.Env = o.cliEnv()
	cmd.Dir = "/"
	out := &tail{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("failed to start valkey-cli: %w", err)
	}
	if cliStarted != nil {
		cliStarted(cmd.Process.Pid)
	}
	err = cmd.Wait()
	text := string(out.b)
	if err == nil && strings.Contains(text, "[ERR]") {
		err = errors.New("it reported an error")
	}
	if err != nil {
		return text, fmt.Errorf("valkey-cli --cluster %s failed (%v): %s", sub, err, lastLines(text, 3))
	}
	return text, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
