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

// HasSecrets reports whether the task carries any secret (an option of
// type Secret, a secret directive's value, a hash), so that a connection
// can refuse a peer no secret may go to.
func (r *Request) HasSecrets() bool { return r != nil && len(r.secrets) > 0 }

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
// are flattened) from the request, after checking the options against the
// struct's Spec (SpecOf): unknown options at any depth, missing required
// ones, types (coerced as Ansible users expect), choices, NUL bytes, and the
// exclusive/together groups, each refused with one sentence that names the
// option and never quotes a secret (Spec.Check). Every secret the spec names
// (Secret fields, secret directives, secret keys) is registered for masking.
func (r *Request) Decode(opts any) error {
	rv := reflect.ValueOf(opts)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("internal error: Decode needs a pointer to a struct")
	}
	spec := SpecOf(opts)
	params := make(map[string]any, len(r.params))
	for k, raw := range r.params {
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("failed to read the module arguments: option %q is not valid JSON", k)
		}
		params[k] = v
	}
	checked, err := spec.Check(r.Module, params)
	if err != nil {
		return err
	}
	if err := absolutePaths(spec.Options, checked, ""); err != nil {
		return err
	}
	data, err := json.Marshal(checked)
	if err != nil {
		return fmt.Errorf("internal error: failed to encode the checked options: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(opts); err != nil {
		// Check accepted what the struct cannot hold: a spec that does not
		// describe its struct (e.g. an integer out of the field's range).
		return fmt.Errorf("internal error: the checked options do not fit %T: %s", opts, jsonErrorKind(err))
	}
	for _, s := range spec.SecretValues(checked, IsSecretDirective) {
		r.AddSecret(s)
	}
	return nil
}
