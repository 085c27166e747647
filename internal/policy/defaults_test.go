package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/directives"
)

// The baseline's defaults stand for a server's when a file does not set a
// directive, so each must be Valkey 8.0's: 0.1.0 said hide-user-data-from-log
// defaults to no (it is yes), and lint raised a false finding. Checked against
// the facts read from config.c (internal/directives/facts), which a live test
// there checks against a fresh 8.0 server.
func TestBaselineDefaultsAreValkey80s(t *testing.T) {
	b, err := os.ReadFile("../directives/facts/valkey-8.0.json")
	require.NoError(t, err)
	var facts struct {
		Directives map[string]struct {
			Default      any      `json:"default"`
			NumericFlags []string `json:"numeric_flags"`
		} `json:"directives"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&facts))

	p, err := Build(false)
	require.NoError(t, err)
	// Special configs have no default in config.c's table; these are what
	// CONFIG GET prints on a fresh server.
	special := map[string]string{"bind": "* -::*", "save": "3600 1 300 100 60 10000",
		"client-output-buffer-limit": "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"}
	for name, v := range p.Defaults {
		d, ok := directives.Lookup(name)
		require.True(t, ok, name)
		want, isSpecial := special[name]
		if !isSpecial {
			f, ok := facts.Directives[d.Name]
			require.True(t, ok && f.Default != nil, "%s: no default in the facts", name)
			want = fmt.Sprint(f.Default)
			if d.Kind == directives.Octal {
				n, _ := strconv.ParseInt(want, 10, 64)
				want = strconv.FormatInt(n, 8)
			}
		}
		wantV, err := d.FromServer(want)
		require.NoError(t, err, name)
		got, err := d.Desired(v)
		require.NoError(t, err, name)
		assert.Equal(t, wantV.Canonical, got.Canonical, "baseline default of %s", name)
	}
}
