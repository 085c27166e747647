package audit

import (
	"fmt"
	"net"
	"strconv"

	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/policy"
	"github.com/valkeyops/secure/internal/topology"
)

// Topology is where the server stands in its replication group. It is
// reported, never compared with a desired state: after a failover the
// server's and Sentinel's choice stands, so a replicaof line they rewrote
// (and the inventory's initial primary) is topology, not drift.
type Topology struct {
	Role string `json:"role"` // primary or replica
	// Primary is the replica's primary as host:port, LinkStatus its link
	// (up or down).
	Primary           string `json:"primary,omitempty"`
	LinkStatus        string `json:"link_status,omitempty"`
	ConnectedReplicas int    `json:"connected_replicas"`
	// ReplicaOf is the replicaof directive as the server runs it and as
	// the config file holds it ("" for no one; "(unknown)" when unread).
	ReplicaOf TopologySetting `json:"replicaof"`
}

// TopologySetting is a topology directive's running and file values.
type TopologySetting struct {
	Runtime string `json:"runtime"`
	File    string `json:"file"`
}

// Rule ids of the topology findings (VK-030..VK-034 are the topology's;
// VK-032..VK-034 are reserved).
const (
	ReplicaLinkDownID = "VK-030"
	ReplicaOfFileID   = "VK-031"
)

// CheckTopology reports the server's topology (nil when INFO replication
// was not read) and its findings: a replica whose link to its primary is
// down (VK-030), and a config file that would point the server elsewhere
// at its next start than where it replicates from now (VK-031).
func CheckTopology(g *Gathered) (*Topology, []policy.Finding) {
	r := g.Replication
	if r == nil {
		return nil, nil
	}
	t := &Topology{Role: r.Role, ConnectedReplicas: r.ConnectedReplicas, ReplicaOf: TopologySetting{Runtime: Unknown, File: Unknown}}
	var out []policy.Finding
	if r.Role == topology.RoleReplica {
		t.Primary, t.LinkStatus = net.JoinHostPort(r.PrimaryHost, strconv.Itoa(r.PrimaryPort)), r.LinkStatus
		if r.LinkStatus != "up" {
			out = append(out, policy.Finding{
				ID: ReplicaLinkDownID, Title: "A replica is linked to its primary", Severity: "high",
				Message: fmt.Sprintf("the replica's link to its primary %s is %s: it serves stale data and is no candidate for a failover", t.Primary, r.LinkStatus),
				Remediation: "Check that the primary is up and reachable from the replica and that primaryuser/primaryauth name a user of the primary " +
					"with +psync +replconf +ping; the replica's log says why the link failed.",
			})
		}
	}
	d, _ := directives.Lookup("replicaof")
	runtime, file := "", ""
	known := 0
	if v, ok := g.Facts.Runtime[d.Name]; ok {
		if val, err := d.FromServer(v); err == nil {
			runtime, t.ReplicaOf.Runtime = val.Canonical, val.Canonical
			known++
		}
	}
	if g.Facts.Config != nil {
		v, in, err := fileValue(g.Facts, d)
		switch {
		case err != nil:
		case !in:
			t.ReplicaOf.File = "" // no line: a primary at the next start
			known++
		default:
			file, t.ReplicaOf.File = v.Canonical, v.Canonical
			known++
		}
	}
	// A cluster node's replication is the cluster's (CLUSTER REPLICATE,
	// kept in nodes.conf), never a replicaof line: nothing to compare.
	if known == 2 && runtime != file && g.Facts.Runtime["cluster-enabled"] != "yes" {
		now, next := "is a primary", "a primary"
		if runtime != "" {
			now = "replicates from " + runtime
		}
		if file != "" {
			next = "a replica of " + file
		}
		out = append(out, policy.Finding{
			ID: ReplicaOfFileID, Title: "The config file holds the running replication", Severity: "medium",
			Message: fmt.Sprintf("the server %s but its config file %s would start it as %s", now, g.Facts.Config.Path, next),
			Remediation: "Run CONFIG REWRITE on the server (Sentinel does after a failover; REPLICAOF alone does not), " +
				"so that a restart keeps the topology the group chose.",
		})
	}
	return t, out
}
