package conffile

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// fuzzPath is where fuzzed content pretends to live. Nothing is read from
// it: inputs with an include line are skipped, so Parse never touches disk.
const fuzzPath = "/nonexistent/valkeyops-fuzz/valkey.conf"

// hasIncludeLine reports whether content has an include directive (which
// would make Parse read arbitrary files such as /dev/zero).
func hasIncludeLine(content string) bool {
	for _, raw := range splitLines(content) {
		t := strings.Trim(raw, " \t\r\n")
		if t == "" || t[0] == '#' {
			continue
		}
		if args, err := SplitArgs(t); err == nil && len(args) > 0 && ASCIILower(args[0]) == "include" {
			return true
		}
	}
	return false
}

// fuzzArgs decodes NUL-terminated arguments: "" is no argument, "\x00" one
// empty argument, "a\x00b" and "a\x00b\x00" both [a b].
func fuzzArgs(blob string) []string {
	if blob == "" {
		return nil
	}
	parts := strings.Split(blob, "\x00")
	if parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}

// occLines returns the set of 0-based main-file line indexes of occs.
func occLines(occs []Occurrence) map[int]bool {
	m := make(map[int]bool, len(occs))
	for _, o := range occs {
		m[o.Line-1] = true
	}
	return m
}

// sameLine reports whether an untouched line kept its bytes. The one
// allowed change: the file's last line, unterminated, gains a line ending
// when a new line is appended after it.
func sameLine(before, after string, lastOfFile bool) bool {
	if before == after {
		return true
	}
	return lastOfFile && !strings.HasSuffix(before, "\n") &&
		(after == before+"\n" || after == before+"\r\n")
}

func fuzzSeedConfigs(f *testing.F) []string {
	seeds := []string{
		"",
		"save 3600 1\n",
		"save 3600 1\nsave 300 100\nsave 60 10000\n",
		"port 6379\r\nbind 127.0.0.1 -::1\r\n",
		"# comment\n\n  maxmemory 1gb  \n\tMAXMEMORY 2gb\nappendonly no",
		"rename-command CONFIG \"\"\nrename-command FLUSHALL \"\"\n",
		"\"save\" \"\" \n'port' '6380'\r\n",
		"requirepass \"a b\\x00\\n\"\nuser default on nopass ~* &* +@all\n",
		"dir /var/lib/valkey\n\v#not-a-comment x\nsa\x00ve 1\n  \r\n",
		"notify-keyspace-events \"\"\nlogfile ''\nsave\n",
		"maxmemory 1gb\r",
		"x \"unterminated\n", // rejected by Parse
	}
	// The directives of the Debian package's file, without its comments.
	if data, err := os.ReadFile("testdata/debian-valkey.conf"); err == nil {
		var sb strings.Builder
		for _, l := range splitLines(string(data)) {
			if t := strings.TrimSpace(l); t != "" && t[0] != '#' {
				sb.WriteString(l)
			}
		}
		seeds = append(seeds, sb.String())
	} else {
		f.Fatal(err)
	}
	return seeds
}

// FuzzParseSet parses arbitrary content, sets a directive to arbitrary
// arguments and checks, by parsing the result again: the setting has
// exactly those arguments; every other line is byte-identical and in the
// same order; setting the same arguments again changes nothing.
func FuzzParseSet(f *testing.F) {
	type edit struct {
		name, alias, args string
		accumulate        bool
	}
	edits := []edit{
		{"save", "", "3600\x001\x00", true},
		{"save", "", "", true},
		{"save", "", "\x00", false},
		{"maxmemory", "", "2gb", false},
		{"MaxMemory", "", "1gb", false},
		{"port", "", "6380", false},
		{"rename-command", "", "CONFIG\x00\x00", true},
		{"requirepass", "masterauth", "a b\"c'\\\n\r\t\x01\xff\x00", false},
		{"bind", "", "127.0.0.1\x00-::1", false},
		{"sa", "", "x", false},
		{"#x", "", "y", false},  // rejected name
		{"a b", "", "y", false}, // rejected name
		{"include", "", "y", false},
		{"replicaof", "slaveof", "10.0.0.1\x006379", false},
	}
	for i, content := range fuzzSeedConfigs(f) {
		for j, e := range edits {
			if (i+j)%3 == 0 || len(content) > 4096 { // a spread, not every pair
				f.Add(content, e.name, e.alias, e.args, e.accumulate)
			}
		}
	}
	f.Fuzz(func(t *testing.T, content, name, alias, argBlob string, accumulate bool) {
		if len(content) > 1<<16 || hasIncludeLine(content) {
			return
		}
		if ASCIILower(name) == "include" || ASCIILower(alias) == "include" {
			return
		}
		c, err := Parse(fuzzPath, []byte(content))
		if err != nil {
			if !errors.Is(err, ErrUnbalancedQuotes) {
				t.Fatalf("Parse: unexpected error kind: %v", err)
			}
			return
		}
		if got := string(c.Bytes()); got != content || c.Changed() {
			t.Fatalf("Parse changed the content: %q -> %q", content, got)
		}
		names := []string{name}
		if alias != "" {
			names = append(names, alias)
		}
		args := fuzzArgs(argBlob)
		mode := Replace
		if accumulate {
			mode = Accumulate
		}
		oldLines := splitLines(content)
		oldOccs := c.Occurrences(names...)

		err = c.Set(names, args, mode)
		if name == "" || needsQuoting(name) || name[0] == '#' {
			if err == nil {
				t.Fatalf("Set(%q) accepted an invalid name", name)
			}
			if string(c.Bytes()) != content {
				t.Fatalf("a rejected Set changed the content")
			}
			return
		}
		if strings.IndexByte(content, 0) >= 0 {
			// The server reads such a file differently from its lines: no
			// edit by line, the file stays as it is.
			if !errors.Is(err, ErrNULByte) || string(c.Bytes()) != content {
				t.Fatalf("Set on a file with a NUL byte: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Set(%q, %q, %v): %v", names, args, mode, err)
		}
		out := c.Bytes()

		c2, err := Parse(fuzzPath, out)
		if err != nil {
			t.Fatalf("the edited content does not parse: %v\n%q", err, out)
		}
		newLines := splitLines(string(out))
		occs := c2.Occurrences(names...)
		if mine := c.Occurrences(names...); !slices.EqualFunc(mine, occs, func(a, b Occurrence) bool {
			return a.Line == b.Line && a.Name == b.Name && slices.Equal(a.Args, b.Args)
		}) {
			t.Fatalf("Config after Set disagrees with a fresh parse: %v vs %v", mine, occs)
		}

		// The effective value is args.
		switch mode {
		case Replace:
			if len(occs) == 0 || !slices.Equal(occs[len(occs)-1].Args, args) {
				t.Fatalf("Replace: last occurrence is not %q: %v\n%q", args, occs, out)
			}
			if len(occs) != len(oldOccs) && len(occs) != len(oldOccs)+1 {
				t.Fatalf("Replace: %d occurrences became %d", len(oldOccs), len(occs))
			}
			// Earlier occurrences are untouched too: only one line changes.
			for i := 0; i < len(occs)-1; i++ {
				if !sameLine(oldLines[oldOccs[i].Line-1], newLines[occs[i].Line-1], oldOccs[i].Line == len(oldLines)) {
					t.Fatalf("Replace: earlier occurrence %d changed: %q -> %q", i, oldLines[oldOccs[i].Line-1], newLines[occs[i].Line-1])
				}
			}
			if n := len(oldOccs); n > 0 && slices.Equal(oldOccs[n-1].Args, args) && string(out) != content {
				t.Fatalf("Replace: value already set, yet content changed")
			}
		case Accumulate:
			if len(occs) != 1 || !slices.Equal(occs[0].Args, args) {
				t.Fatalf("Accumulate: want one occurrence %q, got %v\n%q", args, occs, out)
			}
			if len(oldOccs) == 1 && slices.Equal(oldOccs[0].Args, args) && string(out) != content {
				t.Fatalf("Accumulate: value already set, yet content changed")
			}
		}

		// Every line that is not an occurrence is byte-identical, in order.
		oldSkip, newSkip := occLines(oldOccs), occLines(occs)
		var before, after []int
		for i := range oldLines {
			if !oldSkip[i] {
				before = append(before, i)
			}
		}
		for i := range newLines {
			if !newSkip[i] {
				after = append(after, i)
			}
		}
		if len(before) != len(after) {
			t.Fatalf("%d other lines became %d\nbefore %q\nafter  %q", len(before), len(after), content, out)
		}
		for k := range before {
			b, a := oldLines[before[k]], newLines[after[k]]
			if !sameLine(b, a, before[k] == len(oldLines)-1) {
				t.Fatalf("other line %d changed: %q -> %q", before[k]+1, b, a)
			}
		}

		// Idempotence: the same Set again changes nothing, on the edited
		// Config and on a fresh parse of its bytes.
		if err := c.Set(names, args, mode); err != nil {
			t.Fatalf("second Set: %v", err)
		}
		if string(c.Bytes()) != string(out) {
			t.Fatalf("second Set changed the content: %q -> %q", out, c.Bytes())
		}
		if err := c2.Set(names, args, mode); err != nil {
			t.Fatalf("Set on the re-parsed content: %v", err)
		}
		if c2.Changed() {
			t.Fatalf("Set on the re-parsed content is not idempotent: %q -> %q", out, c2.Bytes())
		}
	})
}
