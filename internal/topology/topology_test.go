package topology

import (
	"strconv"
	"strings"
	"testing"

	"github.com/valkeyops/secure/internal/directives"
)

// Replies as valkey-server 8.0 writes them (trimmed to the fields read).
const (
	primaryReplication = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n" +
		"slave0:ip=127.0.0.1,port=7001,state=online,offset=98,lag=0\r\n" +
		"slave1:ip=127.0.0.1,port=7002,state=wait_bgsave,offset=0,lag=1\r\n" +
		"master_failover_state:no-failover\r\nmaster_repl_offset:98\r\n"
	replicaReplication = "# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:6379\r\n" +
		"master_link_status:up\r\nmaster_last_io_seconds_ago:1\r\nmaster_sync_in_progress:0\r\n" +
		"slave_read_repl_offset:98\r\nslave_repl_offset:98\r\nconnected_slaves:0\r\nmaster_repl_offset:98\r\n"
	serverInfo = "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n" +
		"server_mode:standalone\r\nrun_id:9dfc83b1b4c6158c7db891240d758756b3047153\r\nconfig_file:/etc/valkey/valkey.conf\r\n"
	clusterInfo = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\n" +
		"cluster_slots_fail:0\r\ncluster_known_nodes:6\r\ncluster_size:3\r\ncluster_current_epoch:6\r\ncluster_my_epoch:2\r\n"
)

func TestParseReplication(t *testing.T) {
	p, err := ParseReplication(primaryReplication)
	if err != nil {
		t.Fatal(err)
	}
	if p.Role != RolePrimary || p.ConnectedReplicas != 2 || p.PrimaryReplOffset != 98 || len(p.Replicas) != 2 ||
		p.Replicas[1] != (Replica{IP: "127.0.0.1", Port: 7002, State: "wait_bgsave", Offset: 0, Lag: 1}) || p.ReplicaReplOffset != nil {
		t.Errorf("primary: %+v", p)
	}
	r, err := ParseReplication(replicaReplication)
	if err != nil {
		t.Fatal(err)
	}
	if r.Role != RoleReplica || r.PrimaryHost != "10.0.0.1" || r.PrimaryPort != 6379 || r.LinkStatus != "up" || r.SyncInProgress ||
		r.ReplicaReplOffset == nil || *r.ReplicaReplOffset != 98 {
		t.Errorf("replica: %+v", r)
	}
}

func TestParseServerPersistenceCluster(t *testing.T) {
	s, err := ParseServer(serverInfo)
	if err != nil {
		t.Fatal(err)
	}
	if *s != (Server{Name: "valkey", Version: "8.0.1", RunID: "9dfc83b1b4c6158c7db891240d758756b3047153", Mode: ModeStandalone, ConfigFile: "/etc/valkey/valkey.conf"}) {
		t.Errorf("server: %+v", s)
	}
	p, err := ParsePersistence("loading:1\nrdb_bgsave_in_progress:0\nrdb_last_bgsave_status:err\n")
	if err != nil || *p != (Persistence{Loading: true, LastBgsaveStatus: "err"}) {
		t.Errorf("persistence: %+v %v", p, err)
	}
	c, err := ParseClusterInfo(clusterInfo)
	if err != nil || *c != (ClusterInfo{State: "ok", SlotsAssigned: 16384, SlotsOK: 16384, KnownNodes: 6, Size: 3, MyEpoch: 2}) {
		t.Errorf("cluster: %+v %v", c, err)
	}
}

// Valkey 8.0 reports lag=-1 for a replica that acknowledged within the
// current second of its clock: read, not refused.
func TestParseReplicationLagMinusOne(t *testing.T) {
	p, err := ParseReplication("role:master\nmaster_repl_offset:5\nconnected_slaves:1\nslave0:ip=127.0.0.1,port=7001,state=online,offset=5,lag=-1\n")
	if err != nil || len(p.Replicas) != 1 || p.Replicas[0].Lag != -1 {
		t.Fatalf("%+v, %v", p, err)
	}
	if _, err := ParseReplication("role:master\nmaster_repl_offset:5\nconnected_slaves:1\nslave0:ip=127.0.0.1,port=7001,state=online,offset=5,lag=-2\n"); err == nil ||
		!strings.Contains(err.Error(), "lag= an integer from -1") {
		t.Fatalf("lag=-2: %v", err)
	}
}

// Each hostile or broken reply is refused with a sentence that names it.
func TestMalformedRepliesRefused(t *testing.T) {
	cases := []struct {
		name, text, want string
		parse            func(string) error
	}{
		{"no colon", "role:master\ngarbage\n", `INFO replication reply has a line 2 without "key:value": "garbage"`, repl},
		{"duplicate role", "role:slave\nrole:master\n", `gives the field "role" twice (line 2)`, repl},
		{"unknown role", "role:boss\nmaster_repl_offset:0\nconnected_slaves:0\n", `has role:"boss"; expected master or slave`, repl},
		{"negative offset", "role:master\nmaster_repl_offset:-5\nconnected_slaves:0\n", "expected an integer from 0 to", repl},
		{"too many replicas", "role:master\nmaster_repl_offset:0\nconnected_slaves:99999\n", "expected an integer from 0 to 1024", repl},
		{"replica port", "role:master\nmaster_repl_offset:0\nconnected_slaves:1\nslave0:ip=1.2.3.4,port=0,state=online,offset=1,lag=0\n", "port= a port from 1 to 65535", repl},
		{"replica ip injection", "role:master\nmaster_repl_offset:0\nconnected_slaves:1\nslave0:ip=a b,port=1,state=online,offset=1,lag=0\n", "ip= a host address", repl},
		{"replica field twice", "role:master\nmaster_repl_offset:0\nconnected_slaves:1\nslave0:ip=a,ip=b,port=1,state=online,offset=1,lag=0\n", "ip= once", repl},
		{"replica index huge", "role:master\nmaster_repl_offset:0\nconnected_slaves:1\nslave99999:ip=a,port=1,state=online,offset=1,lag=0\n", "at most 1024 replicas", repl},
		{"replica lacks link", "role:slave\nmaster_host:h\nmaster_port:1\nmaster_repl_offset:0\nconnected_slaves:0\n", `lacks the field "master_link_status"`, repl},
		{"primary host with space", "role:slave\nmaster_host:h x\nmaster_port:1\nmaster_repl_offset:0\nconnected_slaves:0\n", "master_host:\"h x\"; expected a host name or address", repl},
		{"control character", "role:master\x1b[2J\n", "control character 0x1b", repl},
		{"huge value", "role:" + strings.Repeat("m", MaxValueLen+1) + "\n", "more than the limit of 4096", repl},
		{"huge reply", strings.Repeat("x", MaxReplyBytes+1), "more than the limit of 1048576; refusing it", repl},
		{"too many lines", strings.Repeat("\n", MaxLines), "lines, more than the limit", repl},
		{"run_id", strings.Replace(serverInfo, "9dfc", "XXXX", 1), "run_id:\"XXXX", srv},
		{"mode", strings.Replace(serverInfo, "standalone", "solo", 1), `server_mode:"solo"; expected standalone, sentinel or cluster`, srv},
		{"version", strings.Replace(serverInfo, "8.0.1", "8.0.1-evil", 1), "expected a version like 8.0.1", srv},
		{"loading", "loading:2\nrdb_bgsave_in_progress:0\nrdb_last_bgsave_status:ok\n", "loading:\"2\"; expected an integer from 0 to 1", pers},
		{"cluster sums", strings.Replace(clusterInfo, "cluster_slots_ok:16384", "cluster_slots_ok:100", 1), "does not add up", clu},
		{"cluster slots", strings.Replace(clusterInfo, "cluster_slots_assigned:16384", "cluster_slots_assigned:99999", 1), "expected an integer from 0 to 16384", clu},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.parse(c.text)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("the message spans lines: %q", err)
			}
		})
	}
}

func repl(s string) error { _, err := ParseReplication(s); return err }
func srv(s string) error  { _, err := ParseServer(s); return err }
func pers(s string) error { _, err := ParsePersistence(s); return err }
func clu(s string) error  { _, err := ParseClusterInfo(s); return err }

func TestParseRole(t *testing.T) {
	r, err := ParseRole([]any{"master", int64(98), []any{[]any{"127.0.0.1", "7001", "98"}}})
	if err != nil || r.Role != RolePrimary || r.Offset != 98 || len(r.Replicas) != 1 || r.Replicas[0] != (AckedReplica{"127.0.0.1", 7001, 98}) {
		t.Errorf("primary: %+v %v", r, err)
	}
	r, err = ParseRole([]any{"slave", "10.0.0.1", int64(6379), "connected", int64(98)})
	if err != nil || r.Role != RoleReplica || r.PrimaryHost != "10.0.0.1" || r.PrimaryPort != 6379 || r.State != "connected" {
		t.Errorf("replica: %+v %v", r, err)
	}
	r, err = ParseRole([]any{"sentinel", []any{"mymaster"}})
	if err != nil || r.Role != RoleSentinel || len(r.Primaries) != 1 {
		t.Errorf("sentinel: %+v %v", r, err)
	}
	for name, bad := range map[string][]any{
		"empty":         {},
		"unknown":       {"boss"},
		"master short":  {"master", int64(1)},
		"bad port":      {"slave", "h", int64(70000), "connected", int64(1)},
		"string offset": {"master", "1", []any{}},
		"replica shape": {"master", int64(1), []any{[]any{"h", "x", "1"}}},
		"name space":    {"sentinel", []any{"my master"}},
		"not a list":    {"sentinel", "mymaster"},
	} {
		if _, err := ParseRole(bad); err == nil || !strings.HasPrefix(err.Error(), "the server's ROLE reply") {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestParseSentinel(t *testing.T) {
	m, err := ParseMonitor(map[string]string{"name": "mymaster", "ip": "10.0.0.1", "port": "6379", "flags": "master",
		"quorum": "2", "num-slaves": "2", "num-other-sentinels": "2", "runid": "x"})
	if err != nil || m.Name != "mymaster" || m.Primary != (Address{"10.0.0.1", 6379}) || m.Quorum != 2 || m.NumReplicas != 2 || !HasFlag(m.Flags, "master") {
		t.Errorf("monitor: %+v %v", m, err)
	}
	r, err := ParseSentinelReplica(map[string]string{"ip": "h", "port": "1", "flags": "slave,s_down", "master-link-status": "err", "slave-repl-offset": "5"})
	if err != nil || r.LinkStatus != "err" || r.Offset != 5 || !HasFlag(r.Flags, "s_down") {
		t.Errorf("replica: %+v %v", r, err)
	}
	if _, err := ParseSentinelInstance(map[string]string{"ip": "h", "port": "1", "flags": "sentinel", "runid": "nothex"}); err == nil ||
		!strings.Contains(err.Error(), "SENTINEL SENTINELS reply has runid") {
		t.Errorf("sentinel runid: %v", err)
	}
	if _, err := ParseMonitor(map[string]string{"name": "m", "ip": "h", "port": "1", "flags": "master,<script>", "quorum": "1", "num-slaves": "0", "num-other-sentinels": "0"}); err == nil {
		t.Error("a flag with markup was accepted")
	}
	if _, err := ParseMonitor(map[string]string{"name": "m\r\nx", "ip": "h"}); err == nil || !strings.Contains(err.Error(), "malformed field") {
		t.Errorf("control characters: %v", err)
	}
}

// Every per-node directive is one internal/directives knows: a typo here
// would silently compare (or fail) a directive across nodes.
func TestPerNodeDirectivesAreKnown(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range PerNodeByNature {
		d, ok := directives.Lookup(p.Directive)
		if !ok || d.Name != p.Directive {
			t.Errorf("%q is not a directive of internal/directives (by its table name)", p.Directive)
		}
		if seen[p.Directive] || p.Why == "" {
			t.Errorf("%q: listed twice or without a reason", p.Directive)
		}
		seen[p.Directive] = true
	}
	for _, mustAgree := range []string{"primaryauth", "primaryuser", "requirepass", "tls-ca-cert-file", "cluster-enabled", "tls-replication"} {
		if IsPerNode(mustAgree) {
			t.Errorf("%s must be equal on every node, yet is listed per node", mustAgree)
		}
	}
	if !IsTopology("replicaof") || IsTopology("bind") {
		t.Error("replicaof is the topology directive, bind is not")
	}
}

func FuzzParsers(f *testing.F) {
	for _, s := range []string{primaryReplication, replicaReplication, serverInfo, clusterInfo, "loading:0\n", "a:b\r\n#x\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, parse := range []func(string) error{repl, srv, pers, clu} {
			err := parse(text)
			if err != nil && (strings.ContainsAny(err.Error(), "\n\r") || len(err.Error()) > 400) {
				t.Fatalf("message not one bounded line: %q", err)
			}
		}
		if r, err := ParseReplication(text); err == nil {
			if len(r.Replicas) > MaxReplicas || (r.Role != RolePrimary && r.Role != RoleReplica) {
				t.Fatalf("accepted out of bounds: %+v", r)
			}
		}
	})
}

// FuzzSentinelAndRole: any Sentinel entry or ROLE reply is refused with one
// bounded line, or accepted within bounds.
func FuzzSentinelAndRole(f *testing.F) {
	f.Add("name\nmymaster\nip\n10.0.0.1\nport\n6379\nflags\nmaster\nquorum\n2\nnum-slaves\n2\nnum-other-sentinels\n1\nrunid\n" + strings.Repeat("a", 40) + "\nmaster-link-status\nok\nslave-repl-offset\n5")
	f.Add("ip\nh\nport\n1\nflags\nslave,s_down")
	f.Fuzz(func(t *testing.T, text string) {
		parts := strings.Split(text, "\n")
		m := map[string]string{}
		for i := 0; i+1 < len(parts); i += 2 {
			m[parts[i]] = parts[i+1]
		}
		one := func(err error) {
			if err != nil && (strings.ContainsAny(err.Error(), "\n\r") || len(err.Error()) > 400) {
				t.Fatalf("message not one bounded line: %q", err)
			}
		}
		mon, err := ParseMonitor(m)
		one(err)
		if err == nil && (mon.Primary.Port < 1 || mon.Primary.Port > 65535 || mon.Quorum < 1 || !isName(mon.Name)) {
			t.Fatalf("accepted out of bounds: %+v", mon)
		}
		_, err = ParseSentinelReplica(m)
		one(err)
		_, err = ParseSentinelInstance(m)
		one(err)
		reply := make([]any, 0, len(parts))
		for _, p := range parts {
			if n, err := strconv.ParseInt(p, 10, 64); err == nil {
				reply = append(reply, n)
			} else {
				reply = append(reply, p)
			}
		}
		_, err = ParseRole(reply)
		one(err)
	})
}
