package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible/ansibletest"
	"github.com/valkeyops/secure/internal/testserver"
	"github.com/valkeyops/secure/modules/audit"
)

const (
	adminPw  = "report-admin-Pw-7e21"
	evilUser = `<script>alert(1)</script>`
	evilPw   = "report-evil-Pw-33aa"
)

// auditResult is a real valkey_audit result of a real server on which an
// attacker made a user whose name is markup.
func auditResult(t *testing.T) map[string]any {
	t.Helper()
	srv := testserver.Start(t, "requirepass "+adminPw, "maxmemory 64mb")
	srv.Password = adminPw
	srv.CLI("ACL", "SETUSER", evilUser, "on", ">"+evilPw, "~*", "+@all")
	out, doc, _ := ansibletest.Printed(t, "valkey_audit", audit.Main, map[string]any{
		"login_port": srv.Port, "login_password": adminPw,
		"desired": map[string]any{"users": []any{map[string]any{"name": "default"}}},
	})
	require.Contains(t, doc, "summary", out)
	return doc
}

func run(t *testing.T, args map[string]any) (string, map[string]any, int) {
	t.Helper()
	return ansibletest.Printed(t, "valkey_report", Main, args)
}

func TestReportWritesEveryFormatPrivately(t *testing.T) {
	res := auditResult(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.html")
	args := map[string]any{
		"path":    path,
		"formats": []any{"html", "json", "junit", "sarif"},
		"results": []any{
			map[string]any{"host": "web1", "instance": "default", "result": res},
			map[string]any{"host": "web2", "result": map[string]any{"failed": true, "msg": "cannot connect; the audit did not run"}},
		},
		"previous": filepath.Join(dir, "audit.json"), // not there yet
		"hosts":    []any{"web1", "web2", "web3"},    // web3 was unreachable
	}
	out, doc, code := run(t, args)
	require.Equal(t, 0, code, out)
	assert.Equal(t, true, doc["changed"])
	assert.Equal(t, false, doc["passed"])
	assert.Equal(t, []any{"no previous report at " + filepath.Join(dir, "audit.json") + ": this report compares with none"}, doc["warnings"])
	files := doc["files"].(map[string]any)
	assert.Equal(t, map[string]any{"html": path, "json": filepath.Join(dir, "audit.json"),
		"junit": filepath.Join(dir, "audit.junit.xml"), "sarif": filepath.Join(dir, "audit.sarif")}, files)
	summary := doc["summary"].(map[string]any)
	auditSummary := res["summary"].(map[string]any)
	assert.Equal(t, auditSummary["findings"], summary["findings"])
	assert.EqualValues(t, 2, summary["errors"])
	assert.EqualValues(t, 3, summary["instances"])
	for _, p := range files {
		st, err := os.Lstat(p.(string))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(FileMode), st.Mode(), p)
		data, err := os.ReadFile(p.(string))
		require.NoError(t, err)
		for _, secret := range []string{adminPw, evilPw} {
			assert.NotContains(t, string(data), secret, p)
		}
		assert.NotContains(t, string(data), evilUser, p)
	}
	page, _ := os.ReadFile(path)
	assert.Contains(t, string(page), "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.Contains(t, string(page), "cannot connect; the audit did not run")
	assert.Contains(t, string(page), "<tr><td>web3</td><td>"+NoResult+"</td></tr>")

	// The second run compares with the first.
	out, doc, code = run(t, args)
	require.Equal(t, 0, code, out)
	assert.Nil(t, doc["warnings"])
	page, _ = os.ReadFile(path)
	assert.Contains(t, string(page), `<section id="since">`)
}

func TestReportCheckModeWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.html")
	out, doc, code := run(t, map[string]any{"path": path, "results": []any{}, "_ansible_check_mode": true, "_ansible_diff": true})
	require.Equal(t, 0, code, out)
	assert.Equal(t, true, doc["changed"])
	assert.NotEmpty(t, doc["diff"])
	_, err := os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// An attacker who shares the report's directory (/tmp) plants a link at
// the report's path to a file of root's: the link is refused, never
// followed; a directory others may write without the sticky bit is refused.
func TestReportNeverWritesThroughALink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to plant a link owned by another user")
	}
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("root's file\n"), 0o644))
	shared := filepath.Join(dir, "shared")
	require.NoError(t, os.Mkdir(shared, 0o755))
	require.NoError(t, os.Chmod(shared, 0o1777|os.ModeSticky))
	path := filepath.Join(shared, "audit.html")
	require.NoError(t, os.Symlink(victim, path))
	require.NoError(t, os.Lchown(path, 65534, 65534))
	out, doc, code := run(t, map[string]any{"path": path, "results": []any{}, "formats": []any{"html"}})
	assert.Equal(t, 1, code, out)
	assert.Equal(t, false, doc["changed"])
	assert.True(t, strings.HasPrefix(doc["msg"].(string), "cannot write the report "+path+": "), doc["msg"])
	assert.True(t, strings.HasSuffix(doc["msg"].(string), "; no report was written"), doc["msg"])
	data, _ := os.ReadFile(victim)
	assert.Equal(t, "root's file\n", string(data))

	open := filepath.Join(dir, "open")
	require.NoError(t, os.Mkdir(open, 0o777))
	require.NoError(t, os.Chmod(open, 0o777))
	out, doc, code = run(t, map[string]any{"path": filepath.Join(open, "audit.html"), "results": []any{}, "formats": []any{"html"}})
	assert.Equal(t, 1, code, out)
	assert.Equal(t, false, doc["changed"])
	assert.Equal(t, "cannot write the report "+filepath.Join(open, "audit.html")+": \""+open+"\" is writable by every user (mode 0777); no report was written", doc["msg"])
	entries, _ := os.ReadDir(open)
	assert.Empty(t, entries)
}

func TestReportBadInput(t *testing.T) {
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "prev.json")
	require.NoError(t, os.WriteFile(notJSON, []byte("[]"), 0o600))
	for name, c := range map[string]struct {
		args map[string]any
		want string
	}{
		"relative path": {map[string]any{"path": "audit.html", "results": []any{}},
			`option "path": "audit.html" is not an absolute path; no report was written`},
		"directory": {map[string]any{"path": dir + "/", "results": []any{}},
			`option "path": "` + dir + `/" names a directory; expected the report's file, e.g. ` + dir + `/report.html; no report was written`},
		"previous is not a report": {map[string]any{"path": filepath.Join(dir, "a.html"), "results": []any{}, "previous": notJSON},
			"the previous report " + notJSON + " is not a report's JSON: json: cannot unmarshal array into Go value of type report.Run; no report was written"},
		"bad format": {map[string]any{"path": filepath.Join(dir, "a.html"), "results": []any{}, "formats": []any{"pdf"}},
			`option "formats": "pdf" is not one of html, json, junit, sarif; no report was written`},
	} {
		t.Run(name, func(t *testing.T) {
			out, doc, code := run(t, c.args)
			assert.Equal(t, 1, code, out)
			assert.Equal(t, false, doc["changed"])
			assert.Equal(t, c.want, doc["msg"])
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				assert.False(t, strings.HasPrefix(e.Name(), "a."), e.Name())
			}
		})
	}
}
