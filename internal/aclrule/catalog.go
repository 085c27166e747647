package aclrule

import (
	"fmt"
	"sort"
	"strings"
)

// Catalog is what a server knows: its commands (with subcommands, as
// COMMAND LIST prints them: "client|setname") and its ACL categories.
type Catalog struct {
	commands   map[string]bool
	containers map[string]bool
	categories map[string]bool
}

// NewCatalog builds a catalog from COMMAND LIST and ACL CAT replies.
func NewCatalog(commands, categories []string) *Catalog {
	c := &Catalog{commands: map[string]bool{}, containers: map[string]bool{}, categories: map[string]bool{}}
	for _, n := range commands {
		n = strings.ToLower(n)
		c.commands[n] = true
		if parent, _, ok := strings.Cut(n, "|"); ok {
			c.containers[parent] = true
		}
	}
	for _, n := range categories {
		c.categories[strings.ToLower(n)] = true
	}
	return c
}

// Categories lists the known categories, sorted.
func (c *Catalog) Categories() []string {
	out := make([]string, 0, len(c.categories))
	for n := range c.categories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// CheckCommand checks a command rule (+x, -x, +@cat, +x|sub) against the
// catalog. The error says what is unknown, in one clause.
func (c *Catalog) CheckCommand(rule string) error {
	if len(rule) < 2 || (rule[0] != '+' && rule[0] != '-') {
		return fmt.Errorf("a command rule starts with + or - (+@read, -@dangerous, +get, +client|setname)")
	}
	sign, target := rule[0], strings.ToLower(rule[1:])
	if cat, ok := strings.CutPrefix(target, "@"); ok {
		if cat == "all" || c.categories[cat] {
			return nil
		}
		return fmt.Errorf("unknown category %q (the server knows %s)", cat, strings.Join(c.Categories(), ", "))
	}
	parent, sub, hasSub := strings.Cut(target, "|")
	if !hasSub {
		if c.commands[target] {
			return nil
		}
		return fmt.Errorf("unknown command %q", target)
	}
	switch {
	case c.commands[target]:
		return nil
	case c.containers[parent]:
		return fmt.Errorf("unknown subcommand %q of command %q", sub, parent)
	case !c.commands[parent]:
		return fmt.Errorf("unknown command %q", parent)
	case sub == "":
		return fmt.Errorf("empty first argument after %q", parent+"|")
	case sign == '-':
		return fmt.Errorf("a first-argument rule cannot be negative: %q has no subcommands, so only +%s|ARG is possible", parent, parent)
	}
	return nil // +select|0: a first-argument rule
}

// Allows reports whether the selector lets the command run (cmd like
// "acl|setuser"; cats its categories, without @), evaluating the rules in
// order the way the server builds its command bitmap.
func (s *Selector) Allows(cmd string, cats []string) bool {
	cmd = strings.ToLower(cmd)
	parent, _, _ := strings.Cut(cmd, "|")
	allowed := s.AllCommands
	for _, r := range s.Commands {
		t := r[1:]
		match := false
		if cat, ok := strings.CutPrefix(t, "@"); ok {
			for _, c := range cats {
				if strings.EqualFold(c, cat) {
					match = true
				}
			}
		} else {
			match = t == cmd || t == parent
		}
		if match {
			allowed = r[0] == '+'
		}
	}
	return allowed
}

// Allows reports whether the root selector or any selector of the user lets
// the command run (for commands that take no keys or channels).
func (u *User) Allows(cmd string, cats []string) bool {
	if u.Root.Allows(cmd, cats) {
		return true
	}
	for i := range u.Selectors {
		if u.Selectors[i].Allows(cmd, cats) {
			return true
		}
	}
	return false
}

// Rights: what a user may do at most, decided by the same model as above
// (the audit asks; it does not parse rules itself).

// AllSelectors returns the root selector and the (…) selectors: a command
// runs when any one of them allows it.
func (u *User) AllSelectors() []*Selector {
	out := []*Selector{&u.Root}
	for i := range u.Selectors {
		out = append(out, &u.Selectors[i])
	}
	return out
}

// EveryKey reports whether the selector reaches every key, to read or to
// write: ~* (allkeys), or a pattern of stars only with any permission
// (%R~*, %W~*, ~**).
func (s *Selector) EveryKey() bool {
	if s.AllKeys {
		return true
	}
	for _, k := range s.Keys {
		if k.Pattern != "" && strings.Trim(k.Pattern, "*") == "" {
			return true
		}
	}
	return false
}

// EveryCommand reports whether the selector allows every command: +@all
// with nothing taken back after it.
func (s *Selector) EveryCommand() bool {
	if !s.AllCommands {
		return false
	}
	for _, r := range s.Commands {
		if r[0] == '-' {
			return false
		}
	}
	return true
}

// DangerousAllowed returns, sorted, the commands of the server's @dangerous
// category (Valkey 8.0's, see dangerous.go) that the selector lets run. Keys
// are not considered: a selector that allows FLUSHALL runs it without any.
func (s *Selector) DangerousAllowed() []string {
	var out []string
	for cmd, cats := range dangerousCommands {
		if s.Allows(cmd, cats) {
			out = append(out, cmd)
		}
	}
	sort.Strings(out)
	return out
}
