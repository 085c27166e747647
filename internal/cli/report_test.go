package cli

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// evilConf is a file an attacker who can edit the config (or talk an
// operator into a line) writes: markup in a user name and in a value, and
// two secrets that must never reach a report.
const (
	evilUser    = `<script>alert(1)</script>`
	evilValue   = `"onmouseover=alert(1)`
	confSecret  = "Sup3rSecretPassw0rd-xyz"
	aclSecret   = "An0therSecret-pw"
	evilConfTxt = "port 7777\nrequirepass " + confSecret + "\nmaxmemory-policy \"\\\"onmouseover=alert(1)\"\n" +
		"user " + evilUser + " on >" + aclSecret + " ~* +@all\n"
)

func TestLintReportsEscapeAndHoldNoSecret(t *testing.T) {
	conf := writeFile(t, t.TempDir(), "valkey.conf", evilConfTxt)
	out, _, code := lint(conf, "--format", "json")
	assert.Equal(t, ExitFindings, code)
	var doc struct {
		Findings []struct{ ID string }
		Summary  map[string]int
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	n := doc.Summary["findings"] // one per failing rule (the baseline grows), one per bad line
	require.GreaterOrEqual(t, n, 9, out)

	outputs := map[string]string{}
	for _, format := range []string{"html", "junit", "sarif"} {
		o, errOut, code := lint(conf, "--format", format)
		assert.Equal(t, ExitFindings, code, errOut)
		for _, secret := range []string{confSecret, aclSecret} {
			assert.NotContains(t, o, secret, format)
		}
		outputs[format] = o
	}
	page := outputs["html"]
	for _, raw := range []string{evilUser, evilValue, "<script"} {
		assert.NotContains(t, page, raw)
	}
	assert.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.Contains(t, page, "&#34;onmouseover=alert(1)")
	assert.Contains(t, page, fmt.Sprintf(`<dd data-count="findings">%d</dd>`, n))
	assert.Contains(t, page, `<td class="c fail" data-rule="VK-005" data-status="fail"`)

	var suites struct {
		Failures int `xml:"failures,attr"`
	}
	require.NoError(t, xml.Unmarshal([]byte(outputs["junit"]), &suites))
	assert.Equal(t, n, suites.Failures)

	var sarif struct {
		Runs []struct{ Results []struct{ RuleID string } }
	}
	require.NoError(t, json.Unmarshal([]byte(outputs["sarif"]), &sarif))
	require.Len(t, sarif.Runs, 1)
	var ids []string
	for _, r := range sarif.Runs[0].Results {
		ids = append(ids, r.RuleID)
	}
	var want []string
	for _, f := range doc.Findings {
		want = append(want, f.ID)
	}
	assert.Equal(t, want, ids)
}

func runReport(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := Report(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestReportFromGatheredResults(t *testing.T) {
	dir := t.TempDir()
	conf := writeFile(t, dir, "valkey-cache.conf", evilConfTxt)
	lintJSON, _, _ := lint(conf, "--format", "json")
	results := `[{"host": "web1", "instance": "cache", "result": ` + lintJSON + `},
	  {"host": "web2", "instance": "default", "result": {"failed": true, "msg": "cannot connect; the audit did not run"}}]`
	resultsFile := writeFile(t, dir, "results.json", results)

	prevJSON, errOut, code := runReport("--results", resultsFile, "--format", "json")
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, prevJSON, `"instances": 2`)
	prev := writeFile(t, dir, "previous.json", prevJSON)

	page, errOut, code := runReport("--results", resultsFile, "--previous", prev, "--title", "Nightly <audit>")
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, page, "<title>Nightly &lt;audit&gt;</title>")
	assert.Contains(t, page, `<section id="since">`)
	assert.Contains(t, page, `<dd data-count="errors">1</dd>`)
	assert.Contains(t, page, "cannot connect; the audit did not run")
	assert.NotContains(t, page, evilUser)

	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no results":   {[]string{"--results", filepath.Join(dir, "nope.json")}, "valkeyops report: failed to read the results " + filepath.Join(dir, "nope.json") + ": no such file or directory\n"},
		"not a list":   {[]string{"--results", writeFile(t, dir, "obj.json", `{"a": 1}`)}, "valkeyops report: the results " + filepath.Join(dir, "obj.json") + " are not a JSON list of {host, instance, result}: json: cannot unmarshal object into Go value of type []report.Result\n"},
		"bad format":   {[]string{"--results", resultsFile, "--format", "pdf"}, "valkeyops report: --format \"pdf\" is not one of html, json, junit, sarif\n"},
		"bad previous": {[]string{"--results", resultsFile, "--previous", resultsFile}, "valkeyops report: the previous report " + resultsFile + " is a list but not a drift scan's JSON (--format json: targets with name and status)\n"},
	} {
		t.Run(name, func(t *testing.T) {
			out, errOut, code := runReport(c.args...)
			assert.Equal(t, ExitUsage, code)
			assert.Empty(t, out)
			assert.Equal(t, c.want, errOut)
		})
	}
}

func TestReportRefusesAFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "results.json")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	_, errOut, code := runReport("--results", fifo)
	assert.Equal(t, ExitUsage, code)
	assert.True(t, strings.HasPrefix(errOut, "valkeyops report: failed to read the results "+fifo), errOut)
}

func TestLintHTMLComparesWithThePreviousLint(t *testing.T) {
	dir := t.TempDir()
	conf := writeFile(t, dir, "valkey.conf", evilConfTxt)
	before, _, _ := lint(conf, "--format", "json")
	prev := writeFile(t, dir, "before.json", before)
	// Since: requirepass gone (VK-017 resolved, but the default user now has no
	// password: VK-003 is new), maxmemory set (VK-020 resolved).
	writeFile(t, dir, "valkey.conf", strings.Replace(evilConfTxt, "requirepass "+confSecret+"\n", "maxmemory 1gb\n", 1))
	page, errOut, code := lint(conf, "--format", "html", "--previous", prev)
	assert.Equal(t, ExitFindings, code, errOut)
	for _, id := range []string{"VK-017", "VK-020"} {
		assert.Contains(t, page, `<tr class="resolved" data-change="resolved-finding"><td>resolved</td><td>`+conf+`/default</td><td>`+id+`</td>`)
	}
	assert.Contains(t, page, `<tr class="new" data-change="new-finding"><td>new finding</td><td>`+conf+`/default</td><td>VK-003</td>`)
	assert.Equal(t, 1, strings.Count(page, `data-change="new-finding"`))

	_, errOut, code = lint(conf, "--format", "html", "--previous", writeFile(t, dir, "other.json", `{"a": 1}`))
	assert.Equal(t, ExitUsage, code)
	assert.Equal(t, "valkeyops lint: the previous report "+filepath.Join(dir, "other.json")+" is not lint's JSON (--format json)\n", errOut)
}
