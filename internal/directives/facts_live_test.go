package directives

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFactsAgainstLiveServer checks the facts file of the installed
// valkey-server's release against the running server: every visible name is
// in CONFIG GET * and nothing else is; every value CONFIG GET prints parses as
// the table's kind; the defaults of a fresh server are the facts' defaults;
// immutable and protected directives are refused at runtime and mutable ones
// are not; a numeric bound + 1 (and - 1) is refused; an enum value outside
// the facts is refused.
func TestFactsAgainstLiveServer(t *testing.T) {
	rc := startServer(t, "")
	ver, _, err := InstalledVersion(context.Background())
	if err != nil {
		t.Skipf("installed valkey-server version: %v", err)
	}
	var f *factsFile
	for _, ff := range loadFacts(t) {
		fv := factsVersion(t, ff)
		if fv.Major == ver.Major && fv.Minor == ver.Minor {
			f = &ff
		}
	}
	if f == nil {
		t.Skipf("no facts file for Valkey %s", ver)
	}
	live := rc.configGet(t, "*")

	visible := map[string]fact{}
	for name, fc := range f.Directives {
		if fc.visible() {
			visible[name] = fc
		}
	}
	for name := range visible {
		if _, ok := live[name]; !ok {
			t.Errorf("%s is in the facts but not in CONFIG GET *", name)
		}
	}
	aliases := map[string]bool{}
	for _, fc := range visible {
		if fc.Alias != "" {
			aliases[fc.Alias] = true
		}
	}
	for name := range live {
		if _, ok := visible[name]; !ok && !aliases[name] {
			t.Errorf("CONFIG GET * lists %s, which the facts lack", name)
		}
	}

	// Set on the command line by startServer: not at their defaults.
	fromArgs := map[string]bool{"port": true, "bind": true, "dir": true, "daemonize": true, "logfile": true, "pidfile": true, "save": true}
	for name, fc := range visible {
		d, ok := Lookup(name)
		require.True(t, ok, name)
		got, ok := live[name]
		if !ok {
			continue
		}
		if _, err := d.FromServer(got); err != nil {
			t.Errorf("%s: CONFIG GET value %q does not parse as %s: %v", name, got, d.Kind, err)
		}
		if fc.Default != nil && !fromArgs[name] {
			want := fmt.Sprint(fc.Default)
			if d.Kind == Octal {
				n, _ := strconv.ParseInt(want, 10, 64)
				want = strconv.FormatInt(n, 8)
			}
			if got != want {
				t.Errorf("%s: a fresh server says %q, the facts' default is %q", name, got, want)
			}
		}

		// Runtime mutability: set the current value back.
		_, err := rc.do("CONFIG", "SET", name, got)
		switch {
		case fc.has("IMMUTABLE_CONFIG"):
			if err == nil || !strings.Contains(err.Error(), "can't set immutable config") {
				t.Errorf("%s: immutable in the facts, CONFIG SET said %v", name, err)
			}
			continue
		case fc.has("PROTECTED_CONFIG"):
			if err == nil || !strings.Contains(err.Error(), "can't set protected config") {
				t.Errorf("%s: protected in the facts, CONFIG SET said %v", name, err)
			}
			continue
		case err != nil:
			t.Errorf("%s: mutable in the facts, CONFIG SET of its own value failed: %v", name, err)
			continue
		}

		if fc.Min != nil {
			for _, bad := range outside(fc) {
				if _, err := rc.do("CONFIG", "SET", name, bad); err == nil {
					t.Errorf("%s: CONFIG SET %s accepted, outside the facts' bounds %s..%s", name, bad, fc.Min, fc.Max)
					_, _ = rc.do("CONFIG", "SET", name, got)
				}
			}
		}
		if fc.Values != nil {
			if _, err := rc.do("CONFIG", "SET", name, "no-such-choice"); err == nil {
				t.Errorf("%s: CONFIG SET no-such-choice accepted", name)
			}
		}
		if fc.Kind == "Bool" {
			if _, err := rc.do("CONFIG", "SET", name, "maybe"); err == nil {
				t.Errorf("%s: CONFIG SET maybe accepted for a boolean", name)
			}
		}
	}
}

// outside returns min-1 and max+1 where they fit the server's parser
// (beyond 64 bits the value is refused anyway, proving nothing).
func outside(fc fact) []string {
	var out []string
	// A negative percentage bound is the server's encoding of "100%". An
	// unsigned long whose range ends at ULONG_MAX takes -1 as ULONG_MAX
	// (cluster-blacklist-ttl): the table refuses it, the server does not.
	_, hiErr := strconv.ParseInt(fc.Max.String(), 10, 64)
	if lo, err := strconv.ParseInt(fc.Min.String(), 10, 64); err == nil && lo > -1<<63 && hiErr == nil && !slices.Contains(fc.NumericFlags, "PERCENT_CONFIG") {
		out = append(out, strconv.FormatInt(lo-1, 10))
	}
	if hi, err := strconv.ParseInt(fc.Max.String(), 10, 64); err == nil && hi < 1<<63-1 {
		out = append(out, strconv.FormatInt(hi+1, 10))
	}
	return out
}
