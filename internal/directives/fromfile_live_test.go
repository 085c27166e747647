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
