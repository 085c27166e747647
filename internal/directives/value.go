package directives

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/valkeyops/secure/internal/conffile"
)

// MaxValueLen bounds every value (all its words together): nothing the server
// takes comes near it, and a value of megabytes is a mistake or an attack.
const MaxValueLen = 64 << 10

// Value is a normalised value.
type Value struct {
	Canonical string   // comparable form: equal Canonical == the server treats them as equal
	Set       string   // the string to send with CONFIG SET (multi-arg values space-joined, as the server expects)
	Args      []string // the argument list to write on a config file line (multi-arg split; `save` disabled = [""])
}

// source tells the normalisers where a value came from: desired values are
// read leniently, server and file values as the server itself reads them.
type source int

const (
	fromDesired source = iota
	fromServer
	fromFile
)

// Desired normalises a value from decoded JSON: string, float64 or
// json.Number, bool, []any of those, or nil. Errors are one sentence naming
// the directive, what was wrong and what was expected; they never contain the
// value of a Secret directive.
func (d *Directive) Desired(v any) (Value, error) {
	v = asNumber(v)
	switch d.Kind {
	case List, Flags:
		tokens, err := d.desiredTokens(v)
		if err != nil {
			return Value{}, err
		}
		if err := d.checkText(tokens); err != nil {
			return Value{}, err
		}
		if d.Kind == Flags {
			return d.flags(tokens)
		}
		return d.list(tokens, fromDesired)
	default:
		s, err := d.desiredScalar(v)
		if err != nil {
			return Value{}, err
		}
		if err := d.checkText([]string{s}); err != nil {
			return Value{}, err
		}
		var shown any = s
		switch v.(type) {
		case float64, json.Number:
			shown = v // show numbers unquoted in errors
		}
		return d.scalar(s, shown, fromDesired)
	}
}

// FromServer normalises the string CONFIG GET returned.
func (d *Directive) FromServer(s string) (Value, error) {
	switch d.Kind {
	case List:
		return d.list(strings.Fields(s), fromServer)
	case Flags:
		return d.flags(strings.Fields(s))
	default:
		return d.scalar(s, s, fromServer)
	}
}

// FromFile normalises the arguments of a config-file line (already split and
// unquoted). For Accumulates directives the caller concatenates the arguments
// of all lines, in file order.
func (d *Directive) FromFile(args []string) (Value, error) {
	switch d.Kind {
	case List:
		return d.list(args, fromFile)
	case Flags:
		return d.flags(args)
	default:
		if len(args) != 1 {
			return Value{}, d.errorf("%d arguments on the line are not allowed; expected exactly one value", len(args))
		}
		return d.scalar(args[0], args[0], fromFile)
	}
}

// ---------------------------------------------------------------------------
// errors

func (d *Directive) errorf(format string, a ...any) error {
	return fmt.Errorf("directive %q: "+format, append([]any{d.Name}, a...)...)
}

// show renders a (raw) value for an error message, or "the value" for a
// secret directive.
func (d *Directive) show(v any) string {
	if d.Secret {
		return "the value"
	}
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		// ASCII only, so a look-alike letter (a Kelvin sign K, a dotted İ)
		// shows as what it is.
		return strconv.QuoteToASCII(x)
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	case []any:
		return "a list"
	default:
		return fmt.Sprintf("a value of type %T", v)
	}
}

// expected describes what a scalar directive accepts.
func (d *Directive) expected() string {
	switch d.Kind {
	case Bool:
		return "yes or no (true/false and on/off are accepted too)"
	case Int:
		return "an integer" + d.rangeText()
	case Memory:
		s := "bytes or a number with k, kb, m, mb, g or gb"
		if d.PercentOK {
			s += ", or a percentage such as 10%"
		}
		return s
	case Octal:
		return "a quoted octal string such as '0700'"
	case Enum:
		return "one of " + strings.Join(d.Choices, ", ")
	case Flags:
		return "one or more of " + strings.Join(d.Choices, ", ")
	case KeyspaceEvents:
		return "a string of event classes from " + keyspaceChars
	default:
		return "a string"
	}
}

func (d *Directive) rangeText() string {
	switch {
	case d.Min != nil && d.Max != nil:
		return fmt.Sprintf(" between %d and %d", *d.Min, *d.Max)
	case d.Min != nil:
		return fmt.Sprintf(" of at least %d", *d.Min)
	case d.Max != nil:
		return fmt.Sprintf(" of at most %d", *d.Max)
	}
	return ""
}

func (d *Directive) what() string {
	switch d.Kind {
	case Bool:
		return "a boolean"
	case Int:
		return "an integer"
	case Memory:
		return "a memory size"
	case Octal:
		return "an octal permission"
	case Enum:
		return "a valid choice"
	case Flags:
		return "a valid choice"
	case KeyspaceEvents:
		return "a valid set of event classes"
	default:
		return "a string"
	}
}

func (d *Directive) invalid(v any) error {
	return d.errorf("%s is not %s; expected %s", d.show(v), d.what(), d.expected())
}

// checkText refuses what no config file line can carry (NUL, line breaks: the
// server would read a different line) and values longer than the directive
// takes. The message never shows the value.
func (d *Directive) checkText(words []string) error {
	n := 0
	for _, w := range words {
		if strings.ContainsAny(w, "\x00\n\r") {
			shown := "the value"
			if len(w) <= 256 {
				shown = d.show(w)
			}
			return d.errorf("%s contains a line break or NUL character; expected a single-line string", shown)
		}
		n += len(w)
	}
	limit := MaxValueLen
	if d.MaxLen > 0 {
		limit = d.MaxLen
	}
	if n > limit {
		return d.errorf("the value is %d bytes long; expected at most %d bytes", n, limit)
	}
	return nil
}

// ---------------------------------------------------------------------------
// desired: JSON value -> string(s)

func (d *Directive) desiredScalar(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		if d.Kind == String || d.Kind == KeyspaceEvents {
			return "", nil
		}
		return "", d.invalid(v)
	case string:
		return x, nil
	case bool:
		switch d.Kind {
		case Bool:
			return yesno(x), nil
		case Enum:
			if d.hasChoice(yesno(x)) {
				return yesno(x), nil
			}
			return "", d.errorf("%s is not %s; expected %s (YAML reads unquoted yes, no, on and off as booleans)", d.show(v), d.what(), d.expected())
		case String:
			if d.unknown {
				return yesno(x), nil
			}
			return "", d.errorf("%s is a boolean; expected a quoted string (YAML reads unquoted yes, no, true and false as booleans)", d.show(v))
		default:
			return "", d.invalid(v)
		}
	case float64, json.Number:
		return d.desiredNumber(v)
	case []any:
		return "", d.errorf("a list is not allowed; expected a single value: %s", d.expected())
	default:
		return "", d.errorf("%s is not supported; expected %s", d.show(v), d.expected())
	}
}

func yesno(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (d *Directive) desiredNumber(v any) (string, error) {
	var text string
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
		text = strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		text = x.String()
		var err error
		f, err = x.Float64()
		if err != nil {
			return "", d.invalid(v)
		}
	}
	switch d.Kind {
	case Octal:
		return "", d.errorf("the number %s is ambiguous (YAML reads 0700 as 448); give it as a quoted octal string such as '0700'", d.show(v))
	case Int, Memory:
		if math.IsInf(f, 0) || math.IsNaN(f) || f != math.Trunc(f) {
			return "", d.errorf("%s is not a whole number; expected %s", d.show(v), d.expected())
		}
		if _, err := strconv.ParseInt(text, 10, 64); err == nil {
			return text, nil
		}
		if _, err := strconv.ParseUint(text, 10, 64); err == nil {
			return text, nil
		}
		if math.Abs(f) < 1<<63 {
			return strconv.FormatInt(int64(f), 10), nil
		}
		return "", d.errorf("%s is out of range; expected %s", d.show(v), d.expected())
	case Bool:
		return "", d.invalid(v)
	default:
		return text, nil
	}
}

// desiredTokens flattens a desired List/Flags value into tokens: a string is
// split on whitespace, a list's elements are split and concatenated (one
// level of nested lists is accepted, e.g. save: [[3600, 1], [300, 100]]).
func (d *Directive) desiredTokens(v any) ([]string, error) {
	var out []string
	var add func(x any, depth int) error
	add = func(x any, depth int) error {
		switch y := asNumber(x).(type) {
		case nil:
			return nil
		case string:
			out = append(out, strings.Fields(y)...)
			return nil
		case float64:
			out = append(out, strconv.FormatFloat(y, 'f', -1, 64))
			return nil
		case json.Number:
			out = append(out, y.String())
			return nil
		case bool:
			if d.Kind == Flags {
				return d.errorf("%s is a boolean; expected %s", d.show(y), d.expected())
			}
			return d.errorf("%s is a boolean; expected %s", d.show(y), d.listExpected())
		case []any:
			if depth > 1 {
				return d.errorf("lists nested more than two deep are not allowed; expected %s", d.listExpected())
			}
			for _, e := range y {
				if err := add(e, depth+1); err != nil {
					return err
				}
			}
			return nil
		default:
			return d.errorf("%s is not supported; expected %s", d.show(y), d.listExpected())
		}
	}
	if err := add(v, 0); err != nil {
		return nil, err
	}
	return out, nil
}

func (d *Directive) listExpected() string {
	switch d.spec {
	case specSave:
		return `pairs of "<seconds> <changes>", or "" to disable snapshots`
	case specClientOutputBufferLimit:
		return `groups of "<class> <hard limit> <soft limit> <soft seconds>" with class normal, replica or pubsub`
	case specBind:
		return "one or more addresses"
	case specOOMScoreAdjValues:
		return "three integers between -2000 and 2000"
	case specReplicaOf:
		return `"<host> <port>" or "no one"`
	case specPercentiles:
		return "percentiles between 0 and 100"
	}
	return d.expected()
}

// ---------------------------------------------------------------------------
// scalars

func (d *Directive) hasChoice(c string) bool {
	for _, x := range d.Choices {
		if x == c {
			return true
		}
	}
	return false
}

func single(s string) Value { return Value{Canonical: s, Set: s, Args: []string{s}} }

func (d *Directive) scalar(text string, raw any, src source) (Value, error) {
	s := text
	if !d.Secret {
		// A secret is taken byte for byte: trimming would silently change a
		// password that starts or ends with a space.
		s = strings.TrimSpace(text)
	}
	switch d.Kind {
	case Bool:
		switch conffile.ASCIILower(s) {
		case "yes":
			return single("yes"), nil
		case "no":
			return single("no"), nil
		case "true", "on":
			if src == fromDesired {
				return single("yes"), nil
			}
		case "false", "off":
			if src == fromDesired {
				return single("no"), nil
			}
		}
		return Value{}, d.invalid(raw)
	case Int:
		if src != fromDesired && !string2llForm(s) {
			// The server reads integers with string2ll: no sign +, no
			// leading zero, no -0 ("hz 007" stops it at start).
			return Value{}, d.invalid(raw)
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return Value{}, d.errorf("%s is out of range; expected %s", d.show(raw), d.expected())
			}
			return Value{}, d.invalid(raw)
		}
		if (d.Min != nil && n < *d.Min) || (d.Max != nil && n > *d.Max) {
			return Value{}, d.errorf("%s is out of range; expected %s", d.show(raw), d.expected())
		}
		return single(strconv.FormatInt(n, 10)), nil
	case Memory:
		return d.memory(raw, s)
	case Octal:
		return d.octal(raw, s, src)
	case Enum:
		c := conffile.ASCIILower(s)
		if !d.hasChoice(c) {
			return Value{}, d.invalid(raw)
		}
		if a, ok := d.enumAlias[c]; ok {
			c = a
		}
		return single(c), nil
	case KeyspaceEvents:
		return d.keyspaceEvents(raw, s)
	default:
		if strings.ContainsAny(s, "\n\r\x00") {
			return Value{}, d.errorf("%s contains a line break or NUL character; expected a single-line string", d.show(raw))
		}
		if d.check != nil && src != fromServer {
			if why := d.check(s); why != "" {
				return Value{}, d.errorf("%s is not valid: %s", d.show(raw), why)
			}
		}
		if d.spec == specDir && s != "" {
			s = filepath.Clean(s)
		}
		return single(s), nil
	}
}

// string2llForm reports whether s is written the way the server's string2ll
// accepts an integer: "0", or an optional "-" and digits not starting with 0.
func string2llForm(s string) bool {
	if s == "0" {
		return true
	}
	digits := strings.TrimPrefix(s, "-")
	return allDigits(digits) && digits[0] != '0'
}

// memory parses what the server's memtoull accepts: decimal digits with an
// optional unit b, k, kb, m, mb, g or gb (any case); and for PercentOK
// directives also "<digits>%" between 0 and 100.
func (d *Directive) memory(raw any, s string) (Value, error) {
	l := conffile.ASCIILower(s)
	if d.PercentOK && strings.HasSuffix(l, "%") {
		digits := l[:len(l)-1]
		if !allDigits(digits) {
			return Value{}, d.invalid(raw)
		}
		p, err := strconv.ParseUint(digits, 10, 64)
		if err != nil || p > 100 {
			return Value{}, d.errorf("%s is out of range; expected a percentage of at most 100%%", d.show(raw))
		}
		if p == 0 {
			return Value{Canonical: "0", Set: "0", Args: []string{"0"}}, nil
		}
		c := strconv.FormatUint(p, 10) + "%"
		return single(c), nil
	}
	n, ok := parseMemory(l)
	if !ok {
		if overflowMemory(l) {
			return Value{}, d.errorf("%s is out of range; expected a memory size below 16 exabytes", d.show(raw))
		}
		return Value{}, d.invalid(raw)
	}
	if (d.Min != nil && (*d.Min > 0 && n < uint64(*d.Min))) || (d.Max != nil && n > uint64(*d.Max)) {
		return Value{}, d.errorf("%s is out of range; expected a memory size%s bytes", d.show(raw), d.rangeText())
	}
	c := strconv.FormatUint(n, 10)
	set := l
	if allDigits(l) {
		set = c
	}
	return Value{Canonical: c, Set: set, Args: []string{set}}, nil
}

var memUnits = []struct {
	suffix string
	mul    uint64
}{
	{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30},
	{"k", 1000}, {"m", 1000 * 1000}, {"g", 1000 * 1000 * 1000}, {"b", 1},
}

func splitMemory(l string) (digits string, mul uint64) {
	for _, u := range memUnits {
		if strings.HasSuffix(l, u.suffix) {
			return l[:len(l)-len(u.suffix)], u.mul
		}
	}
	return l, 1
}

func parseMemory(l string) (uint64, bool) {
	digits, mul := splitMemory(l)
	if !allDigits(digits) {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	if n > math.MaxUint64/mul {
		return 0, false
	}
	return n * mul, true
}

func overflowMemory(l string) bool {
	digits, _ := splitMemory(l)
	return allDigits(digits)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (d *Directive) octal(raw any, s string, src source) (Value, error) {
	digits := s
	if src == fromDesired && (strings.HasPrefix(s, "0o") || strings.HasPrefix(s, "0O")) {
		digits = s[2:]
	}
	if src == fromFile && digits == "" {
		digits = "0" // the server's strtoll reads "" as 0
	}
	if digits == "" || strings.Trim(digits, "01234567") != "" {
		return Value{}, d.errorf("%s is not %s; expected %s", d.show(raw), d.what(), d.expected())
	}
	n, err := strconv.ParseUint(digits, 8, 64)
	if err != nil || (d.Max != nil && n > uint64(*d.Max)) {
		return Value{}, d.errorf("%s is out of range; expected an octal permission between 0 and 777", d.show(raw))
	}
	return single(strconv.FormatUint(n, 8)), nil
}

// ---------------------------------------------------------------------------
// notify-keyspace-events

const keyspaceChars = "Ag$lshzxeKEtmdn"

// Class bits, in the order the server prints them when 'A' does not apply.
const allClasses = "g$lshzxetd" // what 'A' stands for (NOTIFY_ALL)

func (d *Directive) keyspaceEvents(raw any, s string) (Value, error) {
	set := map[byte]bool{}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(keyspaceChars, c) < 0 {
			return Value{}, d.errorf("%s contains %q, which is not an event class; expected %s", d.show(raw), string(c), d.expected())
		}
		if c == 'A' {
			for j := 0; j < len(allClasses); j++ {
				set[allClasses[j]] = true
			}
			continue
		}
		set[c] = true
	}
	all := true
	for j := 0; j < len(allClasses); j++ {
		all = all && set[allClasses[j]]
	}
	// The server prints 'A' when every class of NOTIFY_ALL is set, and then
	// omits 'n' (new key events): CONFIG GET cannot show "An". The canonical
	// form is what CONFIG GET prints; Set keeps the full set.
	var canon, full strings.Builder
	if all {
		canon.WriteByte('A')
		full.WriteByte('A')
		if set['n'] {
			full.WriteByte('n')
		}
	} else {
		for _, c := range []byte("g$lshzxetdn") {
			if set[c] {
				canon.WriteByte(c)
				full.WriteByte(c)
			}
		}
	}
	for _, c := range []byte("KEm") {
		if set[c] {
			canon.WriteByte(c)
			full.WriteByte(c)
		}
	}
	f := full.String()
	return Value{Canonical: canon.String(), Set: f, Args: []string{f}}, nil
}

// ---------------------------------------------------------------------------
// Flags

func (d *Directive) flags(tokens []string) (Value, error) {
	if len(tokens) == 0 {
		return Value{}, d.errorf("an empty value is not allowed; expected %s", d.expected())
	}
	set := map[string]bool{}
	for _, t := range tokens {
		c := conffile.ASCIILower(t)
		if !d.hasChoice(c) {
			return Value{}, d.errorf("%s is not a valid choice; expected %s", d.show(t), d.expected())
		}
		set[c] = true
	}
	if set["save"] && set["nosave"] {
		return Value{}, d.errorf("save and nosave cannot be used together; expected %s", d.expected())
	}
	var out []string
	for _, c := range d.Choices {
		if c != "default" && set[c] {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		out = []string{"default"}
	}
	j := strings.Join(out, " ")
	return Value{Canonical: j, Set: j, Args: out}, nil
}

// ---------------------------------------------------------------------------
// Lists

func (d *Directive) list(tokens []string, src source) (Value, error) {
	switch d.spec {
	case specSave:
		return d.save(tokens)
	case specClientOutputBufferLimit:
		return d.clientOutputBufferLimit(tokens)
	case specBind:
		return d.bind(tokens, src)
	case specOOMScoreAdjValues:
		return d.oomScoreAdjValues(tokens)
	case specReplicaOf:
		return d.replicaOf(tokens)
	case specPercentiles:
		return d.percentiles(tokens)
	}
	return Value{}, d.errorf("has no list normaliser")
}

func nonEmpty(tokens []string) []string {
	var out []string
	for _, t := range tokens {
		out = append(out, strings.Fields(t)...)
	}
	return out
}

func emptyList() Value { return Value{Canonical: "", Set: "", Args: []string{""}} }

// save: "<seconds> <changes>" pairs. An empty argument (save "") clears the
// pairs seen so far, as in a config file. Canonical sorts and de-duplicates
// the pairs (the server's snapshot behaviour does not depend on their order);
// Set keeps the given order.
func (d *Directive) save(tokens []string) (Value, error) {
	var pairs [][2]int64
	var pending []string
	for _, t := range tokens {
		if strings.TrimSpace(t) == "" {
			if len(pending) != 0 {
				return Value{}, d.errorf("%s is an incomplete pair; expected %s", d.show(strings.Join(pending, " ")), d.listExpected())
			}
			pairs = nil
			continue
		}
		for _, f := range strings.Fields(t) {
			pending = append(pending, f)
			if len(pending) < 2 {
				continue
			}
			sec, err1 := strconv.ParseInt(pending[0], 10, 64)
			ch, err2 := strconv.ParseInt(pending[1], 10, 64)
			if err1 != nil || err2 != nil || sec < 1 || ch < 0 {
				return Value{}, d.errorf("%s is not a valid pair; expected \"<seconds> <changes>\" with seconds of at least 1 and changes of at least 0",
					d.show(pending[0]+" "+pending[1]))
			}
			pairs = append(pairs, [2]int64{sec, ch})
			pending = nil
		}
	}
	if len(pending) != 0 {
		return Value{}, d.errorf("%s is an incomplete pair; expected %s", d.show(strings.Join(pending, " ")), d.listExpected())
	}
	if len(pairs) == 0 {
		return emptyList(), nil
	}
	args := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		args = append(args, strconv.FormatInt(p[0], 10), strconv.FormatInt(p[1], 10))
	}
	sortedPairs := append([][2]int64(nil), pairs...)
	sort.Slice(sortedPairs, func(i, j int) bool {
		if sortedPairs[i][0] != sortedPairs[j][0] {
			return sortedPairs[i][0] < sortedPairs[j][0]
		}
		return sortedPairs[i][1] < sortedPairs[j][1]
	})
	var canon []string
	for i, p := range sortedPairs {
		if i > 0 && p == sortedPairs[i-1] {
			continue
		}
		canon = append(canon, strconv.FormatInt(p[0], 10), strconv.FormatInt(p[1], 10))
	}
	return Value{Canonical: strings.Join(canon, " "), Set: strings.Join(args, " "), Args: args}, nil
}

// client-output-buffer-limit: groups of <class> <hard> <soft> <seconds>.
// Classes not given keep the server defaults, later groups override earlier
// ones (as lines in a config file do); "replica" is printed by the server as
// "slave". Canonical, Set and Args all carry the three classes, so that
// CONFIG SET enforces the complete state.
func (d *Directive) clientOutputBufferLimit(tokens []string) (Value, error) {
	tokens = nonEmpty(tokens)
	if len(tokens) == 0 || len(tokens)%4 != 0 {
		return Value{}, d.errorf("%d words are not allowed; expected %s", len(tokens), d.listExpected())
	}
	classes := map[string][3]string{
		"normal": {"0", "0", "0"},
		"slave":  {"268435456", "67108864", "60"},
		"pubsub": {"33554432", "8388608", "60"},
	}
	for i := 0; i < len(tokens); i += 4 {
		class := conffile.ASCIILower(tokens[i])
		switch class {
		case "replica", "slave":
			class = "slave"
		case "normal", "pubsub":
		default:
			return Value{}, d.errorf("%s is not a client class; expected normal, replica or pubsub", d.show(tokens[i]))
		}
		var vals [3]string
		for k := 0; k < 2; k++ {
			n, ok := parseMemory(conffile.ASCIILower(tokens[i+1+k]))
			if !ok {
				return Value{}, d.errorf("%s is not a memory size; expected bytes or a number with k, kb, m, mb, g or gb", d.show(tokens[i+1+k]))
			}
			vals[k] = strconv.FormatUint(n, 10)
		}
		secs, err := strconv.ParseInt(tokens[i+3], 10, 32)
		if err != nil || secs < 0 {
			return Value{}, d.errorf("%s is not a number of seconds; expected an integer of at least 0", d.show(tokens[i+3]))
		}
		vals[2] = strconv.FormatInt(secs, 10)
		classes[class] = vals
	}
	var args []string
	for _, c := range []string{"normal", "slave", "pubsub"} {
		v := classes[c]
		args = append(args, c, v[0], v[1], v[2])
	}
	j := strings.Join(args, " ")
	return Value{Canonical: j, Set: j, Args: args}, nil
}

// bind: addresses. Canonical is sorted (the set of listening sockets does
// not depend on order); Set keeps the given order. An empty desired value is
// refused: CONFIG SET bind "" leaves the server with no TCP listener.
func (d *Directive) bind(tokens []string, src source) (Value, error) {
	tokens = nonEmpty(tokens)
	if len(tokens) == 0 {
		if src == fromDesired {
			return Value{}, d.errorf("an empty value is not allowed (the server would stop listening on TCP); expected %s", d.listExpected())
		}
		return emptyList(), nil
	}
	s := append([]string(nil), tokens...)
	for i := range s {
		s[i] = conffile.ASCIILower(s[i])
	}
	sort.Strings(s)
	return Value{Canonical: strings.Join(s, " "), Set: strings.Join(tokens, " "), Args: tokens}, nil
}

func (d *Directive) oomScoreAdjValues(tokens []string) (Value, error) {
	tokens = nonEmpty(tokens)
	if len(tokens) != 3 {
		return Value{}, d.errorf("%d values are not allowed; expected %s", len(tokens), d.listExpected())
	}
	out := make([]string, 3)
	for i, t := range tokens {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < -2000 || n > 2000 {
			return Value{}, d.errorf("%s is not valid; expected %s", d.show(t), d.listExpected())
		}
		out[i] = strconv.FormatInt(n, 10)
	}
	j := strings.Join(out, " ")
	return Value{Canonical: j, Set: j, Args: out}, nil
}

// replicaof: "<host> <port>" or "no one" (CONFIG GET prints "" for no one).
func (d *Directive) replicaOf(tokens []string) (Value, error) {
	tokens = nonEmpty(tokens)
	if len(tokens) == 0 || (len(tokens) == 2 && strings.EqualFold(tokens[0], "no") && strings.EqualFold(tokens[1], "one")) {
		return Value{Canonical: "", Set: "no one", Args: []string{"no", "one"}}, nil
	}
	if len(tokens) != 2 {
		return Value{}, d.errorf("%s is not valid; expected %s", d.show(strings.Join(tokens, " ")), d.listExpected())
	}
	port, err := strconv.ParseInt(tokens[1], 10, 64)
	if err != nil || port < 0 || port > 65535 {
		return Value{}, d.errorf("%s is not a port; expected %s with a port between 0 and 65535", d.show(tokens[1]), d.listExpected())
	}
	p := strconv.FormatInt(port, 10)
	return Value{
		Canonical: conffile.ASCIILower(tokens[0]) + " " + p,
		Set:       tokens[0] + " " + p,
		Args:      []string{tokens[0], p},
	}, nil
}

// latency-tracking-info-percentiles: floats in [0, 100], printed as the
// server prints them ("%f" with trailing zeros removed); order is kept.
func (d *Directive) percentiles(tokens []string) (Value, error) {
	tokens = nonEmpty(tokens)
	if len(tokens) == 0 {
		return emptyList(), nil
	}
	out := make([]string, len(tokens))
	for i, t := range tokens {
		f, err := strconv.ParseFloat(t, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 100 {
			return Value{}, d.errorf("%s is not a percentile; expected %s", d.show(t), d.listExpected())
		}
		s := strconv.FormatFloat(f, 'f', 6, 64)
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
		if s == "" || s == "-" {
			s = "0"
		}
		out[i] = s
	}
	j := strings.Join(out, " ")
	return Value{Canonical: j, Set: j, Args: out}, nil
}

// asNumber turns the integer and float types YAML decoders produce (goccy's
// uint64 and int64, Go's int) into json.Number, the one numeric form the
// rest of this file handles besides float64. Other values pass through.
func asNumber(v any) any {
	switch x := v.(type) {
	case int:
		return json.Number(strconv.FormatInt(int64(x), 10))
	case int8, int16, int32, int64:
		return json.Number(fmt.Sprint(x))
	case uint, uint8, uint16, uint32, uint64:
		return json.Number(fmt.Sprint(x))
	case float32:
		return json.Number(strconv.FormatFloat(float64(x), 'f', -1, 32))
	}
	return v
}
