// Package cluster is the valkey_cluster module: a Valkey Cluster declared
// as its nodes and replicas per primary. It creates the cluster from bare
// nodes (meet, slots, replicas on other hosts), grows it (a new node joins
// as a replica or as a primary that receives its share of slots), shrinks it
// (remove_unlisted: a node's slots moved away, then forgotten by every
// node), and otherwise leaves the cluster's own choices alone: after a
// failover the promoted replica stays primary. Slots are moved by Valkey's
// own cluster manager (valkey-cli --cluster rebalance), never by a second
// resharding engine.
package cluster

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/journal"
)

// Roles a node may start with (initial only: the cluster's choice stands
// after a failover).
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
)

// Defaults of the options.
const (
	DefaultReplicas    = 1
	DefaultPort        = 6379
	DefaultWaitTimeout = 60 // seconds
	// MinPrimaries is the fewest primaries a cluster is created with: fewer
	// cannot elect a replica after a primary fails (a majority of primaries
	// must agree).
	MinPrimaries = 3
	// MaxNodes bounds the nodes option (Valkey documents 1000 nodes as the
	// upper size of a cluster).
	MaxNodes = 1000
)

// NodeSpec is one node of the cluster.
type NodeSpec struct {
	// Host is the node's address as the module reaches it and the host it
	// counts as for placing replicas (a replica never goes on the host of
	// its primary). Required.
	Host string `json:"host"`
	// Port is the node's client port (the TLS port with tls: true; default
	// DefaultPort).
	Port int `json:"port" spec:"default=6379"`
	// InitialRole is primary or replica, for creating or joining only;
	// empty lets the module choose.
	InitialRole string `json:"initial_role" spec:"choices=primary|replica"`
}

// Address is "host:port".
func (n NodeSpec) Address() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.port())) }

func (n NodeSpec) port() int {
	if n.Port == 0 {
		return DefaultPort
	}
	return n.Port
}

// Options are valkey_cluster's options. The connection options (login_user,
// login_password, tls*) are used for every node; login_host, login_port and
// login_unix_socket are not used (nodes lists every node).
type Options struct {
	conn.Options
	// JournalOptions are the change journal's options.
	journal.JournalOptions
	// Nodes are every node of the cluster. Required.
	Nodes []NodeSpec `json:"nodes" spec:"required,item_required=host"`
	// Replicas per primary when creating and growing (default DefaultReplicas).
	Replicas *int `json:"replicas" spec:"default=1"`
	// RemoveUnlisted moves the slots off every cluster node not in Nodes and
	// makes every node forget it (default false: reported, not touched).
	RemoveUnlisted bool `json:"remove_unlisted" spec:"default=false"`
	// ResetRemoved resets (CLUSTER RESET SOFT) each removed node that still
	// answers once every staying node forgot it (default true, as valkey-cli
	// --cluster del-node does). False leaves it as it is, a forgotten node
	// that still redirects clients (MOVED) to the slots' owners until it is
	// stopped: for nodes the caller stops right after (a reset node that
	// still runs answers CLUSTERDOWN and a slot map with no slot, which a
	// client may take for the whole cluster until the node stops).
	ResetRemoved *bool `json:"reset_removed" spec:"default=true"`
	// WaitTimeout bounds each wait for the cluster to agree (seconds, default
	// DefaultWaitTimeout).
	WaitTimeout int `json:"wait_timeout" spec:"default=60"`
}

func (o *Options) replicas() int {
	if o.Replicas == nil {
		return DefaultReplicas
	}
	return *o.Replicas
}

func (o *Options) resetRemoved() bool { return o.ResetRemoved == nil || *o.ResetRemoved }

func (o *Options) waitTimeout() int {
	if o.WaitTimeout == 0 {
		return DefaultWaitTimeout
	}
	return o.WaitTimeout
}

// Validate checks the options without touching the network: each refusal
// is one sentence naming the option.
func (o *Options) Validate() error {
	if o.LoginUnixSocket != "" || o.LoginHost != "" || o.LoginPort != 0 {
		return errors.New("options \"login_host\", \"login_port\" and \"login_unix_socket\" are not used by valkey_cluster: list every node in \"nodes\"")
	}
	if err := o.Options.Validate(); err != nil {
		return err
	}
	if err := o.JournalOptions.Validate(); err != nil {
		return err
	}
	if len(o.Nodes) == 0 {
		return errors.New("option \"nodes\": the list is empty; expected every node of the cluster")
	}
	if len(o.Nodes) > MaxNodes {
		return fmt.Errorf("option \"nodes\": %d nodes, more than the %d a cluster supports", len(o.Nodes), MaxNodes)
	}
	if r := o.replicas(); r < 0 || r > 16 {
		return fmt.Errorf("option \"replicas\": %d is out of range; expected 0-16 replicas per primary", r)
	}
	if o.WaitTimeout < 0 || o.WaitTimeout > 86400 {
		return fmt.Errorf("option \"wait_timeout\": %d is out of range; expected 1-86400 seconds", o.WaitTimeout)
	}
	seen := map[string]int{}
	for i, n := range o.Nodes {
		if n.Host == "" || strings.ContainsAny(n.Host, " \t\r\n/@,") {
			return fmt.Errorf("option \"nodes[%d].host\": %q is not a host name or address", i, n.Host)
		}
		if n.Port < 0 || n.Port > 65535 {
			return fmt.Errorf("option \"nodes[%d].port\": %d is not a port; expected 1-65535", i, n.Port)
		}
		key := strings.ToLower(n.Address())
		if j, dup := seen[key]; dup {
			return fmt.Errorf("option \"nodes\": nodes[%d] and nodes[%d] are both %s; expected each node once", j, i, n.Address())
		}
		seen[key] = i
	}
	return nil
}
