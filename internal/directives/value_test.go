package directives

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustLookup(t *testing.T, name string) *Directive {
	t.Helper()
	d, ok := Lookup(name)
	require.True(t, ok, name)
	return d
}

func TestDesired(t *testing.T) {
	tests := []struct {
		name      string
		directive string
		in        any
		canonical string
		set       string
		args      []string
	}{
		// Bool
		{"bool go true", "appendonly", true, "yes", "yes", []string{"yes"}},
		{"bool go false", "appendonly", false, "no", "no", []string{"no"}},
		{"bool YES", "appendonly", "YES", "yes", "yes", []string{"yes"}},
		{"bool true string", "appendonly", "True", "yes", "yes", []string{"yes"}},
		{"bool off", "appendonly", " off ", "no", "no", []string{"no"}},
		// Int
		{"int float64", "hz", float64(10), "10", "10", []string{"10"}},
		{"int json.Number", "hz", json.Number("20"), "20", "20", []string{"20"}},
		{"int string", "hz", " 30 ", "30", "30", []string{"30"}},
		{"int negative allowed", "slowlog-log-slower-than", "-1", "-1", "-1", []string{"-1"}},
		{"int negative list size", "list-max-listpack-size", float64(-2), "-2", "-2", []string{"-2"}},
		{"int alias lookup", "lua-time-limit", "5000", "5000", "5000", []string{"5000"}},
		// Memory
		{"memory gb", "maxmemory", "1gb", "1073741824", "1gb", []string{"1gb"}},
		{"memory GB upper", "maxmemory", "1GB", "1073741824", "1gb", []string{"1gb"}},
		{"memory g", "maxmemory", "1g", "1000000000", "1g", []string{"1g"}},
		{"memory k", "maxmemory", "64k", "64000", "64k", []string{"64k"}},
		{"memory kb", "maxmemory", "64Kb", "65536", "64kb", []string{"64kb"}},
		{"memory mb", "maxmemory", "100mb", "104857600", "100mb", []string{"100mb"}},
		{"memory m", "maxmemory", "100M", "100000000", "100m", []string{"100m"}},
		{"memory b", "maxmemory", "10b", "10", "10b", []string{"10b"}},
		{"memory bytes", "maxmemory", "1073741824", "1073741824", "1073741824", []string{"1073741824"}},
		{"memory float64", "maxmemory", float64(1073741824), "1073741824", "1073741824", []string{"1073741824"}},
		{"memory leading zero", "maxmemory", "010", "10", "10", []string{"10"}},
		{"memory percent", "maxmemory-clients", "10%", "10%", "10%", []string{"10%"}},
		{"memory zero percent", "maxmemory-clients", "0%", "0", "0", []string{"0"}},
		{"memory percent dir also bytes", "maxmemory-clients", "1gb", "1073741824", "1gb", []string{"1gb"}},
		// Octal
		{"octal 0700", "unixsocketperm", "0700", "700", "700", []string{"700"}},
		{"octal 700", "unixsocketperm", "700", "700", "700", []string{"700"}},
		{"octal 0o755", "unixsocketperm", "0o755", "755", "755", []string{"755"}},
		{"octal 0", "unixsocketperm", "0", "0", "0", []string{"0"}},
		{"octal 007", "unixsocketperm", "007", "7", "7", []string{"7"}},
		// Enum
		{"enum upper", "maxmemory-policy", "ALLKEYS-LRU", "allkeys-lru", "allkeys-lru", []string{"allkeys-lru"}},
		{"enum yaml no", "appendfsync", false, "no", "no", []string{"no"}},
		{"enum yaml yes without no", "tls-auth-clients", true, "yes", "yes", []string{"yes"}},
		{"enum alias relative", "oom-score-adj", "relative", "yes", "yes", []string{"yes"}},
		{"enum yaml yes", "enable-debug-command", true, "yes", "yes", []string{"yes"}},
		{"enum local", "enable-protected-configs", "Local", "local", "local", []string{"local"}},
		// Flags
		{"flags order", "shutdown-on-sigterm", "NOW save", "save now", "save now", []string{"save", "now"}},
		{"flags list", "shutdown-on-sigint", []any{"force", "now"}, "now force", "now force", []string{"now", "force"}},
		{"flags default dropped", "shutdown-on-sigint", "default save", "save", "save", []string{"save"}},
		{"flags default", "shutdown-on-sigint", "default", "default", "default", []string{"default"}},
		// String
		{"string trimmed", "logfile", "  /var/log/valkey.log ", "/var/log/valkey.log", "/var/log/valkey.log", []string{"/var/log/valkey.log"}},
		{"string null", "logfile", nil, "", "", []string{""}},
		{"string number", "requirepass", float64(123456), "123456", "123456", []string{"123456"}},
		{"dir cleaned", "dir", "/var/lib/valkey/", "/var/lib/valkey", "/var/lib/valkey", []string{"/var/lib/valkey"}},
		{"tls-protocols stays one arg", "tls-protocols", "TLSv1.2 TLSv1.3", "TLSv1.2 TLSv1.3", "TLSv1.2 TLSv1.3", []string{"TLSv1.2 TLSv1.3"}},
		// Keyspace events
		{"kse KEA", "notify-keyspace-events", "KEA", "AKE", "AKE", []string{"AKE"}},
		{"kse AKE", "notify-keyspace-events", "AKE", "AKE", "AKE", []string{"AKE"}},
		{"kse Ex", "notify-keyspace-events", "Ex", "xE", "xE", []string{"xE"}},
		{"kse all spelled out", "notify-keyspace-events", "Kg$lshzxetd", "AK", "AK", []string{"AK"}},
		{"kse new key hidden by A", "notify-keyspace-events", "KEAn", "AKE", "AnKE", []string{"AnKE"}},
		{"kse nd", "notify-keyspace-events", "nd", "dn", "dn", []string{"dn"}},
		{"kse key miss", "notify-keyspace-events", "mKd", "dKm", "dKm", []string{"dKm"}},
		{"kse empty", "notify-keyspace-events", "", "", "", []string{""}},
		{"kse null", "notify-keyspace-events", nil, "", "", []string{""}},
		// save
		{"save string", "save", "3600 1 300 100", "300 100 3600 1", "3600 1 300 100", []string{"3600", "1", "300", "100"}},
		{"save odd whitespace", "save", "  3600   1\t300 100 ", "300 100 3600 1", "3600 1 300 100", []string{"3600", "1", "300", "100"}},
		{"save list of pairs", "save", []any{"3600 1", "300 100"}, "300 100 3600 1", "3600 1 300 100", []string{"3600", "1", "300", "100"}},
		{"save nested numbers", "save", []any{[]any{float64(3600), float64(1)}, []any{float64(300), float64(100)}}, "300 100 3600 1", "3600 1 300 100", []string{"3600", "1", "300", "100"}},
		{"save duplicates", "save", "3600 1 3600 1", "3600 1", "3600 1 3600 1", []string{"3600", "1", "3600", "1"}},
		{"save disabled empty", "save", "", "", "", []string{""}},
		{"save disabled list", "save", []any{}, "", "", []string{""}},
		{"save disabled null", "save", nil, "", "", []string{""}},
		{"save zero changes", "save", "3600 0", "3600 0", "3600 0", []string{"3600", "0"}},
		// bind
		{"bind string", "bind", "127.0.0.1 ::1", "127.0.0.1 ::1", "127.0.0.1 ::1", []string{"127.0.0.1", "::1"}},
		{"bind list reordered", "bind", []any{"::1", "127.0.0.1"}, "127.0.0.1 ::1", "::1 127.0.0.1", []string{"::1", "127.0.0.1"}},
		{"bind optional", "bind", "-::1  127.0.0.1", "-::1 127.0.0.1", "-::1 127.0.0.1", []string{"-::1", "127.0.0.1"}},
		// client-output-buffer-limit
		{"cobl replica units", "client-output-buffer-limit", "replica 256mb 64mb 60",
			"normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
			"normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
			[]string{"normal", "0", "0", "0", "slave", "268435456", "67108864", "60", "pubsub", "33554432", "8388608", "60"}},
		{"cobl list several", "client-output-buffer-limit", []any{"pubsub 32MB 8mB 60", "Normal 1k 1kb 5", "slave 1gb 1g 0"},
			"normal 1000 1024 5 slave 1073741824 1000000000 0 pubsub 33554432 8388608 60",
			"normal 1000 1024 5 slave 1073741824 1000000000 0 pubsub 33554432 8388608 60",
			[]string{"normal", "1000", "1024", "5", "slave", "1073741824", "1000000000", "0", "pubsub", "33554432", "8388608", "60"}},
		// oom-score-adj-values
		{"oom values", "oom-score-adj-values", []any{float64(0), float64(200), float64(800)}, "0 200 800", "0 200 800", []string{"0", "200", "800"}},
		{"oom values negative", "oom-score-adj-values", "-1000  0 1000", "-1000 0 1000", "-1000 0 1000", []string{"-1000", "0", "1000"}},
		// replicaof
		{"replicaof host port", "replicaof", "10.0.0.1 6379", "10.0.0.1 6379", "10.0.0.1 6379", []string{"10.0.0.1", "6379"}},
		{"replicaof list", "slaveof", []any{"Primary.example", float64(6380)}, "primary.example 6380", "Primary.example 6380", []string{"Primary.example", "6380"}},
		{"replicaof no one", "replicaof", "NO ONE", "", "no one", []string{"no", "one"}},
		{"replicaof empty", "replicaof", "", "", "no one", []string{"no", "one"}},
		// percentiles
		{"percentiles", "latency-tracking-info-percentiles", "50 99 99.9", "50 99 99.9", "50 99 99.9", []string{"50", "99", "99.9"}},
		{"percentiles trailing zeros", "latency-tracking-info-percentiles", "50.0 99.00 99.900", "50 99 99.9", "50 99 99.9", []string{"50", "99", "99.9"}},
		{"percentiles numbers", "latency-tracking-info-percentiles", []any{float64(50), 99.9, json.Number("1e1")}, "50 99.9 10", "50 99.9 10", []string{"50", "99.9", "10"}},
		{"percentiles rounding", "latency-tracking-info-percentiles", "33.3333333333 0.5", "33.333333 0.5", "33.333333 0.5", []string{"33.333333", "0.5"}},
		{"percentiles empty", "latency-tracking-info-percentiles", "", "", "", []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := mustLookup(t, tt.directive).Desired(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.canonical, v.Canonical, "Canonical")
			assert.Equal(t, tt.set, v.Set, "Set")
			assert.Equal(t, tt.args, v.Args, "Args")
		})
	}
}

func TestDesiredErrors(t *testing.T) {
	tests := []struct {
		name      string
		directive string
		in        any
		want      string
	}{
		{"bad memory unit", "maxmemory", "1zb",
			`directive "maxmemory": "1zb" is not a memory size; expected bytes or a number with k, kb, m, mb, g or gb`},
		{"memory fraction", "maxmemory", "1.5gb",
			`directive "maxmemory": "1.5gb" is not a memory size; expected bytes or a number with k, kb, m, mb, g or gb`},
		{"memory negative", "maxmemory", "-1",
			`directive "maxmemory": "-1" is not a memory size; expected bytes or a number with k, kb, m, mb, g or gb`},
		{"memory negative number", "maxmemory", float64(-1),
			`directive "maxmemory": -1 is not a memory size; expected bytes or a number with k, kb, m, mb, g or gb`},
		{"memory below minimum", "proto-max-bulk-len", "1kb",
			`directive "proto-max-bulk-len": "1kb" is out of range; expected a memory size between 1048576 and 9223372036854775807 bytes`},
		{"memory overflow", "maxmemory", "100000000000gb",
			`directive "maxmemory": "100000000000gb" is out of range; expected a memory size below 16 exabytes`},
		{"percent not allowed", "maxmemory", "10%",
			`directive "maxmemory": "10%" is not a memory size; expected bytes or a number with k, kb, m, mb, g or gb`},
		{"percent over 100", "maxmemory-clients", "101%",
			`directive "maxmemory-clients": "101%" is out of range; expected a percentage of at most 100%`},
		{"wrong type bool for int", "hz", true,
			`directive "hz": true is not an integer; expected an integer between 0 and 2147483647`},
		{"int fraction", "hz", 1.5,
			`directive "hz": 1.5 is not a whole number; expected an integer between 0 and 2147483647`},
		{"negative where not allowed", "hz", float64(-1),
			`directive "hz": -1 is out of range; expected an integer between 0 and 2147483647`},
		{"int out of range", "port", "70000",
			`directive "port": "70000" is out of range; expected an integer between 0 and 65535`},
		{"int not a number", "port", "6379a",
			`directive "port": "6379a" is not an integer; expected an integer between 0 and 65535`},
		{"bool nonsense", "appendonly", "maybe",
			`directive "appendonly": "maybe" is not a boolean; expected yes or no (true/false and on/off are accepted too)`},
		{"bool number", "appendonly", float64(1),
			`directive "appendonly": 1 is not a boolean; expected yes or no (true/false and on/off are accepted too)`},
		{"bool null", "appendonly", nil,
			`directive "appendonly": null is not a boolean; expected yes or no (true/false and on/off are accepted too)`},
		{"enum not in choices", "maxmemory-policy", "lru",
			`directive "maxmemory-policy": "lru" is not a valid choice; expected one of volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction`},
		{"enum yaml yes where only no exists", "appendfsync", true,
			`directive "appendfsync": true is not a valid choice; expected one of everysec, always, no (YAML reads unquoted yes, no, on and off as booleans)`},
		{"enum bool without yes/no", "loglevel", false,
			`directive "loglevel": false is not a valid choice; expected one of debug, verbose, notice, warning, nothing (YAML reads unquoted yes, no, on and off as booleans)`},
		{"int for octal", "unixsocketperm", float64(448),
			`directive "unixsocketperm": the number 448 is ambiguous (YAML reads 0700 as 448); give it as a quoted octal string such as '0700'`},
		{"bad octal digit", "unixsocketperm", "0800",
			`directive "unixsocketperm": "0800" is not an octal permission; expected a quoted octal string such as '0700'`},
		{"octal too large", "unixsocketperm", "1777",
			`directive "unixsocketperm": "1777" is out of range; expected an octal permission between 0 and 777`},
		{"list for a scalar", "maxmemory", []any{"1gb"},
			`directive "maxmemory": a list is not allowed; expected a single value: bytes or a number with k, kb, m, mb, g or gb`},
		{"list for a string", "logfile", []any{"a", "b"},
			`directive "logfile": a list is not allowed; expected a single value: a string`},
		{"string with newline", "logfile", "a\nsave 1 1",
			`directive "logfile": "a\nsave 1 1" contains a line break or NUL character; expected a single-line string`},
		{"flags unknown", "shutdown-on-sigterm", "save later",
			`directive "shutdown-on-sigterm": "later" is not a valid choice; expected one or more of default, save, nosave, now, force`},
		{"flags conflict", "shutdown-on-sigterm", "save nosave",
			`directive "shutdown-on-sigterm": save and nosave cannot be used together; expected one or more of default, save, nosave, now, force`},
		{"flags empty", "shutdown-on-sigint", "",
			`directive "shutdown-on-sigint": an empty value is not allowed; expected one or more of default, save, nosave, now, force`},
		{"kse bad class", "notify-keyspace-events", "KEZ",
			`directive "notify-keyspace-events": "KEZ" contains "Z", which is not an event class; expected a string of event classes from Ag$lshzxeKEtmdn`},
		{"save odd count", "save", "3600 1 300",
			`directive "save": "300" is an incomplete pair; expected pairs of "<seconds> <changes>", or "" to disable snapshots`},
		{"save zero seconds", "save", "0 1",
			`directive "save": "0 1" is not a valid pair; expected "<seconds> <changes>" with seconds of at least 1 and changes of at least 0`},
		{"save bool", "save", false,
			`directive "save": false is a boolean; expected pairs of "<seconds> <changes>", or "" to disable snapshots`},
		{"cobl master class", "client-output-buffer-limit", "master 1 1 1",
			`directive "client-output-buffer-limit": "master" is not a client class; expected normal, replica or pubsub`},
		{"cobl word count", "client-output-buffer-limit", "replica 1gb 1gb",
			`directive "client-output-buffer-limit": 3 words are not allowed; expected groups of "<class> <hard limit> <soft limit> <soft seconds>" with class normal, replica or pubsub`},
		{"cobl percent", "client-output-buffer-limit", "replica 10% 1 1",
			`directive "client-output-buffer-limit": "10%" is not a memory size; expected bytes or a number with k, kb, m, mb, g or gb`},
		{"cobl negative seconds", "client-output-buffer-limit", "replica 1 1 -1",
			`directive "client-output-buffer-limit": "-1" is not a number of seconds; expected an integer of at least 0`},
		{"bind empty", "bind", "",
			`directive "bind": an empty value is not allowed (the server would stop listening on TCP); expected one or more addresses`},
		{"oom values count", "oom-score-adj-values", "0 200",
			`directive "oom-score-adj-values": 2 values are not allowed; expected three integers between -2000 and 2000`},
		{"replicaof bad port", "replicaof", "host 99999",
			`directive "replicaof": "99999" is not a port; expected "<host> <port>" or "no one" with a port between 0 and 65535`},
		{"percentile over 100", "latency-tracking-info-percentiles", "50 101",
			`directive "latency-tracking-info-percentiles": "101" is not a percentile; expected percentiles between 0 and 100`},
		{"unsupported type", "hz", map[string]any{"a": 1},
			`directive "hz": a value of type map[string]interface {} is not supported; expected an integer between 0 and 2147483647`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mustLookup(t, tt.directive).Desired(tt.in)
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

func TestSecretErrorsHideTheValue(t *testing.T) {
	tests := []struct {
		name      string
		directive string
		in        any
		secret    string
		want      string
	}{
		{"boolean password", "requirepass", true, ": true",
			`directive "requirepass": the value is a boolean; expected a quoted string (YAML reads unquoted yes, no, true and false as booleans)`},
		{"newline in password", "requirepass", "hunter2\nsave 1 1", "hunter2",
			`directive "requirepass": the value contains a line break or NUL character; expected a single-line string`},
		{"newline via alias", "masterauth", "s3cr3t\rpass", "s3cr3t",
			`directive "primaryauth": the value contains a line break or NUL character; expected a single-line string`},
		{"list for key pass", "tls-key-file-pass", []any{"s3cr3t-pass"}, "s3cr3t-pass",
			`directive "tls-key-file-pass": a list is not allowed; expected a single value: a string`},
		{"map for client key pass", "tls-client-key-file-pass", map[string]any{"s3cr3t-pass": 1}, "s3cr3t-pass",
			`directive "tls-client-key-file-pass": the value is not supported; expected a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mustLookup(t, tt.directive).Desired(tt.in)
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
			assert.NotContains(t, err.Error(), tt.secret)
		})
	}
	// FromFile errors too.
	_, err := mustLookup(t, "requirepass").FromFile([]string{"pass word", "extra"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "pass word")
}

func TestFromServer(t *testing.T) {
	tests := []struct {
		name, directive, in, canonical string
	}{
		{"bool", "appendonly", "yes", "yes"},
		{"memory", "maxmemory", "1073741824", "1073741824"},
		{"memory percent", "maxmemory-clients", "10%", "10%"},
		{"octal", "unixsocketperm", "700", "700"},
		{"octal zero", "unixsocketperm", "0", "0"},
		{"enum", "oom-score-adj", "yes", "yes"},
		{"flags", "shutdown-on-sigterm", "now force", "now force"},
		{"save empty", "save", "", ""},
		{"save pairs", "save", "3600 1 300 100 60 10000", "60 10000 300 100 3600 1"},
		{"cobl", "client-output-buffer-limit", "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
			"normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"},
		{"kse", "notify-keyspace-events", "AKE", "AKE"},
		{"replicaof none", "replicaof", "", ""},
		{"replicaof set", "replicaof", "10.0.0.1 6379", "10.0.0.1 6379"},
		{"percentiles", "latency-tracking-info-percentiles", "50 99 99.9", "50 99 99.9"},
		{"bind", "bind", "::1 127.0.0.1", "127.0.0.1 ::1"},
		{"bind none", "bind", "", ""},
		{"string", "dir", "/tmp", "/tmp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := mustLookup(t, tt.directive).FromServer(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.canonical, v.Canonical)
		})
	}
	// The server only ever prints yes/no for booleans.
	_, err := mustLookup(t, "appendonly").FromServer("true")
	assert.EqualError(t, err, `directive "appendonly": "true" is not a boolean; expected yes or no (true/false and on/off are accepted too)`)
}

func TestFromFile(t *testing.T) {
	tests := []struct {
		name, directive string
		args            []string
		canonical       string
		fileArgs        []string
	}{
		{"memory", "maxmemory", []string{"1gb"}, "1073741824", []string{"1gb"}},
		{"octal 0700", "unixsocketperm", []string{"0700"}, "700", []string{"700"}},
		{"octal 770", "unixsocketperm", []string{"770"}, "770", []string{"770"}},
		{"save one line", "save", []string{"3600", "1", "300", "100"}, "300 100 3600 1", []string{"3600", "1", "300", "100"}},
		{"save several lines concatenated", "save", []string{"3600", "1", "300", "100", "60", "10000"}, "60 10000 300 100 3600 1",
			[]string{"3600", "1", "300", "100", "60", "10000"}},
		{"save disabled", "save", []string{""}, "", []string{""}},
		{"save reset then pairs", "save", []string{"900", "1", "", "3600", "1"}, "3600 1", []string{"3600", "1"}},
		{"save pairs then reset", "save", []string{"900", "1", ""}, "", []string{""}},
		{"cobl lines", "client-output-buffer-limit",
			[]string{"normal", "0", "0", "0", "replica", "256mb", "64mb", "60", "pubsub", "32mb", "8mb", "60"},
			"normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
			[]string{"normal", "0", "0", "0", "slave", "268435456", "67108864", "60", "pubsub", "33554432", "8388608", "60"}},
		{"cobl later line wins", "client-output-buffer-limit",
			[]string{"replica", "1mb", "1mb", "1", "replica", "2mb", "2mb", "2"},
			"normal 0 0 0 slave 2097152 2097152 2 pubsub 33554432 8388608 60",
			[]string{"normal", "0", "0", "0", "slave", "2097152", "2097152", "2", "pubsub", "33554432", "8388608", "60"}},
		{"bind", "bind", []string{"127.0.0.1", "-::1"}, "-::1 127.0.0.1", []string{"127.0.0.1", "-::1"}},
		{"flags", "shutdown-on-sigterm", []string{"force", "NOW"}, "now force", []string{"now", "force"}},
		{"percentiles empty", "latency-tracking-info-percentiles", []string{""}, "", []string{""}},
		{"replicaof", "replicaof", []string{"primary", "6379"}, "primary 6379", []string{"primary", "6379"}},
		{"string with spaces", "proc-title-template", []string{"{title} {listen-addr}"}, "{title} {listen-addr}", []string{"{title} {listen-addr}"}},
		{"kse", "notify-keyspace-events", []string{"Ex"}, "xE", []string{"xE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := mustLookup(t, tt.directive).FromFile(tt.args)
			require.NoError(t, err)
			assert.Equal(t, tt.canonical, v.Canonical)
			assert.Equal(t, tt.fileArgs, v.Args)
		})
	}

	errs := []struct {
		name, directive string
		args            []string
		want            string
	}{
		{"two args for scalar", "maxmemory", []string{"1", "gb"},
			`directive "maxmemory": 2 arguments on the line are not allowed; expected exactly one value`},
		{"no args for scalar", "hz", nil,
			`directive "hz": 0 arguments on the line are not allowed; expected exactly one value`},
		{"true is not a file boolean", "appendonly", []string{"true"},
			`directive "appendonly": "true" is not a boolean; expected yes or no (true/false and on/off are accepted too)`},
		{"0o prefix not read by server", "unixsocketperm", []string{"0o700"},
			`directive "unixsocketperm": "0o700" is not an octal permission; expected a quoted octal string such as '0700'`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mustLookup(t, tt.directive).FromFile(tt.args)
			assert.EqualError(t, err, tt.want)
		})
	}
}

// Desired, FromServer and FromFile must agree: for every directive, the
// canonical form of a value parses back to itself.
func TestCanonicalIsStable(t *testing.T) {
	samples := map[Kind]any{
		String: "x", Bool: "yes", Int: "1", Memory: "1048576", Octal: "700",
		KeyspaceEvents: "KEA",
	}
	for _, d := range All() {
		var in any
		switch {
		case d.Kind == Enum || d.Kind == Flags:
			in = d.Choices[len(d.Choices)-1]
		case d.Kind == List:
			in = map[special]any{
				specSave:                    "3600 1 300 100",
				specClientOutputBufferLimit: "replica 1gb 1gb 0",
				specBind:                    "127.0.0.1 ::1",
				specOOMScoreAdjValues:       "0 200 800",
				specReplicaOf:               "h 1",
				specPercentiles:             "50 99.9",
			}[d.spec]
		case d.Kind == Int && d.Min != nil:
			in = float64(*d.Min)
		case d.Name == "cluster-announce-client-ipv4":
			in = "10.0.0.1"
		case d.Name == "cluster-announce-client-ipv6":
			in = "::1"
		default:
			in = samples[d.Kind]
		}
		t.Run(d.Name, func(t *testing.T) {
			v, err := d.Desired(in)
			require.NoError(t, err)
			s, err := d.FromServer(v.Canonical)
			require.NoError(t, err)
			assert.Equal(t, v.Canonical, s.Canonical, "FromServer(Canonical)")
			f, err := d.FromFile(v.Args)
			require.NoError(t, err)
			assert.Equal(t, v.Canonical, f.Canonical, "FromFile(Args)")
			again, err := d.Desired(v.Set)
			require.NoError(t, err)
			assert.Equal(t, v.Canonical, again.Canonical, "Desired(Set)")
		})
	}
}

// YAML decoders hand integers over as uint64, int64 or int (goccy/go-yaml
// for the drift targets file): they are numbers like any other.
func TestDesiredAcceptsGoIntegerTypes(t *testing.T) {
	d, ok := Lookup("timeout")
	require.True(t, ok)
	for _, v := range []any{uint64(300), int64(300), 300, int32(300), float32(300)} {
		got, err := d.Desired(v)
		require.NoError(t, err, "%T", v)
		assert.Equal(t, "300", got.Canonical, "%T", v)
	}
	save, _ := Lookup("save")
	got, err := save.Desired([]any{uint64(3600), uint64(1)})
	require.NoError(t, err)
	assert.Equal(t, "3600 1", got.Canonical)
}
