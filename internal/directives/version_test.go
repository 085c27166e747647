package directives

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Findings of issue 12 part 3 and issue 11's low lines, one row each: every
// row failed before the fix (io-threads 129 and flush-before-load for 8.0 were
// accepted, TİMEOUT was timeout, a NUL in a bind item and a 2 MB logfile
// passed).
func TestServerRefusesWhatTheTableRefuses(t *testing.T) {
	tests := []struct {
		name      string
		directive string
		in        any
		want      string
	}{
		{"io-threads above IO_THREADS_MAX_NUM", "io-threads", float64(129),
			`directive "io-threads": 129 is out of range; expected an integer between 1 and 128`},
		{"NUL in a list item", "bind", []any{"127.0.0.1", "::1\x00 evil"},
			`directive "bind": "::1\x00" contains a line break or NUL character; expected a single-line string`},
		{"NUL in a save pair", "save", "3600 1\x00",
			`directive "save": "1\x00" contains a line break or NUL character; expected a single-line string`},
		{"NUL in a flags value", "shutdown-on-sigterm", "save\x00now",
			`directive "shutdown-on-sigterm": "save\x00now" contains a line break or NUL character; expected a single-line string`},
		{"2 MB restart-only logfile", "logfile", "/var/log/" + strings.Repeat("a", 2<<20),
			`directive "logfile": the value is 2097161 bytes long; expected at most 4095 bytes`},
		{"unixsocket longer than sun_path", "unixsocket", "/run/" + strings.Repeat("s", 103),
			`directive "unixsocket": the value is 108 bytes long; expected at most 107 bytes`},
		{"any value past 64 KiB", "ignore-warnings", strings.Repeat("w", 64<<10+1),
			`directive "ignore-warnings": the value is 65537 bytes long; expected at most 65536 bytes`},
		{"enum with a Kelvin sign", "maxmemory-policy", "all\u212Aeys-lru",
			`directive "maxmemory-policy": "all\u212aeys-lru" is not a valid choice; expected one of volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction`},
		{"dbfilename with a path", "dbfilename", "../dump.rdb",
			`directive "dbfilename": "../dump.rdb" is not valid: dbfilename can't be a path, just a filename`},
		{"empty appenddirname", "appenddirname", "",
			`directive "appenddirname": "" is not valid: appenddirname can't be empty`},
		{"IPv4 with a leading zero", "cluster-announce-client-ipv4", "10.0.0.01",
			`directive "cluster-announce-client-ipv4": "10.0.0.01" is not valid: Invalid IPv4 address`},
		{"unknown proc-title variable", "proc-title-template", "{title} {pid}",
			`directive "proc-title-template": "{title} {pid}" is not valid: template format is invalid or contains unknown variables`},
		{"hostname with an underscore", "cluster-announce-hostname", "node_1",
			`directive "cluster-announce-hostname": "node_1" is not valid: Hostnames may only contain alphanumeric characters, hyphens or dots`},
		{"bool with a dotted capital I", "appendonly", "\u0130ES",
			`directive "appendonly": "\u0130ES" is not a boolean; expected yes or no (true/false and on/off are accepted too)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mustLookup(t, tt.directive).Desired(tt.in)
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
		})
	}
	_, err := mustLookup(t, "io-threads").Desired(float64(128))
	assert.NoError(t, err)
	_, err = mustLookup(t, "logfile").Desired("/" + strings.Repeat("a", 4094))
	assert.NoError(t, err)
}

func TestNamesFoldASCIIOnly(t *testing.T) {
	for _, name := range []string{"T\u0130MEOUT", "tcp-\u212Aeepalive", "t\u0131meout"} {
		_, ok := Lookup(name)
		assert.False(t, ok, "%q must not name a directive", name)
	}
	d, ok := Lookup(" TIMEOUT ")
	require.True(t, ok)
	assert.Equal(t, "timeout", d.Name)
	assert.Equal(t, "t\u0130meout", Unknown("T\u0130MEOUT").Name)
}

func TestCheckVersion(t *testing.T) {
	v := func(s string) Version {
		x, err := ParseVersion(s)
		require.NoError(t, err)
		return x
	}
	tests := []struct {
		name, directive, as string
		in                  any
		version             string
		want                string // "" = accepted
	}{
		{"9.0 enum value on 8.0", "repl-diskless-load", "repl-diskless-load", "flush-before-load", "8.0.1",
			`directive "repl-diskless-load": "flush-before-load" needs Valkey 9.0 or newer; the target server is Valkey 8.0.1; expected one of disabled, on-empty-db, swapdb`},
		{"9.0 enum value on 9.0", "repl-diskless-load", "repl-diskless-load", "flush-before-load", "9.0.0", ""},
		{"older enum value on 8.0", "repl-diskless-load", "repl-diskless-load", "swapdb", "8.0.1", ""},
		{"8.1 directive on 8.0", "import-mode", "import-mode", "yes", "8.0.1",
			`directive "import-mode": needs Valkey 8.1 or newer; the target server is Valkey 8.0.1`},
		{"8.0 directive on 7.2", "hide-user-data-from-log", "hide-user-data-from-log", "yes", "7.2.7",
			`directive "hide-user-data-from-log": needs Valkey 8.0 or newer; the target server is Valkey 7.2.7`},
		{"8.0 name on 7.2", "primaryauth", "PRIMARYAUTH", "secret", "7.2.7",
			`directive "primaryauth": the name "primaryauth" needs Valkey 8.0 or newer; the target server is Valkey 7.2.7; use "masterauth"`},
		{"old alias on 7.2", "primaryauth", "masterauth", "secret", "7.2.7", ""},
		{"8.1 alias on 8.0", "slowlog-max-len", "commandlog-slow-execution-max-len", "10", "8.0.1",
			`directive "slowlog-max-len": the name "commandlog-slow-execution-max-len" needs Valkey 8.1 or newer; the target server is Valkey 8.0.1; use "slowlog-max-len"`},
		{"unknown version passes", "import-mode", "import-mode", "yes", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustLookup(t, tt.directive)
			val, err := d.Desired(tt.in)
			require.NoError(t, err)
			var ver Version
			if tt.version != "" {
				ver = v(tt.version)
			}
			err = d.CheckVersion(ver, tt.as, val)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
			assert.NotContains(t, err.Error(), "secret")
		})
	}
	assert.Equal(t, "masterauth", mustLookup(t, "primaryauth").NameForVersion(v("7.2.7")))
	assert.Equal(t, "primaryauth", mustLookup(t, "primaryauth").NameForVersion(v("8.0.1")))
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{"8.0.1": {8, 0, 1}, "9.0": {9, 0, 0}, "7.2.4-rc1": {7, 2, 4}} {
		got, err := ParseVersion(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := ParseVersion("eight")
	assert.EqualError(t, err, `"eight" is not a Valkey version; expected major.minor[.patch]`)
}

// TestInstalledVersion runs the installed valkey-server --version (Debian's
// valkey-server is a link to valkey-check-rdb, which picks its mode from
// argv[0]) and refuses a binary that someone other than root could have
// replaced: here one in a temp directory under the world-writable /tmp.
func TestInstalledVersion(t *testing.T) {
	v, path, err := InstalledVersion(context.Background())
	if err == ErrNoServerBinary {
		t.Skip(err)
	}
	require.NoError(t, err, path)
	assert.True(t, v.Known())

	fake := filepath.Join(t.TempDir(), "valkey-server")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho 'Valkey server v=9.9.9 sha=0'\n"), 0o755))
	old := ServerBinaries
	t.Cleanup(func() { ServerBinaries = old })
	ServerBinaries = []string{fake}
	_, _, err = InstalledVersion(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not trusted to tell the server version: it must be owned by root and writable by nobody else")
}
