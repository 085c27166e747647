// Package ansible implements the module side of the Ansible protocol for the
// valkeyops binary: it reads the task's arguments as JSON (from stdin, or from
// the file named in argv[1] like a stock binary module), decodes them strictly
// into a module's options struct, runs the module with panics contained, and
// prints exactly one JSON result with every secret masked.
package ansible

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
)

var errNotString = errors.New("expected a string")

// Request is one invocation of a module: the raw options plus the
// `_ansible_*` settings that change how the module behaves, and what the
// action plugin learned on the controller.
type Request struct {
	Module    string // module name, e.g. "valkey_config"
	CheckMode bool   // _ansible_check_mode: plan only, change nothing
	Diff      bool   // _ansible_diff: return before/after text
	Verbosity int    // _ansible_verbosity
	// Controller is what the action plugin read on the controller
	// (ControllerKey); nil when the module runs without it (a stock
	// binary-module call, a test).
	Controller *Controller

	params  map[string]json.RawMessage
	secrets []string
}

// ControllerKey is the internal argument by which the action plugin passes
// the controller's metadata (who ran the playbook, from which Git commit) to
// the module. Like the `_ansible_*` keys it is not an option: ParseRequest
// takes it out before Decode sees the options.
const ControllerKey = "_valkeyops_controller"

// Controller is the controller-side metadata of a task, read by the action
// plugin where the playbook runs (the target needs no Git). Every field may
// be empty: the action plugin fails soft when, say, the playbook is not in a
// Git repository.
type Controller struct {
	User      string `json:"user"`       // the user running ansible-playbook
	Playbook  string `json:"playbook"`   // absolute path of the playbook
	Task      string `json:"task"`       // where the task is defined (file:line)
	GitCommit string `json:"git_commit"` // HEAD of the playbook's repository ("" when none)
	GitDirty  *bool  `json:"git_dirty"`  // uncommitted changes in that repository (nil: unknown)
}

// AddSecret registers a value that must not appear anywhere in the result,
// for secrets that do not arrive as a Secret field (e.g. a password inside a
// free-form settings dict). Empty values are ignored.
func (r *Request) AddSecret(v string) {
	if v != "" {
		r.secrets = append(r.secrets, v)
	}
}

// ParseRequest splits the JSON arguments into the module's options and the
// `_ansible_*` keys. Arguments wrapped as {"ANSIBLE_MODULE_ARGS": {...}} (the
// new-style module format) are unwrapped.
func ParseRequest(module string, data []byte) (*Request, error) {
	var all map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&all); err != nil {
		return nil, fmt.Errorf("failed to read the module arguments: expected one JSON object (%s)", jsonErrorKind(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		// A second document would be silently ignored: refuse it.
		return nil, fmt.Errorf("failed to read the module arguments: expected one JSON object (data after the object)")
	}
	if inner, ok := all["ANSIBLE_MODULE_ARGS"]; ok && len(all) == 1 {
		all = nil
		if err := json.Unmarshal(inner, &all); err != nil {
			return nil, fmt.Errorf("failed to read the module arguments: ANSIBLE_MODULE_ARGS is not a JSON object")
		}
	}
	req := &Request{Module: module, params: map[string]json.RawMessage{}}
	for k, v := range all {
		if k == ControllerKey {
			if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
				continue
			}
			var c Controller
			if err := json.Unmarshal(v, &c); err != nil {
				return nil, fmt.Errorf("failed to read the module arguments: %s is not an object of strings (and git_dirty a boolean)", k)
			}
			req.Controller = &c
			continue
		}
		if !strings.HasPrefix(k, "_ansible_") {
			req.params[k] = v
			continue
		}
		var err error
		switch k {
		case "_ansible_check_mode":
			err = json.Unmarshal(v, &req.CheckMode)
		case "_ansible_diff":
			err = json.Unmarshal(v, &req.Diff)
		case "_ansible_verbosity":
			err = json.Unmarshal(v, &req.Verbosity)
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read the module arguments: %s has the wrong type", k)
		}
	}
	return req, nil
}

// Masked returns s with every registered secret replaced by Mask, the way
// the result is masked. For text that leaves the module by another way than
// the result (the change journal), as defense in depth.
func (r *Request) Masked(s string) string {
	if r == nil {
		return s
	}
	return scrub(s, longestFirst(r.secrets)).(string)
}

// jsonErrorKind describes a JSON syntax error without quoting the input,
// which may hold a secret.
func jsonErrorKind(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	}
	if errors.Is(err, io.EOF) {
		return "no input"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "the input ends inside the JSON"
	}
	return "not a JSON object"
}

// Decode fills opts (a pointer to a struct with `json` tags; embedded structs
// are flattened) from the request. Unknown options are an error that names
// them and lists the valid ones; a value of the wrong type is an error that
// names the option and the type expected, never the value. Every Secret field
// that was set is registered for masking.
func (r *Request) Decode(opts any) error {
	rv := reflect.ValueOf(opts)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("internal error: Decode needs a pointer to a struct")
	}
	fields := map[string]reflect.Type{}
	collectFields(rv.Elem().Type(), fields)

	var unknown []string
	for k := range r.params {
		if _, ok := fields[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		valid := make([]string, 0, len(fields))
		for k := range fields {
			valid = append(valid, k)
		}
		sort.Strings(valid)
		word := "option"
		if len(unknown) > 1 {
			word = "options"
		}
		return fmt.Errorf("unsupported %s for %s: %s; valid options: %s",
			word, r.Module, strings.Join(unknown, ", "), strings.Join(valid, ", "))
	}
	// Decode option by option so a type error names its option.
	names := make([]string, 0, len(r.params))
	for k := range r.params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		raw := r.params[k]
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			continue // null means "not given": keep the default
		}
		one, _ := json.Marshal(map[string]json.RawMessage{k: raw})
		dec := json.NewDecoder(bytes.NewReader(one))
		dec.UseNumber()
		if err := dec.Decode(opts); err != nil {
			return fmt.Errorf("option %q: expected %s", k, describeType(fields[k]))
		}
	}
	r.registerSecrets(rv)
	return nil
}

// collectFields maps each JSON option name to its Go type, descending into
// embedded structs the way encoding/json does.
func collectFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			collectFields(f.Type, out)
			continue
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
}

var secretType = reflect.TypeOf(Secret(""))

func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == secretType || t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "a boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "a "), "an ") + "s"
	case t.Kind() == reflect.Map || t.Kind() == reflect.Struct:
		return "a dictionary"
	}
	return "a value of another type"
}

// registerSecrets walks the decoded options and remembers every Secret.
func (r *Request) registerSecrets(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			r.registerSecrets(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			// Embedded structs are walked even when their type is
			// unexported: Decode fills their exported fields too.
			if f := v.Type().Field(i); f.IsExported() || f.Anonymous {
				r.registerSecrets(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			r.registerSecrets(v.Index(i))
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			r.registerSecrets(it.Value())
		}
	case reflect.String:
		if v.Type() == secretType {
			r.AddSecret(v.String())
		}
	}
}
