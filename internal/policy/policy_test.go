package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBaselineLoadsWithAtLeast25Rules(t *testing.T) {
	p, err := Build(false)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(p.Rules), 25)
	for _, r := range p.Rules {
		assert.NotEmpty(t, r.Rationale, r.ID)
		assert.NotEmpty(t, r.Remediation, r.ID)
	}
}

// The collection ships the baseline as a file too; it must be the one the
// binary embeds.
func TestShippedBaselineIsTheEmbeddedOne(t *testing.T) {
	shipped, err := os.ReadFile("../../files/policy/baseline.yml")
	require.NoError(t, err)
	assert.Equal(t, string(BaselineYAML), string(shipped), "files/policy/baseline.yml differs from internal/policy/baseline.yml: copy it")
}

func TestOverridesAndAdditions(t *testing.T) {
	p, err := Build(false, Source{Name: "site.yml", Data: []byte(`version: 1
admins: [admin, ops]
rules:
  - id: VK-020
    severity: low
  - id: VK-018
    enabled: false
  - id: SITE-001
    title: Keyspace events are off
    severity: low
    remediation: Set notify-keyspace-events "".
    check:
      directive: notify-keyspace-events
      empty: true
`)})
	require.NoError(t, err)
	assert.Equal(t, "low", p.Get("VK-020").Severity)
	assert.Equal(t, "maxmemory is set", p.Get("VK-020").Title, "an override keeps what it does not give")
	assert.False(t, p.Get("VK-018").IsEnabled())
	assert.NotNil(t, p.Get("SITE-001"))
	assert.Equal(t, []string{"admin", "ops"}, p.Admins)
}

func TestMalformedPolicyIsOneClearSentence(t *testing.T) {
	for name, c := range map[string]struct{ doc, want string }{
		"syntax":            {"version: 1\nrules:\n  - id: X-001\n    title: [oops\n", "invalid policy p.yml:4"},
		"unknown key":       {"version: 1\nrules:\n  - id: SITE-001\n    title: t\n    severty: low\n", "invalid policy p.yml:5: rule SITE-001: unknown field \"severty\""},
		"bad severity":      {"version: 1\nrules:\n  - id: SITE-001\n    title: t\n    severity: urgent\n", "invalid policy p.yml:5: rule SITE-001: severity \"urgent\" is not one of low, medium, high, critical"},
		"bad id":            {"version: 1\nrules:\n  - id: rule1\n", "invalid policy p.yml:3: rule \"rule1\": id must look like VK-001"},
		"missing check":     {"version: 1\nrules:\n  - id: SITE-002\n    title: t\n    severity: low\n    remediation: r\n", "invalid policy p.yml:3: rule SITE-002: check is required"},
		"unknown directive": {"version: 1\nrules:\n  - id: SITE-003\n    title: t\n    severity: low\n    remediation: r\n    check:\n      directive: maxmemroy\n      min: 1\n", "invalid policy p.yml:8: rule SITE-003: check: unknown directive \"maxmemroy\""},
		"bad value":         {"version: 1\nrules:\n  - id: SITE-004\n    title: t\n    severity: low\n    remediation: r\n    check:\n      directive: maxmemory\n      min: lots\n", "invalid policy p.yml:8: rule SITE-004: check: directive \"maxmemory\": \"lots\" is not a memory size"},
		"two operators":     {"version: 1\nrules:\n  - id: SITE-005\n    title: t\n    severity: low\n    remediation: r\n    check:\n      directive: port\n      equals: 0\n      min: 1\n", "rule SITE-005: check: directive port: expected exactly one operator"},
		"bad acl":           {"version: 1\nrules:\n  - id: SITE-006\n    title: t\n    severity: low\n    remediation: r\n    check:\n      acl: {users: everyone, forbid: nopass}\n", "invalid policy p.yml:8: rule SITE-006: check: acl: users \"everyone\" is not one of"},
		"duplicate":         {"version: 1\nrules:\n  - {id: SITE-007, title: t, severity: low, remediation: r, check: {directive: port, equals: 0}}\n  - {id: SITE-007, title: t, severity: low, remediation: r, check: {directive: port, equals: 0}}\n", "invalid policy p.yml:4: rule SITE-007: duplicate id (first defined at line 3)"},
		"bad override":      {"version: 1\nrules:\n  - id: VK-001\n    when:\n      directive: bind\n", "invalid policy p.yml:5: rule VK-001: when: directive bind: expected exactly one operator"},
		"version":           {"version: 2\nrules: []\n", "invalid policy p.yml:1: version must be 1"},
		"not a mapping":     {"- a\n- b\n", "invalid policy p.yml:1: expected a mapping"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Build(false, Source{Name: "p.yml", Data: []byte(c.doc)})
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), "\n", "one sentence: %s", err)
		})
	}
}

func TestLoadNamesAMissingFile(t *testing.T) {
	_, err := Load(false, filepath.Join(t.TempDir(), "nope.yml"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nope.yml: no such file or directory")
}
