package config

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/ansible/ansibletest"
	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/testserver"
)

// task builds the module arguments for srv: login_port plus args.
func task(srv *testserver.Server, args map[string]any) map[string]any {
	out := map[string]any{"login_port": srv.Port}
	for k, v := range args {
		out[k] = v
	}
	return out
}

// call runs Main with a Request parsed from the JSON of args.
func call(t *testing.T, args map[string]any) (*ansible.Result, *Fields) {
	t.Helper()
	ansibletest.WithJournal(t, args)
	return ansibletest.Call[Fields](t, "valkey_config", Main, args)
}

// callOK is call that fails the test when the task failed.
func callOK(t *testing.T, args map[string]any) (*ansible.Result, *Fields) {
	t.Helper()
	ansibletest.WithJournal(t, args)
	return ansibletest.CallOK[Fields](t, "valkey_config", Main, args)
}

// printed runs the module as the binary does and returns the printed JSON.
func printed(t *testing.T, args map[string]any) (string, map[string]any, int) {
	t.Helper()
	ansibletest.WithJournal(t, args)
	return ansibletest.Printed(t, "valkey_config", Main, args)
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
