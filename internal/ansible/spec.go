package ansible

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/valkeyops/secure/internal/directives"
)

// The interface of a module is written once, in Go: its options struct. Each
// option is a field with a `json` tag (its name); the Ansible type follows
// from the Go type (string: str, bool: bool, int: int, []T: list, struct or
// map: dict, Secret: a no_log str) and a `spec` tag adds what the Go type
// cannot say, as comma-separated items:
//
//	path                   the string is a path on the target (type path; never expanded on the controller)
//	required               the option must be given (not null)
//	default=V              the default, as DOCUMENTATION shows it (lists: V1|V2; for information, Decode does not fill it)
//	choices=a|b|c          the allowed values (for a list: of each element)
//	item_required=n1|n2    for a list of dictionaries: options each element must give
//	exclusive=other        this option and `other` may not both be given
//	together=other         this option and `other` are given both or neither
//	directives             a dictionary of Valkey directive: value; values of secret directives are secrets
//	secret_keys=k1|k2      a list of free-form dictionaries: values under a key containing k1 or k2 are secrets
//
// `valkeyops spec` prints every module's Spec as JSON; the action plugin
// validates with it on the controller (same rules, same words, see Check)
// and DOCUMENTATION is tested against it.

// Spec is one module's interface.
type Spec struct {
	Options           map[string]*Option `json:"options"`
	MutuallyExclusive [][]string         `json:"mutually_exclusive,omitempty"`
	RequiredTogether  [][]string         `json:"required_together,omitempty"`
}

// Option is one option (or suboption).
type Option struct {
	Type       string             `json:"type"` // str, path, bool, int, float, list, dict, raw
	Elements   string             `json:"elements,omitempty"`
	Required   bool               `json:"required,omitempty"`
	Default    any                `json:"default,omitempty"`
	Choices    []string           `json:"choices,omitempty"`
	NoLog      bool               `json:"no_log,omitempty"`
	Directives bool               `json:"directives,omitempty"`
	SecretKeys []string           `json:"secret_keys,omitempty"`
	Options    map[string]*Option `json:"options,omitempty"`
}

var secretType = reflect.TypeOf(Secret(""))

var specCache sync.Map // reflect.Type -> *Spec

// jsonNumber is how a number arrives (the arguments are decoded with UseNumber).
type jsonNumber = json.Number

// SpecOf returns the spec of an options struct (a struct or a pointer to one).
// A malformed spec tag is a programming error: it panics, and every module's
// spec is built by the tests.
func SpecOf(opts any) *Spec {
	t := reflect.TypeOf(opts)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := specCache.Load(t); ok {
		return s.(*Spec)
	}
	s := &Spec{Options: map[string]*Option{}}
	if err := collectOptions(t, s.Options, s); err != nil {
		panic(fmt.Sprintf("spec of %s: %v", t, err))
	}
	specCache.Store(t, s)
	return s
}

// collectOptions fills out with the options of struct type t, descending
// into embedded structs the way encoding/json does. Groups (exclusive,
// together) are collected into top when it is not nil.
func collectOptions(t reflect.Type, out map[string]*Option, top *Spec) error {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			if err := collectOptions(f.Type, out, top); err != nil {
				return err
			}
			continue
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		o, err := optionOf(f.Type)
		if err != nil {
			return fmt.Errorf("option %q: %w", name, err)
		}
		if err := o.applyTag(name, f.Tag.Get("spec"), top); err != nil {
			return fmt.Errorf("option %q: %w", name, err)
		}
		out[name] = o
	}
	return nil
}

// optionOf maps a Go type to an option.
func optionOf(t reflect.Type) (*Option, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == secretType {
		return &Option{Type: "str", NoLog: true}, nil
	}
	switch t.Kind() {
	case reflect.String:
		return &Option{Type: "str"}, nil
	case reflect.Bool:
		return &Option{Type: "bool"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &Option{Type: "int"}, nil
	case reflect.Float32, reflect.Float64:
		return &Option{Type: "float"}, nil
	case reflect.Interface:
		return &Option{Type: "raw"}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map keys must be strings")
		}
		return &Option{Type: "dict"}, nil
	case reflect.Struct:
		o := &Option{Type: "dict", Options: map[string]*Option{}}
		return o, collectOptions(t, o.Options, nil)
	case reflect.Slice:
		e, err := optionOf(t.Elem())
		if err != nil {
			return nil, err
		}
		if e.Type == "list" || e.Type == "raw" {
			return nil, fmt.Errorf("lists of %s are not supported", e.Type)
		}
		return &Option{Type: "list", Elements: e.Type, NoLog: e.NoLog, Options: e.Options}, nil
	}
	return nil, fmt.Errorf("Go type %s has no option type", t)
}

func (o *Option) applyTag(name, tag string, top *Spec) error {
	if tag == "" {
		return nil
	}
	for _, item := range strings.Split(tag, ",") {
		key, value, hasValue := strings.Cut(item, "=")
		values := strings.Split(value, "|")
		switch {
		case key == "path" && !hasValue && o.Type == "str":
			o.Type = "path"
		case key == "path" && !hasValue && o.Type == "list" && o.Elements == "str":
			o.Elements = "path"
		case key == "required" && !hasValue:
			o.Required = true
		case key == "directives" && !hasValue && o.Type == "dict" && o.Options == nil:
			o.Directives = true
		case key == "default" && hasValue:
			d, err := o.parseDefault(value)
			if err != nil {
				return err
			}
			o.Default = d
		case key == "choices" && hasValue:
			o.Choices = values
		case key == "item_required" && hasValue && o.Type == "list" && o.Options != nil:
			for _, v := range values {
				sub, ok := o.Options[v]
				if !ok {
					return fmt.Errorf("item_required names %q, which is not a suboption", v)
				}
				copied := *sub // the element type's option is shared with other uses
				copied.Required = true
				o.Options[v] = &copied
			}
		case key == "secret_keys" && hasValue && o.Type == "list" && o.Elements == "dict" && o.Options == nil:
			o.SecretKeys = values
		case (key == "exclusive" || key == "together") && hasValue && top != nil:
			group := []string{name, value}
			if key == "exclusive" {
				top.MutuallyExclusive = append(top.MutuallyExclusive, group)
			} else {
				top.RequiredTogether = append(top.RequiredTogether, group)
			}
		default:
			return fmt.Errorf("spec tag item %q does not apply to a %s option", item, o.Type)
		}
	}
	return nil
}

func (o *Option) parseDefault(v string) (any, error) {
	switch o.Type {
	case "str", "path":
		return v, nil
	case "bool":
		return strconv.ParseBool(v)
	case "int":
		return strconv.Atoi(v)
	case "list":
		if v == "" {
			return []string{}, nil
		}
		return strings.Split(v, "|"), nil
	}
	return nil, fmt.Errorf("a default for a %s option is not supported", o.Type)
}

// Check validates the options of module (as decoded from JSON with
// UseNumber) against the spec and returns them with their types coerced the
// way Ansible users expect ("yes" is true, "5" is 5, "a,b" is a list of two).
// It returns the first problem found, as one sentence naming the option, in
// a fixed order that the controller's copy of these rules
// (plugins/plugin_utils/binary_module.py) follows word for word: at each
// level unknown options, then missing required ones, then each option in
// name order (its type, its choices, a NUL byte, its suboptions); at the top
// level the exclusive and together groups last. Values of no_log options
// never appear in a message.
func (s *Spec) Check(module string, params map[string]any) (map[string]any, error) {
	out, err := checkLevel(module, s.Options, params, "")
	if err != nil {
		return nil, err
	}
	for _, g := range s.MutuallyExclusive {
		if given(params, g[0]) && given(params, g[1]) {
			return nil, fmt.Errorf("options %q and %q are mutually exclusive: give one or the other", g[0], g[1])
		}
	}
	for _, g := range s.RequiredTogether {
		if given(params, g[0]) != given(params, g[1]) {
			return nil, fmt.Errorf("options %q and %q go together: give both or neither", g[0], g[1])
		}
	}
	return out, nil
}

func given(params map[string]any, name string) bool {
	v, ok := params[name]
	return ok && v != nil
}

func checkLevel(module string, options map[string]*Option, params map[string]any, prefix string) (map[string]any, error) {
	var unknown []string
	for k := range params {
		if _, ok := options[k]; !ok {
			unknown = append(unknown, prefix+k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		valid := make([]string, 0, len(options))
		for k := range options {
			valid = append(valid, k)
		}
		sort.Strings(valid)
		word := "option"
		if len(unknown) > 1 {
			word = "options"
		}
		where := ""
		if prefix != "" {
			where = " in " + strings.TrimSuffix(prefix, ".")
		}
		return nil, fmt.Errorf("unsupported %s for %s: %s; valid options%s: %s",
			word, module, strings.Join(unknown, ", "), where, strings.Join(valid, ", "))
	}
	names := make([]string, 0, len(options))
	for k := range options {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if options[k].Required && !given(params, k) {
			return nil, fmt.Errorf("option %q is required", prefix+k)
		}
	}
	out := make(map[string]any, len(params))
	for _, k := range names {
		v, ok := params[k]
		if !ok || v == nil {
			continue // null means "not given"
		}
		c, err := checkValue(module, options[k], v, prefix+k)
		if err != nil {
			return nil, err
		}
		out[k] = c
	}
	return out, nil
}

var articles = map[string]string{
	"str": "a string", "path": "a string", "bool": "a boolean", "int": "an integer",
	"float": "a number", "dict": "a dictionary",
}

func expected(name, what string) error { return fmt.Errorf("option %q: expected %s", name, what) }

func checkValue(module string, o *Option, v any, name string) (any, error) {
	switch o.Type {
	case "list":
		var items []any
		switch x := v.(type) {
		case []any:
			items = x
		case string:
			if o.Elements == "dict" {
				return nil, expected(name, "a list of dictionaries")
			}
			for _, part := range strings.Split(x, ",") {
				items = append(items, part)
			}
		case jsonNumber:
			if o.Elements == "dict" {
				return nil, expected(name, "a list of dictionaries")
			}
			items = []any{string(x)}
		default:
			return nil, expected(name, "a list of "+plural(o.Elements))
		}
		out := make([]any, len(items))
		elem := &Option{Type: o.Elements, NoLog: o.NoLog, Options: o.Options, SecretKeys: o.SecretKeys}
		for i, item := range items {
			c, err := checkScalarOrDict(module, elem, item, fmt.Sprintf("%s[%d]", name, i))
			if err != nil {
				return nil, err
			}
			if err := checkChoice(o, c, name); err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	default:
		c, err := checkScalarOrDict(module, o, v, name)
		if err != nil {
			return nil, err
		}
		return c, checkChoice(o, c, name)
	}
}

func plural(elements string) string {
	if elements == "dict" {
		return "dictionaries"
	}
	return strings.TrimPrefix(strings.TrimPrefix(articles[elements], "an "), "a ") + "s"
}

func checkChoice(o *Option, v any, name string) error {
	if len(o.Choices) == 0 {
		return nil
	}
	s, _ := v.(string)
	for _, c := range o.Choices {
		if s == c {
			return nil
		}
	}
	return fmt.Errorf("option %q: %q is not one of %s", name, s, strings.Join(o.Choices, ", "))
}

// The strings Ansible reads as booleans (module_utils.parsing.convert_bool).
var (
	booleansTrue  = []string{"y", "yes", "on", "1", "true", "t"}
	booleansFalse = []string{"n", "no", "off", "0", "false", "f"}
)

const asciiSpace = " \t\n\r\f\v"

func checkScalarOrDict(module string, o *Option, v any, name string) (any, error) {
	if v == nil {
		return nil, expected(name, articles[o.Type])
	}
	switch o.Type {
	case "str", "path":
		switch x := v.(type) {
		case string:
			if strings.ContainsRune(x, 0) {
				return nil, fmt.Errorf("option %q: the value contains a NUL byte", name)
			}
			return x, nil
		case jsonNumber:
			return string(x), nil
		case bool:
			// A YAML yes/no given for a choice spelled yes/no.
			for _, c := range o.Choices {
				if (x && contains(booleansTrue, c)) || (!x && contains(booleansFalse, c)) {
					return c, nil
				}
			}
		}
		return nil, expected(name, "a string")
	case "bool":
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			s := strings.ToLower(strings.TrimSpace(x))
			if contains(booleansTrue, s) {
				return true, nil
			}
			if contains(booleansFalse, s) {
				return false, nil
			}
		case jsonNumber:
			if f, err := strconv.ParseFloat(string(x), 64); err == nil && (f == 0 || f == 1) {
				return f == 1, nil
			}
		}
		return nil, expected(name, "a boolean")
	case "int":
		switch x := v.(type) {
		case string:
			if i, ok := parseInt(x); ok {
				return i, nil
			}
		case jsonNumber:
			if i, ok := parseInt(string(x)); ok {
				return i, nil
			}
			if f, err := strconv.ParseFloat(string(x), 64); err == nil && f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
				return int64(f), nil
			}
		}
		return nil, expected(name, "an integer")
	case "float":
		var text string
		switch x := v.(type) {
		case string:
			text = strings.Trim(x, asciiSpace)
		case jsonNumber:
			text = string(x)
		}
		if f, err := strconv.ParseFloat(text, 64); err == nil && !math.IsInf(f, 0) && floatSyntax.MatchString(text) {
			return f, nil
		}
		return nil, expected(name, "a number")
	case "dict":
		m, ok := v.(map[string]any)
		if !ok {
			return nil, expected(name, "a dictionary")
		}
		if o.Options != nil {
			return checkLevel(module, o.Options, m, name+".")
		}
		if o.Directives {
			return m, nil // the directives engine reads each value (NUL and line breaks included)
		}
		return m, checkNUL(m, name)
	case "raw":
		return v, checkNUL(v, name)
	}
	return nil, fmt.Errorf("internal error: option %q has the unknown type %q", name, o.Type)
}

// checkNUL refuses a NUL byte anywhere in a free-form value (keys included).
func checkNUL(v any, name string) error {
	switch x := v.(type) {
	case string:
		if strings.ContainsRune(x, 0) {
			return fmt.Errorf("option %q: the value contains a NUL byte", name)
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if strings.ContainsRune(k, 0) {
				return fmt.Errorf("option %q: a key contains a NUL byte", name)
			}
			if err := checkNUL(x[k], name+"."+k); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := checkNUL(e, fmt.Sprintf("%s[%d]", name, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseInt reads an integer the way the controller does: optional ASCII
// space around an optional sign and ASCII digits, within 64 bits.
func parseInt(s string) (int64, bool) {
	s = strings.Trim(s, asciiSpace)
	digits := strings.TrimLeft(s, "+-")
	if len(s)-len(digits) > 1 || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	i, err := strconv.ParseInt(s, 10, 64)
	return i, err == nil
}

// floatSyntax accepts decimal numbers only (no "0x1p3", "1_000", "inf" or
// "nan"), as the controller does.
var floatSyntax = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// SecretValues returns the values the spec makes secret in params (as
// returned by Check): no_log options at any depth, the values of secret
// directives in a directives dictionary (isSecretDirective decides, given
// the name as written), and every string under a secret key of a free-form
// dictionary.
func (s *Spec) SecretValues(params map[string]any, isSecretDirective func(string) bool) []string {
	var found []string
	secretsOf(s.Options, params, isSecretDirective, &found)
	return found
}

func secretsOf(options map[string]*Option, params map[string]any, isSecretDirective func(string) bool, found *[]string) {
	for k, v := range params {
		o, ok := options[k]
		if !ok || v == nil {
			continue
		}
		items := []any{v}
		if o.Type == "list" {
			items, _ = v.([]any)
		}
		for _, item := range items {
			switch {
			case o.NoLog:
				collectStrings(item, found)
			case o.Directives:
				m, _ := item.(map[string]any)
				for name, value := range m {
					if isSecretDirective(name) {
						collectStrings(value, found)
					}
				}
			case len(o.SecretKeys) > 0:
				m, _ := item.(map[string]any)
				for key, value := range m {
					for _, sk := range o.SecretKeys {
						if strings.Contains(strings.ToLower(key), sk) {
							collectStrings(value, found)
							break
						}
					}
				}
			case o.Options != nil:
				if m, ok := item.(map[string]any); ok {
					secretsOf(o.Options, m, isSecretDirective, found)
				}
			}
		}
	}
}

func collectStrings(v any, found *[]string) {
	switch x := v.(type) {
	case string:
		if x != "" {
			*found = append(*found, x)
		}
	case jsonNumber:
		*found = append(*found, string(x))
	case []any:
		for _, e := range x {
			collectStrings(e, found)
		}
	case map[string]any:
		for _, e := range x {
			collectStrings(e, found)
		}
	}
}

// SecretDirectives returns every name (aliases included, lowercase, sorted)
// of the directives whose values are secrets (internal/directives, the
// server's SENSITIVE_CONFIG).
func SecretDirectives() []string { return append([]string(nil), secretDirectives()...) }

var secretDirectives = sync.OnceValue(func() []string {
	var names []string
	for _, d := range directives.All() {
		if d.Secret {
			names = append(names, d.Names()...)
		}
	}
	sort.Strings(names)
	return names
})

// IsSecretDirective reports whether a directive name, as written in a task
// (any case, surrounding space), names a secret directive. The controller
// applies the same normalisation to the list `valkeyops spec` prints.
func IsSecretDirective(name string) bool {
	return contains(secretDirectives(), strings.ToLower(strings.TrimSpace(name)))
}

// absolutePaths refuses a relative path option. It is the Go side's own rule
// (the controller leaves it here, so that a path reaches the target exactly
// as written): `~` and `$HOME` mean nothing to the target, and a relative
// path would depend on the working directory of whoever runs the module.
func absolutePaths(options map[string]*Option, params map[string]any, prefix string) error {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		o := options[k]
		items := []any{params[k]}
		if o.Type == "list" {
			items, _ = params[k].([]any)
		}
		for _, item := range items {
			switch v := item.(type) {
			case string:
				if (o.Type == "path" || o.Elements == "path") && v != "" && !strings.HasPrefix(v, "/") {
					return fmt.Errorf("option %q: %q is not an absolute path", prefix+k, v)
				}
			case map[string]any:
				if o.Options != nil {
					if err := absolutePaths(o.Options, v, prefix+k+"."); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}
