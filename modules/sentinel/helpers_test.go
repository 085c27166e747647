package sentinel

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible/ansibletest"
	"github.com/valkeyops/secure/internal/testserver"
)

// mod runs valkey_sentinel in tests as the binary does (ansibletest.Module).
var mod = ansibletest.Module[Fields]{Name: "valkey_sentinel", Main: Main}

const authPass = "Sentinel-auth-pass-0451"

// task builds the module arguments for Sentinel s: login_port plus args.
func task(s *testserver.Server, args map[string]any) map[string]any {
	return ansibletest.Args(map[string]any{"login_port": s.Port}, args)
}

// monitor is a monitor entry for primary p.
func monitor(name string, p *testserver.Server, extra map[string]any) map[string]any {
	m := map[string]any{"name": name, "primary_host": "127.0.0.1", "primary_port": p.Port, "quorum": 2}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// sentinelLines are the file's lines that start with "sentinel " + sub.
func sentinelLines(t *testing.T, path, sub string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "sentinel "+sub+" ") {
			out = append(out, l)
		}
	}
	return out
}

// stateLines are the lines of Sentinel's own state in its config file.
func stateLines(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"myid", "current-epoch", "config-epoch", "leader-epoch", "known-replica", "known-sentinel", "monitor"} {
		out = append(out, sentinelLines(t, path, sub)...)
	}
	return out
}

// primaryField is one field of SENTINEL MASTER name on s.
func primaryField(t *testing.T, s *testserver.Server, name, field string) string {
	t.Helper()
	lines := strings.Split(s.CLI("--raw", "SENTINEL", "MASTER", name), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		if lines[i] == field {
			return lines[i+1]
		}
	}
	t.Fatalf("SENTINEL MASTER %s has no field %s", name, field)
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }

// masters is SENTINEL MASTERS without the fields that tick by themselves
// (ping and refresh times, link flags): what a task could change.
func masters(t *testing.T, s *testserver.Server) string {
	t.Helper()
	stable := map[string]bool{"name": true, "ip": true, "port": true, "quorum": true, "config-epoch": true,
		"down-after-milliseconds": true, "failover-timeout": true, "parallel-syncs": true}
	lines := strings.Split(s.CLI("--raw", "SENTINEL", "MASTERS"), "\n")
	var out []string
	for i := 0; i+1 < len(lines); i += 2 {
		if stable[lines[i]] {
			out = append(out, lines[i]+"="+lines[i+1])
		}
	}
	return strings.Join(out, " ")
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
