package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/valkeyops/secure/internal/audit"
	"github.com/valkeyops/secure/internal/policy"
)

// CrossNodeID is the cross-node rule: the nodes of one replication group,
// cluster or set of Sentinels hold the same settings (but those per node by
// nature), the same ACL users and the same CA. It is made here, where every
// node's audit meets; one node's audit sees only itself.
const CrossNodeID = "VK-090"

// CrossNodeRule is its metadata (the matrix, SARIF, the rules table).
var CrossNodeRule = Rule{
	ID: CrossNodeID, Title: "The nodes of a group agree (settings, ACL users, CA)", Severity: "high",
	Rationale: "ACL users and most settings are not replicated: a node that differs answers clients differently, " +
		"and after a failover the group runs with that node's users, limits and TLS settings. " +
		"A CA that differs or expires at another time breaks the links between the nodes.",
	Remediation: "Apply the same valkey_server settings, valkey_acl users and group CA (valkey_tls) to every node of the group; " +
		"the finding names the directives and users that differ and the nodes that hold the other value.",
}

// Group is the nodes of one group in the run and what they disagree on.
type Group struct {
	Group   string   `json:"group"`
	Members []string `json:"members"` // host/instance
	// Differences, by kind and name; empty when the nodes agree.
	Differences []Difference `json:"differences"`
}

// Difference is one directive, user or the CA on which the nodes differ.
type Difference struct {
	Kind string `json:"kind"` // directive, user, ca
	Name string `json:"name"`
	// Values per member; a secret or a user shows as "value 1", "value 2"
	// (which nodes share one), never the value or its digest.
	Values []NodeValue `json:"values"`
	// Odd are the members that do not hold the value most members hold
	// (every member on a tie).
	Odd []string `json:"odd"`
}

// NodeValue is one member's value.
type NodeValue struct {
	Instance string `json:"instance"`
	Value    string `json:"value"`
}

// crossNode compares the nodes of each group and adds a VK-090 finding to
// every odd node's report (a pass to the others; a node alone in its
// group in this run skips it), so the matrix, the counts, JUnit and SARIF
// show it like any rule.
func crossNode(instances []Instance) []Group {
	byGroup := map[string][]*Instance{}
	for i := range instances {
		in := &instances[i]
		if in.Report == nil || in.Report.Fleet == nil {
			continue
		}
		byGroup[in.Report.Fleet.Group] = append(byGroup[in.Report.Fleet.Group], in)
	}
	groups := []Group{}
	for _, name := range sortedKeys(byGroup) {
		members := byGroup[name]
		if len(members) < 2 {
			skip(members[0].Report, "no other node of its group ("+name+") was audited in this run")
			continue
		}
		g := Group{Group: name, Differences: []Difference{}}
		for _, m := range members {
			g.Members = append(g.Members, m.Label())
		}
		if d := differences(members); d != nil {
			g.Differences = d
		}
		groups = append(groups, g)
		for _, m := range members {
			var notes []string
			for _, d := range g.Differences {
				if slices.Contains(d.Odd, m.Label()) {
					notes = append(notes, d.note(m.Label()))
				}
			}
			if len(notes) == 0 {
				m.Report.PassedRules = append(m.Report.PassedRules, CrossNodeID)
				m.Report.Summary.RulesPassed++
				continue
			}
			m.Report.AddFindings(policy.Finding{ID: CrossNodeID, Title: CrossNodeRule.Title, Severity: CrossNodeRule.Severity,
				Message:     fmt.Sprintf("differs from the other nodes of %s (%s): %s", name, strings.Join(others(g.Members, m.Label()), ", "), strings.Join(notes, "; ")),
				Remediation: CrossNodeRule.Remediation, Instance: m.Report.Instance})
		}
	}
	return groups
}

func skip(r *audit.Report, why string) {
	r.Skipped = append(r.Skipped, audit.Skipped{ID: CrossNodeID, Reason: why})
	r.Summary.RulesSkipped++
}

func others(all []string, me string) []string {
	return slices.DeleteFunc(slices.Clone(all), func(s string) bool { return s == me })
}

// differences lists every key on which the members' values are not all the
// same: settings, users (missing on some node, rules, passwords), the CA.
func differences(members []*Instance) []Difference {
	type getter func(f *audit.Fleet) (string, bool)
	var out []Difference
	add := func(kind, name string, secret bool, get getter) {
		vals := make([]NodeValue, len(members))
		distinct := map[string]int{}
		for i, m := range members {
			v, ok := get(m.Report.Fleet)
			if !ok {
				v = "(missing)"
			}
			vals[i] = NodeValue{Instance: m.Label(), Value: v}
			distinct[v]++
		}
		if len(distinct) < 2 {
			return
		}
		d := Difference{Kind: kind, Name: name, Values: vals}
		top := 0
		for _, n := range distinct {
			top = max(top, n)
		}
		var best []string
		for v, n := range distinct {
			if n == top {
				best = append(best, v)
			}
		}
		tie := len(best) > 1
		for _, v := range vals {
			if tie || v.Value != best[0] {
				d.Odd = append(d.Odd, v.Instance)
			}
		}
		if secret {
			d.Values = labelled(vals)
		}
		out = append(out, d)
	}
	names := map[string]bool{}
	users := map[string]bool{}
	for _, m := range members {
		for k := range m.Report.Fleet.Settings {
			names[k] = true
		}
		for k := range m.Report.Fleet.Users {
			users[k] = true
		}
	}
	for _, n := range sortedKeys(names) {
		secret := false
		for _, m := range members {
			secret = secret || strings.HasPrefix(m.Report.Fleet.Settings[n], audit.DigestPrefix)
		}
		add("directive", n, secret, func(f *audit.Fleet) (string, bool) { v, ok := f.Settings[n]; return v, ok })
	}
	for _, u := range sortedKeys(users) {
		add("user", u, true, func(f *audit.Fleet) (string, bool) {
			fu, ok := f.Users[u]
			return fu.Rules + "/" + fu.Passwords, ok
		})
	}
	add("ca", "tls-ca-cert-file", false, func(f *audit.Fleet) (string, bool) { return f.CA, f.CA != "" })
	return out
}

// labelled replaces secret values (digests) by "value 1", "value 2" in the
// order they first appear; "(missing)" and "" stay as they are.
func labelled(vals []NodeValue) []NodeValue {
	out := make([]NodeValue, len(vals))
	seen := map[string]string{}
	for i, v := range vals {
		label := v.Value
		if label != "(missing)" && label != "" {
			if seen[v.Value] == "" {
				seen[v.Value] = fmt.Sprintf("value %d", len(seen)+1)
			}
			label = seen[v.Value]
		} else if label == "" {
			label = "(empty)"
		}
		out[i] = NodeValue{Instance: v.Instance, Value: label}
	}
	return out
}

// note says, for one odd node, how it differs.
func (d Difference) note(me string) string {
	mine := ""
	var rest []string
	for _, v := range d.Values {
		if v.Instance == me {
			mine = v.Value
		} else if !slices.Contains(rest, v.Value) {
			rest = append(rest, v.Value)
		}
	}
	switch {
	case mine == "(missing)":
		return fmt.Sprintf("%s %s is missing here", d.Kind, d.Name)
	case len(rest) == 1 && rest[0] == "(missing)":
		return fmt.Sprintf("%s %s is only here", d.Kind, d.Name)
	case d.Kind == "user":
		return fmt.Sprintf("user %s differs (rules or password)", d.Name)
	case strings.HasPrefix(mine, "value ") || mine == "(empty)":
		return fmt.Sprintf("%s differs", d.Name)
	case d.Kind == "ca":
		return fmt.Sprintf("the CA here is %s, elsewhere %s", mine, strings.Join(rest, " / "))
	}
	return fmt.Sprintf("%s is %q here, %s elsewhere", d.Name, mine, quoteAll(rest))
}

func quoteAll(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, " / ")
}
