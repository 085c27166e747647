package audit

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

// A policy with one rule every test server passes: the topology findings
// and drift are what these tests look at.
const quietPolicy = "version: 1\nrules:\n  - id: SITE-001\n    title: t\n    severity: low\n    remediation: r\n    check:\n      directive: hz\n      min: 1\n"

// fastSync: a primary starts a full sync at once (the default waits 5s
// for more replicas to share it).
const fastSync = "repl-diskless-sync-delay 0"

func auditTopology(t *testing.T, srv *testserver.Server, primaryPort int) (map[string]any, int) {
	t.Helper()
	out, doc, code := run(t, map[string]any{
		"login_port": srv.Port, "config_file": srv.ConfPath, "journal_path": filepath.Join(t.TempDir(), "j.jsonl"),
		"baseline": false, "policy": quietPolicy, "fail_on": []string{"drift", "high"},
		// The inventory's initial primary: the bootstrap intent, not a state to force back.
		"desired": map[string]any{"settings": map[string]any{"replicaof": fmt.Sprintf("127.0.0.1 %d", primaryPort)}},
	})
	require.NotContains(t, doc, "exception", out)
	return doc, code
}

func findingIDs(doc map[string]any) []string {
	var ids []string
	for _, f := range doc["findings"].([]any) {
		ids = append(ids, f.(map[string]any)["id"].(string))
	}
	return ids
}

// TestFailoverIsTopologyNotDrift: a replica moved to another primary by
// REPLICAOF + CONFIG REWRITE (what Sentinel does in a failover) passes the
// scheduled audit, with the move reported in the topology section.
func TestFailoverIsTopologyNotDrift(t *testing.T) {
	p1, p2 := testserver.Start(t, fastSync), testserver.Start(t, fastSync)
	replica := testserver.Start(t, fmt.Sprintf("replicaof 127.0.0.1 %d", p1.Port))
	p1.WriteAndWait(1)

	doc, code := auditTopology(t, replica, p1.Port)
	assert.Equal(t, 0, code, doc["msg"])
	assert.Equal(t, true, doc["passed"])
	want := map[string]any{"role": "replica", "primary": fmt.Sprintf("127.0.0.1:%d", p1.Port), "link_status": "up", "connected_replicas": float64(0),
		"replicaof": map[string]any{"runtime": fmt.Sprintf("127.0.0.1 %d", p1.Port), "file": fmt.Sprintf("127.0.0.1 %d", p1.Port)}}
	assert.Equal(t, want, doc["topology"])

	// The failover: the replica follows p2, and its file says so.
	replica.CLI("REPLICAOF", "NO", "ONE")
	replica.CLI("REPLICAOF", "127.0.0.1", strconv.Itoa(p2.Port))
	replica.CLI("CONFIG", "REWRITE")
	p2.WriteAndWait(1)
	require.Contains(t, string(replica.ReadConf()), fmt.Sprintf("replicaof 127.0.0.1 %d", p2.Port))
	doc, code = auditTopology(t, replica, p1.Port)
	assert.Equal(t, 0, code, doc["msg"])
	assert.Equal(t, true, doc["passed"], "no drift, no finding: %v", doc["msg"])
	assert.Empty(t, doc["drift"].(map[string]any)["settings"])
	topo := doc["topology"].(map[string]any)
	assert.Equal(t, fmt.Sprintf("127.0.0.1:%d", p2.Port), topo["primary"])
	assert.Equal(t, "up", topo["link_status"])
	assert.Equal(t, map[string]any{"runtime": fmt.Sprintf("127.0.0.1 %d", p2.Port), "file": fmt.Sprintf("127.0.0.1 %d", p2.Port)}, topo["replicaof"])

	// The primary's view: a primary with one replica, no replicaof anywhere.
	doc, code = auditTopology(t, p2, p1.Port)
	assert.Equal(t, 0, code, doc["msg"])
	assert.Equal(t, map[string]any{"role": "primary", "connected_replicas": float64(1), "replicaof": map[string]any{"runtime": "", "file": ""}}, doc["topology"])
}

// REPLICAOF without CONFIG REWRITE leaves a file that a restart would act
// on: a medium finding (VK-031), not drift; the scheduled audit passes.
// A replica whose link is down is a high finding (VK-030) and fails it.
func TestReplicaFindings(t *testing.T) {
	p1, p2 := testserver.Start(t, fastSync), testserver.Start(t, fastSync)
	replica := testserver.Start(t, fmt.Sprintf("replicaof 127.0.0.1 %d", p1.Port))
	p1.WriteAndWait(1)
	replica.CLI("REPLICAOF", "127.0.0.1", strconv.Itoa(p2.Port))
	p2.WriteAndWait(1)
	doc, code := auditTopology(t, replica, p1.Port)
	assert.Equal(t, 0, code, doc["msg"])
	assert.Equal(t, []string{"VK-031"}, findingIDs(doc))
	f := doc["findings"].([]any)[0].(map[string]any)
	assert.Equal(t, "medium", f["severity"])
	assert.Equal(t, fmt.Sprintf("the server replicates from 127.0.0.1 %d but its config file %s would start it as a replica of 127.0.0.1 %d", p2.Port, replica.ConfPath, p1.Port), f["message"])
	assert.Empty(t, doc["drift"].(map[string]any)["settings"])

	p2.Stop()
	replica.WaitLog("Connection with primary lost")
	doc, code = auditTopology(t, replica, p1.Port)
	assert.Equal(t, 1, code)
	assert.Equal(t, []string{"VK-030", "VK-031"}, findingIDs(doc))
	f = doc["findings"].([]any)[0].(map[string]any)
	assert.Equal(t, "high", f["severity"])
	assert.Equal(t, fmt.Sprintf("the replica's link to its primary 127.0.0.1:%d is down: it serves stale data and is no candidate for a failover", p2.Port), f["message"])
	assert.Contains(t, doc["msg"], "fails the audit (fail_on: drift, high): 1 finding at or above high")
}
