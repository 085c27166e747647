package conffile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// writeFile writes content to dir/name and returns the absolute path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoad(t *testing.T, path string) *Config {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%q): %v", path, err)
	}
	return c
}

// argsOf returns the args of every occurrence of names, one slice per line.
func argsOf(c *Config, names ...string) [][]string {
	var out [][]string
	for _, o := range c.Occurrences(names...) {
		out = append(out, o.Args)
	}
	return out
}

func TestDebianConfig(t *testing.T) {
	orig, err := os.ReadFile("testdata/debian-valkey.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := writeFile(t, dir, "valkey.conf", string(orig))
	c := mustLoad(t, path)
	if len(c.Warnings) != 0 || len(c.Includes()) != 0 {
		t.Fatalf("unexpected warnings %q / includes %q", c.Warnings, c.Includes())
	}

	edits := []struct {
		names []string
		args  []string
		mode  Mode
	}{
		{[]string{"maxmemory"}, []string{"1073741824"}, Replace},            // only commented out: appended
		{[]string{"bind"}, []string{"127.0.0.1", "-::1"}, Replace},          // already so: untouched
		{[]string{"protected-mode"}, []string{"yes"}, Replace},              // already so: untouched
		{[]string{"timeout"}, []string{"300"}, Replace},                     // rewritten in place
		{[]string{"port"}, []string{"6380"}, Replace},                       // rewritten in place
		{[]string{"save"}, []string{"3600", "1"}, Accumulate},               // only commented out: appended
		{[]string{"maxclients"}, []string{"1000"}, Replace},                 // only commented out: appended
		{[]string{"locale-collate"}, []string{"C"}, Replace},                // quoted "" replaced
		{[]string{"requirepass"}, []string{`pa ss"word`}, Replace},          // needs quoting, appended
		{[]string{"client-output-buffer-limit"}, []string{"x"}, Accumulate}, // 3 lines -> first rewritten, others deleted
	}
	for _, e := range edits {
		if err := c.Set(e.names, e.args, e.mode); err != nil {
			t.Fatalf("Set(%q, %q): %v", e.names, e.args, err)
		}
	}
	origLines := splitLines(string(orig))
	newLines := splitLines(string(c.Bytes()))

	wantChanged := map[int]string{ // 1-based line -> new content
		139:  "port 6380\n",
		161:  "timeout 300\n",
		423:  "locale-collate C\n",
		2138: "client-output-buffer-limit x\n",
	}
	wantDeleted := map[int]bool{2139: true, 2140: true}
	wantAppended := []string{
		"maxmemory 1073741824\n",
		"save 3600 1\n",
		"maxclients 1000\n",
		`requirepass "pa ss\"word"` + "\n",
	}

	j := 0
	for i, ol := range origLines {
		ln := i + 1
		if wantDeleted[ln] {
			continue
		}
		if j >= len(newLines) {
			t.Fatalf("new file ends before original line %d", ln)
		}
		if want, ok := wantChanged[ln]; ok {
			if newLines[j] != want {
				t.Errorf("line %d: got %q, want %q", ln, newLines[j], want)
			}
		} else if newLines[j] != ol {
			t.Errorf("line %d: changed unexpectedly from %q to %q", ln, ol, newLines[j])
		}
		j++
	}
	if got := newLines[j:]; !slices.Equal(got, wantAppended) {
		t.Errorf("appended lines = %q, want %q", got, wantAppended)
	}
	if !c.Changed() {
		t.Error("Changed() = false after edits")
	}
	if string(c.Original()) != string(orig) {
		t.Error("Original() differs from the loaded content")
	}

	// Write, reload, and check the effective values.
	if _, err := WriteAtomic(path, c.Bytes(), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	c2 := mustLoad(t, path)
	checks := map[string][]string{
		"maxmemory": {"1073741824"}, "bind": {"127.0.0.1", "-::1"}, "protected-mode": {"yes"},
		"timeout": {"300"}, "save": {"3600", "1"}, "maxclients": {"1000"}, "requirepass": {`pa ss"word`},
	}
	for name, want := range checks {
		occ := c2.Occurrences(name)
		if len(occ) == 0 || !slices.Equal(occ[len(occ)-1].Args, want) {
			t.Errorf("after reload %s = %q, want %q", name, argsOf(c2, name), want)
		}
	}
	// Idempotence on the real file.
	for _, e := range edits {
		if err := c2.Set(e.names, e.args, e.mode); err != nil {
			t.Fatal(err)
		}
	}
	if c2.Changed() {
		t.Errorf("second run changed the file")
	}
}

func TestSetReplace(t *testing.T) {
	tests := []struct {
		name     string
		main     string
		include  string // content of inc.conf next to the main file, "" = none
		names    []string
		args     []string
		want     string
		changed  bool
		wantWarn bool
	}{
		{
			name: "rewrite single line", main: "# c\nport 6379\nbind x\n",
			names: []string{"port"}, args: []string{"6380"},
			want: "# c\nport 6380\nbind x\n", changed: true,
		},
		{
			name: "duplicates: last one edited", main: "port 1\nbind x\nport 2\n# end\n",
			names: []string{"port"}, args: []string{"3"},
			want: "port 1\nbind x\nport 3\n# end\n", changed: true,
		},
		{
			name: "keeps spelling and indentation", main: "  \tPORT   1   \nx y\n",
			names: []string{"port"}, args: []string{"2"},
			want: "  \tPORT 2\nx y\n", changed: true,
		},
		{
			name: "keeps quoted name as written", main: "\"port\" 1\n",
			names: []string{"port"}, args: []string{"2"},
			want: "\"port\" 2\n", changed: true,
		},
		{
			name: "alias matches", main: "slaveof a 1\n",
			names: []string{"replicaof", "slaveof"}, args: []string{"b", "2"},
			want: "slaveof b 2\n", changed: true,
		},
		{
			name: "absent: appended", main: "port 1\n",
			names: []string{"maxclients"}, args: []string{"10"},
			want: "port 1\nmaxclients 10\n", changed: true,
		},
		{
			name: "empty file", main: "",
			names: []string{"port"}, args: []string{"1"},
			want: "port 1\n", changed: true,
		},
		{
			name: "no trailing newline: appended", main: "port 1\n# last",
			names: []string{"bind"}, args: []string{"x"},
			want: "port 1\n# last\nbind x\n", changed: true,
		},
		{
			name: "no trailing newline: rewrite last line", main: "bind a\nport 1",
			names: []string{"port"}, args: []string{"2"},
			want: "bind a\nport 2", changed: true,
		},
		{
			name: "CRLF rewrite", main: "# c\r\nport 1  \r\nbind a \r\n",
			names: []string{"port"}, args: []string{"2"},
			want: "# c\r\nport 2\r\nbind a \r\n", changed: true,
		},
		{
			name: "CRLF append", main: "# c\r\nport 1\r\n",
			names: []string{"bind"}, args: []string{"a"},
			want: "# c\r\nport 1\r\nbind a\r\n", changed: true,
		},
		{
			name: "CRLF append without final newline", main: "# c\r\nport 1",
			names: []string{"bind"}, args: []string{"a"},
			want: "# c\r\nport 1\r\nbind a\r\n", changed: true,
		},
		{
			name: "idempotent", main: "port   6379  \n",
			names: []string{"port"}, args: []string{"6379"},
			want: "port   6379  \n", changed: false,
		},
		{
			name: "idempotent with earlier duplicate", main: "port 1\nport 2\n",
			names: []string{"port"}, args: []string{"2"},
			want: "port 1\nport 2\n", changed: false,
		},
		{
			name: "idempotent quoted", main: "requirepass \"a b\"\n",
			names: []string{"requirepass"}, args: []string{"a b"},
			want: "requirepass \"a b\"\n", changed: false,
		},
		{
			name: "last occurrence in include: appended", main: "port 1\ninclude inc.conf\n# tail\n",
			include: "port 2\n", names: []string{"port"}, args: []string{"3"},
			want: "port 1\ninclude inc.conf\n# tail\nport 3\n", changed: true,
		},
		{
			name: "include value already wanted", main: "port 1\ninclude inc.conf\n",
			include: "port 2\n", names: []string{"port"}, args: []string{"2"},
			want: "port 1\ninclude inc.conf\n", changed: false,
		},
		{
			name: "main line after include edited", main: "include inc.conf\nport 1\n",
			include: "port 2\n", names: []string{"port"}, args: []string{"3"},
			want: "include inc.conf\nport 3\n", changed: true,
		},
		{
			name: "quoted args rendered", main: "requirepass old\n",
			names: []string{"requirepass"}, args: []string{"a b", ""},
			want: "requirepass \"a b\" \"\"\n", changed: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "valkey.conf", tc.main)
			if tc.include != "" {
				writeFile(t, dir, "inc.conf", tc.include)
			}
			c := mustLoad(t, path)
			if err := c.Set(tc.names, tc.args, Replace); err != nil {
				t.Fatalf("Set: %v", err)
			}
			if got := string(c.Bytes()); got != tc.want {
				t.Errorf("content = %q, want %q", got, tc.want)
			}
			if c.Changed() != tc.changed {
				t.Errorf("Changed() = %v, want %v", c.Changed(), tc.changed)
			}
			occ := c.Occurrences(tc.names...)
			if len(occ) == 0 || !slices.Equal(occ[len(occ)-1].Args, tc.args) {
				t.Errorf("effective value after Set = %q, want %q", argsOf(c, tc.names...), tc.args)
			}
			// The in-memory result must parse identically from disk.
			if err := os.WriteFile(path, c.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			c2 := mustLoad(t, path)
			if !slices.EqualFunc(argsOf(c, tc.names...), argsOf(c2, tc.names...), slices.Equal) {
				t.Errorf("reloaded occurrences %q differ from in-memory %q", argsOf(c2, tc.names...), argsOf(c, tc.names...))
			}
		})
	}
}

func TestSetAccumulate(t *testing.T) {
	tests := []struct {
		name    string
		main    string
		include string
		args    []string
		want    string
		changed bool
		errIncl string // expected "file:line" fragment of an ErrInIncludedFile error
	}{
		{
			name: "none: appended", main: "port 1\n", args: []string{"3600", "1"},
			want: "port 1\nsave 3600 1\n", changed: true,
		},
		{
			name: "first replaced, others deleted", main: "save 900 1\nport 1\n  SAVE 300 10\r\nsave 60 10000\n# end\n",
			args: []string{"3600", "1"}, want: "save 3600 1\nport 1\n# end\n", changed: true,
		},
		{
			name: "first keeps indentation and spelling", main: "# x\n\tSave 900 1\nsave 1 1",
			args: []string{""}, want: "# x\n\tSave \"\"\n", changed: true,
		},
		{
			name: "idempotent single line", main: "save 3600 1 300 100\n",
			args: []string{"3600", "1", "300", "100"}, want: "save 3600 1 300 100\n", changed: false,
		},
		{
			name: "equal args but two lines collapse", main: "save 3600 1\nsave 3600 1\n",
			args: []string{"3600", "1"}, want: "save 3600 1\n", changed: true,
		},
		{
			name: "occurrence in include is an error", main: "save 1 1\ninclude inc.conf\n",
			include: "# x\nsave 900 1\n", args: []string{"3600", "1"}, errIncl: "inc.conf:2",
		},
		{
			name: "include without occurrence is fine", main: "save 1 1\ninclude inc.conf\n",
			include: "port 1\n", args: []string{"3600", "1"},
			want: "save 3600 1\ninclude inc.conf\n", changed: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "valkey.conf", tc.main)
			if tc.include != "" {
				writeFile(t, dir, "inc.conf", tc.include)
			}
			c := mustLoad(t, path)
			err := c.Set([]string{"save"}, tc.args, Accumulate)
			if tc.errIncl != "" {
				if !errors.Is(err, ErrInIncludedFile) || !strings.Contains(err.Error(), tc.errIncl) {
					t.Fatalf("Set error = %v, want ErrInIncludedFile naming %q", err, tc.errIncl)
				}
				if c.Changed() {
					t.Error("failed Set changed the content")
				}
				return
			}
			if err != nil {
				t.Fatalf("Set: %v", err)
			}
			if got := string(c.Bytes()); got != tc.want {
				t.Errorf("content = %q, want %q", got, tc.want)
			}
			if c.Changed() != tc.changed {
				t.Errorf("Changed() = %v, want %v", c.Changed(), tc.changed)
			}
			if got := argsOf(c, "save"); len(got) != 1 || !slices.Equal(got[0], tc.args) {
				t.Errorf("save occurrences = %q, want one with %q", got, tc.args)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	tests := []struct {
		name    string
		main    string
		include string
		names   []string
		want    string
		errIncl bool
	}{
		{name: "all main lines", main: "save 1 1\nport 1\nSAVE 2 2\r\n", names: []string{"save"}, want: "port 1\n"},
		{name: "aliases", main: "slaveof a 1\nreplicaof b 2\nport 1", names: []string{"replicaof", "slaveof"}, want: "port 1"},
		{name: "last line without newline", main: "port 1\nsave 1 1", names: []string{"save"}, want: "port 1\n"},
		{name: "absent", main: "port 1\n", names: []string{"save"}, want: "port 1\n"},
		{name: "in include", main: "save 1 1\ninclude inc.conf\n", include: "save 2 2\n", names: []string{"save"}, errIncl: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "valkey.conf", tc.main)
			if tc.include != "" {
				writeFile(t, dir, "inc.conf", tc.include)
			}
			c := mustLoad(t, path)
			err := c.Remove(tc.names...)
			if tc.errIncl {
				if !errors.Is(err, ErrInIncludedFile) {
					t.Fatalf("Remove error = %v, want ErrInIncludedFile", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if got := string(c.Bytes()); got != tc.want {
				t.Errorf("content = %q, want %q", got, tc.want)
			}
			if n := len(c.Occurrences(tc.names...)); n != 0 {
				t.Errorf("%d occurrences left", n)
			}
		})
	}
}

func TestIncludes(t *testing.T) {
	dir := t.TempDir()
	// conf.d/*.conf in sorted order, a nested include, a cycle back to the
	// main file and to itself, a missing include, and an empty glob.
	main := writeFile(t, dir, "valkey.conf", "port 1\ninclude conf.d/*.conf\ninclude missing.conf\ninclude empty.d/*.conf\nport 9\n")
	writeFile(t, dir, "conf.d/20-b.conf", "port 20\ninclude nested.conf\n")
	writeFile(t, dir, "conf.d/10-a.conf", "port 10\ninclude "+filepath.Join(dir, "valkey.conf")+"\n")
	writeFile(t, dir, "conf.d/ignored.txt", "port 999\n")
	writeFile(t, dir, "nested.conf", "port 30\ninclude nested.conf\n")
	if err := os.Mkdir(filepath.Join(dir, "empty.d"), 0o755); err != nil {
		t.Fatal(err)
	}

	c := mustLoad(t, main)
	var got []string
	for _, o := range c.Occurrences("PORT") {
		got = append(got, filepath.Base(o.File)+":"+o.Args[0])
		if o.Main != (o.File == main) {
			t.Errorf("occurrence %+v has wrong Main flag", o)
		}
	}
	want := []string{"valkey.conf:1", "10-a.conf:10", "20-b.conf:20", "nested.conf:30", "valkey.conf:9"}
	if !slices.Equal(got, want) {
		t.Errorf("flattened port order = %q, want %q", got, want)
	}
	wantInc := []string{
		filepath.Join(dir, "conf.d/10-a.conf"),
		filepath.Join(dir, "conf.d/20-b.conf"),
		filepath.Join(dir, "nested.conf"),
	}
	if !slices.Equal(c.Includes(), wantInc) {
		t.Errorf("Includes() = %q, want %q", c.Includes(), wantInc)
	}
	joined := strings.Join(c.Warnings, "\n")
	for _, frag := range []string{"missing.conf", "cycle"} {
		if !strings.Contains(joined, frag) {
			t.Errorf("warnings %q do not mention %q", c.Warnings, frag)
		}
	}
	if n := strings.Count(joined, "cycle"); n != 2 {
		t.Errorf("want 2 cycle warnings, got %d: %q", n, c.Warnings)
	}
	if len(c.Warnings) != 3 {
		t.Errorf("want 3 warnings, got %q", c.Warnings)
	}
	// include lines are occurrences too.
	if n := len(c.Occurrences("include")); n != 6 {
		t.Errorf("include occurrences = %d, want 6", n)
	}
}

func TestIncludeDepthLimit(t *testing.T) {
	dir := t.TempDir()
	main := writeFile(t, dir, "valkey.conf", "include f1.conf\n")
	for i := 1; i <= 20; i++ {
		writeFile(t, dir, "f"+strconv.Itoa(i)+".conf", "port "+strconv.Itoa(i)+"\ninclude f"+strconv.Itoa(i+1)+".conf\n")
	}
	c := mustLoad(t, main)
	if n := len(c.Occurrences("port")); n != MaxIncludeDepth {
		t.Errorf("read %d nested files, want %d", n, MaxIncludeDepth)
	}
	if !strings.Contains(strings.Join(c.Warnings, "\n"), "deeper than") {
		t.Errorf("no depth warning in %q", c.Warnings)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "nope.conf"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of missing main file: %v, want fs.ErrNotExist", err)
	}

	tests := []struct {
		name     string
		main     string
		include  string
		wantFrag string
	}{
		{name: "unbalanced in main", main: "port 1\n# ok\nrequirepass \"abc\n", wantFrag: "valkey.conf:3"},
		{name: "text after quote", main: "requirepass 'a'b\n", wantFrag: "valkey.conf:1"},
		{name: "unbalanced in include", main: "include inc.conf\n", include: "\n\nx 'y\n", wantFrag: "inc.conf:3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			path := writeFile(t, d, "valkey.conf", tc.main)
			if tc.include != "" {
				writeFile(t, d, "inc.conf", tc.include)
			}
			_, err := Load(path)
			if !errors.Is(err, ErrUnbalancedQuotes) || !strings.Contains(err.Error(), tc.wantFrag) {
				t.Fatalf("Load error = %v, want ErrUnbalancedQuotes naming %q", err, tc.wantFrag)
			}
		})
	}
}

func TestParseNewFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "new.conf")
	c, err := Parse(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != path || c.Changed() || len(c.Bytes()) != 0 {
		t.Fatalf("fresh config: Path=%q Changed=%v Bytes=%q", c.Path, c.Changed(), c.Bytes())
	}
	writeFile(t, dir, "extra.conf", "port 7\n")
	if err := c.Set([]string{"include"}, []string{"extra.conf"}, Accumulate); err != nil {
		t.Fatal(err)
	}
	if err := c.Set([]string{"bind"}, []string{"127.0.0.1"}, Replace); err != nil {
		t.Fatal(err)
	}
	if got, want := string(c.Bytes()), "include extra.conf\nbind 127.0.0.1\n"; got != want {
		t.Errorf("content = %q, want %q", got, want)
	}
	if got := argsOf(c, "port"); len(got) != 1 || got[0][0] != "7" {
		t.Errorf("include added by Set not read: port = %q", got)
	}
	if !c.Changed() {
		t.Error("Changed() = false")
	}
}

func TestSetRejectsBadName(t *testing.T) {
	c, err := Parse(filepath.Join(t.TempDir(), "x.conf"), []byte("port 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, names := range [][]string{nil, {""}, {"a b"}, {"#port"}} {
		if err := c.Set(names, []string{"1"}, Replace); err == nil {
			t.Errorf("Set(%q) succeeded, want error", names)
		}
	}
	if err := c.Set([]string{"port"}, []string{"1"}, Mode(7)); err == nil {
		t.Error("Set with unknown mode succeeded")
	}
}
