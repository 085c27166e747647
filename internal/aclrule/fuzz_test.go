package aclrule

import (
	"slices"
	"strings"
	"testing"
)

// same reports whether two users are identical, order included.
func same(a, b *User) bool { return a.Equal(b) && slices.Equal(a.Rules(), b.Rules()) }

// FuzzRules applies arbitrary ACL SETUSER arguments (one per line of the
// input) to a fresh user and checks the model's round trips:
//   - a rejected rule leaves the user unchanged (and nothing panics);
//   - the ACL LIST form (Rules) read back with ParseListLine is the same user
//     and renders to the very same rules (normalisation is idempotent);
//   - Rules applied as SETUSER arguments after reset give the same user;
//   - Clone and Equal agree with the user itself.
func FuzzRules(f *testing.F) {
	for _, tc := range ruleCases {
		f.Add(strings.Join(tc.rules, "\n"))
		f.Add(tc.want) // one line: a single (mostly rejected) rule
		f.Add(strings.Join(SplitRules(tc.want), "\n"))
	}
	for _, s := range []string{
		"on\n>p w\n>p w\n<p w\n>secret",
		"#" + hashP1 + "\n!" + hashP1 + "\n#" + strings.ToUpper(hashP1),
		"nopass\n>x\nresetpass\nskip-sanitize-payload\nsanitize-payload",
		"%R~*\n%W~*\n~a\n%rw~b\n%Wr~c\n%X~d\n%~e\n%R~",
		"~\n&\n~a)b\n&x(y\n+x)y\n-@all)",
		"allkeys\n~a\n&*\n&b\nresetkeys\nresetchannels\n~c",
		"+client|kill\n+CLIENT\n-client|kill\n+select|0\n+@READ\n-@read\n+|\n+a|\n+a",
		"allcommands\n-get\nnocommands\n+get\n+@all\n-@ALL",
		"(~a +get)\n(%R~b &c -@all +@read)\n()\n( )\nclearselectors\n(allkeys allchannels allcommands)",
		"(~a\n(on)\n(~a b)\n(\t)\n(~\u00a0)\n(+)",
		"reset\non\nRESET\nOFF\nON",
		"~a\u00a0b\n&\u0085\n+\xff\n~\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		if len(input) > 1<<14 {
			return
		}
		u := NewUser()
		for _, r := range strings.Split(input, "\n") {
			before := u.Clone()
			if err := u.Apply(r); err != nil {
				if !same(before, u) {
					t.Fatalf("rejected rule %q (%v) changed the user: %+v -> %+v", r, err, before, u)
				}
			}
		}
		// Reading must not panic either.
		_ = u.Allows("client|kill", []string{"admin", "dangerous"})
		_, _, _ = u.Flags(), u.SelectorsText(), u.Root.KeysText()+u.Root.ChannelsText()+u.Root.CommandsText()

		if !u.Equal(u) || !same(u, u.Clone()) {
			t.Fatalf("user is not equal to itself or its clone: %+v", u)
		}

		rules := u.Rules()
		line := "user t " + strings.Join(rules, " ")
		name, back, err := ParseListLine(line)
		if err != nil {
			t.Fatalf("ParseListLine(%q): %v", line, err)
		}
		if name != "t" {
			t.Fatalf("ParseListLine(%q) name %q", line, name)
		}
		if !u.Equal(back) {
			t.Fatalf("ACL LIST round trip changed the user:\n%+v\n%+v\nline %q", u, back, line)
		}
		if again := back.Rules(); !slices.Equal(again, rules) {
			t.Fatalf("normalisation is not idempotent:\n%q\n%q", rules, again)
		}

		// The rules, as SETUSER arguments after reset, rebuild the user.
		re := NewUser()
		for _, r := range rules {
			if err := re.Apply(r); err != nil {
				t.Fatalf("rendered rule %q rejected: %v (rules %q)", r, err, rules)
			}
		}
		if !u.Equal(re) || !slices.Equal(re.Rules(), rules) {
			t.Fatalf("SETUSER round trip changed the user:\n%q\n%q", rules, re.Rules())
		}
	})
}
