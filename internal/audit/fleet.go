package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/topology"
)

// Fleet is what the run's report compares across the nodes of one group
// (the cross-node rule, VK-090): the group the node belongs to, its
// settings but those per node by nature (topology.PerNodeByNature), its ACL
// users and its CA's expiry. Secrets and ACL users are keyed digests
// (HMAC-SHA256 under the run's compare key, which is never in the result):
// the report can say "differs", and nobody can test a guessed password
// against them once the run is over.
type Fleet struct {
	// Group identifies the group: "replication REPLID" (the replication id
	// its primary and replicas share), "cluster ID" (the lowest node id the
	// node knows), "sentinel NAMES" (the monitors a Sentinel watches).
	Group string `json:"group"`
	// Settings: directive -> value; a secret's value is "digest:HEX" (or ""
	// when empty).
	Settings map[string]string `json:"settings"`
	// Users: name -> digest of its rules and of its passwords.
	Users map[string]FleetUser `json:"users"`
	// CA is the CA certificate's subject and expiry (tls-ca-cert-file).
	CA string `json:"ca,omitempty"`
}

// FleetUser is an ACL user's keyed digests.
type FleetUser struct {
	Rules     string `json:"rules"`
	Passwords string `json:"passwords"`
}

// DigestPrefix marks a keyed digest in Fleet.Settings.
const DigestPrefix = "digest:"

// FleetOf builds what the report compares for the gathered node, or nil
// without a compare key (secrets could not be compared safely) or a group.
func FleetOf(g *Gathered, key string) *Fleet {
	if key == "" {
		return nil
	}
	group := fleetGroup(g)
	if group == "" {
		return nil
	}
	digest := func(s string) string {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(s))
		return hex.EncodeToString(m.Sum(nil))[:32]
	}
	fl := &Fleet{Group: group, Settings: map[string]string{}, Users: map[string]FleetUser{}}
	values := g.Facts.Runtime
	if s := g.Facts.Sentinel; s != nil {
		values = s.Config
	}
	for name, v := range values {
		if topology.IsPerNode(name) || fleetPerNode[name] {
			continue
		}
		d, ok := directives.Lookup(name)
		if ok && d.Name != name {
			continue // an alias (masterauth): compared under its name
		}
		if ok && d.Secret {
			if v != "" {
				v = DigestPrefix + digest(v)
			}
		}
		fl.Settings[name] = v
	}
	if g.Facts.Sentinel != nil && g.sentinelPass != "" {
		fl.Settings["sentinel-pass"] = DigestPrefix + digest(g.sentinelPass)
	}
	for name, line := range g.aclLines {
		rules, hashes := splitHashes(line)
		fl.Users[name] = FleetUser{Rules: digest(rules), Passwords: digest(hashes)}
	}
	if ca := g.CA; ca != nil {
		if ca.Err != "" {
			fl.CA = "unreadable: " + ca.Err
		} else {
			fl.CA = ca.Subject + " until " + ca.NotAfter.UTC().Format(time.RFC3339)
		}
	}
	return fl
}

// fleetPerNode are settings besides topology.PerNodeByNature that differ
// between healthy nodes of a group for reasons of their own: a Sentinel's
// announced address and port (each its own), and where several instances
// share a host, each one's cluster bus port and the paths of its aclfile and
// CA (the users in it are compared as users, the CA as its subject and
// expiry).
var fleetPerNode = map[string]bool{"announce-ip": true, "announce-port": true, "cluster-port": true, "aclfile": true,
	"tls-ca-cert-file": true, "tls-ca-cert-dir": true}

func fleetGroup(g *Gathered) string {
	f := g.Facts
	switch {
	case f.Sentinel != nil:
		var names []string
		for _, m := range f.Sentinel.Monitors {
			names = append(names, m.Name)
		}
		if len(names) == 0 {
			return ""
		}
		sort.Strings(names)
		return "sentinel " + strings.Join(names, ",")
	case f.Cluster != nil && len(f.Cluster.View.Nodes) > 0:
		low := f.Cluster.View.Nodes[0].ID
		for _, n := range f.Cluster.View.Nodes {
			if n.ID < low {
				low = n.ID
			}
		}
		return "cluster " + low
	case g.ReplID != "" && g.Replication != nil && (g.Replication.Role == topology.RoleReplica || g.Replication.ConnectedReplicas > 0):
		return "replication " + g.ReplID
	}
	return ""
}

// splitHashes takes an ACL LIST line apart: the rules without the password
// hashes (#HEX words), and the hashes, sorted.
func splitHashes(line string) (string, string) {
	var rules, hashes []string
	for _, w := range strings.Fields(line) {
		if strings.HasPrefix(w, "#") {
			hashes = append(hashes, w)
			continue
		}
		rules = append(rules, w)
	}
	sort.Strings(hashes)
	return strings.Join(rules, " "), strings.Join(hashes, " ")
}
