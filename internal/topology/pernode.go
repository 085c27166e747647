package topology

// PerNode is a directive whose value is per node by nature: two healthy
// nodes of one replication group or cluster hold different values, so it
// is never compared across nodes (the audit's cross-node rule skips it)
// and a value the server itself rewrote (replicaof after a failover) is
// topology, not drift.
type PerNode struct {
	// Directive is the name as internal/directives knows it.
	Directive string `json:"directive"`
	// Why it differs between nodes.
	Why string `json:"why"`
	// Topology: the server or Sentinel rewrites it at runtime (a failover,
	// REPLICAOF + CONFIG REWRITE); the audit reports it in the topology
	// section, never as drift.
	Topology bool `json:"topology,omitempty"`
}

// PerNodeByNature is the one list (the issue's "write that list down
// once"). `valkeyops spec` prints it as per_node_directives for the Python
// side. Deliberately NOT in it, because every node must agree on them:
// primaryauth/primaryuser (a promoted replica is reached with the same
// credentials), requirepass and ACL users (Valkey does not replicate
// them), tls-ca-cert-file/dir (one CA per group, so every peer verifies
// every other), tls-replication/tls-cluster, and cluster-enabled.
var PerNodeByNature = []PerNode{
	{"replicaof", "the replication role: set at bootstrap, then owned by the server and Sentinel (a failover rewrites it)", true},
	{"bind", "each node listens on its own addresses", false},
	{"bind-source-addr", "each node connects out from its own address", false},
	{"port", "differs when several instances share a host", false},
	{"tls-port", "differs when several instances share a host", false},
	{"unixsocket", "one socket per instance", false},
	{"pidfile", "one pid file per instance", false},
	{"logfile", "one log per instance", false},
	{"syslog-ident", "names the instance in the host's log", false},
	{"dir", "one data directory per instance", false},
	{"cluster-config-file", "the node's own cluster state file (written by the server)", false},
	{"cluster-announce-ip", "the node's own address as its peers reach it", false},
	{"cluster-announce-port", "the node's own port as its peers reach it", false},
	{"cluster-announce-tls-port", "the node's own TLS port as its peers reach it", false},
	{"cluster-announce-bus-port", "the node's own bus port as its peers reach it", false},
	{"cluster-announce-hostname", "the node's own host name", false},
	{"cluster-announce-human-nodename", "the node's own display name", false},
	{"replica-announce-ip", "the replica's own address as the primary and Sentinel see it", false},
	{"replica-announce-port", "the replica's own port as the primary and Sentinel see it", false},
	{"replica-priority", "a per-node choice: 0 keeps a node (a DR site) from ever being promoted", false},
	{"tls-cert-file", "each node's leaf certificate carries its own names (same path, different content)", false},
	{"tls-key-file", "each node's own private key", false},
	{"tls-key-file-pass", "the passphrase of that node's own key", false},
	{"tls-client-cert-file", "each node's own client certificate toward its peers", false},
	{"tls-client-key-file", "each node's own client key", false},
	{"tls-client-key-file-pass", "the passphrase of that node's own client key", false},
}

// IsPerNode says whether a directive (by its table name) is per node by nature.
func IsPerNode(name string) bool {
	_, ok := perNode[name]
	return ok
}

// IsTopology says whether a directive is rewritten by the server or
// Sentinel as part of the topology (replicaof).
func IsTopology(name string) bool {
	return perNode[name].Topology
}

var perNode = func() map[string]PerNode {
	m := make(map[string]PerNode, len(PerNodeByNature))
	for _, p := range PerNodeByNature {
		m[p.Directive] = p
	}
	return m
}()
