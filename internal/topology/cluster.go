// CLUSTER NODES: every byte of it comes from a server that may be hostile
// (any process on the port, or a node whose gossip lies), so the parser is
// strict and bounded: an unexpected field is an error, never a guess.

package topology

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// CLUSTER NODES limits (lines are bounded by MaxClusterNodes, as
// known_nodes is): they leave room without letting a reply make the parser
// allocate without end.
const (
	// MaxClusterNodesBytes bounds the whole reply (a full line with every
	// slot listed singly is about 100 KiB; a real reply is far smaller).
	MaxClusterNodesBytes = 8 << 20
	// maxLineFields bounds one line: 8 fixed fields and at most one slot
	// entry per slot plus open (migrating/importing) slots.
	maxLineFields = 8 + 2*ClusterSlots
	// nodeIDLen is the length of a node id: 40 hex characters.
	nodeIDLen = 40
)

// SlotRange is an inclusive range of slots, Start <= End.
type SlotRange struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// String renders r as CLUSTER NODES does ("5" or "0-5460").
func (r SlotRange) String() string {
	if r.Start == r.End {
		return strconv.Itoa(r.Start)
	}
	return strconv.Itoa(r.Start) + "-" + strconv.Itoa(r.End)
}

// Count is the number of slots in r.
func (r SlotRange) Count() int { return r.End - r.Start + 1 }

// OpenSlot is a slot being moved: migrating to, or importing from, Peer.
type OpenSlot struct {
	Slot      int    `json:"slot"`
	Peer      string `json:"peer"`
	Importing bool   `json:"importing"`
}

// ClusterNode is one line of CLUSTER NODES.
type ClusterNode struct {
	ID string `json:"id"`
	// IP and Port are where clients reach the node (IP empty for a node
	// without address, flag noaddr); BusPort is its cluster bus port.
	IP       string `json:"ip"`
	Port     int    `json:"port"`
	BusPort  int    `json:"bus_port"`
	Hostname string `json:"hostname,omitempty"`
	// Flags as the server lists them (myself, master, slave, fail?, fail,
	// handshake, noaddr, nofailover, noflags).
	Flags []string `json:"flags"`
	// PrimaryID is the id of the node this one replicates ("" for a primary).
	PrimaryID   string      `json:"primary_id"`
	PingSent    int64       `json:"ping_sent"`
	PongRecv    int64       `json:"pong_recv"`
	ConfigEpoch uint64      `json:"config_epoch"`
	LinkState   string      `json:"link_state"`
	Slots       []SlotRange `json:"slots"`
	Open        []OpenSlot  `json:"open_slots,omitempty"`
}

// Addr is "ip:port" ("" for a node without address).
func (n *ClusterNode) Addr() string {
	if n.IP == "" {
		return ""
	}
	return net.JoinHostPort(n.IP, strconv.Itoa(n.Port))
}

// Has reports whether the node carries flag f.
func (n *ClusterNode) Has(f string) bool {
	for _, x := range n.Flags {
		if x == f {
			return true
		}
	}
	return false
}

// Myself reports whether this line describes the node that answered.
func (n *ClusterNode) Myself() bool { return n.Has("myself") }

// IsPrimary reports whether the node is a primary (master).
func (n *ClusterNode) IsPrimary() bool { return n.Has("master") || n.Has("primary") }

// Failed reports whether the cluster holds the node as failing (fail) or
// this node suspects it (fail?).
func (n *ClusterNode) Failed() bool { return n.Has("fail") || n.Has("fail?") }

// SlotCount is the number of slots the node serves.
func (n *ClusterNode) SlotCount() int {
	c := 0
	for _, r := range n.Slots {
		c += r.Count()
	}
	return c
}

// ClusterView is one node's view of the cluster: every node it knows, its
// own line first.
type ClusterView struct {
	Nodes []ClusterNode `json:"nodes"`
}

// Self is the line of the node that answered.
func (v *ClusterView) Self() *ClusterNode { return &v.Nodes[0] }

// ByID returns the node with id, or nil.
func (v *ClusterView) ByID(id string) *ClusterNode {
	for i := range v.Nodes {
		if v.Nodes[i].ID == id {
			return &v.Nodes[i]
		}
	}
	return nil
}

// Uncovered returns the slot ranges no node serves, in order.
func (v *ClusterView) Uncovered() []SlotRange {
	var owned [ClusterSlots]bool
	for _, n := range v.Nodes {
		for _, r := range n.Slots {
			for s := r.Start; s <= r.End; s++ {
				owned[s] = true
			}
		}
	}
	var out []SlotRange
	for s := 0; s < ClusterSlots; s++ {
		if owned[s] {
			continue
		}
		if k := len(out); k > 0 && out[k-1].End == s-1 {
			out[k-1].End = s
		} else {
			out = append(out, SlotRange{s, s})
		}
	}
	return out
}

// ErrClusterNodes marks every parse failure.
var ErrClusterNodes = errors.New("invalid CLUSTER NODES reply")

// ParseClusterNodes parses a CLUSTER NODES reply. It refuses, rather than
// repairs: a reply over the bounds, a line with a missing or extra field,
// an id that is not 40 hex characters, a duplicate id, not exactly one
// "myself" line, a slot outside 0-16383, a range whose end is before its
// start, and a slot claimed twice.
func ParseClusterNodes(text string) (*ClusterView, error) {
	if len(text) > MaxClusterNodesBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d allowed", ErrClusterNodes, len(text), MaxClusterNodesBytes)
	}
	if strings.ContainsRune(text, 0) {
		return nil, fmt.Errorf("%w: it contains a NUL byte", ErrClusterNodes)
	}
	lines := strings.Split(strings.TrimRight(text, "\r\n"), "\n")
	if len(lines) > MaxClusterNodes {
		return nil, fmt.Errorf("%w: %d nodes, more than the %d allowed", ErrClusterNodes, len(lines), MaxClusterNodes)
	}
	v := &ClusterView{}
	ids := map[string]bool{}
	var owner [ClusterSlots]int16 // 0: free, i+1: line i
	self := -1
	for i, line := range lines {
		n, err := parseNodeLine(strings.TrimSuffix(line, "\r"))
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrClusterNodes, i+1, err)
		}
		if ids[n.ID] {
			return nil, fmt.Errorf("%w: line %d: node id %s listed twice", ErrClusterNodes, i+1, n.ID)
		}
		ids[n.ID] = true
		if n.Myself() {
			if self >= 0 {
				return nil, fmt.Errorf("%w: line %d: a second \"myself\" line", ErrClusterNodes, i+1)
			}
			self = i
		}
		for _, r := range n.Slots {
			for s := r.Start; s <= r.End; s++ {
				if owner[s] != 0 {
					return nil, fmt.Errorf("%w: line %d: slot %d is also claimed on line %d", ErrClusterNodes, i+1, s, owner[s])
				}
				owner[s] = int16(i + 1)
			}
		}
		v.Nodes = append(v.Nodes, n)
	}
	if self < 0 {
		return nil, fmt.Errorf("%w: no \"myself\" line", ErrClusterNodes)
	}
	v.Nodes[0], v.Nodes[self] = v.Nodes[self], v.Nodes[0]
	rest := v.Nodes[1:]
	sort.SliceStable(rest, func(a, b int) bool { return rest[a].ID < rest[b].ID })
	return v, nil
}

var knownFlags = map[string]bool{
	"myself": true, "master": true, "primary": true, "slave": true, "replica": true, "fail?": true, "fail": true,
	"handshake": true, "noaddr": true, "nofailover": true, "noflags": true,
}

func parseNodeLine(line string) (ClusterNode, error) {
	var n ClusterNode
	f := strings.Split(line, " ")
	if len(f) < 8 {
		return n, fmt.Errorf("%d fields, expected at least 8", len(f))
	}
	if len(f) > maxLineFields {
		return n, fmt.Errorf("%d fields, more than the %d allowed", len(f), maxLineFields)
	}
	if !isHex40(f[0]) {
		return n, errors.New("the node id is not 40 hex characters")
	}
	n.ID = f[0]
	if err := parseAddress(f[1], &n); err != nil {
		return n, err
	}
	for _, fl := range strings.Split(f[2], ",") {
		if !knownFlags[fl] {
			return n, fmt.Errorf("unknown flag %s", quote(fl))
		}
		n.Flags = append(n.Flags, fl)
	}
	switch {
	case f[3] == "-":
	case isHex40(f[3]) && f[3] != n.ID:
		n.PrimaryID = f[3]
	default:
		return n, errors.New("the primary field is neither \"-\" nor another node's id")
	}
	if n.IsPrimary() && (n.Has("slave") || n.Has("replica")) {
		return n, errors.New("flagged both primary and replica")
	}
	var err error
	if n.PingSent, err = strconv.ParseInt(f[4], 10, 64); err != nil || n.PingSent < 0 {
		return n, fmt.Errorf("ping-sent %s is not a number", quote(f[4]))
	}
	if n.PongRecv, err = strconv.ParseInt(f[5], 10, 64); err != nil || n.PongRecv < 0 {
		return n, fmt.Errorf("pong-recv %s is not a number", quote(f[5]))
	}
	if n.ConfigEpoch, err = strconv.ParseUint(f[6], 10, 64); err != nil {
		return n, fmt.Errorf("config-epoch %s is not a number", quote(f[6]))
	}
	if f[7] != "connected" && f[7] != "disconnected" {
		return n, fmt.Errorf("link-state %s is neither connected nor disconnected", quote(f[7]))
	}
	n.LinkState = f[7]
	for _, s := range f[8:] {
		if err := parseSlot(s, &n); err != nil {
			return n, err
		}
	}
	if len(n.Slots) > 0 && !n.IsPrimary() {
		return n, errors.New("a replica serves slots")
	}
	sort.Slice(n.Slots, func(a, b int) bool { return n.Slots[a].Start < n.Slots[b].Start })
	n.Slots = mergeRanges(n.Slots)
	return n, nil
}

// parseAddress reads ip:port@cport[,hostname]; the IP may be empty
// (":0@0", a node without address) or IPv6 (the port follows the last colon).
func parseAddress(s string, n *ClusterNode) error {
	addr, host, hasHost := strings.Cut(s, ",")
	if hasHost {
		if len(host) > 255 || !isHostname(host) {
			return fmt.Errorf("hostname %s is not a host name", quote(host))
		}
		n.Hostname = host
	}
	hp, cport, ok := strings.Cut(addr, "@")
	if !ok {
		return fmt.Errorf("address %s lacks the @busport part", quote(addr))
	}
	i := strings.LastIndexByte(hp, ':')
	if i < 0 {
		return fmt.Errorf("address %s lacks a port", quote(addr))
	}
	ip, port := hp[:i], hp[i+1:]
	var err error
	if n.Port, err = parsePort(port); err != nil {
		return fmt.Errorf("address %s: %v", quote(addr), err)
	}
	if n.BusPort, err = parsePort(cport); err != nil {
		return fmt.Errorf("address %s: bus %v", quote(addr), err)
	}
	if ip != "" && net.ParseIP(ip) == nil {
		return fmt.Errorf("address %s: %s is not an IP address", quote(addr), quote(ip))
	}
	n.IP = ip
	return nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || p > 65535 || strconv.Itoa(p) != s {
		return 0, fmt.Errorf("port %s is not 0-65535", quote(s))
	}
	return p, nil
}

// parseSlot reads "N", "N-M", "[N->-id]" (migrating) or "[N-<-id]" (importing).
func parseSlot(s string, n *ClusterNode) error {
	if strings.HasPrefix(s, "[") {
		body, ok := strings.CutSuffix(s[1:], "]")
		if !ok {
			return fmt.Errorf("open slot %s lacks its closing bracket", quote(s))
		}
		num, rest, ok := strings.Cut(body, "-")
		if !ok || len(rest) != 2+nodeIDLen || (rest[0] != '>' && rest[0] != '<') || !isHex40(rest[2:]) || rest[1] != '-' {
			return fmt.Errorf("open slot %s is not [slot->-id] or [slot-<-id]", quote(s))
		}
		slot, err := parseSlotNumber(num)
		if err != nil {
			return err
		}
		n.Open = append(n.Open, OpenSlot{Slot: slot, Peer: rest[2:], Importing: rest[0] == '<'})
		return nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	start, err := parseSlotNumber(lo)
	if err != nil {
		return err
	}
	end := start
	if isRange {
		if end, err = parseSlotNumber(hi); err != nil {
			return err
		}
		if end < start {
			return fmt.Errorf("slot range %s ends before it starts", quote(s))
		}
	}
	n.Slots = append(n.Slots, SlotRange{start, end})
	return nil
}

func parseSlotNumber(s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || v >= ClusterSlots || strconv.Itoa(v) != s {
		return 0, fmt.Errorf("slot %s is not 0-16383", quote(s))
	}
	return v, nil
}

// mergeRanges joins sorted adjacent ranges (0-5 6-9 → 0-9).
func mergeRanges(in []SlotRange) []SlotRange {
	var out []SlotRange
	for _, r := range in {
		if k := len(out); k > 0 && out[k-1].End+1 == r.Start {
			out[k-1].End = r.End
			continue
		}
		out = append(out, r)
	}
	return out
}

// Ranges renders slot ranges as CLUSTER NODES does, space-separated.
func Ranges(rs []SlotRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, " ")
}

func isHostname(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// ClusterHealth is what a view says about the cluster's health: the facts
// valkey_cluster returns and valkey_audit's cluster rules check.
type ClusterHealth struct {
	// Uncovered are the slots no node serves.
	Uncovered []SlotRange `json:"uncovered_slots"`
	// Failed are the nodes flagged fail or fail? (addresses, or ids for a
	// node without address).
	Failed []string `json:"failed_nodes"`
	// WithoutReplica are the slot-serving primaries that have no replica
	// which is not failing.
	WithoutReplica []string `json:"shards_without_replica"`
	// SameHost are the primaries with a replica on their own host.
	SameHost []SameHost `json:"primary_replica_same_host"`
}

// SameHost is a primary and a replica of it on one host.
type SameHost struct {
	Primary string `json:"primary"`
	Replica string `json:"replica"`
	Host    string `json:"host"`
}

// Name is how facts name a node: its address, or its id without one.
func (n *ClusterNode) Name() string {
	if a := n.Addr(); a != "" {
		return a
	}
	return n.ID
}

// Health derives the cluster's health from v. hostOf says which host a
// node runs on (nil: its IP); a node without address is on no host.
func (v *ClusterView) Health(hostOf func(*ClusterNode) string) ClusterHealth {
	if hostOf == nil {
		hostOf = func(n *ClusterNode) string { return n.IP }
	}
	h := ClusterHealth{Uncovered: v.Uncovered(), Failed: []string{}, WithoutReplica: []string{}, SameHost: []SameHost{}}
	if h.Uncovered == nil {
		h.Uncovered = []SlotRange{}
	}
	for i := range v.Nodes {
		n := &v.Nodes[i]
		if n.Failed() {
			h.Failed = append(h.Failed, n.Name())
		}
		if !n.IsPrimary() || n.SlotCount() == 0 {
			continue
		}
		healthy := 0
		for j := range v.Nodes {
			r := &v.Nodes[j]
			if r.PrimaryID != n.ID {
				continue
			}
			if !r.Failed() {
				healthy++
			}
			if host := hostOf(r); host != "" && host == hostOf(n) {
				h.SameHost = append(h.SameHost, SameHost{Primary: n.Name(), Replica: r.Name(), Host: host})
			}
		}
		if healthy == 0 {
			h.WithoutReplica = append(h.WithoutReplica, n.Name())
		}
	}
	return h
}
