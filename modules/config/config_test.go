package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/testserver"
)

func TestChangeAndIdempotence(t *testing.T) {
	tests := []struct {
		name     string
		extra    []string // initial config lines
		settings map[string]any
		server   map[string]string   // CONFIG GET after the run
		file     map[string][]string // config file lines after the run
	}{
		{
			name:     "maxmemory",
			settings: map[string]any{"maxmemory": "64mb"},
			server:   map[string]string{"maxmemory": "67108864"},
			file:     map[string][]string{"maxmemory": {"64mb"}},
		},
		{
			name:     "timeout over an existing line",
			extra:    []string{"timeout 0"},
			settings: map[string]any{"timeout": 300},
			server:   map[string]string{"timeout": "300"},
			file:     map[string][]string{"timeout": {"300"}},
		},
		{
			name:     "save replaces every save line",
			extra:    []string{"save 900 1", "save 300 10"},
			settings: map[string]any{"save": "3600 1 300 100"},
			server:   map[string]string{"save": "3600 1 300 100"},
			file:     map[string][]string{"save": {"3600 1 300 100"}},
		},
		{
			name:     "bind",
			settings: map[string]any{"bind": []any{"-127.0.0.1"}},
			server:   map[string]string{"bind": "-127.0.0.1"},
			file:     map[string][]string{"bind": {"-127.0.0.1"}},
		},
		{
			name:     "several at once",
			settings: map[string]any{"maxmemory-policy": "allkeys-lru", "hz": 20, "protected-mode": false},
			server:   map[string]string{"maxmemory-policy": "allkeys-lru", "hz": "20", "protected-mode": "no"},
			file:     map[string][]string{"maxmemory-policy": {"allkeys-lru"}, "hz": {"20"}, "protected-mode": {"no"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.Start(t, tc.extra...)
			args := task(srv, map[string]any{"settings": tc.settings})

			// Check mode first: same answer as the real run, nothing touched.
			before := srv.ReadConf()
			serverBefore := map[string]string{}
			for k := range tc.server {
				serverBefore[k] = srv.ConfigGet(k)
			}
			checkArgs := task(srv, map[string]any{"settings": tc.settings, "_ansible_check_mode": true})
			cres, cf := mod.CallOK(t, checkArgs)
			assert.Equal(t, before, srv.ReadConf(), "check mode wrote the file")
			for k, v := range serverBefore {
				assert.Equal(t, v, srv.ConfigGet(k), "check mode changed %s", k)
			}

			res, f := mod.CallOK(t, args)
			assert.True(t, res.Changed)
			assert.Equal(t, cres.Changed, res.Changed, "check mode and real run disagree on changed")
			assert.Equal(t, cf.RuntimeChanged, f.RuntimeChanged)
			assert.Equal(t, cf.FileChanged, f.FileChanged)
			assert.Equal(t, cf.Values, f.Values, "check mode reports the planned values")
			assert.Equal(t, srv.ConfPath, f.ConfigFile)
			assert.False(t, f.RestartRequired)
			assert.Empty(t, res.Warnings)
			for k, v := range tc.server {
				assert.Equal(t, v, srv.ConfigGet(k), "server value of %s", k)
			}
			for k, v := range tc.file {
				assert.Equal(t, v, fileArgs(t, srv.ConfPath, k), "file lines of %s", k)
			}

			after := srv.ReadConf()
			res2, f2 := mod.CallOK(t, args)
			assert.False(t, res2.Changed, "second run changed: runtime %v file %v", f2.RuntimeChanged, f2.FileChanged)
			assert.Empty(t, f2.RuntimeChanged)
			assert.Empty(t, f2.FileChanged)
			assert.Equal(t, after, srv.ReadConf())
			assert.Empty(t, f2.Drift)

			cres2, _ := mod.CallOK(t, checkArgs)
			assert.False(t, cres2.Changed)
		})
	}
}

func TestEqualByValue(t *testing.T) {
	tests := []struct {
		name     string
		extra    []string
		settings map[string]any
	}{
		{"memory unit vs bytes", []string{"maxmemory 1073741824"}, map[string]any{"maxmemory": "1gb"}},
		{"bytes vs memory unit", []string{"maxmemory 1gb"}, map[string]any{"maxmemory": 1073741824}},
		{"bool yes vs true", []string{"protected-mode yes"}, map[string]any{"protected-mode": true}},
		{"bool string yes", []string{"protected-mode yes"}, map[string]any{"protected-mode": "yes"}},
		{"enum case", []string{"maxmemory-policy allkeys-lru"}, map[string]any{"maxmemory-policy": "ALLKEYS-LRU"}},
		{"save odd whitespace", []string{"save 3600 1", "save 300 100"}, map[string]any{"save": "  3600   1\t300 100 "}},
		{"save as a list", []string{"save 3600 1 300 100"}, map[string]any{"save": []any{"3600 1", []any{300, 100}}}},
		{"masterauth vs primaryauth", []string{"primaryauth Sec-Equal-1"}, map[string]any{"masterauth": "Sec-Equal-1"}},
		{"primaryauth vs masterauth line", []string{"masterauth Sec-Equal-2"}, map[string]any{"primaryauth": "Sec-Equal-2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.Start(t, tc.extra...)
			before := srv.ReadConf()
			res, f := mod.CallOK(t, task(srv, map[string]any{"settings": tc.settings}))
			assert.False(t, res.Changed, "runtime %v file %v", f.RuntimeChanged, f.FileChanged)
			assert.Empty(t, f.Drift)
			assert.Equal(t, before, srv.ReadConf())
		})
	}
}

func TestImmutableDirective(t *testing.T) {
	tests := []struct {
		name      string
		extra     []string
		settings  map[string]any
		directive string
		fileLine  []string
		server    string
	}{
		{"enable-debug-command", []string{"enable-debug-command yes"}, map[string]any{"enable-debug-command": "no"}, "enable-debug-command", []string{"no"}, "yes"},
		{"databases", nil, map[string]any{"databases": 32}, "databases", []string{"32"}, "16"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.Start(t, tc.extra...)

			// strict: fails, nothing changed
			before := srv.ReadConf()
			res, _ := mod.Call(t, task(srv, map[string]any{"settings": tc.settings, "strict": true}))
			require.True(t, res.Failed)
			assert.Equal(t, fmt.Sprintf("directive %q needs a server restart to change (the server does not allow changing it at runtime) and strict is set; nothing was changed", tc.directive), res.Msg)
			assert.Equal(t, before, srv.ReadConf())

			// persist: runtime cannot do it at all
			res, _ = mod.Call(t, task(srv, map[string]any{"settings": tc.settings, "persist": "runtime"}))
			require.True(t, res.Failed)
			assert.Equal(t, fmt.Sprintf("directive %q cannot change while the server runs (the server does not allow changing it at runtime); use persist: both or file and restart the server; nothing was changed", tc.directive), res.Msg)
			assert.Equal(t, before, srv.ReadConf())

			args := task(srv, map[string]any{"settings": tc.settings})
			cres, cf := mod.CallOK(t, task(srv, map[string]any{"settings": tc.settings, "_ansible_check_mode": true}))
			assert.Equal(t, before, srv.ReadConf())
			res, f := mod.CallOK(t, args)
			assert.True(t, res.Changed)
			assert.Equal(t, cres.Changed, res.Changed)
			assert.Equal(t, cf.FileChanged, f.FileChanged)
			assert.Equal(t, cf.RestartRequiredDirectives, f.RestartRequiredDirectives)
			assert.Equal(t, []string{tc.directive}, f.FileChanged)
			assert.Empty(t, f.RuntimeChanged)
			assert.True(t, f.RestartRequired)
			assert.Equal(t, []string{tc.directive}, f.RestartRequiredDirectives)
			assert.Equal(t, []string{fmt.Sprintf("restart the server to apply %s: the running server keeps the old value until then", tc.directive)}, res.Warnings)
			assert.Equal(t, tc.fileLine, fileArgs(t, srv.ConfPath, tc.directive))
			assert.Equal(t, tc.server, srv.ConfigGet(tc.directive))

			res2, f2 := mod.CallOK(t, args)
			assert.False(t, res2.Changed)
			assert.True(t, f2.RestartRequired)
			assert.Equal(t, []string{tc.directive}, f2.RestartRequiredDirectives)
			assert.Contains(t, res2.Warnings, fmt.Sprintf("restart the server to apply %s: the running server keeps the old value until then", tc.directive))
		})
	}
}

func TestBadInput(t *testing.T) {
	srv := testserver.Start(t, "maxmemory 10mb")
	tests := []struct {
		name string
		args map[string]any
		msg  string
	}{
		{"unknown directive", map[string]any{"settings": map[string]any{"maxmemroy": "1gb"}},
			`settings: unknown directive "maxmemroy": not known to valkey_config or to the server (valkey 8.0.1); check the spelling; nothing was changed`},
		{"memory unit", map[string]any{"settings": map[string]any{"maxmemory": "1zb"}},
			`settings: directive "maxmemory": "1zb" is not a memory size; expected bytes or a number with k, kb, m, mb, g or gb; nothing was changed`},
		{"int", map[string]any{"settings": map[string]any{"timeout": "abc"}},
			`settings: directive "timeout": "abc" is not an integer; expected an integer between 0 and 2147483647; nothing was changed`},
		{"bool", map[string]any{"settings": map[string]any{"protected-mode": "maybe"}},
			`settings: directive "protected-mode": "maybe" is not a boolean; expected yes or no (true/false and on/off are accepted too); nothing was changed`},
		{"list for a scalar", map[string]any{"settings": map[string]any{"timeout": []any{1, 2}}},
			`settings: directive "timeout": a list is not allowed; expected a single value: an integer between 0 and 2147483647; nothing was changed`},
		{"unixsocketperm as int", map[string]any{"settings": map[string]any{"unixsocketperm": 700}},
			`settings: directive "unixsocketperm": the number 700 is ambiguous (YAML reads 0700 as 448); give it as a quoted octal string such as '0700'; nothing was changed`},
		{"include", map[string]any{"settings": map[string]any{"include": "/etc/other.conf"}},
			`settings: directive "include" is not managed by valkey_config: include is not supported: manage each directive directly in the main configuration file; nothing was changed`},
		{"rename-command", map[string]any{"settings": map[string]any{"rename-command": "CONFIG \"\""}},
			`settings: directive "rename-command" is not managed by valkey_config: rename-command is not supported: use ACLs instead; see valkey_acl; nothing was changed`},
		{"duplicate alias", map[string]any{"settings": map[string]any{"masterauth": "Dup-Secret-1", "primaryauth": "Dup-Secret-1"}},
			`settings: "masterauth" and "primaryauth" are the same directive (primaryauth); give it once; nothing was changed`},
		{"persist invalid", map[string]any{"settings": map[string]any{"maxmemory": "1gb"}, "persist": "sometimes"},
			`option "persist": "sometimes" is not one of runtime, file, both; nothing was changed`},
		{"settings missing", map[string]any{},
			`option "settings" is required; nothing was changed`},
		{"settings not a dict", map[string]any{"settings": "maxmemory 1gb"},
			`option "settings": expected a dictionary; nothing was changed`},
		{"unknown option", map[string]any{"settings": map[string]any{}, "login_pass": "x"},
			`unsupported option for valkey_config: login_pass; valid options: backup, config_file, connect_timeout, journal, journal_path, journal_required, journal_syslog, login_host, login_password, login_port, login_unix_socket, login_user, persist, settings, strict, tls, tls_ca_cert, tls_cert, tls_key, tls_server_name, validate_certs; nothing was changed`},
		{"bad value after a good one", map[string]any{"settings": map[string]any{"hz": 50, "timeout": -1}},
			`settings: directive "timeout": -1 is out of range; expected an integer between 0 and 2147483647; nothing was changed`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.ReadConf()
			all := srv.CLI("CONFIG", "GET", "*")
			res, _ := mod.Call(t, task(srv, tc.args))
			require.True(t, res.Failed)
			assert.Equal(t, tc.msg, res.Msg)
			assert.False(t, res.Changed)
			assert.Equal(t, before, srv.ReadConf(), "file changed")
			assert.Equal(t, all, srv.CLI("CONFIG", "GET", "*"), "server changed")
			assert.NotContains(t, res.Msg, "Dup-Secret-1")
		})
	}
}

func TestPersist(t *testing.T) {
	t.Run("runtime leaves the file alone", func(t *testing.T) {
		srv := testserver.Start(t, "maxmemory 10mb")
		before := srv.ReadConf()
		res, f := mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "20mb"}, "persist": "runtime"}))
		assert.True(t, res.Changed)
		assert.Equal(t, []string{"maxmemory"}, f.RuntimeChanged)
		assert.Empty(t, f.FileChanged)
		assert.Equal(t, "20971520", srv.ConfigGet("maxmemory"))
		assert.Equal(t, before, srv.ReadConf())
		res, _ = mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "20mb"}, "persist": "runtime"}))
		assert.False(t, res.Changed)
	})
	t.Run("file leaves the server alone", func(t *testing.T) {
		srv := testserver.Start(t, "maxmemory 10mb")
		res, f := mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "20mb"}, "persist": "file"}))
		assert.True(t, res.Changed)
		assert.Empty(t, f.RuntimeChanged)
		assert.Equal(t, []string{"maxmemory"}, f.FileChanged)
		assert.Equal(t, "10485760", srv.ConfigGet("maxmemory"))
		assert.Equal(t, []string{"20mb"}, fileArgs(t, srv.ConfPath, "maxmemory"))
		res, _ = mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "20mb"}, "persist": "file"}))
		assert.False(t, res.Changed)
	})
	t.Run("file with explicit path and no server", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "offline.conf")
		require.NoError(t, os.WriteFile(path, []byte("port 6390\n"), 0o600))
		res, f := mod.CallOK(t, map[string]any{"login_port": 1, "config_file": path, "persist": "file", "settings": map[string]any{"maxmemory": "1gb"}})
		assert.True(t, res.Changed)
		assert.Nil(t, f.Server)
		assert.Equal(t, "port 6390\nmaxmemory 1gb\n", string(readFile(t, path)))
		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "mode kept")
	})
	t.Run("missing config file is created 0640", func(t *testing.T) {
		srv := testserver.Start(t)
		path := filepath.Join(t.TempDir(), "new.conf")
		cres, _ := mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory-policy": "allkeys-lfu"}, "config_file": path, "_ansible_check_mode": true}))
		assert.True(t, cres.Changed)
		assert.NoFileExists(t, path, "check mode created the file")
		res, f := mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory-policy": "allkeys-lfu"}, "config_file": path}))
		assert.True(t, res.Changed)
		assert.Equal(t, path, f.ConfigFile)
		assert.Equal(t, "maxmemory-policy allkeys-lfu\n", string(readFile(t, path)))
		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
		assert.Equal(t, "allkeys-lfu", srv.ConfigGet("maxmemory-policy"))
	})
	t.Run("config file in a missing directory", func(t *testing.T) {
		srv := testserver.Start(t)
		path := filepath.Join(t.TempDir(), "nodir", "new.conf")
		res, _ := mod.Call(t, task(srv, map[string]any{"settings": map[string]any{"hz": 11}, "config_file": path}))
		require.True(t, res.Failed)
		assert.Equal(t, fmt.Sprintf("config_file %q: its directory does not exist; nothing was changed", path), res.Msg)
		assert.Equal(t, "10", srv.ConfigGet("hz"))
	})
}

func TestDrift(t *testing.T) {
	srv := testserver.Start(t, "maxmemory 10mb", "timeout 0")
	srv.ConfigSet("maxmemory", "30000000") // behind the module's back
	res, f := mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "10mb", "timeout": 0}}))
	assert.Equal(t, map[string]DriftEntry{"maxmemory": {Runtime: "30000000", File: "10485760"}}, f.Drift)
	assert.True(t, res.Changed, "remediated")
	assert.Equal(t, []string{"maxmemory"}, f.RuntimeChanged)
	assert.Empty(t, f.FileChanged)
	assert.Contains(t, res.Warnings, "drift before this run: the running server and "+srv.ConfPath+" disagreed on maxmemory")
	assert.Equal(t, "10485760", srv.ConfigGet("maxmemory"))

	res, f = mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "10mb"}}))
	assert.False(t, res.Changed)
	assert.Empty(t, f.Drift)
}

func TestServerField(t *testing.T) {
	srv := testserver.Start(t)
	_, f := mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{}}))
	require.NotNil(t, f.Server)
	assert.Equal(t, "valkey", f.Server.Name)
	assert.True(t, strings.HasPrefix(f.Server.Version, "8.0."), f.Server.Version)
}

func TestConcurrentRuns(t *testing.T) {
	srv := testserver.Start(t)
	settings := []struct{ name, value, server string }{
		{"hz", "17", "17"},
		{"timeout", "123", "123"},
		{"maxmemory", "5mb", "5242880"},
		{"maxmemory-policy", "volatile-lfu", "volatile-lfu"},
		{"tcp-keepalive", "77", "77"},
		{"slowlog-max-len", "99", "99"},
		{"maxmemory-samples", "7", "7"},
		{"lfu-log-factor", "12", "12"},
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(settings))
	for _, s := range settings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, _ := mod.Call(t, task(srv, map[string]any{"settings": map[string]any{s.name: s.value}}))
			if res.Failed || !res.Changed {
				errs <- fmt.Sprintf("%s: failed=%v changed=%v msg=%s", s.name, res.Failed, res.Changed, res.Msg)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	cfg, err := conffile.Load(srv.ConfPath)
	require.NoError(t, err, "the file parses")
	for _, s := range settings {
		occ := cfg.Occurrences(s.name)
		if assert.Len(t, occ, 1, s.name) {
			assert.Equal(t, []string{s.value}, occ[0].Args, s.name)
		}
		assert.Equal(t, s.server, srv.ConfigGet(s.name), s.name)
	}
	assert.NotContains(t, cfg.Warnings, "")
}

func TestDiff(t *testing.T) {
	srv := testserver.Start(t, "maxmemory 10mb")
	args := task(srv, map[string]any{"settings": map[string]any{"maxmemory": "20mb", "hz": 15}, "_ansible_diff": true})
	res, _ := mod.CallOK(t, args)
	require.Len(t, res.Diff, 2)
	assert.Equal(t, "runtime (127.0.0.1:"+fmt.Sprint(srv.Port)+")", res.Diff[0].BeforeHeader)
	assert.Equal(t, "hz 10\nmaxmemory 10485760\n", res.Diff[0].Before)
	assert.Equal(t, "hz 15\nmaxmemory 20971520\n", res.Diff[0].After)
	assert.Equal(t, srv.ConfPath, res.Diff[1].BeforeHeader)
	assert.Equal(t, "maxmemory 10mb\n", res.Diff[1].Before)
	assert.Equal(t, "hz 15\nmaxmemory 20mb\n", res.Diff[1].After)

	res, _ = mod.CallOK(t, args)
	assert.Empty(t, res.Diff)
}

func TestServerRefusesValue(t *testing.T) {
	srv := testserver.Start(t, "maxmemory 10mb")
	before := srv.ReadConf()
	// 192.0.2.1 (TEST-NET-1) is not a local address: the server cannot
	// bind it, so the whole CONFIG SET is refused.
	res, f := mod.Call(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "20mb", "bind": "192.0.2.1"}}))
	require.True(t, res.Failed)
	assert.True(t, strings.HasPrefix(res.Msg, "the server refused the change: "), res.Msg)
	assert.True(t, strings.HasSuffix(res.Msg, "; nothing was changed"), res.Msg)
	assert.False(t, res.Changed)
	assert.Empty(t, f.RuntimeChanged)
	assert.Empty(t, f.FileChanged)
	assert.Equal(t, "10485760", srv.ConfigGet("maxmemory"))
	assert.Equal(t, "127.0.0.1", srv.ConfigGet("bind"))
	assert.Equal(t, before, srv.ReadConf())
}

func TestNothingToDo(t *testing.T) {
	srv := testserver.Start(t)
	before := srv.ReadConf()
	res, f := mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{}}))
	assert.False(t, res.Changed)
	assert.Equal(t, map[string]string{}, f.Values)
	assert.Equal(t, before, srv.ReadConf())
}
