package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/testserver"
)

// Soak knobs: VALKEYOPS_SOAK_PAIRS (default 200; 20 with -short) and
// VALKEYOPS_SOAK_BINARY (default: the binary built for this package), so the
// same soak can be pointed at an older build to show that it fails there.
const (
	soakPairsEnv  = "VALKEYOPS_SOAK_PAIRS"
	soakBinaryEnv = "VALKEYOPS_SOAK_BINARY"
)

// TestSoakConcurrentPairs runs pairs of tasks at once through the binary, as
// two operators would, against one server, and checks after every pair
// that the running server and valkey.conf agree: valkey_config against
// valkey_config (maxmemory 1gb against 100mb), and valkey_acl (persisting
// with CONFIG REWRITE) against valkey_config (the user is in the file).
func TestSoakConcurrentPairs(t *testing.T) {
	pairs := 200
	if testing.Short() {
		pairs = 20
	}
	if v := os.Getenv(soakPairsEnv); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, soakPairsEnv)
		pairs = n
	}
	bin := binary
	if v := os.Getenv(soakBinaryEnv); v != "" {
		bin = v
	}
	srv := testserver.Start(t, "maxmemory 0")
	journal := filepath.Join(t.TempDir(), "changes.jsonl")
	mem, _ := directives.Lookup("maxmemory")
	task := func(module string, args map[string]any) func() error {
		args["login_port"], args["journal_path"] = srv.Port, journal
		data, err := json.Marshal(args)
		require.NoError(t, err)
		return func() error { return runModule(bin, module, data) }
	}

	t.Run("config against config", func(t *testing.T) {
		bad := 0
		for i := 0; i < pairs; i++ {
			errs := together(
				task("valkey_config", map[string]any{"settings": map[string]any{"maxmemory": "1gb"}}),
				task("valkey_config", map[string]any{"settings": map[string]any{"maxmemory": "100mb"}}),
			)
			require.NoError(t, errs, "pair %d", i)
			runtime, file := srv.ConfigGet("maxmemory"), fileValue(t, srv.ConfPath, mem)
			if rt, err := mem.FromServer(runtime); err != nil || rt.Canonical != file {
				bad++
				t.Logf("pair %d: runtime %s, file %s", i, runtime, file)
			}
		}
		require.Zero(t, bad, "%d of %d pairs ended with the server and its file disagreeing", bad, pairs)
	})

	t.Run("acl against config", func(t *testing.T) {
		bad := 0
		for i := 0; i < pairs; i++ {
			user := "soak" + strconv.Itoa(i)
			want := []string{"1gb", "100mb"}[i%2]
			errs := together(
				task("valkey_acl", map[string]any{"name": user, "nopass": true, "keys": []string{user + ":*"}, "commands": []string{"+get"}, "persist": "config"}),
				task("valkey_config", map[string]any{"settings": map[string]any{"maxmemory": want}}),
			)
			require.NoError(t, errs, "pair %d", i)
			conf := string(srv.ReadConf())
			runtime, file := srv.ConfigGet("maxmemory"), fileValue(t, srv.ConfPath, mem)
			rt, err := mem.FromServer(runtime)
			if !strings.Contains(conf, "\nuser "+user+" ") || err != nil || rt.Canonical != file {
				bad++
				t.Logf("pair %d: user in the file: %t; maxmemory runtime %s, file %s", i, strings.Contains(conf, "\nuser "+user+" "), runtime, file)
			}
		}
		require.Zero(t, bad, "%d of %d pairs ended with the server and its file disagreeing", bad, pairs)
	})
}

// together starts every task at once and waits for all; it returns the
// first failure.
func together(tasks ...func() error) error {
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for i, f := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// runModule runs `bin module NAME` with args on stdin; a failed task is an
// error with its output.
func runModule(bin, module string, args []byte) error {
	cmd := exec.Command(bin, "module", module)
	cmd.Stdin = bytes.NewReader(args)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", module, err, out)
	}
	return nil
}

// fileValue is the canonical value of d in the config file.
func fileValue(t *testing.T, path string, d *directives.Directive) string {
	t.Helper()
	cfg, err := conffile.Load(path)
	require.NoError(t, err)
	args, _, ok := cfg.Effective(d.Accumulates, d.Names()...)
	if !ok {
		return "(not set)"
	}
	v, err := d.FromFile(args)
	require.NoError(t, err)
	return v.Canonical
}
