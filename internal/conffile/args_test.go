package conffile

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    []string
		wantErr bool
	}{
		{name: "empty", line: "", want: []string{}},
		{name: "only blanks", line: " \t \v\f", want: []string{}},
		{name: "plain", line: "maxmemory 1gb", want: []string{"maxmemory", "1gb"}},
		{name: "multiple blanks", line: "  bind \t127.0.0.1   -::1  ", want: []string{"bind", "127.0.0.1", "-::1"}},
		{name: "double quoted with space", line: `requirepass "a b"`, want: []string{"requirepass", "a b"}},
		{name: "empty double quoted", line: `save ""`, want: []string{"save", ""}},
		{name: "empty single quoted", line: `save ''`, want: []string{"save", ""}},
		{name: "escapes", line: `x "\n\r\t\b\a\\\""`, want: []string{"x", "\n\r\t\b\a\\\""}},
		{name: "unknown escape is literal", line: `x "\q\'"`, want: []string{"x", "q'"}},
		{name: "hex escape", line: `x "\x41\x7a\x00\xff"`, want: []string{"x", "Az\x00\xff"}},
		{name: "hex escape upper case", line: `x "\xAB"`, want: []string{"x", "\xab"}},
		{name: "short hex is literal x", line: `x "\x4"`, want: []string{"x", "x4"}},
		{name: "non hex", line: `x "\xzz"`, want: []string{"x", "xzz"}},
		{name: "single quoted keeps backslashes", line: `x 'a\nb\\c'`, want: []string{"x", `a\nb\\c`}},
		{name: "single quoted backslash before closing quote escapes it", line: `x 'a\\'`, wantErr: true},
		{name: "single quoted escaped quote", line: `x 'it\'s'`, want: []string{"x", "it's"}},
		{name: "double quote inside single", line: `x 'say "hi"'`, want: []string{"x", `say "hi"`}},
		{name: "single quote inside double", line: `x "it's"`, want: []string{"x", "it's"}},
		{name: "quote starts mid token", line: `x ab"c d"`, want: []string{"x", "abc d"}},
		{name: "hash inside line is an argument", line: `x # y`, want: []string{"x", "#", "y"}},
		{name: "quote followed by tab", line: "x \"a\"\ty", want: []string{"x", "a", "y"}},
		{name: "quote followed by vertical tab", line: "x \"a\"\vy", want: []string{"x", "a", "y"}},
		{name: "nul ends the line", line: "x y\x00z", want: []string{"x", "y"}},
		{name: "non ascii", line: "x héllo", want: []string{"x", "héllo"}},
		{name: "unterminated double", line: `x "abc`, wantErr: true},
		{name: "unterminated single", line: `x 'abc`, wantErr: true},
		{name: "text after closing double", line: `x "a"b`, wantErr: true},
		{name: "text after closing single", line: `x 'a'b`, wantErr: true},
		{name: "trailing backslash in quotes", line: `x "a\`, wantErr: true},
		{name: "escaped closing quote only", line: `x "a\"`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitArgs(tc.line)
			if tc.wantErr {
				if !errors.Is(err, ErrUnbalancedQuotes) {
					t.Fatalf("SplitArgs(%q) error = %v, want ErrUnbalancedQuotes", tc.line, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SplitArgs(%q) unexpected error: %v", tc.line, err)
			}
			if got == nil || !slices.Equal(got, tc.want) {
				t.Fatalf("SplitArgs(%q) = %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}

func TestFormatArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "nil", args: nil, want: ""},
		{name: "plain", args: []string{"127.0.0.1", "-::1"}, want: "127.0.0.1 -::1"},
		{name: "empty", args: []string{""}, want: `""`},
		{name: "space", args: []string{"a b"}, want: `"a b"`},
		{name: "double quote", args: []string{`a"b`}, want: `"a\"b"`},
		{name: "single quote", args: []string{`it's`}, want: `"it's"`},
		{name: "backslash", args: []string{`a\b`}, want: `"a\\b"`},
		{name: "short escapes", args: []string{"\n\r\t\b\a"}, want: `"\n\r\t\b\a"`},
		{name: "other control chars", args: []string{"\x00\x01\x1f\x7f\v\f"}, want: `"\x00\x01\x1f\x7f\x0b\x0c"`},
		{name: "hash is plain", args: []string{"#x"}, want: "#x"},
		{name: "utf8 is plain", args: []string{"héllo"}, want: "héllo"},
		{name: "mixed", args: []string{"3600", "1", "", "a b"}, want: `3600 1 "" "a b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FormatArgs(tc.args)
			if got != tc.want {
				t.Fatalf("FormatArgs(%q) = %q, want %q", tc.args, got, tc.want)
			}
			back, err := SplitArgs(got)
			if err != nil {
				t.Fatalf("SplitArgs(FormatArgs(%q)) error: %v", tc.args, err)
			}
			if len(back) != len(tc.args) || (len(back) > 0 && !slices.Equal(back, tc.args)) {
				t.Fatalf("round trip of %q gave %q", tc.args, back)
			}
		})
	}
}

func TestFormatArgsRoundTripAllBytes(t *testing.T) {
	for b := 0; b < 256; b++ {
		args := []string{string([]byte{byte(b)}), "x" + string([]byte{byte(b)}) + "y", strings.Repeat(string([]byte{byte(b)}), 3)}
		back, err := SplitArgs(FormatArgs(args))
		if err != nil || !slices.Equal(back, args) {
			t.Errorf("byte 0x%02x: round trip of %q gave %q, %v", b, args, back, err)
		}
	}
}

// checkRoundTrip is shared by the fuzz target.
func checkRoundTrip(t *testing.T, args []string) {
	t.Helper()
	s := FormatArgs(args)
	back, err := SplitArgs(s)
	if err != nil {
		t.Fatalf("SplitArgs(FormatArgs(%q)) = error %v (formatted %q)", args, err, s)
	}
	if len(back) != len(args) || (len(args) > 0 && !slices.Equal(back, args)) {
		t.Fatalf("SplitArgs(FormatArgs(%q)) = %q (formatted %q)", args, back, s)
	}
}

func FuzzSplitFormat(f *testing.F) {
	seeds := []string{"", "save 3600 1", `x "a b" 'c d'`, `x "\x41\n"`, "x \"\"", "a\x00b", `x 'it\'s'`, "é \xff"}
	for _, s := range seeds {
		f.Add(s, "a b", "")
	}
	f.Fuzz(func(t *testing.T, line, a, b string) {
		// Arbitrary args must survive Format -> Split.
		checkRoundTrip(t, []string{a, b})
		checkRoundTrip(t, []string{line})
		// Whatever a line parses to must survive Format -> Split too.
		args, err := SplitArgs(line)
		if err != nil {
			if !errors.Is(err, ErrUnbalancedQuotes) {
				t.Fatalf("SplitArgs(%q) unexpected error kind: %v", line, err)
			}
			return
		}
		checkRoundTrip(t, args)
	})
}
