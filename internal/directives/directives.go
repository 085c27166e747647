// Package directives knows the Valkey configuration directives: their
// canonical names and aliases, their value kinds, whether they can be changed
// at runtime, whether their values are secret, and how to normalise a value
// so that a desired value, the value CONFIG GET reports and the value written
// in a configuration file can be compared by value rather than by spelling.
//
// The table follows the config table of Valkey's src/config.c; it is tested
// against facts read from config.c of Valkey 7.2.7 and 8.0.1 (facts/) and
// those against a running valkey-server. Each directive, name and choice
// knows the release that introduced it (CheckVersion).
package directives

import (
	"sort"
	"strings"

	"github.com/valkeyops/secure/internal/conffile"
)

// Kind tells how a directive's value is parsed and compared.
type Kind int

const (
	// String is compared exactly (after trimming surrounding whitespace).
	String Kind = iota
	// Bool is yes/no. A desired value may be a Go bool or "yes", "no",
	// "true", "false", "on", "off" in any case; canonical "yes" or "no".
	Bool
	// Int is a plain (possibly negative) integer; canonical decimal.
	Int
	// Memory is a byte count with optional unit (k=1000, kb=1024, m=10^6,
	// mb=2^20, g=10^9, gb=2^30, b=1, case-insensitive); canonical decimal
	// bytes. With PercentOK a percentage such as "10%" is accepted too.
	Memory
	// Octal is a string of octal digits (unixsocketperm); canonical as
	// CONFIG GET prints it ("700").
	Octal
	// Enum is one of Choices, case-insensitive; canonical lowercase.
	Enum
	// Flags is an enum accepting several space-separated Choices
	// (shutdown-on-sigint, shutdown-on-sigterm); canonical is the set in the
	// order the server prints it.
	Flags
	// List is a multi-argument value (MULTI_ARG_CONFIG), such as save, bind,
	// client-output-buffer-limit, oom-score-adj-values, replicaof,
	// latency-tracking-info-percentiles.
	List
	// KeyspaceEvents is notify-keyspace-events: a set of event class
	// characters; canonical is what CONFIG GET returns for it.
	KeyspaceEvents
)

var kindNames = [...]string{"string", "bool", "int", "memory", "octal", "enum", "flags", "list", "keyspace-events"}

// String returns a lowercase name for the kind ("memory", "enum", ...).
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// special selects the per-directive normalisation of List (and a few other)
// directives.
type special int

const (
	specNone special = iota
	specSave
	specClientOutputBufferLimit
	specBind
	specOOMScoreAdjValues
	specReplicaOf
	specPercentiles
	specDir
)

// Directive describes one Valkey configuration directive.
type Directive struct {
	Name        string   // canonical Valkey 8 name, lowercase (e.g. "primaryauth", "replicaof", "replica-read-only")
	Aliases     []string // other names the server accepts for the same setting (e.g. "masterauth", "slaveof")
	Kind        Kind
	Choices     []string // Enum/Flags, in the order the server prints them
	PercentOK   bool     // Memory: a percentage such as "10%" is accepted
	Immutable   bool     // cannot change at runtime (IMMUTABLE_CONFIG): needs a restart
	Protected   bool     // PROTECTED_CONFIG: refused at runtime unless enable-protected-configs allows it
	Secret      bool     // value must never be printed (SENSITIVE_CONFIG)
	Accumulates bool     // several config-file lines add up (save, client-output-buffer-limit)
	Min, Max    *int64   // optional numeric bounds (Int, Memory)
	MaxLen      int      // String: longest value in bytes (0: MaxValueLen)

	spec        special
	enumAlias   map[string]string   // Enum: accepted spelling -> canonical choice (oom-score-adj relative -> yes)
	since       Version             // first release with the directive (zero: 7.2 or older)
	choiceSince map[string]Version  // Enum/Flags: first release accepting a choice newer than the directive
	nameSince   map[string]Version  // names (canonical or alias) newer than the directive (primaryauth: 8.0)
	check       func(string) string // String: the server's is_valid check ("" or its reason), check.go
	unknown     bool                // made by Unknown: lenient about booleans
}

// Names returns the canonical name followed by the aliases.
func (d *Directive) Names() []string {
	out := make([]string, 0, 1+len(d.Aliases))
	out = append(out, d.Name)
	return append(out, d.Aliases...)
}

// NameFor returns the name to use with a server that reports the given set of
// names in CONFIG GET *: the canonical name if present, else the first alias
// present, else the canonical name. Lookups in serverNames are done with the
// lowercase names of the table; keys should therefore be lowercase, as CONFIG
// GET prints them.
func (d *Directive) NameFor(serverNames map[string]bool) string {
	if serverNames[d.Name] {
		return d.Name
	}
	for _, a := range d.Aliases {
		if serverNames[a] {
			return a
		}
	}
	return d.Name
}

// IsKnownTo reports whether a server reporting serverNames in CONFIG GET *
// knows this directive under any of its names. Note that CONFIG GET * does not
// list hidden directives.
func (d *Directive) IsKnownTo(serverNames map[string]bool) bool {
	for _, n := range d.Names() {
		if serverNames[n] {
			return true
		}
	}
	return false
}

var (
	byName = map[string]*Directive{}
	sorted []*Directive
)

func init() {
	for _, d := range table {
		for _, n := range d.Names() {
			k := conffile.ASCIILower(n)
			if other, dup := byName[k]; dup {
				panic("directives: name " + k + " used by " + other.Name + " and " + d.Name)
			}
			byName[k] = d
		}
		sorted = append(sorted, d)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
}

// FoldName is how the server compares directive names: surrounding blanks
// dropped, ASCII letters lowercased and nothing else (strcasecmp in the C
// locale), so "TİMEOUT" with a dotted capital I is not "timeout".
func FoldName(name string) string {
	return conffile.ASCIILower(strings.Trim(name, " \t\r\n"))
}

// Lookup finds a directive by canonical name or alias, comparing names as the
// server does (ASCII case folding only).
func Lookup(name string) (*Directive, bool) {
	d, ok := byName[FoldName(name)]
	return d, ok
}

// All returns every known directive, sorted by canonical name. The returned
// directives are shared: do not modify them.
func All() []*Directive {
	out := make([]*Directive, len(sorted))
	copy(out, sorted)
	return out
}

// Unknown returns a generic String directive for a name the running server
// knows but the table does not, so that a newer server's new directives still
// work. Such a directive is treated as mutable, not secret, with no aliases;
// a desired Go bool becomes "yes"/"no".
func Unknown(name string) *Directive {
	return &Directive{Name: FoldName(name), Kind: String, unknown: true}
}

var unsupported = map[string]string{
	"include":        "include is not supported: manage each directive directly in the main configuration file",
	"rename-command": "rename-command is not supported: use ACLs instead; see valkey_acl",
	"user":           "user is not supported here: users are managed by valkey_acl",
	"loadmodule":     "loadmodule is not supported: loading modules is outside the scope of this module",
	"sentinel":       "sentinel directives are not supported: they belong to a Sentinel configuration, not a server one",
}

// Unsupported reports whether valkey_config must refuse the directive, and
// why.
func Unsupported(name string) (reason string, ok bool) {
	reason, ok = unsupported[FoldName(name)]
	return reason, ok
}
