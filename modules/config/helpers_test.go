package config

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible/ansibletest"
	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/testserver"
)

// mod runs valkey_config in tests as the binary does (ansibletest.Module).
var mod = ansibletest.Module[Fields]{Name: "valkey_config", Main: Main}

// task builds the module arguments for srv: login_port plus args.
func task(srv *testserver.Server, args map[string]any) map[string]any {
	return ansibletest.Args(map[string]any{"login_port": srv.Port}, args)
}

// fileArgs returns the arguments of every line of the config file that sets
// one of names, joined by spaces, one entry per line.
func fileArgs(t *testing.T, path string, names ...string) []string {
	t.Helper()
	cfg, err := conffile.Load(path)
	require.NoError(t, err)
	var out []string
	for _, o := range cfg.Occurrences(names...) {
		out = append(out, strings.Join(o.Args, " "))
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
