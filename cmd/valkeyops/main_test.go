package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

// binary is the valkeyops binary built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "valkeyops-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "valkeyops")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version=1.2.3-test", "-o", binary, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

type result struct {
	code   int
	stdout string
	stderr string
	doc    map[string]any
}

// exe runs the binary (or a link to it) with stdin.
func exe(t *testing.T, path string, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	if strings.HasPrefix(r.stdout, "{") {
		require.NoError(t, json.Unmarshal(out.Bytes(), &r.doc), "stdout: %s", r.stdout)
		assert.Equal(t, 1, strings.Count(r.stdout, "\n"), "one JSON document")
	}
	return r
}

func TestModuleOverStdin(t *testing.T) {
	srv := testserver.Start(t)
	args := fmt.Sprintf(`{"login_port":%d,"settings":{"maxmemory-policy":"allkeys-lru"},"_ansible_diff":true}`, srv.Port)

	r := exe(t, binary, args, "module", "valkey_config")
	assert.Equal(t, 0, r.code, r.stdout)
	assert.Empty(t, r.stderr)
	assert.Equal(t, true, r.doc["changed"])
	assert.Equal(t, []any{"maxmemory-policy"}, r.doc["runtime_changed"])
	assert.Equal(t, srv.ConfPath, r.doc["config_file"])
	assert.Equal(t, "allkeys-lru", srv.ConfigGet("maxmemory-policy"))
	assert.Contains(t, r.doc, "diff")

	r = exe(t, binary, args, "module", "valkey_config")
	assert.Equal(t, 0, r.code)
	assert.Equal(t, false, r.doc["changed"])

	// Wrapped arguments, as new-style modules get them.
	r = exe(t, binary, `{"ANSIBLE_MODULE_ARGS":`+args+`}`, "module", "valkey_config")
	assert.Equal(t, 0, r.code, r.stdout)
	assert.Equal(t, false, r.doc["changed"])
}

func TestModuleFailureContract(t *testing.T) {
	const secret = "Bin-Secret-5e7a"
	r := exe(t, binary, `{"login_port":1,"login_password":"`+secret+`","settings":{"requirepass":"`+secret+`"}}`, "module", "valkey_config")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, true, r.doc["failed"])
	assert.Equal(t, false, r.doc["changed"])
	assert.Contains(t, r.doc["msg"], "cannot connect to 127.0.0.1:1: ")
	assert.NotContains(t, r.stdout+r.stderr, secret)

	r = exe(t, binary, `{"settings":{},"bogus":1}`, "module", "valkey_config")
	assert.Equal(t, 1, r.code)
	assert.True(t, strings.HasPrefix(r.doc["msg"].(string), "unsupported option for valkey_config: bogus; valid options: "), r.doc["msg"])

	r = exe(t, binary, `not json`, "module", "valkey_config")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "failed to read the module arguments: expected one JSON object (invalid JSON at byte 2)", r.doc["msg"])
}

func TestArgsFile(t *testing.T) {
	srv := testserver.Start(t)
	path := filepath.Join(t.TempDir(), "args")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`{"login_port":%d,"settings":{"hz":21}}`, srv.Port)), 0o600))

	r := exe(t, binary, "", "module", "valkey_config", path)
	assert.Equal(t, 0, r.code, r.stdout)
	assert.Equal(t, true, r.doc["changed"])
	assert.Equal(t, "21", srv.ConfigGet("hz"))

	// Multi-call: invoked as valkey_config with the args file in argv[1].
	link := filepath.Join(t.TempDir(), "valkey_config")
	require.NoError(t, os.Symlink(binary, link))
	r = exe(t, link, "", path)
	assert.Equal(t, 0, r.code, r.stdout)
	assert.Equal(t, false, r.doc["changed"])

	// ... and with the arguments on stdin when no file is given.
	r = exe(t, link, fmt.Sprintf(`{"login_port":%d,"settings":{"hz":22}}`, srv.Port))
	assert.Equal(t, 0, r.code, r.stdout)
	assert.Equal(t, true, r.doc["changed"])
	assert.Equal(t, "22", srv.ConfigGet("hz"))

	missing := filepath.Join(t.TempDir(), "missing")
	r = exe(t, link, "", missing)
	assert.Equal(t, 1, r.code)
	assert.Equal(t, fmt.Sprintf("failed to read the module arguments from %q: no such file or directory", missing), r.doc["msg"])
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no arguments", nil, 2, "", "usage:\n  valkeyops module NAME [ARGS_FILE]   run an Ansible module (JSON arguments on stdin)\n  valkeyops version                   print the version\nmodules: valkey_config\n"},
		{"unknown module", []string{"module", "valkey_nope"}, 2, "", "valkeyops: unknown module \"valkey_nope\"; modules: valkey_config\n"},
		{"module without name", []string{"module"}, 2, "", "usage: valkeyops module NAME [ARGS_FILE]  (arguments as JSON on stdin)\n"},
		{"module with too many arguments", []string{"module", "valkey_config", "a", "b"}, 2, "", "usage: valkeyops module NAME [ARGS_FILE]  (arguments as JSON on stdin)\n"},
		{"unknown command", []string{"frobnicate"}, 2, "", "valkeyops: unknown command \"frobnicate\"\nusage:\n  valkeyops module NAME [ARGS_FILE]   run an Ansible module (JSON arguments on stdin)\n  valkeyops version                   print the version\nmodules: valkey_config\n"},
		{"version", []string{"version"}, 0, "valkeyops 1.2.3-test\n", ""},
		{"--version", []string{"--version"}, 0, "valkeyops 1.2.3-test\n", ""},
		{"help", []string{"help"}, 0, "usage:\n  valkeyops module NAME [ARGS_FILE]   run an Ansible module (JSON arguments on stdin)\n  valkeyops version                   print the version\nmodules: valkey_config\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := exe(t, binary, "", tc.args...)
			assert.Equal(t, tc.code, r.code)
			assert.Equal(t, tc.stdout, r.stdout)
			assert.Equal(t, tc.stderr, r.stderr)
		})
	}
}

func TestRunInProcess(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 2, run(nil, strings.NewReader(""), &out, &errb), "empty argv")
	assert.Contains(t, errb.String(), "usage:")
	errb.Reset()
	code := run([]string{"/usr/local/bin/valkeyops", "version"}, strings.NewReader(""), &out, &errb)
	assert.Equal(t, 0, code)
	assert.Equal(t, "valkeyops dev\n", out.String())

	out.Reset()
	code = run([]string{"valkeyops", "module", "valkey_config"}, strings.NewReader(`{"persist":"never","settings":{}}`), &out, &errb)
	assert.Equal(t, 1, code)
	assert.Equal(t, `{"changed":false,"failed":true,"msg":"option \"persist\": \"never\" is not one of runtime, file, both; nothing was changed"}`+"\n", out.String())
}
