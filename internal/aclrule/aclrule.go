// Package aclrule models Valkey ACL users the way the server does: it applies
// ACL SETUSER rules to a user in order, with the server's normalisation
// (later rules for the same command replace earlier ones, allkeys is ~*,
// %RW~ is ~, case of commands and categories folded), describes a user in
// the server's own ACL LIST form, compares users by meaning, evaluates
// whether a user may run a given command, and checks command rules against
// the commands and categories a server knows.
package aclrule

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/valkeyops/secure/internal/conffile"
)

// Perm is the access a key pattern grants.
type Perm uint8

// Key permissions; a plain ~pattern is PermRW.
const (
	PermR  Perm = 1
	PermW  Perm = 2
	PermRW      = PermR | PermW
)

// KeyPattern is one key pattern of a selector.
type KeyPattern struct {
	Pattern string
	Perm    Perm
}

// String renders the pattern as the server prints it.
func (k KeyPattern) String() string {
	switch k.Perm {
	case PermR:
		return "%R~" + k.Pattern
	case PermW:
		return "%W~" + k.Pattern
	}
	return "~" + k.Pattern
}

// Selector is a set of key, channel and command permissions: the root
// selector of a user, or one of its (…) selectors.
type Selector struct {
	AllKeys     bool
	Keys        []KeyPattern // in the order added; empty when AllKeys
	AllChannels bool
	Channels    []string // patterns without the leading &; empty when AllChannels
	AllCommands bool
	Commands    []string // "+get", "-@dangerous", "+client|setname": lowercase, in effect order
}

// User is the state of one ACL user.
type User struct {
	Enabled      bool
	NoPass       bool
	SkipSanitize bool     // skip-sanitize-payload (the server default is sanitize-payload)
	Hashes       []string // SHA-256 hex, lowercase, in the order added
	Root         Selector
	Selectors    []Selector
}

// NewUser returns a user in the state `ACL SETUSER name reset` leaves:
// off, no password, no keys, no channels, no commands, no selectors.
func NewUser() *User { return &User{} }

// Sentinel errors of Apply, wrapped with the rule's detail.
var (
	ErrSyntax     = errors.New("not an ACL rule")
	ErrAfterAll   = errors.New("a pattern after the * pattern has no effect")
	ErrBadHash    = errors.New("not a SHA-256 hash: expected 64 hexadecimal characters")
	ErrNoSuchPass = errors.New("the password to remove is not set")
	ErrSpaces     = errors.New("contains whitespace or a NUL byte")
	ErrEmpty      = errors.New("empty pattern")
	ErrPipes      = errors.New("a command rule names a command, a subcommand (+client|setname) or one first argument (+select|0), so it has at most one |")
)

// ErrQuote is returned by CheckReadBack.
var ErrQuote = errors.New("contains a quote (\" or '), which the server writes unquoted to valkey.conf and the aclfile and then cannot read back (Unbalanced quotes)")

// CheckReadBack refuses a user name or a key or channel pattern that the
// server's config and aclfile parser (sdssplitargs) cannot read back as the
// same single word once the server has written it unquoted.
func CheckReadBack(s string) error {
	if strings.ContainsAny(s, "\"'") {
		return ErrQuote
	}
	return nil
}

// ErrParen is returned by CheckReadBackInSelector.
var ErrParen = errors.New("ends with ), which ends the selector early when the server reads valkey.conf or the aclfile, so it could not start again")

// CheckReadBackInSelector is CheckReadBack for a pattern or command rule
// inside a (…) selector: reading a user line, the server joins the words of
// a selector up to the first word that ends with ")".
func CheckReadBackInSelector(s string) error {
	if err := CheckReadBack(s); err != nil {
		return err
	}
	if strings.HasSuffix(s, ")") {
		return ErrParen
	}
	return nil
}

// HashPassword returns the SHA-256 hex digest the server stores for a password.
func HashPassword(password string) string {
	sum := sha256.Sum256([]byte(password))
	return hex.EncodeToString(sum[:])
}

// ValidHash reports whether h is 64 hexadecimal characters (either case).
func ValidHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

func hasSpace(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return isASCIISpace(r) || r == 0 }) >= 0
}

// isASCIISpace is the server's idea of a separator (isspace in the C
// locale): other control characters and Unicode spaces are part of a pattern,
// and ACL LIST prints them as they are.
func isASCIISpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
}

// Apply applies one ACL SETUSER argument to the user, as the server would.
// Errors never quote password material.
func (u *User) Apply(rule string) error {
	switch strings.ToLower(rule) {
	case "on":
		u.Enabled = true
		return nil
	case "off":
		u.Enabled = false
		return nil
	case "nopass":
		u.NoPass, u.Hashes = true, nil
		return nil
	case "resetpass":
		u.NoPass, u.Hashes = false, nil
		return nil
	case "sanitize-payload":
		u.SkipSanitize = false
		return nil
	case "skip-sanitize-payload":
		u.SkipSanitize = true
		return nil
	case "reset":
		*u = User{}
		return nil
	case "clearselectors":
		u.Selectors = nil
		return nil
	}
	if rule == "" {
		return ErrSyntax
	}
	switch rule[0] {
	case '>':
		u.addHash(HashPassword(rule[1:]))
		return nil
	case '#':
		h := rule[1:]
		if len(h) != 64 || strings.ToLower(h) != h || !ValidHash(h) {
			return ErrBadHash
		}
		u.addHash(h)
		return nil
	case '<', '!':
		h := rule[1:]
		if rule[0] == '<' {
			h = HashPassword(h)
		}
		i := slices.Index(u.Hashes, h)
		if i < 0 {
			return ErrNoSuchPass
		}
		u.Hashes = slices.Delete(u.Hashes, i, i+1)
		return nil
	case '(':
		if !strings.HasSuffix(rule, ")") {
			return ErrSyntax
		}
		return u.addSelector(splitSetuser(rule[1 : len(rule)-1]))
	}
	return u.Root.Apply(rule)
}

// splitSetuser splits the inside of a (…) selector given to ACL SETUSER (or
// read from a user line of valkey.conf or the aclfile) as the server does,
// with sdssplitargs: quotes group and are removed, so (~'x' +get) is the key
// pattern x. Unbalanced quotes make sdssplitargs fail, and the server then
// creates an empty selector (no keys, channels or commands): so does this.
func splitSetuser(inner string) []string {
	args, err := conffile.SplitArgs(inner)
	if err != nil {
		return nil
	}
	return args
}

func (u *User) addSelector(rules []string) error {
	var s Selector
	for _, r := range rules {
		if err := s.Apply(r); err != nil {
			return err
		}
	}
	u.Selectors = append(u.Selectors, s)
	return nil
}

func (u *User) addHash(h string) {
	u.NoPass = false
	if !slices.Contains(u.Hashes, h) {
		u.Hashes = append(u.Hashes, h)
	}
}

// Apply applies one key, channel or command rule to the selector.
func (s *Selector) Apply(rule string) error {
	switch strings.ToLower(rule) {
	case "allkeys":
		s.AllKeys, s.Keys = true, nil
		return nil
	case "resetkeys":
		s.AllKeys, s.Keys = false, nil
		return nil
	case "allchannels":
		s.AllChannels, s.Channels = true, nil
		return nil
	case "resetchannels":
		s.AllChannels, s.Channels = false, nil
		return nil
	case "allcommands", "+@all":
		s.AllCommands, s.Commands = true, nil
		return nil
	case "nocommands", "-@all":
		s.AllCommands, s.Commands = false, nil
		return nil
	}
	if hasSpace(rule) {
		return ErrSpaces
	}
	if p, perm, ok := splitKeyRule(rule); ok {
		return s.addKey(p, perm)
	}
	if strings.HasPrefix(rule, "%") {
		return fmt.Errorf("%w: a key rule is ~pattern, %%R~pattern, %%W~pattern or %%RW~pattern", ErrSyntax)
	}
	if strings.HasPrefix(rule, "&") {
		return s.addChannel(rule[1:])
	}
	if rule[0] == '+' || rule[0] == '-' {
		if len(rule) == 1 {
			return ErrSyntax
		}
		if strings.Count(rule, "|") > 1 {
			// The server splits at the last | and looks up the rest as a
			// command: get|key1 and client|setname|x are no commands.
			return ErrPipes
		}
		s.addCommand(rule[0], strings.ToLower(rule[1:]))
		return nil
	}
	return ErrSyntax
}

// splitKeyRule recognises ~p, %R~p, %W~p, %RW~p (and %WR~p).
func splitKeyRule(rule string) (string, Perm, bool) {
	if strings.HasPrefix(rule, "~") {
		return rule[1:], PermRW, true
	}
	if !strings.HasPrefix(rule, "%") {
		return "", 0, false
	}
	flags, pattern, ok := strings.Cut(rule[1:], "~")
	if !ok || flags == "" {
		return "", 0, false
	}
	var perm Perm
	for _, c := range strings.ToUpper(flags) {
		switch c {
		case 'R':
			perm |= PermR
		case 'W':
			perm |= PermW
		default:
			return "", 0, false
		}
	}
	return pattern, perm, true
}

func (s *Selector) addKey(pattern string, perm Perm) error {
	if s.AllKeys {
		return ErrAfterAll
	}
	if pattern == "*" && perm == PermRW {
		s.AllKeys, s.Keys = true, nil
		return nil
	}
	for i := range s.Keys {
		if s.Keys[i].Pattern == pattern {
			s.Keys[i].Perm |= perm
			if pattern == "*" && s.Keys[i].Perm == PermRW {
				s.AllKeys, s.Keys = true, nil
			}
			return nil
		}
	}
	s.Keys = append(s.Keys, KeyPattern{pattern, perm})
	return nil
}

func (s *Selector) addChannel(pattern string) error {
	if s.AllChannels {
		return ErrAfterAll
	}
	if pattern == "*" {
		s.AllChannels, s.Channels = true, nil
		return nil
	}
	if !slices.Contains(s.Channels, pattern) {
		s.Channels = append(s.Channels, pattern)
	}
	return nil
}

// addCommand records a command rule the way the server keeps them: a rule
// replaces every earlier rule for the same target (a whole command also
// replaces the rules for its subcommands) and goes to the end.
func (s *Selector) addCommand(sign byte, target string) {
	parent := !strings.HasPrefix(target, "@") && !strings.Contains(target, "|")
	s.Commands = slices.DeleteFunc(s.Commands, func(r string) bool {
		t := r[1:]
		return t == target || (parent && strings.HasPrefix(t, target+"|"))
	})
	s.Commands = append(s.Commands, string(sign)+target)
}

// Tokens renders the selector as ACL SETUSER arguments, in the server's order.
func (s *Selector) Tokens() []string {
	var out []string
	if s.AllKeys {
		out = append(out, "~*")
	}
	for _, k := range s.Keys {
		out = append(out, k.String())
	}
	if s.AllChannels {
		out = append(out, "&*")
	} else {
		out = append(out, "resetchannels")
		for _, c := range s.Channels {
			out = append(out, "&"+c)
		}
	}
	if s.AllCommands {
		out = append(out, "+@all")
	} else {
		out = append(out, "-@all")
	}
	return append(out, s.Commands...)
}

// KeysText, ChannelsText and CommandsText describe one part of a selector
// for people (the server's spelling; "(none)" when empty).
func (s *Selector) KeysText() string {
	if s.AllKeys {
		return "~*"
	}
	parts := make([]string, len(s.Keys))
	for i, k := range s.Keys {
		parts[i] = k.String()
	}
	return orNone(parts)
}

func (s *Selector) ChannelsText() string {
	if s.AllChannels {
		return "&*"
	}
	parts := make([]string, len(s.Channels))
	for i, c := range s.Channels {
		parts[i] = "&" + c
	}
	return orNone(parts)
}

func (s *Selector) CommandsText() string {
	first := "-@all"
	if s.AllCommands {
		first = "+@all"
	}
	return strings.Join(append([]string{first}, s.Commands...), " ")
}

func orNone(parts []string) string {
	if len(parts) == 0 {
		return "(none)"
	}
	return strings.Join(parts, " ")
}

// String renders a (…) selector as the server prints it.
func (s *Selector) String() string { return "(" + strings.Join(s.Tokens(), " ") + ")" }

// canonical is an order-independent rendering for comparison: key and
// channel patterns sorted (their order has no meaning), command rules in
// order (it has).
func (s *Selector) canonical() string {
	keys := make([]string, len(s.Keys))
	for i, k := range s.Keys {
		keys[i] = k.String()
	}
	slices.Sort(keys)
	chans := slices.Clone(s.Channels)
	slices.Sort(chans)
	return fmt.Sprintf("%v|%q|%v|%q|%s", s.AllKeys, keys, s.AllChannels, chans, s.CommandsText())
}

// Flags renders the user's flags as the server prints them.
func (u *User) Flags() string {
	f := []string{"off"}
	if u.Enabled {
		f[0] = "on"
	}
	if u.NoPass {
		f = append(f, "nopass")
	}
	if u.SkipSanitize {
		f = append(f, "skip-sanitize-payload")
	} else {
		f = append(f, "sanitize-payload")
	}
	return strings.Join(f, " ")
}

// Rules renders the user as ACL SETUSER arguments to follow `reset`, in
// the order and spelling of the server's ACL LIST. They hold the password
// hashes: never print them.
func (u *User) Rules() []string {
	out := strings.Fields(u.Flags())
	for _, h := range u.Hashes {
		out = append(out, "#"+h)
	}
	out = append(out, u.Root.Tokens()...)
	for i := range u.Selectors {
		out = append(out, u.Selectors[i].String())
	}
	return out
}

// SelectorsText describes the (…) selectors for people.
func (u *User) SelectorsText() string {
	parts := make([]string, len(u.Selectors))
	for i := range u.Selectors {
		parts[i] = u.Selectors[i].String()
	}
	return orNone(parts)
}

// Equal reports whether two users grant the same: same flags, same set of
// password hashes, same root selector and the same selectors in any order.
func (u *User) Equal(o *User) bool {
	if u.Enabled != o.Enabled || u.NoPass != o.NoPass || u.SkipSanitize != o.SkipSanitize {
		return false
	}
	a, b := slices.Clone(u.Hashes), slices.Clone(o.Hashes)
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) || u.Root.canonical() != o.Root.canonical() || len(u.Selectors) != len(o.Selectors) {
		return false
	}
	sa, sb := make([]string, len(u.Selectors)), make([]string, len(o.Selectors))
	for i := range u.Selectors {
		sa[i], sb[i] = u.Selectors[i].canonical(), o.Selectors[i].canonical()
	}
	slices.Sort(sa)
	slices.Sort(sb)
	return slices.Equal(sa, sb)
}

// Clone returns a deep copy.
func (u *User) Clone() *User {
	c := *u
	c.Hashes = slices.Clone(u.Hashes)
	c.Root = u.Root.clone()
	c.Selectors = make([]Selector, len(u.Selectors))
	for i := range u.Selectors {
		c.Selectors[i] = u.Selectors[i].clone()
	}
	return &c
}

func (s Selector) clone() Selector {
	s.Keys = slices.Clone(s.Keys)
	s.Channels = slices.Clone(s.Channels)
	s.Commands = slices.Clone(s.Commands)
	return s
}

// SplitRules splits the rules part of an ACL LIST line into SETUSER
// arguments: on spaces, except inside a (…) selector.
//
// A ")" may end a word inside a selector (the server prints the pattern of
// "(&a) +get)" as "(resetchannels &a) -@all +get)"), so a selector is not
// closed by the first word ending with ")". The server prints the root rules
// first and the selectors last, and no rule inside a selector starts with
// "(": a selector runs from a word starting with "(" to the first word
// ending with ")" that is followed by another selector or by the end of the
// line. Failing that (not ACL LIST output) it ends at the first word ending
// with ")", like the server's own merging of selector arguments in an ACL
// file, or else at the end of the line.
func SplitRules(s string) []string {
	type span struct{ start, end int }
	var words []span
	for i := 0; i < len(s); {
		if s[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] != ' ' {
			j++
		}
		words = append(words, span{i, j})
		i = j
	}
	var out []string
	for i := 0; i < len(words); i++ {
		if s[words[i].start] != '(' {
			out = append(out, s[words[i].start:words[i].end])
			continue
		}
		end := -1
		for j := i; j < len(words) && (j == i || s[words[j].start] != '('); j++ {
			if s[words[j].end-1] == ')' && (j+1 == len(words) || s[words[j+1].start] == '(') {
				end = j
				break
			}
		}
		for j := i; end < 0 && j < len(words); j++ {
			if s[words[j].end-1] == ')' {
				end = j
			}
		}
		if end < 0 { // unterminated: the rest, which Apply rejects
			end = len(words) - 1
		}
		out = append(out, s[words[i].start:words[end].end])
		i = end
	}
	return out
}

// ParseListLine parses one line of ACL LIST ("user NAME rules…").
func ParseListLine(line string) (string, *User, error) {
	rest, ok := strings.CutPrefix(line, "user ")
	if !ok {
		return "", nil, fmt.Errorf("unexpected ACL LIST line: it does not start with \"user \"")
	}
	name, rules, _ := strings.Cut(rest, " ")
	u := NewUser()
	for _, r := range SplitRules(rules) {
		var err error
		if strings.HasPrefix(r, "(") && strings.HasSuffix(r, ")") {
			// ACL LIST prints selector patterns as they are, unquoted.
			err = u.addSelector(strings.FieldsFunc(r[1:len(r)-1], isASCIISpace))
		} else {
			err = u.Apply(r)
		}
		if err != nil {
			return name, nil, fmt.Errorf("unexpected rule in ACL LIST for user %q: %w", name, err)
		}
	}
	return name, u, nil
}

// MergeSelectors joins the words of a user line read from valkey.conf or the
// aclfile into ACL SETUSER arguments as the server does
// (ACLMergeSelectorArguments): a word starting with "(" and not ending with
// ")" opens a selector, which takes the following words, joined by spaces, up
// to and including the first one ending with ")".
func MergeSelectors(words []string) ([]string, error) {
	var out []string
	open := -1
	var sel string
	for i, w := range words {
		if open < 0 && strings.HasPrefix(w, "(") && !strings.HasSuffix(w, ")") {
			open, sel = i, w
			continue
		}
		if open >= 0 {
			sel += " " + w
			if strings.HasSuffix(w, ")") {
				out = append(out, sel)
				open = -1
			}
			continue
		}
		out = append(out, w)
	}
	if open >= 0 {
		return nil, fmt.Errorf("%w: the selector %q is not closed", ErrSyntax, words[open])
	}
	return out, nil
}

// FromFileLine builds the user a `user NAME rules...` line of valkey.conf or
// the aclfile defines, from the words after "user" (already split with the
// config parser): the name and the rules, applied in order to a new user.
func FromFileLine(words []string) (string, *User, error) {
	if len(words) == 0 {
		return "", nil, fmt.Errorf("%w: a user line needs a name", ErrSyntax)
	}
	rules, err := MergeSelectors(words[1:])
	if err != nil {
		return words[0], nil, err
	}
	u := NewUser()
	for _, r := range rules {
		if err := u.Apply(r); err != nil {
			if strings.ContainsAny(r[:1], "><#!") {
				r = r[:1] + "(secret)" // never print a password or a hash
			}
			return words[0], nil, fmt.Errorf("rule %q: %w", r, err)
		}
	}
	return words[0], u, nil
}
