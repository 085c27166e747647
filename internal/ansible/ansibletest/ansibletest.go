// Package ansibletest runs a module's handler in tests the way the binary
// does: arguments as JSON, parsed by ansible.ParseRequest, the result as
// returned or as printed by ansible.Run.
package ansibletest

import (
	"bytes"
	"encoding/json"
	"maps"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible"
)

// Call runs h with args and returns the result and its fields as *F (nil
// when the result carries none of that type).
func Call[F any](t testing.TB, module string, h ansible.Handler, args map[string]any) (*ansible.Result, *F) {
	t.Helper()
	data, err := json.Marshal(args)
	require.NoError(t, err)
	req, err := ansible.ParseRequest(module, data)
	require.NoError(t, err)
	res := h(req)
	require.NotNil(t, res)
	f, _ := res.Fields.(*F)
	return res, f
}

// CallOK is Call that fails the test when the task failed or has no fields.
func CallOK[F any](t testing.TB, module string, h ansible.Handler, args map[string]any) (*ansible.Result, *F) {
	t.Helper()
	res, f := Call[F](t, module, h, args)
	require.False(t, res.Failed, "task failed: %s", res.Msg)
	require.NotNil(t, f)
	return res, f
}

// Printed runs h through ansible.Run, as the binary does, and returns the
// printed JSON, the decoded document and the exit code.
func Printed(t testing.TB, module string, h ansible.Handler, args map[string]any) (string, map[string]any, int) {
	t.Helper()
	data, err := json.Marshal(args)
	require.NoError(t, err)
	var out bytes.Buffer
	code := ansible.Run(module, h, bytes.NewReader(data), "", &out)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &doc), "output %s", out.String())
	return out.String(), doc, code
}

// WithJournal points a module's change journal at a temp file unless the test
// chose journal options itself, so tests never write the machine's default
// /var/log/valkeyops/changes.jsonl (.ci/run checks that they do not). It
// edits args in place: a test that reuses args reuses the journal.
func WithJournal(t testing.TB, args map[string]any) map[string]any {
	t.Helper()
	_, path := args["journal_path"]
	_, on := args["journal"]
	if !path && !on {
		args["journal_path"] = filepath.Join(t.TempDir(), "changes.jsonl")
	}
	return args
}

// Module binds a module's name, handler and result fields for its tests,
// each call with its change journal in a temp file (WithJournal):
//
//	var mod = ansibletest.Module[Fields]{Name: "valkey_config", Main: Main}
//	res, f := mod.CallOK(t, args)
type Module[F any] struct {
	Name string
	Main ansible.Handler
}

// Call is the package-level Call for this module.
func (m Module[F]) Call(t testing.TB, args map[string]any) (*ansible.Result, *F) {
	t.Helper()
	return Call[F](t, m.Name, m.Main, WithJournal(t, args))
}

// CallOK is the package-level CallOK for this module.
func (m Module[F]) CallOK(t testing.TB, args map[string]any) (*ansible.Result, *F) {
	t.Helper()
	return CallOK[F](t, m.Name, m.Main, WithJournal(t, args))
}

// Printed is the package-level Printed for this module.
func (m Module[F]) Printed(t testing.TB, args map[string]any) (string, map[string]any, int) {
	t.Helper()
	return Printed(t, m.Name, m.Main, WithJournal(t, args))
}

// Args is base with extra's keys set over it, in a new map.
func Args(base, extra map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(extra))
	maps.Copy(out, base)
	maps.Copy(out, extra)
	return out
}
