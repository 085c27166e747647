package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/testserver"
)

// TestValuesTheTargetCannotStartWith: each value here was written to the
// file by 0.1.0, and the server then refused to start (proved in
// internal/cli's lint tests with the same lines). Now each is refused before
// anything changes, naming the directive and the release.
func TestValuesTheTargetCannotStartWith(t *testing.T) {
	srv := testserver.Start(t)
	tests := []struct {
		name     string
		settings map[string]any
		msg      string
	}{
		{"bound from config.c", map[string]any{"io-threads": 129},
			`settings: directive "io-threads": 129 is out of range; expected an integer between 1 and 128; nothing was changed`},
		{"enum value of a newer release", map[string]any{"repl-diskless-load": "flush-before-load"},
			`settings: directive "repl-diskless-load": "flush-before-load" needs Valkey 9.0 or newer; the target server is Valkey 8.0.1; expected one of disabled, on-empty-db, swapdb; nothing was changed`},
		{"directive of a newer release", map[string]any{"import-mode": "yes"},
			`settings: directive "import-mode": needs Valkey 8.1 or newer; the target server is Valkey 8.0.1; nothing was changed`},
		{"2 MB restart-only value", map[string]any{"logfile": "/var/log/" + strings.Repeat("l", 2<<20)},
			`settings: directive "logfile": the value is 2097161 bytes long; expected at most 4095 bytes; nothing was changed`},
		{"NUL in a list item", map[string]any{"bind": []any{"127.0.0.1", "::1\x00"}},
			`settings: directive "bind": "::1\x00" contains a line break or NUL character; expected a single-line string; nothing was changed`},
		{"dotted capital I is not timeout", map[string]any{"T\u0130MEOUT": 5},
			`settings: unknown directive "T\u0130MEOUT": not known to valkey_config or to the server (valkey 8.0.1); check the spelling; nothing was changed`},
	}
	for _, tc := range tests {
		for _, persist := range []string{"file", "both"} {
			t.Run(tc.name+" "+persist, func(t *testing.T) {
				before := srv.ReadConf()
				all := srv.CLI("CONFIG", "GET", "*")
				res, _ := mod.Call(t, task(srv, map[string]any{"settings": tc.settings, "persist": persist}))
				require.True(t, res.Failed)
				assert.Equal(t, tc.msg, res.Msg)
				assert.False(t, res.Changed)
				assert.Equal(t, before, srv.ReadConf(), "file changed")
				assert.Equal(t, all, srv.CLI("CONFIG", "GET", "*"), "server changed")
			})
		}
	}
}

// TestFileOnlyUsesTheInstalledVersion: without a server, the release comes
// from the installed valkey-server --version.
func TestFileOnlyUsesTheInstalledVersion(t *testing.T) {
	ver, _, err := directives.InstalledVersion(t.Context())
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(t.TempDir(), "offline.conf")
	require.NoError(t, os.WriteFile(path, []byte("port 6390\n"), 0o600))
	res, _ := mod.Call(t, map[string]any{"login_port": 1, "config_file": path, "persist": "file",
		"settings": map[string]any{"repl-diskless-load": "flush-before-load"}})
	require.True(t, res.Failed)
	assert.Equal(t, `settings: directive "repl-diskless-load": "flush-before-load" needs Valkey 9.0 or newer; the target server is Valkey `+ver.String()+
		`; expected one of disabled, on-empty-db, swapdb; nothing was changed`, res.Msg)
	assert.Equal(t, "port 6390\n", string(readFile(t, path)))
}
