package directives_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/testserver"
)

// TestFileValuesAsTheServerReadsThem: for odd spellings of values in a config
// file, the engine (FromFile, as lint uses it) accepts exactly what lets a
// real valkey-server start.
func TestFileValuesAsTheServerReadsThem(t *testing.T) {
	lines := []string{
		"hz +5", "hz -0", "hz 007", "hz 0x10", "hz 5.0", "hz 1e2", "hz ''",
		"timeout 2147483648", "timeout -1",
		"maxmemory 1GB", "maxmemory 1.5gb", "maxmemory -1", "maxmemory +1", "maxmemory 1 gb", "maxmemory 1tb", "maxmemory 0b",
		"maxmemory-clients 10%", "maxmemory-clients 101%", "maxmemory-clients -5",
		"appendonly YES", "appendonly true", "appendonly 1",
		"appendfsync EVERYSEC", "loglevel Notice",
		"unixsocketperm 0777", "unixsocketperm 778", "unixsocketperm 1777",
		"save 3600", "save \"\"", "save 3600 1 300", "save -1 1",
		"bind 127.0.0.1 -::1", "io-threads 0",
		"notify-keyspace-events KEA", "notify-keyspace-events Q",
		"client-output-buffer-limit normal 0 0 0", "client-output-buffer-limit bogus 0 0 0",
		"oom-score-adj-values 0 200 800", "oom-score-adj-values 0 200",
		"replicaof no one", "replicaof 127.0.0.1 99999",
		"shutdown-on-sigterm save now", "shutdown-on-sigterm save nosave",
		"latency-tracking-info-percentiles 50 99.9", "latency-tracking-info-percentiles 101",
		"maxmemory 10%", "maxmemory-clients 0%", "maxmemory-clients 100%", "maxmemory-clients 1.5%",
		"unixsocketperm 0o777", "unixsocketperm ''", "port 65536", "tcp-keepalive -1",
		"bind ''", "notify-keyspace-events ''", "loglevel ''", "oom-score-adj relative", "oom-score-adj TRUE",
		"shutdown-on-sigint default save", "shutdown-on-sigint ''", "appendonly ''", "dbfilename ''",
		"dbfilename a/b.rdb", "appendfilename ../x.aof", "cluster-config-file ''", "proc-title-template '{nope}'",
		"cluster-announce-client-ipv4 1.2.3", "cluster-announce-hostname 'a b'", "cluster-announce-human-nodename 'a b'",
		"replica-announce-ip ''", "save '3600 1'", "client-output-buffer-limit 'normal 0 0 0'",
		"list-max-listpack-size -6", "hash-max-listpack-value 1kb", "hash-max-listpack-entries 1kb",
		"hz 9223372036854775808", "databases 0", "repl-backlog-size 0", "maxmemory-samples 65",
		"active-defrag-cycle-min 0", "syslog-facility LOCAL0", "supervised Auto",
		"ignore-warnings ARM64-COW-BUG", "bind-source-addr 1.2.3.4",
		"proc-title-template '{title} {listen-addr}'", "proc-title-template '{{x'", "proc-title-template '{title}'",
		"proc-title-template '{port'", "cluster-announce-client-ipv6 ::ffff:1.2.3.4", "cluster-announce-client-ipv4 01.2.3.4",
		"cluster-announce-client-ipv6 fe80::1%lo", "appenddirname a\\b",
		// Not checked: locale-collate depends on the locales of the host the
		// server runs on (setlocale), which lint does not see.
	}
	for _, line := range lines {
		t.Run(line, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "v.conf")
			if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := conffile.Load(path)
			engine := err == nil
			var why error = err
			if engine {
				o := cfg.All()[0]
				d, ok := directives.Lookup(o.Name)
				if !ok {
					t.Fatalf("%s: not in the table", o.Name)
				}
				_, why = d.FromFile(o.Args)
				engine = why == nil
			}
			srv, log := testserver.StartFile(t, path)
			if (srv != nil) != engine {
				t.Errorf("engine accepts=%v (%v), server started=%v\n%s", engine, why, srv != nil, fmt.Sprint(log))
			}
		})
	}
}
