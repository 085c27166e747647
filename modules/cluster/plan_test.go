package cluster

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// members builds listed members from "host" or "host:role" specs, named
// host/index.
func members(specs ...string) []*member {
	var out []*member
	for i, s := range specs {
		host, role, _ := strings.Cut(s, ":")
		n := &NodeSpec{Host: host, Port: 7000 + i, InitialRole: role}
		out = append(out, &member{spec: n, index: i, host: host, addr: n.Address()})
	}
	return out
}

// The layout of a new cluster: primaries spread over the hosts, every
// primary given its replicas on other hosts whenever a layout exists,
// including where a greedy choice would strand a primary.
func TestLayout(t *testing.T) {
	for _, c := range []struct {
		name     string
		nodes    []string
		replicas int
		want     string // the primaries by index, or the error's start
	}{
		// Greedy by fewest replicas, in list order, gives a:7003 to b:7001,
		// b:7004 to a:7000, and c:7005 (only a or b allowed) to a: c:7002 is
		// left without one. The matching gives every primary one.
		{"3 hosts, 6 nodes", []string{"a", "b", "c", "a", "b", "c"}, 1, "0 1 2"},
		{"two replicas on one host", []string{"a", "b", "c", "a", "a", "b"}, 1, "0 1 2"},
		{"initial roles", []string{"a:replica", "b:primary", "c:primary", "a:primary", "b", "c"}, 1, "1 2 3"},
		{"two replicas each", []string{"a", "b", "c", "a", "b", "c", "a", "b", "c"}, 2, "0 1 2"},
		{"all on one host", []string{"a", "a", "a", "a", "a", "a"}, 1, "replica a:7003 would share host"},
		{"4 + 2 hosts", []string{"a", "a", "a", "a", "b", "b"}, 1, "the layout leaves primary a:7001 without a replica"},
		{"too few primaries", []string{"a", "b", "c", "a"}, 1, "the layout has 2 primaries"},
		{"no replicas", []string{"a", "a", "a"}, 0, "0 1 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			listed := members(c.nodes...)
			r := c.replicas
			o := &Options{Replicas: &r}
			p, _, err := o.planCreate(&state{listed: listed})
			if strings.HasPrefix(c.want, "the") || strings.HasPrefix(c.want, "replica") {
				require.Error(t, err)
				require.True(t, strings.HasPrefix(err.Error(), c.want), err.Error())
				return
			}
			require.NoError(t, err)
			var primaries []string
			for _, m := range p.primaries {
				primaries = append(primaries, fmt.Sprint(m.index))
			}
			require.Equal(t, c.want, strings.Join(primaries, " "))
			count := map[*member]int{}
			for _, x := range p.replicate {
				require.NotEqual(t, x.primary.host, x.replica.host, "replica %s on its primary's host", x.replica.name())
				count[x.primary]++
			}
			for _, m := range p.primaries {
				require.Equal(t, c.replicas, count[m], "replicas of %s", m.name())
			}
			total := 0
			for _, m := range p.primaries {
				total += p.slots[m][0].Count()
			}
			require.Equal(t, 16384, total)
		})
	}
}
