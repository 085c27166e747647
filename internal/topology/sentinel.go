package topology

import (
	"fmt"
	"strings"
)

// Monitor is one primary a Sentinel watches (SENTINEL PRIMARIES), with the
// replicas and other Sentinels it knows for it.
type Monitor struct {
	Name              string             `json:"name"`
	Primary           Address            `json:"primary"`
	Quorum            int                `json:"quorum"`
	Flags             []string           `json:"flags"`
	NumReplicas       int                `json:"num_replicas"`
	NumOtherSentinels int                `json:"num_other_sentinels"`
	Replicas          []SentinelReplica  `json:"replicas"`
	Sentinels         []SentinelInstance `json:"sentinels"`
}

// Address is a host and a port.
type Address struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// SentinelReplica is a replica as a Sentinel sees it (SENTINEL REPLICAS).
type SentinelReplica struct {
	Address
	Flags      []string `json:"flags"`
	LinkStatus string   `json:"link_status"` // ok or err (master-link-status)
	Offset     int64    `json:"offset"`      // slave-repl-offset
}

// SentinelInstance is another Sentinel (SENTINEL SENTINELS).
type SentinelInstance struct {
	Address
	// ID is the Sentinel's own id (its SENTINEL MYID, the runid field of
	// the reply), not the run_id of its INFO server.
	ID    string   `json:"id"`
	Flags []string `json:"flags"`
}

// ParseMonitor reads one entry of SENTINEL PRIMARIES (field -> value).
func ParseMonitor(m map[string]string) (*Monitor, error) {
	const what = "SENTINEL PRIMARIES"
	f, err := entry(what, m)
	if err != nil {
		return nil, err
	}
	mon := &Monitor{Replicas: []SentinelReplica{}, Sentinels: []SentinelInstance{}}
	if mon.Name, err = f.str(what, "name", "a monitor name without spaces", isName); err != nil {
		return nil, err
	}
	if mon.Primary, err = address(what, f); err != nil {
		return nil, err
	}
	if mon.Flags, err = flags(what, f); err != nil {
		return nil, err
	}
	q, err := f.int(what, "quorum", 1, MaxMonitors)
	if err != nil {
		return nil, err
	}
	nr, err := f.int(what, "num-slaves", 0, MaxReplicas)
	if err != nil {
		return nil, err
	}
	ns, err := f.int(what, "num-other-sentinels", 0, MaxReplicas)
	if err != nil {
		return nil, err
	}
	mon.Quorum, mon.NumReplicas, mon.NumOtherSentinels = int(q), int(nr), int(ns)
	return mon, nil
}

// ParseSentinelReplica reads one entry of SENTINEL REPLICAS.
func ParseSentinelReplica(m map[string]string) (SentinelReplica, error) {
	const what = "SENTINEL REPLICAS"
	var r SentinelReplica
	f, err := entry(what, m)
	if err != nil {
		return r, err
	}
	if r.Address, err = address(what, f); err != nil {
		return r, err
	}
	if r.Flags, err = flags(what, f); err != nil {
		return r, err
	}
	if r.LinkStatus, err = f.str(what, "master-link-status", "ok or err", oneOf("ok", "err")); err != nil {
		return r, err
	}
	if r.Offset, err = f.int(what, "slave-repl-offset", 0, maxOffset); err != nil {
		return r, err
	}
	return r, nil
}

// ParseSentinelInstance reads one entry of SENTINEL SENTINELS.
func ParseSentinelInstance(m map[string]string) (SentinelInstance, error) {
	const what = "SENTINEL SENTINELS"
	var s SentinelInstance
	f, err := entry(what, m)
	if err != nil {
		return s, err
	}
	if s.Address, err = address(what, f); err != nil {
		return s, err
	}
	if s.Flags, err = flags(what, f); err != nil {
		return s, err
	}
	if s.ID, err = f.str(what, "runid", "40 hexadecimal digits", isHex40); err != nil {
		return s, err
	}
	return s, nil
}

// entry bounds one map of a Sentinel reply.
func entry(what string, m map[string]string) (Fields, error) {
	if len(m) > 256 {
		return nil, fmt.Errorf("the server's %s reply has an entry of %d fields, more than the limit of 256", what, len(m))
	}
	for k, v := range m {
		if k == "" || len(k) > MaxKeyLen || len(v) > MaxValueLen || printable(k) != nil || printable(v) != nil {
			return nil, fmt.Errorf("the server's %s reply has a malformed field %s", what, quote(k))
		}
	}
	return Fields(m), nil
}

func address(what string, f Fields) (Address, error) {
	var a Address
	var err error
	if a.Host, err = f.str(what, "ip", "a host name or address", isHost); err != nil {
		return a, err
	}
	p, err := f.int(what, "port", 1, maxPort)
	a.Port = int(p)
	return a, err
}

func flags(what string, f Fields) ([]string, error) {
	v, err := f.str(what, "flags", "flags separated by commas", func(s string) bool { return s != "" })
	if err != nil {
		return nil, err
	}
	out := strings.Split(v, ",")
	if len(out) > 32 {
		return nil, fieldError(what, "flags", v, "at most 32 flags")
	}
	for _, fl := range out {
		if !isToken(fl) {
			return nil, fieldError(what, "flags", v, "flags separated by commas")
		}
	}
	return out, nil
}

// HasFlag says whether flags holds flag.
func HasFlag(flags []string, flag string) bool {
	for _, f := range flags {
		if f == flag {
			return true
		}
	}
	return false
}

// ClusterInfo is what CLUSTER INFO says about the cluster's health.
type ClusterInfo struct {
	State         string `json:"state"` // ok or fail
	SlotsAssigned int    `json:"slots_assigned"`
	SlotsOK       int    `json:"slots_ok"`
	SlotsPFail    int    `json:"slots_pfail"`
	SlotsFail     int    `json:"slots_fail"`
	KnownNodes    int    `json:"known_nodes"`
	Size          int    `json:"size"`
	MyEpoch       int64  `json:"my_epoch"`
}

// ClusterSlots is the number of hash slots of a cluster.
const ClusterSlots = 16384

// MaxClusterNodes bounds known_nodes (Valkey's own guidance is ~1000).
const MaxClusterNodes = 16384

// ParseClusterInfo reads CLUSTER INFO.
func ParseClusterInfo(text string) (*ClusterInfo, error) {
	const what = "CLUSTER INFO"
	f, err := ParseFields(what, text)
	if err != nil {
		return nil, err
	}
	c := &ClusterInfo{}
	if c.State, err = f.str(what, "cluster_state", "ok or fail", oneOf("ok", "fail")); err != nil {
		return nil, err
	}
	ints := []struct {
		key string
		max int64
		dst *int
	}{
		{"cluster_slots_assigned", ClusterSlots, &c.SlotsAssigned},
		{"cluster_slots_ok", ClusterSlots, &c.SlotsOK},
		{"cluster_slots_pfail", ClusterSlots, &c.SlotsPFail},
		{"cluster_slots_fail", ClusterSlots, &c.SlotsFail},
		{"cluster_known_nodes", MaxClusterNodes, &c.KnownNodes},
		{"cluster_size", MaxClusterNodes, &c.Size},
	}
	for _, x := range ints {
		n, err := f.int(what, x.key, 0, x.max)
		if err != nil {
			return nil, err
		}
		*x.dst = int(n)
	}
	if c.MyEpoch, err = f.int(what, "cluster_my_epoch", 0, maxOffset); err != nil {
		return nil, err
	}
	if c.SlotsOK+c.SlotsPFail+c.SlotsFail != c.SlotsAssigned {
		return nil, fmt.Errorf("the server's %s reply does not add up: %d ok + %d pfail + %d fail slots is not the %d assigned", what, c.SlotsOK, c.SlotsPFail, c.SlotsFail, c.SlotsAssigned)
	}
	return c, nil
}
