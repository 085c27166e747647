package topology

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Replication is what INFO replication says, with modern names.
type Replication struct {
	Role string `json:"role"` // primary or replica
	// PrimaryHost, PrimaryPort, LinkStatus, SyncInProgress and
	// ReplicaReplOffset are a replica's view of its primary (zero on a
	// primary).
	PrimaryHost       string `json:"primary_host,omitempty"`
	PrimaryPort       int    `json:"primary_port,omitempty"`
	LinkStatus        string `json:"link_status,omitempty"` // up or down
	SyncInProgress    bool   `json:"sync_in_progress"`
	ReplicaReplOffset *int64 `json:"replica_repl_offset,omitempty"`
	// PrimaryReplOffset is the server's replication offset (master_repl_offset).
	PrimaryReplOffset int64 `json:"primary_repl_offset"`
	ConnectedReplicas int   `json:"connected_replicas"`
	// Replicas are the replicas connected to this server, by slaveN index.
	Replicas []Replica `json:"replicas"`
}

// Replica is one replica as its primary lists it.
type Replica struct {
	IP     string `json:"ip"`
	Port   int    `json:"port"`
	State  string `json:"state"` // online, wait_bgsave, send_bulk, ...
	Offset int64  `json:"offset"`
	Lag    int64  `json:"lag"`
}

const maxOffset = 1<<63 - 1

// ParseReplication reads INFO replication.
func ParseReplication(text string) (*Replication, error) {
	const what = "INFO replication"
	f, err := ParseFields(what, text)
	if err != nil {
		return nil, err
	}
	r := &Replication{Replicas: []Replica{}}
	role, err := f.str(what, "role", "master or slave", oneOf("master", "slave"))
	if err != nil {
		return nil, err
	}
	if r.PrimaryReplOffset, err = f.int(what, "master_repl_offset", 0, maxOffset); err != nil {
		return nil, err
	}
	n, err := f.int(what, "connected_slaves", 0, MaxReplicas)
	if err != nil {
		return nil, err
	}
	r.ConnectedReplicas = int(n)
	if role == "slave" {
		r.Role = RoleReplica
		if r.PrimaryHost, err = f.str(what, "master_host", "a host name or address", isHost); err != nil {
			return nil, err
		}
		port, err := f.int(what, "master_port", 1, maxPort)
		if err != nil {
			return nil, err
		}
		r.PrimaryPort = int(port)
		if r.LinkStatus, err = f.str(what, "master_link_status", "up or down", oneOf("up", "down")); err != nil {
			return nil, err
		}
		if r.SyncInProgress, err = f.flag(what, "master_sync_in_progress"); err != nil {
			return nil, err
		}
		off, err := f.int(what, "slave_repl_offset", -1, maxOffset)
		if err != nil {
			return nil, err
		}
		r.ReplicaReplOffset = &off
	} else {
		r.Role = RolePrimary
	}
	// slaveN lines: a primary lists its replicas (a chained replica too).
	var idx []int
	for k := range f {
		rest, ok := strings.CutPrefix(k, "slave")
		if !ok || rest == "" || strings.Trim(rest, "0123456789") != "" {
			continue
		}
		i, err := strconv.Atoi(rest)
		if err != nil || i >= MaxReplicas {
			return nil, fmt.Errorf("the server's %s reply lists replica %q; expected at most %d replicas", what, k, MaxReplicas)
		}
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		key := "slave" + strconv.Itoa(i)
		rep, err := parseReplica(what, key, f[key])
		if err != nil {
			return nil, err
		}
		r.Replicas = append(r.Replicas, rep)
	}
	return r, nil
}

// parseReplica reads "ip=10.0.0.2,port=6379,state=online,offset=42,lag=0".
func parseReplica(what, key, val string) (Replica, error) {
	var rep Replica
	attrs, err := attrList(what, key, val, "ip", "port", "state", "offset", "lag")
	if err != nil {
		return rep, err
	}
	if rep.IP = attrs["ip"]; !isHost(rep.IP) {
		return rep, fieldError(what, key, val, "ip= a host address")
	}
	port, err := strconv.Atoi(attrs["port"])
	if err != nil || port < 1 || port > maxPort {
		return rep, fieldError(what, key, val, "port= a port from 1 to 65535")
	}
	rep.Port = port
	if rep.State = attrs["state"]; !isToken(rep.State) {
		return rep, fieldError(what, key, val, "state= a word")
	}
	if rep.Offset, err = strconv.ParseInt(attrs["offset"], 10, 64); err != nil || rep.Offset < 0 {
		return rep, fieldError(what, key, val, "offset= a non-negative integer")
	}
	// lag is the seconds since the replica's last acknowledgement; Valkey
	// 8.0 reports -1 when that came within the current second of its clock
	// (seen under load by sentinelfailover.TestSwitchoverUnderLoad).
	if rep.Lag, err = strconv.ParseInt(attrs["lag"], 10, 64); err != nil || rep.Lag < -1 {
		return rep, fieldError(what, key, val, "lag= an integer from -1")
	}
	return rep, nil
}

// attrList reads a comma-separated list of name=value pairs in which every
// name of required appears exactly once (other names are allowed once).
func attrList(what, key, val string, required ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(val, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok || k == "" {
			return nil, fieldError(what, key, val, "name=value pairs separated by commas")
		}
		if _, dup := out[k]; dup {
			return nil, fieldError(what, key, val, fmt.Sprintf("%s= once", k))
		}
		out[k] = v
	}
	for _, r := range required {
		if _, ok := out[r]; !ok {
			return nil, fieldError(what, key, val, r+"=")
		}
	}
	return out, nil
}

// isToken accepts a lower-case word with underscores or dashes (a state, a flag).
func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Role is the ROLE reply.
type Role struct {
	Role string `json:"role"` // primary, replica or sentinel
	// Offset: a primary's replication offset, or the offset a replica
	// has processed.
	Offset int64 `json:"offset"`
	// PrimaryHost/PrimaryPort/State: a replica's primary and link state
	// (connect, connecting, sync, connected, handshake).
	PrimaryHost string `json:"primary_host,omitempty"`
	PrimaryPort int    `json:"primary_port,omitempty"`
	State       string `json:"state,omitempty"`
	// Replicas: a primary's replicas (ip, port, acknowledged offset).
	Replicas []AckedReplica `json:"replicas,omitempty"`
	// Primaries: the names a Sentinel monitors.
	Primaries []string `json:"primaries,omitempty"`
}

// AckedReplica is one replica in a primary's ROLE reply.
type AckedReplica struct {
	IP     string `json:"ip"`
	Port   int    `json:"port"`
	Offset int64  `json:"offset"`
}

// ParseRole reads a ROLE reply given as a tree of strings, int64s and
// []any (see FromMessage). The three shapes:
//
//	["master", offset, [[ip, "port", "offset"], ...]]
//	["slave", host, port, state, offset]
//	["sentinel", [name, ...]]
func ParseRole(reply []any) (*Role, error) {
	const what = "ROLE"
	bad := func(expected string) error {
		return fmt.Errorf("the server's ROLE reply is malformed: expected %s", expected)
	}
	if len(reply) == 0 {
		return nil, bad("a non-empty array")
	}
	kind, _ := reply[0].(string)
	r := &Role{}
	switch kind {
	case "master":
		if len(reply) != 3 {
			return nil, bad("[\"master\", offset, replicas]")
		}
		off, ok := reply[1].(int64)
		if !ok || off < 0 {
			return nil, bad("the primary's offset as a non-negative integer")
		}
		reps, ok := reply[2].([]any)
		if !ok || len(reps) > MaxReplicas {
			return nil, bad(fmt.Sprintf("a list of at most %d replicas", MaxReplicas))
		}
		r.Role, r.Offset, r.Replicas = RolePrimary, off, []AckedReplica{}
		for _, e := range reps {
			t, ok := e.([]any)
			if !ok || len(t) != 3 {
				return nil, bad("each replica as [ip, port, offset]")
			}
			ip, _ := t[0].(string)
			ps, _ := t[1].(string)
			os, _ := t[2].(string)
			port, perr := strconv.Atoi(ps)
			o, oerr := strconv.ParseInt(os, 10, 64)
			if !isHost(ip) || perr != nil || port < 1 || port > maxPort || oerr != nil || o < 0 {
				return nil, bad("each replica as [ip, port, offset] with a host, a port and a non-negative offset")
			}
			r.Replicas = append(r.Replicas, AckedReplica{IP: ip, Port: port, Offset: o})
		}
	case "slave":
		if len(reply) != 5 {
			return nil, bad("[\"slave\", host, port, state, offset]")
		}
		host, _ := reply[1].(string)
		port, pok := reply[2].(int64)
		state, _ := reply[3].(string)
		off, ook := reply[4].(int64)
		if !isHost(host) || !pok || port < 1 || port > maxPort || !isToken(state) || !ook || off < -1 {
			return nil, bad("a replica's host, port, state and offset")
		}
		r.Role, r.PrimaryHost, r.PrimaryPort, r.State, r.Offset = RoleReplica, host, int(port), state, off
	case "sentinel":
		if len(reply) != 2 {
			return nil, bad("[\"sentinel\", names]")
		}
		names, ok := reply[1].([]any)
		if !ok || len(names) > MaxMonitors {
			return nil, bad(fmt.Sprintf("a list of at most %d monitored primaries", MaxMonitors))
		}
		r.Role, r.Primaries = RoleSentinel, []string{}
		for _, n := range names {
			s, _ := n.(string)
			if !isName(s) {
				return nil, bad("monitored primary names without spaces or control characters")
			}
			r.Primaries = append(r.Primaries, s)
		}
	default:
		return nil, fmt.Errorf("the server's %s reply names the role %s; expected master, slave or sentinel", what, quote(fmt.Sprint(reply[0])))
	}
	return r, nil
}

// isName accepts a Sentinel monitor name: printable, no space, bounded.
func isName(s string) bool {
	if s == "" || len(s) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}
