package topology

import (
	"fmt"
	"testing"

	"github.com/valkeyops/secure/internal/testserver"
)

// The strict parsers accept everything a real server writes: every section
// of INFO (not only the ones read) on a primary, a replica during and after
// its sync, and a cluster node, and CLUSTER INFO.
func TestRealRepliesParse(t *testing.T) {
	primary := testserver.Start(t, "repl-diskless-sync-delay 0")
	replica := testserver.Start(t, fmt.Sprintf("replicaof 127.0.0.1 %d", primary.Port))
	node := testserver.Start(t, "cluster-enabled yes", "cluster-config-file nodes.conf")
	check := func(what string, s *testserver.Server) {
		if _, err := ParseFields("INFO everything", s.CLI("INFO", "everything")); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if _, err := ParseReplication(s.CLI("INFO", "replication")); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if _, err := ParseServer(s.CLI("INFO", "server")); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if _, err := ParsePersistence(s.CLI("INFO", "persistence")); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	check("replica (syncing or not)", replica)
	primary.WriteAndWait(1)
	check("primary", primary)
	check("replica", replica)
	check("cluster node", node)
	if c, err := ParseClusterInfo(node.CLI("CLUSTER", "INFO")); err != nil || c.KnownNodes != 1 {
		t.Errorf("CLUSTER INFO: %+v %v", c, err)
	}
}
