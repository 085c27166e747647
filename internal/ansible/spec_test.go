package ansible

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type specItem struct {
	Name  string   `json:"name"`
	Mode  string   `json:"mode" spec:"choices=yes|no|optional"`
	Codes []Secret `json:"codes"`
}

type specOpts struct {
	inner
	File     string            `json:"file" spec:"path,default=/etc/x.conf"`
	Content  string            `json:"content" spec:"exclusive=file"`
	Cert     string            `json:"cert" spec:"together=key"`
	Key      Secret            `json:"key"`
	Flag     *bool             `json:"flag" spec:"default=true"`
	Count    *int              `json:"count" spec:"default=30"`
	Level    string            `json:"level" spec:"default=low,choices=low|high"`
	Protos   []string          `json:"protos" spec:"default=a|b,choices=a|b|c"`
	Items    []specItem        `json:"items" spec:"item_required=name"`
	Settings map[string]any    `json:"settings" spec:"directives"`
	Users    []map[string]any  `json:"users" spec:"secret_keys=password|hash"`
	Nested   *struct{ A int }  `json:"nested"`
	Raw      any               `json:"raw"`
	Labels   map[string]string `json:"labels"`
	Tags     []string          `json:"tags"`
	Keys     []Secret          `json:"keys"`
	Ratio    float64           `json:"ratio"`
}

func checkOf(t *testing.T, input string) (map[string]any, error) {
	t.Helper()
	var params map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(input)))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&params))
	return SpecOf(&specOpts{}).Check("test_mod", params)
}

func TestSpecOf(t *testing.T) {
	s := SpecOf(specOpts{})
	assert.Equal(t, &Option{Type: "path", Default: "/etc/x.conf"}, s.Options["file"])
	assert.Equal(t, &Option{Type: "str", NoLog: true}, s.Options["login_password"])
	assert.Equal(t, &Option{Type: "bool", Default: true}, s.Options["flag"])
	assert.Equal(t, &Option{Type: "int", Default: 30}, s.Options["count"])
	assert.Equal(t, &Option{Type: "list", Elements: "str", Default: []string{"a", "b"}, Choices: []string{"a", "b", "c"}}, s.Options["protos"])
	assert.Equal(t, &Option{Type: "dict", Directives: true}, s.Options["settings"])
	assert.Equal(t, &Option{Type: "list", Elements: "dict", SecretKeys: []string{"password", "hash"}}, s.Options["users"])
	assert.Equal(t, &Option{Type: "raw"}, s.Options["raw"])
	items := s.Options["items"]
	assert.Equal(t, "list", items.Type)
	assert.Equal(t, "dict", items.Elements)
	assert.True(t, items.Options["name"].Required)
	assert.Equal(t, &Option{Type: "list", Elements: "str", NoLog: true}, items.Options["codes"])
	assert.Equal(t, [][]string{{"content", "file"}}, s.MutuallyExclusive)
	assert.Equal(t, [][]string{{"cert", "key"}}, s.RequiredTogether)
	assert.Same(t, s, SpecOf(&specOpts{}), "cached")
	// item_required changes a copy: the element type's own spec is untouched.
	assert.False(t, SpecOf(specItem{}).Options["name"].Required)
}

func TestSpecOfBadTag(t *testing.T) {
	type bad struct {
		Port int `json:"port" spec:"choices=a|b,directives"`
	}
	assert.PanicsWithValue(t, `spec of ansible.bad: option "port": spec tag item "directives" does not apply to a int option`, func() { SpecOf(bad{}) })
}

// One row per rule: the exact sentence, which the controller's validator
// (binary_module.py) must produce word for word (tests/integration/test_interface.py).
func TestSpecCheckMessages(t *testing.T) {
	tests := []struct{ name, input, want string }{
		{"unknown top level", `{"nmae":"x"}`, "unsupported option for test_mod: nmae; valid options: cert, content, count, file, flag, items, key, keys, labels, level, login_host, login_password, login_port, nested, protos, ratio, raw, settings, tags, users"},
		{"unknown nested", `{"items":[{"name":"a"},{"name":"b","nmae":1,"zz":2}]}`, "unsupported options for test_mod: items[1].nmae, items[1].zz; valid options in items[1]: codes, mode, name"},
		{"unknown in a struct", `{"nested":{"B":1}}`, "unsupported option for test_mod: nested.B; valid options in nested: A"},
		{"required nested", `{"items":[{"mode":"no"}]}`, `option "items[0].name" is required`},
		{"null is not given", `{"items":[{"name":null}]}`, `option "items[0].name" is required`},
		{"dict for a string", `{"login_password":{"a":"s3cr3t"}}`, `option "login_password": expected a string`},
		{"list for a string", `{"login_host":["a"]}`, `option "login_host": expected a string`},
		{"bool for a string", `{"login_host":true}`, `option "login_host": expected a string`},
		{"bool for an int", `{"login_port":true}`, `option "login_port": expected an integer`},
		{"fraction for an int", `{"login_port":5.5}`, `option "login_port": expected an integer`},
		{"word for an int", `{"login_port":"inf"}`, `option "login_port": expected an integer`},
		{"too big for an int", `{"login_port":1e30}`, `option "login_port": expected an integer`},
		{"maybe for a bool", `{"flag":"maybe"}`, `option "flag": expected a boolean`},
		{"two for a bool", `{"flag":2}`, `option "flag": expected a boolean`},
		{"nan for a number", `{"ratio":"nan"}`, `option "ratio": expected a number`},
		{"dict for a list", `{"tags":{"a":1}}`, `option "tags": expected a list of strings`},
		{"string for a list of dicts", `{"items":"a,b"}`, `option "items": expected a list of dictionaries`},
		{"dict in a list of strings", `{"keys":[{"a":"s3cr3t"}]}`, `option "keys[0]": expected a string`},
		{"null in a list", `{"tags":["a",null]}`, `option "tags[1]": expected a string`},
		{"string for a dict", `{"settings":"timeout 5"}`, `option "settings": expected a dictionary`},
		{"choice", `{"level":"medium"}`, `option "level": "medium" is not one of low, high`},
		{"choice of an element", `{"protos":["a","d"]}`, `option "protos": "d" is not one of a, b, c`},
		{"choice nested", `{"items":[{"name":"a","mode":"sometimes"}]}`, `option "items[0].mode": "sometimes" is not one of yes, no, optional`},
		{"false for a choice without no", `{"level":false}`, `option "level": expected a string`},
		{"NUL in a string", `{"login_password":"s3cr3t\u0000x"}`, `option "login_password": the value contains a NUL byte`},
		{"NUL in a list item", `{"keys":["ok","s3cr3t\u0000"]}`, `option "keys[1]": the value contains a NUL byte`},
		{"NUL in a free-form value", `{"labels":{"a":"s3cr3t\u0000"}}`, `option "labels.a": the value contains a NUL byte`},
		{"NUL in a free-form key", `{"labels":{"a\u0000b":"x"}}`, `option "labels": a key contains a NUL byte`},
		{"NUL in raw", `{"raw":["\u0000"]}`, `option "raw[0]": the value contains a NUL byte`},
		{"exclusive", `{"file":"/a","content":"x"}`, `options "content" and "file" are mutually exclusive: give one or the other`},
		{"together", `{"cert":"/a"}`, `options "cert" and "key" go together: give both or neither`},
		{"unknown before required", `{"items":[{"x":1}]}`, "unsupported option for test_mod: items[0].x; valid options in items[0]: codes, mode, name"},
		{"first option in name order", `{"login_port":"x","flag":"maybe"}`, `option "flag": expected a boolean`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkOf(t, tc.input)
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
			assert.NotContains(t, err.Error(), "s3cr3t")
		})
	}
}

func TestSpecCheckLeavesDirectivesToTheEngine(t *testing.T) {
	out, err := checkOf(t, `{"settings":{"requirepass":"a\u0000b","bind":["x\u0000"]}}`)
	require.NoError(t, err, "internal/directives refuses NUL and line breaks in a directive's own words")
	assert.Equal(t, "a\x00b", out["settings"].(map[string]any)["requirepass"])
}

func TestSpecCheckCoerces(t *testing.T) {
	out, err := checkOf(t, `{"flag":"Yes","login_port":"6380","count":7.0,"tags":"a,b","keys":[1234],"login_host":42,"items":[{"name":"a","mode":true}],"level":null,"ratio":"0.5"}`)
	require.NoError(t, err)
	assert.Equal(t, true, out["flag"])
	assert.Equal(t, int64(6380), out["login_port"])
	assert.Equal(t, int64(7), out["count"])
	assert.Equal(t, []any{"a", "b"}, out["tags"])
	assert.Equal(t, []any{"1234"}, out["keys"])
	assert.Equal(t, "42", out["login_host"])
	assert.Equal(t, []any{map[string]any{"name": "a", "mode": "yes"}}, out["items"], "a YAML yes is the choice yes")
	assert.NotContains(t, out, "level", "null is not given")
	assert.Equal(t, 0.5, out["ratio"])
}

func TestDecodeRegistersSpecSecrets(t *testing.T) {
	r, err := ParseRequest("m", []byte(`{"cert":"/c","key":"k-one","items":[{"name":"a","codes":["c-two"]}],"settings":{" RequirePass ":"r-three","primaryuser":"u-four","timeout":"5"},"users":[{"name":"n","Password":"p-five","hashes":["h-six"],"keys":["k7"]}]}`))
	require.NoError(t, err)
	var o specOpts
	require.NoError(t, r.Decode(&o))
	assert.ElementsMatch(t, []string{"k-one", "c-two", "r-three", "u-four", "p-five", "h-six"}, r.secrets)
}

func TestSecretDirectivesIncludeAliases(t *testing.T) {
	for _, n := range []string{"requirepass", "primaryauth", "masterauth", "primaryuser", "masteruser", "tls-key-file-pass", "tls-client-key-file-pass"} {
		assert.Contains(t, SecretDirectives(), n)
	}
	assert.True(t, IsSecretDirective(" MasterUser "))
	assert.False(t, IsSecretDirective("timeout"))
}

func TestDecodeRefusesRelativePaths(t *testing.T) {
	for _, p := range []string{"~/x.conf", "$HOME/x.conf", "x.conf", "./x.conf"} {
		in, _ := json.Marshal(map[string]any{"file": p})
		r, err := ParseRequest("m", in)
		require.NoError(t, err)
		var o specOpts
		assert.EqualError(t, r.Decode(&o), `option "file": `+strconvQuote(p)+` is not an absolute path`, p)
	}
	r, err := ParseRequest("m", []byte(`{"file":"/etc/$HOME/~x.conf"}`))
	require.NoError(t, err)
	var o specOpts
	require.NoError(t, r.Decode(&o))
	assert.Equal(t, "/etc/$HOME/~x.conf", o.File, "taken as written")
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// BenchmarkDecodeUsers decodes 10,000 items with five options each, the
// shape of a large valkey_acl task.
func BenchmarkDecodeUsers(b *testing.B) {
	items := make([]any, 10000)
	for i := range items {
		items[i] = map[string]any{"name": fmt.Sprintf("user%05d", i), "mode": "yes", "codes": []string{fmt.Sprintf("pw-%05d-0123456789ab", i)}}
	}
	data, _ := json.Marshal(map[string]any{"items": items, "tags": []string{"a", "b"}, "login_port": 6379})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := ParseRequest("m", data)
		require.NoError(b, err)
		var o specOpts
		require.NoError(b, r.Decode(&o))
	}
}
