package audit

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/ansible/ansibletest"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/settings"
	"github.com/valkeyops/secure/internal/testserver"
)

const (
	requirePw = "module-requirepass-Pw-81c2"
	appPw     = "module-app-Pw-5d1e"
)

// run runs the module as the binary does and returns the printed JSON.
func run(t *testing.T, args map[string]any) (string, map[string]any, int) {
	t.Helper()
	return ansibletest.Printed(t, "valkey_audit", Main, args)
}

func server(t *testing.T) *testserver.Server {
	dir := t.TempDir()
	acl := filepath.Join(dir, "users.acl")
	require.NoError(t, os.WriteFile(acl, []byte("user app on >"+appPw+" ~app:* +@read\n"), 0o640))
	srv := testserver.StartWith(t, testserver.Options{Dir: dir, Extra: []string{"requirepass " + requirePw, "aclfile " + acl, "maxmemory 64mb"}})
	srv.Password = requirePw
	return srv
}

func TestAuditReportsFindingsDriftAndNoSecrets(t *testing.T) {
	srv := server(t)
	srv.CLI("CONFIG", "SET", "maxmemory", "128mb")
	out, doc, code := run(t, map[string]any{
		"login_port": srv.Port, "login_password": requirePw,
		"desired": map[string]any{
			"settings": map[string]any{"maxmemory": "64mb", "requirepass": "another-" + requirePw},
			"users":    []any{map[string]any{"name": "app", "passwords": []any{appPw}}, map[string]any{"name": "report"}},
		},
	})
	assert.Equal(t, 0, code, out)
	assert.Equal(t, false, doc["changed"])
	assert.Equal(t, false, doc["passed"])
	for _, s := range []string{requirePw, appPw, "another-"} {
		assert.NotContains(t, out, s)
	}
	drift := doc["drift"].(map[string]any)
	settings := drift["settings"].(map[string]any)
	assert.Contains(t, settings, "maxmemory")
	assert.Equal(t, ansible.Mask, settings["requirepass"].(map[string]any)["runtime"])
	assert.Contains(t, drift["users"], "report")
	summary := doc["summary"].(map[string]any)
	assert.Positive(t, summary["findings"])
	assert.Contains(t, doc["msg"], "valkey 8.")
	ids := map[string]bool{}
	assert.Equal(t, "default", doc["instance"], "the server runs from valkey.conf")
	for _, f := range doc["findings"].([]any) {
		ids[f.(map[string]any)["id"].(string)] = true
		assert.Equal(t, "default", f.(map[string]any)["instance"], "every finding names the instance")
	}
	assert.True(t, ids["VK-017"], "requirepass alongside ACL users: %v", ids)
}

func TestFailOn(t *testing.T) {
	srv := server(t)
	base := map[string]any{"login_port": srv.Port, "login_password": requirePw}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range base {
			m[a] = b
		}
		m[k] = v
		return m
	}
	_, doc, code := run(t, with("fail_on", "high"))
	assert.Equal(t, 1, code)
	assert.Regexp(t, `fails the audit \(fail_on: high\): \d+ findings? at or above high`, doc["msg"])
	assert.NotNil(t, doc["findings"], "a failed audit still returns the report")

	_, _, code = run(t, with("fail_on", []any{"never"}))
	assert.Equal(t, 0, code)

	_, doc, code = run(t, with("fail_on", "drift"))
	assert.Equal(t, 0, code, doc["msg"])
	srv.CLI("CONFIG", "SET", "maxmemory", "1mb")
	_, doc, code = run(t, with("fail_on", "drift"))
	assert.Equal(t, 1, code)
	assert.Contains(t, doc["msg"], "1 drifted directive (maxmemory)")
}

func TestBadInputFailsBeforeConnecting(t *testing.T) {
	for name, c := range map[string]struct {
		args map[string]any
		want string
	}{
		"fail_on":               {map[string]any{"fail_on": "sometimes"}, `option "fail_on": "sometimes" is not one of never, drift, low, medium, high, critical; the audit did not run`},
		"policy":                {map[string]any{"policy": "version: 1\nrules:\n  - id: VK-002\n    severity: bad\n"}, `invalid policy policy (option):4: rule VK-002: severity "bad" is not one of low, medium, high, critical; the audit did not run`},
		"skip_rules":            {map[string]any{"skip_rules": []any{"VK-999"}}, `option "skip_rules": no rule "VK-999" in the policy`},
		"desired":               {map[string]any{"desired": map[string]any{"settings": map[string]any{"maxmemory": "lots"}}}, `desired.settings: directive "maxmemory"`},
		"unknown":               {map[string]any{"desire": map[string]any{}}, "unsupported option for valkey_audit: desire"},
		"secret in bad desired": {map[string]any{"desired": map[string]any{"settings": map[string]any{"requirepass": []any{"pw-in-a-list-77"}}}}, "requirepass"},
	} {
		t.Run(name, func(t *testing.T) {
			c.args["login_port"] = 1 // nothing listens there: validation must fail first
			out, doc, code := run(t, c.args)
			assert.Equal(t, 1, code)
			assert.Contains(t, doc["msg"], c.want)
			assert.NotContains(t, out, "pw-in-a-list-77")
		})
	}
}

// A drifted value set by a recorded change (valkey_config with persist:
// runtime) is drift but not out-of-band; a value changed by hand with CONFIG
// SET is reported as an out-of-band change.
func TestOutOfBandChangeReportedFromTheJournal(t *testing.T) {
	srv := testserver.StartWith(t, testserver.Options{Extra: []string{"hz 10", "maxmemory 64mb"}})
	path := filepath.Join(t.TempDir(), "changes.jsonl")

	// A recorded change: runtime only, so the file keeps 64mb (drift).
	data, err := json.Marshal(map[string]any{
		"login_port": srv.Port, "journal_path": path, "persist": "runtime",
		"settings": map[string]any{"maxmemory": "128mb"},
	})
	require.NoError(t, err)
	req, err := ansible.ParseRequest("valkey_config", data)
	require.NoError(t, err)
	var opts settings.Options
	require.NoError(t, req.Decode(&opts))
	require.NoError(t, opts.Validate())
	res := settings.Converge(req, opts)
	require.False(t, res.Failed, res.Msg)
	require.True(t, res.Changed)

	// Another server on the host gets hz 20 by a recorded change, in the
	// same journal: that must not excuse this server's hz.
	other := testserver.StartWith(t, testserver.Options{Extra: []string{"hz 10"}})
	data, err = json.Marshal(map[string]any{
		"login_port": other.Port, "journal_path": path, "settings": map[string]any{"hz": 20},
	})
	require.NoError(t, err)
	req, err = ansible.ParseRequest("valkey_config", data)
	require.NoError(t, err)
	var otherOpts settings.Options
	require.NoError(t, req.Decode(&otherOpts))
	require.NoError(t, otherOpts.Validate())
	res = settings.Converge(req, otherOpts)
	require.False(t, res.Failed, res.Msg)

	// An unrecorded change, behind Ansible's back.
	srv.CLI("CONFIG", "SET", "hz", "20")

	_, doc, code := run(t, map[string]any{"login_port": srv.Port, "config_file": srv.ConfPath, "journal_path": path})
	require.Equal(t, 0, code, doc["msg"])
	drift := doc["drift"].(map[string]any)["settings"].(map[string]any)
	assert.Contains(t, drift, "maxmemory")
	assert.Contains(t, drift, "hz")
	oob := doc["out_of_band"].([]any)
	require.Len(t, oob, 1, "only hz was changed outside Ansible")
	assert.Equal(t, "hz", oob[0].(map[string]any)["directive"])
	assert.Equal(t, "20", oob[0].(map[string]any)["runtime"])
	assert.Contains(t, doc["warnings"], "out-of-band change: hz runs with 20, which no change recorded in "+path+" set")
}

// TestAuditFindsLinesTheServerCannotRestartWith: a line added to valkey.conf
// after the server started is only read at its next start; the audit reports
// each line that would stop it, with lint's engine and the running release.
func TestAuditFindsLinesTheServerCannotRestartWith(t *testing.T) {
	srv := server(t)
	f, err := os.OpenFile(srv.ConfPath, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("io-threads 129\nrepl-diskless-load flush-before-load\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	out, doc, code := run(t, map[string]any{"login_port": srv.Port, "login_password": requirePw})
	assert.Equal(t, 0, code, out)
	var msgs []string
	for _, f := range doc["findings"].([]any) {
		if f := f.(map[string]any); f["id"] == "VK-000" {
			assert.Equal(t, "critical", f["severity"])
			msgs = append(msgs, f["message"].(string))
		}
	}
	n := len(strings.Split(strings.TrimRight(string(srv.ReadConf()), "\n"), "\n"))
	assert.Equal(t, []string{
		srv.ConfPath + ":" + strconv.Itoa(n-1) + `: directive "io-threads": "129" is out of range; expected an integer between 1 and 128`,
		srv.ConfPath + ":" + strconv.Itoa(n) + `: directive "repl-diskless-load": "flush-before-load" needs Valkey 9.0 or newer; the target server is Valkey 8.0.1; expected one of disabled, on-empty-db, swapdb`,
	}, msgs)
	assert.NotContains(t, out, requirePw)
}

// The out-of-band check needs the journal: one that cannot be read fails the
// audit unless journal_required is false, which audits on with a warning.
func TestUnreadableJournal(t *testing.T) {
	srv := testserver.StartWith(t, testserver.Options{Extra: []string{"hz 10"}})
	srv.CLI("CONFIG", "SET", "hz", "20") // drift: the check has something to look up
	path := t.TempDir()                  // a directory where the journal file should be
	args := map[string]any{"login_port": srv.Port, "config_file": srv.ConfPath, "journal_path": path}

	_, doc, code := run(t, args)
	require.Equal(t, 1, code)
	assert.Equal(t, fmt.Sprintf("the audit of 127.0.0.1:%d cannot check for out-of-band changes: failed to read the change journal %s: read %s: is a directory (journal_required: true; journal_required: false audits without that check, with a warning)", srv.Port, path, path), doc["msg"])

	args["journal_required"] = false
	_, doc, code = run(t, args)
	require.Equal(t, 0, code, doc["msg"])
	assert.Contains(t, doc["warnings"], fmt.Sprintf("out-of-band check skipped: failed to read the change journal %s: read %s: is a directory", path, path))
	assert.Empty(t, doc["out_of_band"])
}

// A server reached at an address of one of this host's interfaces is this
// host's: its process, files and the host's kernel settings are inspected.
// Any other address is a remote server's, whose host the module cannot see.
func TestIsLocal(t *testing.T) {
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			assert.True(t, isLocal(&conn.Options{LoginHost: n.IP.String()}), n.IP.String())
		}
	}
	assert.True(t, isLocal(&conn.Options{LoginHost: "127.0.0.5"}))
	assert.True(t, isLocal(&conn.Options{LoginUnixSocket: "/run/valkey/valkey.sock", LoginHost: "192.0.2.200"}))
	assert.False(t, isLocal(&conn.Options{LoginHost: "198.51.100.7"}), "TEST-NET-2 is nobody's here")
	assert.False(t, isLocal(&conn.Options{LoginHost: "valkey.example"}), "a name is not resolved to decide")
}
