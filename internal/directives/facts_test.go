package directives

import (
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The facts files (facts/valkey-*.json) are written by scripts/valkey_facts.py
// from Valkey's src/config.c at a release tag. These tests keep the Go table
// and the facts from parting: every directive, alias, kind, flag, bound and
// choice of a release must be in the table with a since() at or before it,
// and nothing the release lacks may claim it.

type fact struct {
	Kind         string       `json:"kind"`
	Alias        string       `json:"alias"`
	Flags        []string     `json:"flags"`
	Condition    string       `json:"condition"`
	Min          *json.Number `json:"min"`
	Max          *json.Number `json:"max"`
	Values       []string     `json:"values"`
	NumericFlags []string     `json:"numeric_flags"`
	Default      any          `json:"default"`
}

type factsFile struct {
	ValkeyVersion string          `json:"valkey_version"`
	Ref           string          `json:"ref"`
	Commit        string          `json:"commit"`
	Directives    map[string]fact `json:"directives"`
}

func (f fact) has(flag string) bool { return slices.Contains(f.Flags, flag) }

// visible: what a default build lists in CONFIG GET * (not HIDDEN_CONFIG, not
// compiled in only with an optional #ifdef).
func (f fact) visible() bool { return !f.has("HIDDEN_CONFIG") && f.Condition == "" }

func loadFacts(t testing.TB) []factsFile {
	t.Helper()
	paths, err := filepath.Glob("facts/valkey-*.json")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	var out []factsFile
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		var f factsFile
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		require.NoError(t, dec.Decode(&f), p)
		require.Len(t, f.Commit, 40, "%s: facts must name the commit they were read from", p)
		out = append(out, f)
	}
	return out
}

func factsVersion(t testing.TB, f factsFile) Version {
	v, err := ParseVersion(f.ValkeyVersion)
	require.NoError(t, err)
	return v
}

// kindOf maps a facts entry to the Kind the table must use.
func kindOf(name string, f fact) Kind {
	switch f.Kind {
	case "Bool":
		return Bool
	case "String", "SDS":
		return String
	case "Enum":
		if f.has("MULTI_ARG_CONFIG") {
			return Flags
		}
		return Enum
	case "Special":
		switch {
		case name == "notify-keyspace-events":
			return KeyspaceEvents
		case f.has("MULTI_ARG_CONFIG"):
			return List
		}
		return String // dir
	}
	switch {
	case slices.Contains(f.NumericFlags, "OCTAL_CONFIG"):
		return Octal
	case slices.Contains(f.NumericFlags, "MEMORY_CONFIG"):
		return Memory
	}
	return Int
}

var maxInt64 = big.NewInt(1<<63 - 1)

// boundsException lists where the table's bound differs from config.c on
// purpose, with the reason.
var boundsException = map[string]string{
	// Negative values are the server's internal form of a percentage
	// ("10%" is stored as -10); the table takes percentages as such.
	"maxmemory-clients": "percentages are written as 10%, not -10",
}

func TestTableMatchesFacts(t *testing.T) {
	all := loadFacts(t)
	newest := all[len(all)-1]
	for _, f := range all {
		v := factsVersion(t, f)
		t.Run(f.ValkeyVersion, func(t *testing.T) {
			for name, fc := range f.Directives {
				if !fc.visible() {
					continue
				}
				d, ok := Lookup(name)
				if !ok {
					t.Errorf("%s: %s is in config.c but not in the table", f.ValkeyVersion, name)
					continue
				}
				if fc.Alias != "" && !slices.Contains(d.Names(), fc.Alias) {
					t.Errorf("%s: %s: alias %s missing", f.ValkeyVersion, name, fc.Alias)
				}
				if v.Less(d.Since()) {
					t.Errorf("%s: %s exists in %s but the table says since %s", f.ValkeyVersion, name, v, d.Since())
				}
				if want := kindOf(name, fc); d.Kind != want {
					t.Errorf("%s: %s: kind %s, config.c says %s", f.ValkeyVersion, name, d.Kind, want)
				}
				// Secret may be stricter than SENSITIVE_CONFIG (7.2 did not
				// flag tls-key-file-pass; it is a passphrase all the same).
				if d.Immutable != fc.has("IMMUTABLE_CONFIG") || d.Protected != fc.has("PROTECTED_CONFIG") || (fc.has("SENSITIVE_CONFIG") && !d.Secret) {
					t.Errorf("%s: %s: immutable/protected/secret %v/%v/%v, config.c flags %v", f.ValkeyVersion, name, d.Immutable, d.Protected, d.Secret, fc.Flags)
				}
				if d.PercentOK != slices.Contains(fc.NumericFlags, "PERCENT_CONFIG") {
					t.Errorf("%s: %s: percent %v, config.c numeric flags %v", f.ValkeyVersion, name, d.PercentOK, fc.NumericFlags)
				}
				if fc.Values != nil && !slices.Equal(d.ChoicesFor(v), fc.Values) {
					t.Errorf("%s: %s: choices for %s are %v, config.c says %v", f.ValkeyVersion, name, v, d.ChoicesFor(v), fc.Values)
				}
				if fc.Min != nil {
					if _, skip := boundsException[name]; !skip {
						checkBounds(t, f.ValkeyVersion, name, d, fc, f.ValkeyVersion == newest.ValkeyVersion)
					}
				}
			}
			known := map[string]bool{}
			for name, fc := range f.Directives {
				if fc.visible() {
					known[name] = true
					if fc.Alias != "" {
						known[fc.Alias] = true
					}
				}
			}
			for _, d := range All() {
				for _, n := range d.Names() {
					switch has := !v.Less(d.NameSince(n)); {
					case has && !known[n]:
						t.Errorf("%s: table says %s (%s) exists since %s, but config.c of %s lacks it", f.ValkeyVersion, n, d.Name, d.NameSince(n), v)
					case !has && known[n]:
						t.Errorf("%s: table says %s (%s) came in %s, but config.c of %s has it", f.ValkeyVersion, n, d.Name, d.NameSince(n), v)
					}
				}
			}
		})
	}
}

// checkBounds wants the table's bounds equal to the newest facts' bounds, and
// within an older release's (the table never accepts what an older server
// refuses; it may refuse a little more, e.g. maxmemory-samples 65 on 7.2).
func checkBounds(t *testing.T, ver, name string, d *Directive, fc fact, exact bool) {
	t.Helper()
	lo, _ := new(big.Int).SetString(fc.Min.String(), 10)
	hi, _ := new(big.Int).SetString(fc.Max.String(), 10)
	if !exact {
		if (d.Min != nil && big.NewInt(*d.Min).Cmp(lo) < 0) || (d.Max != nil && big.NewInt(*d.Max).Cmp(hi) > 0) ||
			(d.Max == nil && hi.Cmp(maxInt64) <= 0) {
			t.Errorf("%s: %s: bounds %v..%v are wider than config.c's %s..%s", ver, name, ptr(d.Min), ptr(d.Max), lo, hi)
		}
		return
	}
	// A missing Min means 0 for sizes (Memory is unsigned) and no bound else.
	switch {
	case d.Min == nil && d.Kind == Memory && lo.Sign() == 0:
	case d.Min == nil || big.NewInt(*d.Min).Cmp(lo) != 0:
		t.Errorf("%s: %s: min %v, config.c says %s", ver, name, ptr(d.Min), lo)
	}
	// A missing Max means "whatever fits": only right for bounds past int64.
	switch {
	case d.Max == nil && hi.Cmp(maxInt64) > 0:
	case d.Max == nil || big.NewInt(*d.Max).Cmp(hi) != 0:
		t.Errorf("%s: %s: max %v, config.c says %s", ver, name, ptr(d.Max), hi)
	}
}

func ptr(p *int64) any {
	if p == nil {
		return "none"
	}
	return *p
}
