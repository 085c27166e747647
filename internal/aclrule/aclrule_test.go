package aclrule

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

const hashP1 = "f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a" // sha256("p1")

// ruleCases are rule sequences (after reset) and the ACL LIST rules the
// server prints for them. TestAgainstServer checks every "want" against a
// real valkey-server, so the model cannot drift from the server unnoticed.
var ruleCases = []struct {
	name  string
	rules []string
	want  string
}{
	{"nothing", nil, "off sanitize-payload resetchannels -@all"},
	{"duplicate keys", []string{"~a", "~b", "~a"}, "off sanitize-payload ~a ~b resetchannels -@all"},
	{"R and W make RW", []string{"%R~a", "%W~a"}, "off sanitize-payload ~a resetchannels -@all"},
	{"RW is plain", []string{"%RW~a", "%WR~b"}, "off sanitize-payload ~a ~b resetchannels -@all"},
	{"read only stays", []string{"%R~a", "%W~b", "%R~b"}, "off sanitize-payload %R~a ~b resetchannels -@all"},
	{"allkeys replaces patterns", []string{"~a", "allkeys"}, "off sanitize-payload ~* resetchannels -@all"},
	{"~* is allkeys", []string{"~a", "~*"}, "off sanitize-payload ~* resetchannels -@all"},
	{"%R~* is not allkeys", []string{"%R~*"}, "off sanitize-payload %R~* resetchannels -@all"},
	{"channels", []string{"&a", "&b", "&a"}, "off sanitize-payload resetchannels &a &b -@all"},
	{"allchannels", []string{"&a", "&*"}, "off sanitize-payload &* -@all"},
	{"later rule wins and moves", []string{"+@read", "-get", "+@read"}, "off sanitize-payload resetchannels -@all -get +@read"},
	{"minus replaces plus", []string{"+@read", "-@read"}, "off sanitize-payload resetchannels -@all -@read"},
	{"case folded", []string{"+GET", "+@READ", "+Client|SetName"}, "off sanitize-payload resetchannels -@all +get +@read +client|setname"},
	{"-@all clears", []string{"+get", "-@all", "+set"}, "off sanitize-payload resetchannels -@all +set"},
	{"allcommands", []string{"allcommands", "-get"}, "off sanitize-payload resetchannels +@all -get"},
	{"nocommands", []string{"allcommands", "nocommands", "+get"}, "off sanitize-payload resetchannels -@all +get"},
	{"command replaces its subcommands", []string{"+client|setname", "+select|0", "+client", "+select"}, "off sanitize-payload resetchannels -@all +client +select"},
	{"subcommand after command stays", []string{"+client", "-client|kill"}, "off sanitize-payload resetchannels -@all +client -client|kill"},
	{"on", []string{"off", "on"}, "on sanitize-payload resetchannels -@all"},
	{"passwords", []string{">p1", ">p1", "#" + hashP1}, "off sanitize-payload #" + hashP1 + " resetchannels -@all"},
	{"nopass clears passwords", []string{">p1", "nopass"}, "off nopass sanitize-payload resetchannels -@all"},
	{"password clears nopass", []string{"nopass", ">p1"}, "off sanitize-payload #" + hashP1 + " resetchannels -@all"},
	{"remove password", []string{">p1", ">p2", "<p2"}, "off sanitize-payload #" + hashP1 + " resetchannels -@all"},
	{"skip sanitize", []string{"skip-sanitize-payload"}, "off skip-sanitize-payload resetchannels -@all"},
	{"selectors", []string{"~a*", "+get", "(~b* +set)", "(%R~c* +@read -keys &x)"},
		"off sanitize-payload ~a* resetchannels -@all +get (~b* resetchannels -@all +set) (%R~c* resetchannels &x -@all +@read -keys)"},
	{"parenthesis in selector patterns", []string{"(&a) +get)", "(~a)b %R~c) &x(y +set)"},
		"off sanitize-payload resetchannels -@all (resetchannels &a) -@all +get) (~a)b %R~c) resetchannels &x(y -@all +set)"},
	{"clearselectors", []string{"(~a +get)", "clearselectors", "(+@all)"}, "off sanitize-payload resetchannels -@all (resetchannels +@all)"},
	// Inside a selector the server splits with sdssplitargs: quotes group
	// and go; unbalanced ones leave an empty selector.
	{"quotes in a selector are removed", []string{`(~'x' &"y" +get)`}, "off sanitize-payload resetchannels -@all (~x resetchannels &y -@all +get)"},
	{"unbalanced quote empties a selector", []string{`(~"x +get)`}, "off sanitize-payload resetchannels -@all (resetchannels -@all)"},
	{"quotes outside selectors are kept", []string{`~'x'`}, "off sanitize-payload ~'x' resetchannels -@all"},
}

// refusedCases are ACL SETUSER arguments the model refuses;
// TestRefusedLikeTheServer checks that the server refuses each too.
var refusedCases = []struct {
	rules []string
	err   error
}{
	{[]string{"+get|key1|key2"}, ErrPipes},
	{[]string{"+client|setname|x"}, ErrPipes},
	{[]string{"-get|a|b"}, ErrPipes},
	{[]string{"(+get|a|b)"}, ErrPipes},
	{[]string{"~a b"}, ErrSpaces},
	{[]string{"%X~a"}, ErrSyntax},
	{[]string{"allkeys", "~a"}, ErrAfterAll},
}

func build(t *testing.T, rules []string) *User {
	t.Helper()
	u := NewUser()
	for _, r := range rules {
		require.NoError(t, u.Apply(r), r)
	}
	return u
}

func TestModel(t *testing.T) {
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			u := build(t, tc.rules)
			assert.Equal(t, tc.want, strings.Join(u.Rules(), " "))
			// The printed form read back is the same user (a fixed point).
			_, back, err := ParseListLine("user t " + tc.want)
			require.NoError(t, err)
			assert.True(t, u.Equal(back))
			assert.Equal(t, tc.want, strings.Join(back.Rules(), " "))
		})
	}
}

// TestAgainstServer runs every case on a real server: what the server
// prints must be what the model predicts.
func TestAgainstServer(t *testing.T) {
	srv := testserver.Start(t)
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"ACL", "SETUSER", "t", "reset"}, tc.rules...)
			require.Equal(t, "OK", srv.CLI(args...))
			var line string
			for _, l := range strings.Split(srv.CLI("ACL", "LIST"), "\n") {
				if strings.HasPrefix(l, "user t ") {
					line = l
				}
			}
			assert.Equal(t, "user t "+tc.want, line)
		})
	}
}

// applyAll applies rules to a new user and returns the first error.
func applyAll(rules []string) error {
	u := NewUser()
	for _, r := range rules {
		if err := u.Apply(r); err != nil {
			return err
		}
	}
	return nil
}

func TestRefusedLikeTheServer(t *testing.T) {
	srv := testserver.Start(t)
	for _, tc := range refusedCases {
		t.Run(strings.Join(tc.rules, " "), func(t *testing.T) {
			err := applyAll(tc.rules)
			assert.ErrorIs(t, err, tc.err)
			out, _ := srv.CLIErr(append([]string{"ACL", "SETUSER", "refused"}, tc.rules...)...)
			assert.Contains(t, out, "ERR Error in ACL SETUSER modifier", "the server accepted %q", tc.rules)
		})
	}
}

func TestCheckReadBack(t *testing.T) {
	for _, s := range []string{`app"1`, "it's:*", `"news"`} {
		assert.ErrorIs(t, CheckReadBack(s), ErrQuote, s)
	}
	for _, s := range []string{"app", `a\b`, "{x}:*", "a(b", "ключ", "#x"} {
		assert.NoError(t, CheckReadBack(s), s)
	}
}

func TestEqualByMeaning(t *testing.T) {
	tests := []struct {
		name string
		a, b []string
		same bool
	}{
		{"allkeys is ~*", []string{"allkeys"}, []string{"~*"}, true},
		{"allcommands is +@all", []string{"allcommands"}, []string{"+@all"}, true},
		{"%RW~ is ~", []string{"%RW~x"}, []string{"~x"}, true},
		{"key order", []string{"~a", "~b"}, []string{"~b", "~a"}, true},
		{"channel order", []string{"&a", "&b"}, []string{"&b", "&a"}, true},
		{"selector order", []string{"(~a)", "(~b)"}, []string{"(~b)", "(~a)"}, true},
		{"password order", []string{">p1", ">p2"}, []string{">p2", ">p1"}, true},
		{"password by hash", []string{">p1"}, []string{"#" + hashP1}, true},
		{"command order matters", []string{"+@read", "-get"}, []string{"-get", "+@read"}, false},
		{"read vs rw", []string{"%R~a"}, []string{"~a"}, false},
		{"different password", []string{">p1"}, []string{">p2"}, false},
		{"enabled", []string{"on"}, []string{"off"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.same, build(t, tc.a).Equal(build(t, tc.b)))
		})
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		rules []string
		err   error
	}{
		{[]string{"allkeys", "~a"}, ErrAfterAll},
		{[]string{"&*", "&a"}, ErrAfterAll},
		{[]string{"#zz"}, ErrBadHash},
		{[]string{"#" + strings.ToUpper(hashP1)}, ErrBadHash},
		{[]string{"<nope"}, ErrNoSuchPass},
		{[]string{"%X~a"}, ErrSyntax},
		{[]string{"~a b"}, ErrSpaces},
		{[]string{"get"}, ErrSyntax},
		{[]string{"+"}, ErrSyntax},
		{[]string{"(~a"}, ErrSyntax},
		{[]string{"(on)"}, ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.rules, " "), func(t *testing.T) {
			err := applyAll(tc.rules)
			assert.True(t, errors.Is(err, tc.err), "got %v", err)
		})
	}
}

func TestSplitRules(t *testing.T) {
	assert.Equal(t, []string{"on", "~a", "(~b resetchannels -@all +set)", "(+@all)"},
		SplitRules("on ~a (~b resetchannels -@all +set) (+@all)"))
	// A ")" ends a selector word only before another selector or the end.
	assert.Equal(t, []string{"on", "(resetchannels &0) -@all)", "(~a)b resetchannels -@all +get)"},
		SplitRules("on  (resetchannels &0) -@all) (~a)b resetchannels -@all +get)"))
	// Otherwise the server's rule for ACL files: the first word ending with ")".
	assert.Equal(t, []string{"(~a)", "on", "(~b)"}, SplitRules("(~a) on (~b)"))
	assert.Equal(t, []string{"(~a (~b)", "(~c"}, SplitRules("(~a (~b) (~c"))
	name, u, err := ParseListLine("user x(y on sanitize-payload resetchannels -@all")
	require.NoError(t, err)
	assert.Equal(t, "x(y", name)
	assert.True(t, u.Enabled)
}

func TestCatalogAndAllows(t *testing.T) {
	c := NewCatalog([]string{"get", "set", "select", "client|setname", "client|kill", "acl|setuser", "acl|whoami"}, []string{"read", "admin", "dangerous", "slow"})
	for rule, want := range map[string]string{
		"+get":            "",
		"-@ADMIN":         "",
		"+@all":           "",
		"+client|setname": "",
		"+select|0":       "",
		"get":             "a command rule starts with + or -",
		"+gett":           `unknown command "gett"`,
		"+@reed":          `unknown category "reed" (the server knows admin, dangerous, read, slow)`,
		"+client|nosuch":  `unknown subcommand "nosuch" of command "client"`,
		"-select|0":       "a first-argument rule cannot be negative",
		"+nosuch|x":       `unknown command "nosuch"`,
	} {
		err := c.CheckCommand(rule)
		if want == "" {
			assert.NoError(t, err, rule)
		} else if assert.Error(t, err, rule) {
			assert.Contains(t, err.Error(), want, rule)
		}
	}
	cats := []string{"admin", "slow", "dangerous"}
	for rules, want := range map[string]bool{
		"":                             false,
		"+@all":                        true,
		"+@all -@dangerous":            false,
		"+@all -acl":                   false,
		"+@all -acl +acl|setuser":      true,
		"+@admin":                      true,
		"+@read":                       false,
		"+acl|whoami":                  false,
		"-@all +acl -acl|setuser":      false,
		"+@all -@admin (+acl|setuser)": true,
	} {
		u := NewUser()
		for _, r := range SplitRules(rules) {
			require.NoError(t, u.Apply(r))
		}
		assert.Equal(t, want, u.Allows("acl|setuser", cats), rules)
	}
}

// ACL LIST prints control characters and Unicode spaces inside patterns as
// they are (checked on valkey-server 8.0.1); reading them back must work,
// or one such user created by hand would stop every valkey_acl run.
func TestParseListLineKeepsOddPatternBytes(t *testing.T) {
	name, u, err := ParseListLine("user odd on nopass ~c\x01d resetchannels -@all +get (~a\u00a0b +get)")
	if err != nil {
		t.Fatal(err)
	}
	if name != "odd" || len(u.Root.Keys) != 1 || len(u.Selectors) != 1 || len(u.Selectors[0].Keys) != 1 {
		t.Fatalf("got %+v", u)
	}
}
