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

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/groupca"
	"github.com/valkeyops/secure/internal/journal"
	internalreport "github.com/valkeyops/secure/internal/report"
	"github.com/valkeyops/secure/internal/settings"
	"github.com/valkeyops/secure/internal/testserver"
	"github.com/valkeyops/secure/internal/topology"
	"github.com/valkeyops/secure/modules/acl"
	"github.com/valkeyops/secure/modules/report"
	"github.com/valkeyops/secure/modules/sentinel"
	valkeytls "github.com/valkeyops/secure/modules/tls"
	"github.com/valkeyops/secure/modules/tlscsr"
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
	journalPath := filepath.Join(t.TempDir(), "changes.jsonl")
	args := fmt.Sprintf(`{"login_port":%d,"journal_path":%q,"settings":{"maxmemory-policy":"allkeys-lru"},"_ansible_diff":true,"_valkeyops_controller":{"user":"alice","playbook":"/src/site.yml","git_commit":"0123456789abcdef0123456789abcdef01234567","git_dirty":false}}`, srv.Port, journalPath)

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

	// The one change is in the journal, and `valkeyops journal` shows it.
	r = exe(t, binary, "", "journal", "--path", journalPath, "--directive", "maxmemory-policy")
	assert.Equal(t, 0, r.code, r.stderr)
	rows := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, rows, 2, r.stdout)
	assert.Regexp(t, `^\S+Z\s+valkey_config\s+\S+\s+default\s+127\.0\.0\.1:\d+\s+maxmemory-policy\s+noeviction\s+allkeys-lru\s+alice\s+0123456789ab$`, rows[1])
	r = exe(t, binary, "", "journal", "--path", journalPath, "--format", "json", "--since", "1h")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, 1, strings.Count(r.stdout, "\n"))
	r = exe(t, binary, "", "journal", "--path", journalPath, "--format", "xml")
	assert.Equal(t, 2, r.code)
	assert.Equal(t, "valkeyops journal: --format \"xml\" is not one of json, table\n", r.stderr)
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
	journalPath := filepath.Join(t.TempDir(), "changes.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`{"login_port":%d,"journal_path":%q,"settings":{"hz":21}}`, srv.Port, journalPath)), 0o600))

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
	r = exe(t, link, fmt.Sprintf(`{"login_port":%d,"journal_path":%q,"settings":{"hz":22}}`, srv.Port, journalPath))
	assert.Equal(t, 0, r.code, r.stdout)
	assert.Equal(t, true, r.doc["changed"])
	assert.Equal(t, "22", srv.ConfigGet("hz"))

	missing := filepath.Join(t.TempDir(), "missing")
	r = exe(t, link, "", missing)
	assert.Equal(t, 1, r.code)
	assert.Equal(t, fmt.Sprintf("failed to read the module arguments from %q: no such file or directory", missing), r.doc["msg"])
}

func TestUsage(t *testing.T) {
	// The usage text itself grows with every command and module: each
	// case checks where it goes and the exit code; its content is checked
	// once here.
	var b bytes.Buffer
	usage(&b)
	usageText := b.String()
	assert.True(t, strings.HasPrefix(usageText, "usage:\n  valkeyops module NAME [ARGS_FILE]   run an Ansible module (JSON arguments on stdin)\n"), usageText)
	assert.Contains(t, usageText, "\n  valkeyops journal [--since T] [--directive D] [--instance I] [--format json|table] [--path P]\n")
	assert.Contains(t, usageText, "\n  valkeyops version                   print the version\n")
	assert.Contains(t, usageText, "\nmodules: "+strings.Join(moduleNames(), ", ")+"\n")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no arguments", nil, 2, "", usageText},
		{"unknown module", []string{"module", "valkey_nope"}, 2, "", "valkeyops: unknown module \"valkey_nope\"; modules: " + strings.Join(moduleNames(), ", ") + "\n"},
		{"module without name", []string{"module"}, 2, "", "usage: valkeyops module NAME [ARGS_FILE]  (arguments as JSON on stdin)\n"},
		{"module with too many arguments", []string{"module", "valkey_config", "a", "b"}, 2, "", "usage: valkeyops module NAME [ARGS_FILE]  (arguments as JSON on stdin)\n"},
		{"unknown command", []string{"frobnicate"}, 2, "", "valkeyops: unknown command \"frobnicate\"\n" + usageText},
		{"version", []string{"version"}, 0, "valkeyops 1.2.3-test\n", ""},
		{"--version", []string{"--version"}, 0, "valkeyops 1.2.3-test\n", ""},
		{"help", []string{"help"}, 0, usageText, ""},
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

// The spec tags hold each default as DOCUMENTATION shows it; the code keeps
// its defaults as named constants. They are two copies: this fails when
// they part.
func TestSpecDefaultsAreTheCodes(t *testing.T) {
	for _, name := range moduleNames() {
		if name == "valkey_report" {
			continue // it reaches no server and keeps no journal: no such options
		}
		o := ansible.SpecOf(modules[name].options).Options
		if name != "valkey_tls_sign" { // runs on the controller: no server, no journal
			assert.Equal(t, journal.DefaultPath, o["journal_path"].Default, name)
		}
		if name == "valkey_tls_csr" || name == "valkey_tls_sign" { // the group CA flow reaches no server
			assert.Nil(t, o["login_host"], name)
			continue
		}
		assert.Equal(t, conn.DefaultHost, o["login_host"].Default, name)
		port := conn.DefaultPort
		if name == "valkey_sentinel" {
			port = sentinel.DefaultPort // a Sentinel's port, not a data node's
		}
		assert.Equal(t, port, o["login_port"].Default, name)
		assert.Equal(t, conn.DefaultConnectTimeout, o["connect_timeout"].Default, name)
	}
	assert.Equal(t, tlscsr.DefaultMinDaysValid, ansible.SpecOf(modules["valkey_tls_csr"].options).Options["min_days_valid"].Default)
	assert.Equal(t, groupca.DefaultDays, ansible.SpecOf(modules["valkey_tls_sign"].options).Options["days"].Default)
	cfg := ansible.SpecOf(modules["valkey_config"].options).Options
	assert.Equal(t, settings.DefaultPersist, cfg["persist"].Default)
	assert.Equal(t, []string{settings.PersistRuntime, settings.PersistFile, settings.PersistBoth}, cfg["persist"].Choices)

	a := ansible.SpecOf(modules["valkey_acl"].options).Options
	assert.Equal(t, acl.DefaultPersist, a["persist"].Default)
	assert.Equal(t, []string{acl.PersistAuto, acl.PersistACLFile, acl.PersistConfig, acl.PersistNone}, a["persist"].Choices)
	for _, o := range []map[string]*ansible.Option{a, a["users"].Options} {
		assert.Equal(t, acl.StatePresent, o["state"].Default)
		assert.Equal(t, []string{acl.StatePresent, acl.StateAbsent}, o["state"].Choices)
		assert.Equal(t, acl.UpdateAlways, o["update_password"].Default)
		assert.Equal(t, []string{acl.UpdateAlways, acl.UpdateOnCreate}, o["update_password"].Choices)
	}

	sm := ansible.SpecOf(modules["valkey_sentinel"].options).Options["monitors"].Options
	assert.Equal(t, sentinel.DefaultPrimaryPort, sm["primary_port"].Default)
	assert.Equal(t, sentinel.StatePresent, sm["state"].Default)
	assert.Equal(t, []string{sentinel.StatePresent, sentinel.StateAbsent}, sm["state"].Choices)

	rp := ansible.SpecOf(modules["valkey_report"].options).Options
	assert.Equal(t, report.DefaultTitle, rp["title"].Default)
	assert.Equal(t, report.DefaultFormats, rp["formats"].Default)
	assert.Equal(t, internalreport.Formats, rp["formats"].Choices)
	assert.NotContains(t, rp, "login_host")

	tl := ansible.SpecOf(modules["valkey_tls"].options).Options
	assert.Equal(t, valkeytls.DefaultMinDaysValid, tl["min_days_valid"].Default)
	assert.Equal(t, valkeytls.DefaultExpiryPolicy, tl["expiry_policy"].Default)
	assert.Equal(t, []string{valkeytls.ExpiryFail, valkeytls.ExpiryWarn}, tl["expiry_policy"].Choices)
	assert.Equal(t, valkeytls.DefaultProtocols, tl["protocols"].Default)
	assert.Equal(t, settings.DefaultPersist, tl["persist"].Default)
	assert.Equal(t, cfg["persist"].Choices, tl["persist"].Choices)
}

// `valkeyops spec` is what the build ships for the controller: every module,
// and the secret directive names with their aliases.
func TestSpecCommand(t *testing.T) {
	r := exe(t, binary, "", "spec")
	require.Equal(t, 0, r.code, r.stderr)
	var doc struct {
		Modules          map[string]*ansible.Spec `json:"modules"`
		SecretDirectives []string                 `json:"secret_directives"`
		PerNode          []topology.PerNode       `json:"per_node_directives"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc))
	assert.Equal(t, topology.PerNodeByNature, doc.PerNode, "the per-node list the Python side reads is the Go one")
	assert.Len(t, doc.Modules, len(modules))
	assert.Equal(t, "path", doc.Modules["valkey_config"].Options["config_file"].Type)
	assert.True(t, doc.Modules["valkey_tls"].Options["key"].NoLog)
	assert.Subset(t, doc.SecretDirectives, []string{"primaryuser", "masteruser", "primaryauth", "masterauth", "requirepass"})
}
