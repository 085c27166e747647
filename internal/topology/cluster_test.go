package topology

import (
	"errors"
	"strings"
	"testing"
)

const (
	idA = "b19c0147216985eddc035e06bb76cd8d4c728d14"
	idB = "07c37dfeb235213a872192d90877d0cd55635b91"
	idC = "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1"
)

// A reply as valkey-server 8.0 prints it (hostname, open slots, a replica).
var goodReply = strings.Join([]string{
	idB + " 127.0.0.2:30002@31002,node-b slave " + idA + " 0 1426238317239 4 connected",
	idA + " 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 5461 [5462->-" + idC + "]",
	idC + " ::1:30003@31003 master,fail - 1426238316232 1426238316232 3 disconnected 5462-16383",
}, "\n") + "\n"

func TestParseClusterNodes(t *testing.T) {
	v, err := ParseClusterNodes(goodReply)
	if err != nil {
		t.Fatal(err)
	}
	self := v.Self()
	if self.ID != idA || !self.IsPrimary() || self.Addr() != "127.0.0.1:30001" || self.BusPort != 31001 {
		t.Errorf("self = %+v", self)
	}
	if got := Ranges(self.Slots); got != "0-5461" {
		t.Errorf("self slots = %q, want the two entries merged into 0-5461", got)
	}
	if len(self.Open) != 1 || self.Open[0] != (OpenSlot{Slot: 5462, Peer: idC}) {
		t.Errorf("open slots = %+v", self.Open)
	}
	b := v.ByID(idB)
	if b == nil || b.PrimaryID != idA || b.IsPrimary() || b.Hostname != "node-b" || b.PongRecv != 1426238317239 {
		t.Errorf("replica = %+v", b)
	}
	if c := v.ByID(idC); c == nil || !c.Failed() || c.LinkState != "disconnected" || c.SlotCount() != 16384-5462 {
		t.Errorf("failed primary = %+v", c)
	}
	if u := v.Uncovered(); len(u) != 0 {
		t.Errorf("uncovered = %v", u)
	}
}

func TestUncovered(t *testing.T) {
	v, err := ParseClusterNodes(idA + " :7000@17000 myself,master - 0 0 0 connected 1-10 12 16383\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := Ranges(v.Uncovered()); got != "0 11 13-16382" {
		t.Errorf("uncovered = %q", got)
	}
}

// Each hostile line is refused with the reason; none panics or is repaired.
func TestParseClusterNodesRefuses(t *testing.T) {
	self := idA + " 127.0.0.1:7000@17000 myself,master - 0 0 1 connected"
	for _, c := range []struct{ name, reply, want string }{
		{"empty", "", "expected at least 8"},
		{"no myself", idA + " 127.0.0.1:7000@17000 master - 0 0 1 connected", "no \"myself\" line"},
		{"two myself", self + "\n" + idB + " 127.0.0.1:7001@17001 myself,master - 0 0 1 connected", "a second \"myself\""},
		{"short id", "abc 127.0.0.1:7000@17000 myself,master - 0 0 1 connected", "40 hex"},
		{"upper-case id", strings.ToUpper(idA) + " 127.0.0.1:7000@17000 myself,master - 0 0 1 connected", "40 hex"},
		{"duplicate id", self + "\n" + idA + " 127.0.0.1:7001@17001 master - 0 0 1 connected", "listed twice"},
		{"no bus port", idA + " 127.0.0.1:7000 myself,master - 0 0 1 connected", "@busport"},
		{"port too big", idA + " 127.0.0.1:70000@17000 myself,master - 0 0 1 connected", "0-65535"},
		{"port with sign", idA + " 127.0.0.1:+7000@17000 myself,master - 0 0 1 connected", "0-65535"},
		{"not an ip", idA + " evil.example:7000@17000 myself,master - 0 0 1 connected", "not an IP"},
		{"hostname with space-like bytes", idA + " 127.0.0.1:7000@17000,a\tb myself,master - 0 0 1 connected", "not a host name"},
		{"unknown flag", idA + " 127.0.0.1:7000@17000 myself,root - 0 0 1 connected", "unknown flag"},
		{"own primary", idA + " 127.0.0.1:7000@17000 myself,slave " + idA + " 0 0 1 connected", "primary field"},
		{"both roles", idA + " 127.0.0.1:7000@17000 myself,master,slave - 0 0 1 connected", "both primary and replica"},
		{"negative ping", idA + " 127.0.0.1:7000@17000 myself,master - -1 0 1 connected", "ping-sent"},
		{"bad link", idA + " 127.0.0.1:7000@17000 myself,master - 0 0 1 up", "link-state"},
		{"slot out of range", self + " 16384", "not 0-16383"},
		{"negative slot", self + " -1", "not 0-16383"},
		{"reversed range", self + " 10-5", "ends before"},
		{"replica with slots", idA + " 127.0.0.1:7000@17000 myself,slave " + idB + " 0 0 1 connected 1-2", "replica serves slots"},
		{"slot twice", self + " 0-100\n" + idB + " 127.0.0.1:7001@17001 master - 0 0 1 connected 100", "also claimed"},
		{"bad open slot", self + " [5->-xyz]", "not [slot->-id]"},
		{"open slot unclosed", self + " [5->-" + idB, "closing bracket"},
		{"NUL", self + "\x00", "NUL byte"},
		{"too many nodes", strings.Repeat(self+"\n", MaxClusterNodes+1), "more than the 16384 allowed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseClusterNodes(c.reply)
			if err == nil || !errors.Is(err, ErrClusterNodes) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v, want one containing %q", err, c.want)
			}
		})
	}
}

// FuzzParseClusterNodes: whatever a hostile server sends, the parser does
// not panic, and what it accepts keeps the invariants the module relies on.
func FuzzParseClusterNodes(f *testing.F) {
	f.Add(goodReply)
	f.Add(idA + " :7000@17000 myself,master - 0 0 0 connected\n")
	f.Add(idA + " 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-16383 [1-<-" + idB + "]")
	f.Fuzz(func(t *testing.T, reply string) {
		v, err := ParseClusterNodes(reply)
		if err != nil {
			return
		}
		if len(v.Nodes) == 0 || !v.Self().Myself() {
			t.Fatalf("accepted a view without myself first: %+v", v)
		}
		total := 0
		for _, n := range v.Nodes {
			if !isHex40(n.ID) || n.Port > 65535 || n.BusPort > 65535 {
				t.Fatalf("accepted node %+v", n)
			}
			for _, r := range n.Slots {
				if r.Start < 0 || r.End >= ClusterSlots || r.End < r.Start {
					t.Fatalf("accepted range %+v", r)
				}
			}
			total += n.SlotCount()
		}
		if total+countRanges(v.Uncovered()) != ClusterSlots {
			t.Fatalf("slots owned %d + uncovered do not make %d", total, ClusterSlots)
		}
	})
}

func countRanges(rs []SlotRange) int {
	c := 0
	for _, r := range rs {
		c += r.Count()
	}
	return c
}
