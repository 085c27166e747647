package cli

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const debianConf = "../conffile/testdata/debian-valkey.conf"

func lint(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := Lint(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestLintHardenedConfigPassesClean(t *testing.T) {
	out, errOut, code := lint("testdata/hardened.conf")
	assert.Equal(t, ExitOK, code, out+errOut)
	assert.Contains(t, out, "no findings")
	assert.NotContains(t, out, "warning")
}

func TestLintStockDebianConfig(t *testing.T) {
	out, _, code := lint(debianConf)
	assert.Equal(t, ExitFindings, code)
	assert.Contains(t, out, "CRITICAL VK-003 The default user needs a password or is disabled")
	assert.Contains(t, out, "fix: ")
	assert.Contains(t, out, "10 findings (1 critical, 2 high, 4 medium, 3 low)")

	_, _, code = lint(debianConf, "--fail-on", "critical")
	assert.Equal(t, ExitFindings, code)
	_, _, code = lint("--fail-on", "never", debianConf)
	assert.Equal(t, ExitOK, code)
	// An override lowers VK-003 and drops the others below the bar.
	pol := filepath.Join(t.TempDir(), "site.yml")
	require.NoError(t, os.WriteFile(pol, []byte("version: 1\nrules:\n  - {id: VK-003, severity: high}\n"), 0o644))
	_, _, code = lint(debianConf, "--policy", pol, "--fail-on", "critical")
	assert.Equal(t, ExitOK, code)
}

func TestLintJSONAndJUnit(t *testing.T) {
	out, _, code := lint(debianConf, "--format", "json")
	assert.Equal(t, ExitFindings, code)
	var doc struct {
		Findings []struct{ ID, Severity, Message, Remediation string }
		Summary  map[string]int
		Passed   bool
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.Len(t, doc.Findings, 10)
	assert.Equal(t, "VK-003", doc.Findings[0].ID)
	assert.Equal(t, 1, doc.Summary["critical"])
	assert.False(t, doc.Passed)

	out, _, _ = lint(debianConf, "--format", "junit")
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Type string `xml:"type,attr"`
			} `xml:"failure"`
		} `xml:"testcase"`
	}
	require.NoError(t, xml.Unmarshal([]byte(out), &suite))
	assert.Equal(t, 10, suite.Failures)
	assert.GreaterOrEqual(t, suite.Tests, 25)
}

func TestLintBadInputIsOneClearSentence(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	require.NoError(t, os.WriteFile(bad, []byte("version: 1\nrules:\n  - id: SITE-001\n    title: x\n    severity: urgent\n"), 0o644))
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"bad policy":   {[]string{debianConf, "--policy", bad}, "valkeyops lint: invalid policy " + bad + ":5: rule SITE-001: severity \"urgent\" is not one of low, medium, high, critical\n"},
		"missing conf": {[]string{filepath.Join(dir, "nope.conf")}, "no such file or directory"},
		"bad fail-on":  {[]string{debianConf, "--fail-on", "urgent"}, `--fail-on "urgent" is not one of never, low, medium, high, critical`},
		"bad format":   {[]string{debianConf, "--format", "yaml"}, `--format "yaml" is not one of text, json, junit, sarif, html`},
		"bad quotes":   {[]string{writeFile(t, dir, "q.conf", "bind \"127.0.0.1\n")}, "q.conf:1"},
	} {
		t.Run(name, func(t *testing.T) {
			_, errOut, code := lint(c.args...)
			assert.Equal(t, ExitUsage, code)
			assert.Contains(t, errOut, c.want)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
		})
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}
