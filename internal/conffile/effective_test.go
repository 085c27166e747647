package conffile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEffective(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "inc.conf")
	if err := os.WriteFile(inc, []byte("maxmemory 3gb\nsave 60 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "valkey.conf")
	content := "maxmemory 1gb\nsave 3600 1\ninclude " + inc + "\nmasterauth x\nprimaryauth y\n"
	if err := os.WriteFile(main, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		accumulate bool
		names      []string
		want       []string
		wantFile   string
		wantOK     bool
	}{
		{"last wins, in the include", false, []string{"maxmemory"}, []string{"3gb"}, inc, true},
		{"accumulates across files", true, []string{"save"}, []string{"3600", "1", "60", "1"}, inc, true},
		{"aliases: the last of either name", false, []string{"primaryauth", "masterauth"}, []string{"y"}, main, true},
		{"not set", false, []string{"timeout"}, nil, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args, last, ok := c.Effective(tc.accumulate, tc.names...)
			if ok != tc.wantOK || last.File != tc.wantFile || len(args) != len(tc.want) {
				t.Fatalf("got %q %q %v", args, last.File, ok)
			}
			for i := range args {
				if args[i] != tc.want[i] {
					t.Fatalf("got %q, want %q", args, tc.want)
				}
			}
		})
	}
}
