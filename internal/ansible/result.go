package ansible

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// DiffEntry is one before/after pair, as Ansible's --diff shows it.
type DiffEntry struct {
	BeforeHeader string `json:"before_header,omitempty"`
	AfterHeader  string `json:"after_header,omitempty"`
	Before       string `json:"before"`
	After        string `json:"after"`
}

// Result is the one JSON document a module prints. Fields holds the module's
// own return values (a struct or map; its keys are merged at top level and may
// not shadow the common keys).
type Result struct {
	Changed  bool
	Failed   bool
	Msg      string
	Diff     []DiffEntry
	Warnings []string
	Fields   any
}

// Warn adds a warning.
func (r *Result) Warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// Failf marks the result failed with one sentence.
func (r *Result) Failf(format string, args ...any) *Result {
	r.Failed = true
	r.Msg = fmt.Sprintf(format, args...)
	return r
}

// Fail returns a failed result with msg.
func Fail(msg string) *Result { return &Result{Failed: true, Msg: msg} }

var reservedKeys = map[string]bool{"changed": true, "failed": true, "msg": true, "diff": true, "warnings": true}

// document renders the result as a JSON-ready map.
func (r *Result) document(diff bool) (map[string]any, error) {
	doc := map[string]any{}
	if r.Fields != nil {
		b, err := json.Marshal(r.Fields)
		if err != nil {
			return nil, fmt.Errorf("failed to encode the module result: %w", err)
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("failed to encode the module result: fields are not an object")
		}
		for k := range doc {
			if reservedKeys[k] {
				return nil, fmt.Errorf("internal error: module field %q shadows a common result key", k)
			}
		}
	}
	doc["changed"] = r.Changed
	if r.Failed {
		doc["failed"] = true
	}
	if r.Msg != "" {
		doc["msg"] = r.Msg
	}
	if diff && len(r.Diff) > 0 {
		entries := make([]any, len(r.Diff))
		for i, d := range r.Diff {
			entries[i] = map[string]any{
				"before_header": d.BeforeHeader, "after_header": d.AfterHeader,
				"before": d.Before, "after": d.After,
			}
		}
		doc["diff"] = entries
	}
	if len(r.Warnings) > 0 {
		doc["warnings"] = r.Warnings
	}
	return doc, nil
}

// longestFirst orders secrets so that one that contains another is masked
// first; otherwise masking the shorter one would leave the rest of the
// longer one in clear text.
func longestFirst(secrets []string) []string {
	out := append([]string(nil), secrets...)
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// MinSubstringSecret is the shortest secret masked wherever it occurs inside
// a string; a shorter one is masked only where a whole string equals it.
const MinSubstringSecret = 4

// scrub replaces every secret inside every string (keys included) of v.
func scrub(v any, secrets []string) any {
	if len(secrets) == 0 {
		return v
	}
	switch x := v.(type) {
	case string:
		for _, s := range secrets {
			if len(s) < MinSubstringSecret {
				if x == s {
					return Mask
				}
				continue
			}
			if strings.Contains(x, s) {
				x = strings.ReplaceAll(x, s, Mask)
			}
		}
		return x
	case map[string]any:
		// Keys are masked too, but never as a whole-string match of a short
		// secret (the key "changed" must survive a password "changed").
		out := make(map[string]any, len(x))
		for k, e := range x {
			key := k
			for _, s := range secrets {
				if len(s) >= MinSubstringSecret && strings.Contains(key, s) {
					key = strings.ReplaceAll(key, s, Mask)
				}
			}
			out[key] = scrub(e, secrets)
		}
		return out
	case []any:
		for i := range x {
			x[i] = scrub(x[i], secrets)
		}
		return x
	case []string:
		out := make([]any, len(x))
		for i := range x {
			out[i] = scrub(x[i], secrets)
		}
		return out
	}
	return v
}

// Handler is a module: it decodes its options from the request and returns
// its result. It never prints and never exits.
type Handler func(req *Request) *Result

// Run executes one module invocation and prints its JSON result to out. The
// arguments come from argsFile when it is not empty (stock binary-module
// calling convention), else from in. It returns the process exit code: 0 for
// success, 1 for a failed result. It never panics: a panic in the module
// becomes a failed result with a short message that holds no values.
func Run(module string, h Handler, in io.Reader, argsFile string, out io.Writer) int {
	res, req := invoke(module, h, in, argsFile)
	var secrets []string
	diff := false
	if req != nil {
		secrets, diff = req.secrets, req.Diff
	}
	doc, err := res.document(diff)
	if err != nil {
		doc = map[string]any{"changed": false, "failed": true, "msg": err.Error()}
	}
	doc = scrub(doc, longestFirst(secrets)).(map[string]any)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return 2
	}
	if res.Failed || err != nil {
		return 1
	}
	return 0
}

func invoke(module string, h Handler, in io.Reader, argsFile string) (res *Result, req *Request) {
	defer func() {
		if p := recover(); p != nil {
			// The panic value may hold option values: say only where it happened.
			res = Fail(fmt.Sprintf("internal error in %s: the module crashed (%T); nothing more is reported so that no value leaks; please file a bug", module, p))
		}
	}()
	var data []byte
	var err error
	if argsFile != "" {
		data, err = os.ReadFile(argsFile)
		if err != nil {
			return Fail(fmt.Sprintf("failed to read the module arguments from %q: %v", argsFile, unwrapPathError(err))), nil
		}
	} else {
		data, err = io.ReadAll(io.LimitReader(in, 64<<20))
		if err != nil {
			return Fail("failed to read the module arguments from standard input"), nil
		}
	}
	req, err = ParseRequest(module, data)
	if err != nil {
		return Fail(err.Error()), nil
	}
	res = h(req)
	if res == nil {
		res = Fail(fmt.Sprintf("internal error in %s: no result", module))
	}
	return res, req
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
