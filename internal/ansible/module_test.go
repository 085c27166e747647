package ansible

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type inner struct {
	Host     string `json:"login_host"`
	Port     int    `json:"login_port"`
	Password Secret `json:"login_password"`
}

type testOpts struct {
	inner
	Name     string         `json:"name"`
	Enabled  *bool          `json:"enabled"`
	Tags     []string       `json:"tags"`
	Settings map[string]any `json:"settings"`
	Ratio    float64        `json:"ratio"`
	Keys     []Secret       `json:"keys"`
	hidden   string
}

const validList = "enabled, keys, login_host, login_password, login_port, name, ratio, settings, tags"

func TestParseRequestAndDecode(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr string
		check   func(t *testing.T, r *Request, o *testOpts)
	}{
		{
			name:  "plain options and embedded struct",
			input: `{"name":"a","login_port":7000,"login_host":"h","enabled":false,"tags":["x","y"],"settings":{"maxmemory":1073741824},"ratio":0.5}`,
			check: func(t *testing.T, r *Request, o *testOpts) {
				assert.Equal(t, "a", o.Name)
				assert.Equal(t, 7000, o.Port)
				assert.Equal(t, "h", o.Host)
				require.NotNil(t, o.Enabled)
				assert.False(t, *o.Enabled)
				assert.Equal(t, []string{"x", "y"}, o.Tags)
				assert.Equal(t, json.Number("1073741824"), o.Settings["maxmemory"], "numbers stay exact")
				assert.Equal(t, 0.5, o.Ratio)
			},
		},
		{
			name:  "ansible keys honoured",
			input: `{"name":"a","_ansible_check_mode":true,"_ansible_diff":true,"_ansible_verbosity":4}`,
			check: func(t *testing.T, r *Request, o *testOpts) {
				assert.True(t, r.CheckMode)
				assert.True(t, r.Diff)
				assert.Equal(t, 4, r.Verbosity)
			},
		},
		{
			name:  "other ansible keys ignored",
			input: `{"_ansible_no_log":false,"_ansible_module_name":"x","_ansible_tmpdir":"/tmp/x","_ansible_remote_tmp":"~/.ansible","_ansible_keep_remote_files":false,"_ansible_string_conversion_action":"warn","_ansible_selinux_special_fs":["nfs"],"_ansible_version":"2.16.0"}`,
			check: func(t *testing.T, r *Request, o *testOpts) {
				assert.False(t, r.CheckMode)
				assert.False(t, r.Diff)
				assert.Zero(t, r.Verbosity)
			},
		},
		{
			name:  "controller metadata is not an option",
			input: `{"name":"a","_valkeyops_controller":{"user":"alice","playbook":"/src/site.yml","git_commit":"0123abc","git_dirty":true}}`,
			check: func(t *testing.T, r *Request, o *testOpts) {
				require.NotNil(t, r.Controller)
				assert.Equal(t, "alice", r.Controller.User)
				assert.Equal(t, "/src/site.yml", r.Controller.Playbook)
				assert.Equal(t, "0123abc", r.Controller.GitCommit)
				require.NotNil(t, r.Controller.GitDirty)
				assert.True(t, *r.Controller.GitDirty)
			},
		},
		{
			name:  "controller metadata absent or null",
			input: `{"name":"a","_valkeyops_controller":null}`,
			check: func(t *testing.T, r *Request, o *testOpts) {
				assert.Nil(t, r.Controller)
			},
		},
		{name: "controller metadata of the wrong type", input: `{"_valkeyops_controller":{"user":["s3cr3t"]}}`, wantErr: "failed to read the module arguments: _valkeyops_controller is not an object of strings (and git_dirty a boolean)"},
		{name: "other internal keys are options", input: `{"_valkeyops_other":1}`, wantErr: "unsupported option for test_mod: _valkeyops_other; valid options: " + validList},
		{
			name:  "ANSIBLE_MODULE_ARGS wrapper",
			input: `{"ANSIBLE_MODULE_ARGS":{"name":"w","_ansible_check_mode":true}}`,
			check: func(t *testing.T, r *Request, o *testOpts) {
				assert.Equal(t, "w", o.Name)
				assert.True(t, r.CheckMode)
			},
		},
		{
			name:  "null keeps the default",
			input: `{"name":null,"login_port":null}`,
			check: func(t *testing.T, r *Request, o *testOpts) {
				assert.Equal(t, "", o.Name)
				assert.Equal(t, 0, o.Port)
			},
		},
		{
			name:    "unknown option lists the valid ones",
			input:   `{"nmae":"a"}`,
			wantErr: "unsupported option for test_mod: nmae; valid options: " + validList,
		},
		{
			name:    "several unknown options",
			input:   `{"zz":1,"aa":2,"name":"x"}`,
			wantErr: "unsupported options for test_mod: aa, zz; valid options: " + validList,
		},
		{
			name:    "unexported field is not an option",
			input:   `{"hidden":"x"}`,
			wantErr: "unsupported option for test_mod: hidden; valid options: " + validList,
		},
		{
			name:    "wrapper with other keys is not unwrapped",
			input:   `{"ANSIBLE_MODULE_ARGS":{"name":"w"},"name":"x"}`,
			wantErr: "unsupported option for test_mod: ANSIBLE_MODULE_ARGS; valid options: " + validList,
		},
		{name: "wrong type string for int", input: `{"login_port":"s3cr3t-port"}`, wantErr: `option "login_port": expected an integer`},
		{name: "wrong type float for int", input: `{"login_port":5.5}`, wantErr: `option "login_port": expected an integer`},
		{name: "wrong type for bool pointer", input: `{"enabled":"maybe-s3cr3t"}`, wantErr: `option "enabled": expected a boolean`},
		{name: "wrong type for secret", input: `{"login_password":["s3cr3t"]}`, wantErr: `option "login_password": expected a string`},
		{name: "wrong type for list", input: `{"tags":{"a":"s3cr3t"}}`, wantErr: `option "tags": expected a list of strings`},
		{name: "wrong type for list of secrets", input: `{"keys":[[1234567]]}`, wantErr: `option "keys[0]": expected a string`},
		{name: "wrong type for dict", input: `{"settings":["s3cr3t"]}`, wantErr: `option "settings": expected a dictionary`},
		{name: "wrong type for number", input: `{"ratio":"s3cr3t"}`, wantErr: `option "ratio": expected a number`},
		{name: "check mode wrong type", input: `{"_ansible_check_mode":"yes"}`, wantErr: "failed to read the module arguments: _ansible_check_mode has the wrong type"},
		{name: "not JSON", input: `{"login_password": s3cr3t}`, wantErr: "failed to read the module arguments: expected one JSON object (invalid JSON at byte 20)"},
		{name: "empty input", input: ``, wantErr: "failed to read the module arguments: expected one JSON object (no input)"},
		{name: "array", input: `["s3cr3t"]`, wantErr: "failed to read the module arguments: expected one JSON object (not a JSON object)"},
		{name: "wrapper not an object", input: `{"ANSIBLE_MODULE_ARGS":["s3cr3t"]}`, wantErr: "failed to read the module arguments: ANSIBLE_MODULE_ARGS is not a JSON object"},
		{name: "trailing data", input: `{"name":"a"} {"login_password":"s3cr3t"}`, wantErr: "failed to read the module arguments: expected one JSON object (data after the object)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o testOpts
			r, err := ParseRequest("test_mod", []byte(tc.input))
			if err == nil {
				err = r.Decode(&o)
			}
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Equal(t, tc.wantErr, err.Error())
				assert.NotContains(t, err.Error(), "s3cr3t")
				assert.NotContains(t, err.Error(), "1234567")
				return
			}
			require.NoError(t, err)
			tc.check(t, r, &o)
		})
	}
}

func TestRequestMasked(t *testing.T) {
	r, err := ParseRequest("test_mod", []byte(`{"login_password":"hunter22"}`))
	require.NoError(t, err)
	var o testOpts
	require.NoError(t, r.Decode(&o))
	assert.Equal(t, "x ******** y", r.Masked("x hunter22 y"))
	assert.Equal(t, "plain", r.Masked("plain"))
	var nilReq *Request
	assert.Equal(t, "hunter22", nilReq.Masked("hunter22"))
}

func TestDecodeRegistersSecrets(t *testing.T) {
	r, err := ParseRequest("m", []byte(`{"login_password":"pw-one","keys":["k-two","k-three"]}`))
	require.NoError(t, err)
	var o testOpts
	require.NoError(t, r.Decode(&o))
	assert.Equal(t, "pw-one", o.Password.Reveal())
	assert.ElementsMatch(t, []string{"pw-one", "k-two", "k-three"}, r.secrets)
}

func TestDecodeNeedsStructPointer(t *testing.T) {
	r, err := ParseRequest("m", []byte(`{}`))
	require.NoError(t, err)
	var o testOpts
	assert.EqualError(t, r.Decode(o), "internal error: Decode needs a pointer to a struct")
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("hunter2-value")
	type holder struct {
		P Secret `json:"p"`
	}
	outputs := map[string]string{
		"%s":          fmt.Sprintf("%s", s),
		"%v":          fmt.Sprintf("%v", s),
		"%q":          fmt.Sprintf("%q", s),
		"%#v":         fmt.Sprintf("%#v", s),
		"%x":          fmt.Sprintf("%x", s),
		"%+v struct":  fmt.Sprintf("%+v", holder{s}),
		"%#v struct":  fmt.Sprintf("%#v", holder{s}),
		"%v pointer":  fmt.Sprintf("%v", &holder{s}),
		"String":      s.String(),
		"GoString":    s.GoString(),
		"Sprint":      fmt.Sprint(s),
		"error wraps": fmt.Errorf("x: %v", s).Error(),
	}
	for name, out := range outputs {
		assert.NotContains(t, out, "hunter2", name)
		assert.Contains(t, out, Mask, name)
	}
	b, err := json.Marshal(holder{s})
	require.NoError(t, err)
	assert.Equal(t, `{"p":"********"}`, string(b))
	b, err = json.Marshal(map[string]any{"list": []Secret{s}})
	require.NoError(t, err)
	assert.Equal(t, `{"list":["********"]}`, string(b))

	assert.Equal(t, "hunter2-value", s.Reveal())
	assert.True(t, s.IsSet())
	assert.False(t, Secret("").IsSet())

	var back Secret
	require.NoError(t, json.Unmarshal([]byte(`"v"`), &back))
	assert.Equal(t, "v", back.Reveal())
	err = json.Unmarshal([]byte(`12345`), &back)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "12345")
}

// runJSON runs h through Run with in as stdin and decodes the printed result.
func runJSON(t *testing.T, h Handler, in string) (int, map[string]any, string) {
	t.Helper()
	var out bytes.Buffer
	code := Run("test_mod", h, strings.NewReader(in), "", &out)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &doc), "output: %s", out.String())
	assert.Equal(t, 1, strings.Count(out.String(), "\n"), "exactly one JSON document, one line")
	return code, doc, out.String()
}

func TestRunPanicIsContained(t *testing.T) {
	const fake = "fake-secret-9f8e7d"
	tests := []struct {
		name  string
		value any
	}{
		{"string panic", "boom " + fake},
		{"error panic", fmt.Errorf("wrapped %s", fake)},
		{"runtime error", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := func(r *Request) *Result {
				if tc.value == nil {
					var m map[string]int
					m[fake] = 1 // nil map write: a runtime panic
				}
				panic(tc.value)
			}
			code, doc, raw := runJSON(t, h, `{"name":"`+fake+`"}`)
			assert.Equal(t, 1, code)
			assert.Equal(t, true, doc["failed"])
			assert.Equal(t, false, doc["changed"])
			msg, _ := doc["msg"].(string)
			assert.True(t, strings.HasPrefix(msg, "internal error in test_mod: the module crashed ("), msg)
			assert.Less(t, len(msg), 200)
			assert.NotContains(t, raw, fake)
			assert.NotContains(t, raw, "boom")
		})
	}
}

func TestRunScrubsSecrets(t *testing.T) {
	const sec = "Sup3r-s3cret"
	const extra = "added-secret-xyz"
	h := func(r *Request) *Result {
		var o testOpts
		if err := r.Decode(&o); err != nil {
			return Fail(err.Error())
		}
		r.AddSecret(extra)
		r.AddSecret("") // ignored
		res := &Result{Changed: true, Msg: "password " + o.Password.Reveal() + " set"}
		res.Warn("warned about %s and %s", o.Password.Reveal(), extra)
		res.Diff = []DiffEntry{{BeforeHeader: "h " + extra, Before: "requirepass " + extra + "\n", After: "requirepass " + sec + "\n"}}
		res.Fields = map[string]any{
			"values": map[string]any{"requirepass": extra, extra: "key-is-secret"},
			"nested": []any{map[string]any{"deep": []string{"a", sec}}},
			"list":   []string{extra},
		}
		return res
	}
	code, doc, raw := runJSON(t, h, `{"login_password":"`+sec+`","_ansible_diff":true}`)
	assert.Equal(t, 0, code)
	assert.NotContains(t, raw, sec)
	assert.NotContains(t, raw, extra)
	assert.Equal(t, "password ******** set", doc["msg"])
	assert.Equal(t, []any{"warned about ******** and ********"}, doc["warnings"])
	assert.Equal(t, []any{map[string]any{"before_header": "h ********", "after_header": "", "before": "requirepass ********\n", "after": "requirepass ********\n"}}, doc["diff"])
	assert.Equal(t, map[string]any{"requirepass": Mask, Mask: "key-is-secret"}, doc["values"])
	assert.Equal(t, []any{map[string]any{"deep": []any{"a", Mask}}}, doc["nested"])
	assert.Equal(t, []any{Mask}, doc["list"])
}

func TestRunScrubsOverlappingSecrets(t *testing.T) {
	// A secret that is a prefix of another must not leave the tail of the
	// longer one in clear text.
	h := func(r *Request) *Result {
		r.AddSecret("abc123")
		r.AddSecret("abc123-TAIL-LEAK")
		return &Result{Msg: "value abc123-TAIL-LEAK"}
	}
	_, doc, raw := runJSON(t, h, `{}`)
	assert.NotContains(t, raw, "TAIL-LEAK")
	assert.Equal(t, "value ********", doc["msg"])
}

func TestRunDiffOnlyWhenAsked(t *testing.T) {
	h := func(r *Request) *Result {
		return &Result{Changed: true, Diff: []DiffEntry{{Before: "a\n", After: "b\n"}}}
	}
	_, doc, _ := runJSON(t, h, `{}`)
	assert.NotContains(t, doc, "diff")
	_, doc, _ = runJSON(t, h, `{"_ansible_diff":true}`)
	assert.Contains(t, doc, "diff")
}

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name    string
		h       Handler
		in      string
		code    int
		msg     string
		changed bool
	}{
		{"ok", func(*Request) *Result { return &Result{Changed: true, Msg: "done"} }, `{}`, 0, "done", true},
		{"failed", func(*Request) *Result { return Fail("it broke") }, `{}`, 1, "it broke", false},
		{"failf", func(*Request) *Result { return (&Result{}).Failf("bad %q", "x") }, `{}`, 1, `bad "x"`, false},
		{"nil result", func(*Request) *Result { return nil }, `{}`, 1, "internal error in test_mod: no result", false},
		{"bad JSON", func(*Request) *Result { return &Result{} }, `{`, 1, "failed to read the module arguments: expected one JSON object (the input ends inside the JSON)", false},
		{"field shadows a common key", func(*Request) *Result { return &Result{Fields: map[string]any{"msg": "x"}} }, `{}`, 1, `internal error: module field "msg" shadows a common result key`, false},
		{"fields not an object", func(*Request) *Result { return &Result{Fields: []string{"x"}} }, `{}`, 1, "failed to encode the module result: fields are not an object", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, doc, _ := runJSON(t, tc.h, tc.in)
			assert.Equal(t, tc.code, code)
			assert.Equal(t, tc.changed, doc["changed"])
			assert.Equal(t, tc.msg, doc["msg"])
			if tc.code == 1 {
				assert.Equal(t, true, doc["failed"])
			} else {
				assert.NotContains(t, doc, "failed")
			}
		})
	}
}

func TestRunArgsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "args")
	require.NoError(t, os.WriteFile(path, []byte(`{"name":"from-file","_ansible_check_mode":true}`), 0o600))
	h := func(r *Request) *Result {
		var o testOpts
		if err := r.Decode(&o); err != nil {
			return Fail(err.Error())
		}
		return &Result{Msg: fmt.Sprintf("%s check=%v", o.Name, r.CheckMode)}
	}
	var out bytes.Buffer
	code := Run("test_mod", h, strings.NewReader(`{"name":"from-stdin"}`), path, &out)
	assert.Equal(t, 0, code)
	assert.Contains(t, out.String(), `"msg":"from-file check=true"`)

	out.Reset()
	missing := filepath.Join(dir, "missing")
	code = Run("test_mod", h, strings.NewReader(`{}`), missing, &out)
	assert.Equal(t, 1, code)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &doc))
	assert.Equal(t, fmt.Sprintf("failed to read the module arguments from %q: no such file or directory", missing), doc["msg"])
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("closed") }

func TestRunWriteFailure(t *testing.T) {
	code := Run("test_mod", func(*Request) *Result { return &Result{} }, strings.NewReader(`{}`), "", failWriter{})
	assert.Equal(t, 2, code)
}

func TestRunShortSecretMaskedOnlyAsWholeString(t *testing.T) {
	h := func(req *Request) *Result {
		req.AddSecret("a")
		return &Result{Changed: true, Msg: "a", Fields: map[string]any{"value": "a", "word": "changed anyway"}}
	}
	var out bytes.Buffer
	code := Run("m", h, strings.NewReader(`{}`), "", &out)
	require.Equal(t, 0, code)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &doc))
	assert.Equal(t, Mask, doc["msg"])
	assert.Equal(t, Mask, doc["value"])
	assert.Equal(t, "changed anyway", doc["word"], "a short secret must not be masked inside other words")
	assert.Equal(t, true, doc["changed"])
}
