package directives

import "math"

// The table below follows the config table of Valkey's src/config.c (kinds,
// IMMUTABLE/PROTECTED/SENSITIVE/MULTI_ARG, MEMORY/PERCENT/OCTAL flags, bounds,
// choices and aliases). facts_test.go checks it against the facts files read
// from config.c of each release we hold (facts/valkey-*.json), and
// facts_live_test.go checks those against a running server. Directives,
// names and choices newer than 7.2 carry the release that introduced them
// (since, nameSince, newChoice); those of 8.1 and 9.0 are from the release
// notes, as no facts are held for them yet.

type opt func(*Directive)

func immutable(d *Directive) { d.Immutable = true }
func protected(d *Directive) { d.Protected = true }
func secret(d *Directive)    { d.Secret = true }
func percent(d *Directive)   { d.PercentOK = true }
func accum(d *Directive)     { d.Accumulates = true }

func alias(names ...string) opt {
	return func(d *Directive) { d.Aliases = append(d.Aliases, names...) }
}
func choices(c ...string) opt { return func(d *Directive) { d.Choices = c } }
func spec(s special) opt      { return func(d *Directive) { d.spec = s } }
func enumAlias(from, to string) opt {
	return func(d *Directive) {
		if d.enumAlias == nil {
			d.enumAlias = map[string]string{}
		}
		d.enumAlias[from] = to
	}
}

// since marks a directive introduced after Valkey 7.2.
func since(major, minor int) opt {
	return func(d *Directive) { d.since = Version{major, minor, 0} }
}

// nameSince marks one name (the canonical one or an alias) as introduced
// after the directive itself: Valkey 8.0 renamed masterauth to primaryauth and
// kept the old name as an alias.
func nameSince(name string, major, minor int) opt {
	return func(d *Directive) {
		if d.nameSince == nil {
			d.nameSince = map[string]Version{}
		}
		d.nameSince[name] = Version{major, minor, 0}
	}
}

// newChoice adds an Enum/Flags choice introduced after the directive itself.
func newChoice(c string, major, minor int) opt {
	return func(d *Directive) {
		d.Choices = append(d.Choices, c)
		if d.choiceSince == nil {
			d.choiceSince = map[string]Version{}
		}
		d.choiceSince[c] = Version{major, minor, 0}
	}
}

// path marks a file or directory name: at most pathMax bytes, as the
// server's open() takes (a longer logfile stops the server at start).
func path(d *Directive) { d.MaxLen = pathMax }

// valid adds the server's check of a string value (check.go).
func valid(f func(string) string) opt { return func(d *Directive) { d.check = f } }

// maxLen bounds a string value (unixsocket: the size of sun_path less its NUL).
func maxLen(n int) opt { return func(d *Directive) { d.MaxLen = n } }

const (
	pathMax = 4095 // PATH_MAX less the terminating NUL
	sunPath = 107  // sizeof(struct sockaddr_un.sun_path) less the terminating NUL
)

func i64(v int64) *int64 { return &v }

func bounds(lo, hi int64) opt {
	return func(d *Directive) { d.Min, d.Max = i64(lo), i64(hi) }
}
func atLeast(lo int64) opt { return func(d *Directive) { d.Min = i64(lo) } }

const (
	intMax  = math.MaxInt32
	intMin  = math.MinInt32
	uintMax = math.MaxUint32
	longMax = math.MaxInt64
)

func def(name string, k Kind, opts ...opt) *Directive {
	d := &Directive{Name: name, Kind: k}
	for _, o := range opts {
		o(d)
	}
	return d
}

var (
	protectedAction = []string{"no", "yes", "local"}
	shutdownFlags   = []string{"default", "save", "nosave", "now", "force"}
)

var table = []*Directive{
	// ---- Bool ----
	def("rdbchecksum", Bool, immutable),
	def("daemonize", Bool, immutable),
	def("io-threads-do-reads", Bool, immutable), // deprecated and ignored from Valkey 8.1
	def("always-show-logo", Bool, immutable),
	def("protected-mode", Bool),
	def("rdbcompression", Bool),
	def("rdb-del-sync-files", Bool),
	def("activerehashing", Bool),
	def("stop-writes-on-bgsave-error", Bool),
	def("set-proc-title", Bool, immutable),
	def("dynamic-hz", Bool),
	def("lazyfree-lazy-eviction", Bool),
	def("lazyfree-lazy-expire", Bool),
	def("lazyfree-lazy-server-del", Bool),
	def("lazyfree-lazy-user-del", Bool),
	def("lazyfree-lazy-user-flush", Bool),
	def("repl-disable-tcp-nodelay", Bool),
	def("repl-diskless-sync", Bool),
	def("dual-channel-replication-enabled", Bool, since(8, 0)),
	def("aof-rewrite-incremental-fsync", Bool),
	def("no-appendfsync-on-rewrite", Bool),
	def("cluster-require-full-coverage", Bool),
	def("rdb-save-incremental-fsync", Bool),
	def("aof-load-truncated", Bool),
	def("aof-use-rdb-preamble", Bool),
	def("aof-timestamp-enabled", Bool),
	def("cluster-replica-no-failover", Bool, alias("cluster-slave-no-failover")),
	def("replica-lazy-flush", Bool, alias("slave-lazy-flush")),
	def("replica-serve-stale-data", Bool, alias("slave-serve-stale-data")),
	def("replica-read-only", Bool, alias("slave-read-only")),
	def("replica-ignore-maxmemory", Bool, alias("slave-ignore-maxmemory")),
	def("jemalloc-bg-thread", Bool),
	def("activedefrag", Bool),
	def("syslog-enabled", Bool, immutable),
	def("cluster-enabled", Bool, immutable),
	def("appendonly", Bool),
	def("cluster-allow-reads-when-down", Bool),
	def("cluster-allow-pubsubshard-when-down", Bool),
	def("crash-log-enabled", Bool),
	def("crash-memcheck-enabled", Bool),
	def("disable-thp", Bool, immutable),
	def("cluster-allow-replica-migration", Bool),
	def("replica-announced", Bool),
	def("latency-tracking", Bool),
	def("replica-ignore-disk-write-errors", Bool),
	def("extended-redis-compatibility", Bool, since(8, 0)),
	def("cluster-slot-stats-enabled", Bool, since(8, 0)),
	def("hide-user-data-from-log", Bool, since(8, 0)),
	def("import-mode", Bool, since(8, 1)),
	def("auto-failover-on-shutdown", Bool, since(9, 0)),
	def("tls-cluster", Bool),
	def("tls-replication", Bool),
	def("tls-prefer-server-ciphers", Bool),
	def("tls-session-caching", Bool),

	// ---- String ----
	def("aclfile", String, immutable, path),
	def("unixsocket", String, immutable, maxLen(sunPath)),
	def("unixsocketgroup", String, immutable, since(8, 0)),
	def("pidfile", String, immutable, path),
	def("replica-announce-ip", String, alias("slave-announce-ip")),
	def("primaryuser", String, alias("masteruser"), secret, nameSince("primaryuser", 8, 0)),
	def("cluster-announce-ip", String),
	def("cluster-announce-client-ipv4", String, since(8, 0), valid(ipAddr(false))),
	def("cluster-announce-client-ipv6", String, since(8, 0), valid(ipAddr(true))),
	def("cluster-config-file", String, immutable, path, valid(notEmpty("cluster-config-file"))),
	def("cluster-announce-hostname", String, valid(hostname)),
	def("cluster-announce-human-nodename", String, valid(auxString)),
	def("syslog-ident", String, immutable),
	def("dbfilename", String, protected, path, valid(baseName("dbfilename"))),
	def("appendfilename", String, immutable, path, valid(baseName("appendfilename"))),
	def("appenddirname", String, immutable, path, valid(baseName("appenddirname"))),
	def("server-cpulist", String, alias("server_cpulist"), immutable, nameSince("server-cpulist", 8, 0)),
	def("bio-cpulist", String, alias("bio_cpulist"), immutable, nameSince("bio-cpulist", 8, 0)),
	def("aof-rewrite-cpulist", String, alias("aof_rewrite_cpulist"), immutable, nameSince("aof-rewrite-cpulist", 8, 0)),
	def("bgsave-cpulist", String, alias("bgsave_cpulist"), immutable, nameSince("bgsave-cpulist", 8, 0)),
	def("ignore-warnings", String),
	def("proc-title-template", String, valid(procTitle)),
	def("bind-source-addr", String),
	def("logfile", String, immutable, path),
	def("locale-collate", String),
	def("primaryauth", String, alias("masterauth"), secret, nameSince("primaryauth", 8, 0)),
	def("requirepass", String, secret),
	def("availability-zone", String, since(8, 0)),
	def("tls-cert-file", String, path),
	def("tls-key-file", String, path),
	def("tls-key-file-pass", String, secret),
	def("tls-client-cert-file", String, path),
	def("tls-client-key-file", String, path),
	def("tls-client-key-file-pass", String, secret),
	def("tls-dh-params-file", String, path),
	def("tls-ca-cert-file", String, path),
	def("tls-ca-cert-dir", String, path),
	// tls-protocols, tls-ciphers and tls-ciphersuites are single string
	// arguments for the server (not MULTI_ARG): "TLSv1.2 TLSv1.3" must stay
	// one quoted argument in the file.
	def("tls-protocols", String),
	def("tls-ciphers", String),
	def("tls-ciphersuites", String),
	def("dir", String, protected, spec(specDir), path),

	// ---- Enum ----
	def("supervised", Enum, immutable, choices("upstart", "systemd", "auto", "no")),
	def("syslog-facility", Enum, immutable, choices("user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7")),
	def("repl-diskless-load", Enum, choices("disabled", "on-empty-db", "swapdb"), newChoice("flush-before-load", 9, 0)),
	def("loglevel", Enum, choices("debug", "verbose", "notice", "warning", "nothing")),
	def("maxmemory-policy", Enum, choices("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
		"allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction")),
	def("appendfsync", Enum, choices("everysec", "always", "no")),
	def("oom-score-adj", Enum, choices("no", "yes", "relative", "absolute"), enumAlias("relative", "yes")),
	def("acl-pubsub-default", Enum, choices("allchannels", "resetchannels")),
	def("sanitize-dump-payload", Enum, choices("no", "yes", "clients")),
	def("enable-protected-configs", Enum, immutable, choices(protectedAction...)),
	def("enable-debug-command", Enum, immutable, choices(protectedAction...)),
	def("enable-module-command", Enum, immutable, choices(protectedAction...)),
	def("cluster-preferred-endpoint-type", Enum, choices("ip", "hostname", "unknown-endpoint")),
	def("propagation-error-behavior", Enum, choices("ignore", "panic", "panic-on-replicas")),
	def("tls-auth-clients", Enum, choices("no", "yes", "optional")),
	def("log-format", Enum, choices("legacy", "logfmt"), since(8, 1)),
	def("log-timestamp-format", Enum, choices("legacy", "iso8601", "milliseconds"), since(8, 1)),
	def("rdb-version-check", Enum, choices("strict", "relaxed"), since(9, 0)),
	def("shutdown-on-sigint", Flags, choices(shutdownFlags...)),
	def("shutdown-on-sigterm", Flags, choices(shutdownFlags...)),

	// ---- Int ----
	def("databases", Int, immutable, bounds(1, intMax)),
	def("port", Int, bounds(0, 65535)),
	def("io-threads", Int, immutable, bounds(1, 128)), // IO_THREADS_MAX_NUM
	def("events-per-io-thread", Int, bounds(0, intMax), since(8, 0)),
	def("prefetch-batch-max-size", Int, bounds(0, 128), since(8, 0)),
	def("auto-aof-rewrite-percentage", Int, bounds(0, intMax)),
	def("cluster-replica-validity-factor", Int, alias("cluster-slave-validity-factor"), bounds(0, intMax)),
	def("list-max-listpack-size", Int, alias("list-max-ziplist-size"), bounds(intMin, intMax)),
	def("tcp-keepalive", Int, bounds(0, intMax)),
	def("cluster-migration-barrier", Int, bounds(0, intMax)),
	def("active-defrag-cycle-min", Int, bounds(1, 99)),
	def("active-defrag-cycle-max", Int, bounds(1, 99)),
	def("active-defrag-threshold-lower", Int, bounds(0, 1000)),
	def("active-defrag-threshold-upper", Int, bounds(0, 1000)),
	def("active-defrag-cycle-us", Int, bounds(0, 100000), since(8, 1)),
	def("lfu-log-factor", Int, bounds(0, intMax)),
	def("lfu-decay-time", Int, bounds(0, intMax)),
	def("replica-priority", Int, alias("slave-priority"), bounds(0, intMax)),
	def("repl-diskless-sync-delay", Int, bounds(0, intMax)),
	def("maxmemory-samples", Int, bounds(1, 64)),
	def("maxmemory-eviction-tenacity", Int, bounds(0, 100)),
	def("timeout", Int, bounds(0, intMax)),
	def("replica-announce-port", Int, alias("slave-announce-port"), bounds(0, 65535)),
	def("tcp-backlog", Int, immutable, bounds(0, intMax)),
	def("cluster-port", Int, immutable, bounds(0, 65535)),
	def("cluster-announce-bus-port", Int, bounds(0, 65535)),
	def("cluster-announce-port", Int, bounds(0, 65535)),
	def("cluster-announce-tls-port", Int, bounds(0, 65535)),
	def("repl-timeout", Int, bounds(1, intMax)),
	def("repl-ping-replica-period", Int, alias("repl-ping-slave-period"), bounds(1, intMax)),
	def("list-compress-depth", Int, bounds(0, intMax)),
	def("active-expire-effort", Int, bounds(1, 10)),
	def("hz", Int, bounds(0, intMax)),
	def("min-replicas-to-write", Int, alias("min-slaves-to-write"), bounds(0, intMax)),
	def("min-replicas-max-lag", Int, alias("min-slaves-max-lag"), bounds(0, intMax)),
	def("shutdown-timeout", Int, bounds(0, intMax)),
	def("repl-diskless-sync-max-replicas", Int, bounds(0, intMax)),
	def("maxclients", Int, bounds(1, uintMax)),
	def("socket-mark-id", Int, immutable, bounds(0, uintMax)),
	def("max-new-connections-per-cycle", Int, bounds(1, 1000), since(8, 0)),
	def("max-new-tls-connections-per-cycle", Int, bounds(1, 1000), since(8, 0)),
	def("active-defrag-max-scan-fields", Int, bounds(1, longMax)),
	// Valkey 8.1 renamed the slow log to "commandlog"; the old names stay as aliases there.
	def("slowlog-max-len", Int, alias("commandlog-slow-execution-max-len"), nameSince("commandlog-slow-execution-max-len", 8, 1), bounds(0, longMax)),
	def("slowlog-log-slower-than", Int, alias("commandlog-execution-slower-than"), nameSince("commandlog-execution-slower-than", 8, 1), bounds(-1, longMax)),
	def("commandlog-large-request-max-len", Int, bounds(0, longMax), since(8, 1)),
	def("commandlog-large-reply-max-len", Int, bounds(0, longMax), since(8, 1)),
	def("commandlog-request-larger-than", Int, bounds(-1, longMax), since(8, 1)),
	def("commandlog-reply-larger-than", Int, bounds(-1, longMax), since(8, 1)),
	def("acllog-max-len", Int, bounds(0, longMax)),
	def("cluster-blacklist-ttl", Int, atLeast(0), since(8, 0)),
	def("busy-reply-threshold", Int, alias("lua-time-limit"), bounds(0, longMax)),
	def("cluster-node-timeout", Int, bounds(0, longMax)),
	def("cluster-manual-failover-timeout", Int, bounds(1, intMax), since(8, 1)),
	def("latency-monitor-threshold", Int, bounds(0, longMax)),
	def("stream-node-max-entries", Int, bounds(0, longMax)),
	def("hash-max-listpack-entries", Int, alias("hash-max-ziplist-entries"), bounds(0, longMax)),
	def("set-max-intset-entries", Int, bounds(0, longMax)),
	def("set-max-listpack-entries", Int, bounds(0, longMax)),
	def("set-max-listpack-value", Int, bounds(0, longMax)),
	def("zset-max-listpack-entries", Int, alias("zset-max-ziplist-entries"), bounds(0, longMax)),
	def("tracking-table-max-keys", Int, bounds(0, longMax)),
	def("repl-backlog-ttl", Int, bounds(0, longMax)),
	def("tls-port", Int, bounds(0, 65535)),
	def("tls-session-cache-size", Int, bounds(0, intMax)),
	def("tls-session-cache-timeout", Int, bounds(0, intMax)),
	def("rdma-port", Int, bounds(0, 65535), since(8, 1)),                            // RDMA builds only
	def("rdma-rx-size", Int, immutable, bounds(64*1024, 16*1024*1024), since(8, 1)), // RDMA builds only
	def("rdma-completion-vector", Int, immutable, bounds(-1, 1024), since(8, 1)),    // RDMA builds only
	def("unixsocketperm", Octal, immutable, bounds(0, 0o777)),

	// ---- Memory ----
	def("proto-max-bulk-len", Memory, bounds(1024*1024, longMax)),
	def("repl-backlog-size", Memory, bounds(1, longMax)),
	def("maxmemory", Memory, atLeast(0)),
	def("cluster-link-sendbuf-limit", Memory, atLeast(0)),
	def("active-defrag-ignore-bytes", Memory, bounds(1, longMax)),
	def("hash-max-listpack-value", Memory, alias("hash-max-ziplist-value"), bounds(0, longMax)),
	def("stream-node-max-bytes", Memory, bounds(0, longMax)),
	def("zset-max-listpack-value", Memory, alias("zset-max-ziplist-value"), bounds(0, longMax)),
	def("hll-sparse-max-bytes", Memory, bounds(0, longMax)),
	def("client-query-buffer-limit", Memory, bounds(1024*1024, longMax)),
	def("maxmemory-clients", Memory, percent, bounds(0, longMax)),
	def("auto-aof-rewrite-min-size", Memory, bounds(0, longMax)),

	// ---- Special ----
	def("save", List, accum, spec(specSave)),
	def("client-output-buffer-limit", List, accum, spec(specClientOutputBufferLimit)),
	def("oom-score-adj-values", List, spec(specOOMScoreAdjValues)),
	def("notify-keyspace-events", KeyspaceEvents),
	def("bind", List, spec(specBind)),
	def("rdma-bind", List, spec(specBind), since(8, 1)), // RDMA builds only
	def("replicaof", List, alias("slaveof"), immutable, spec(specReplicaOf)),
	def("latency-tracking-info-percentiles", List, spec(specPercentiles)),
}
