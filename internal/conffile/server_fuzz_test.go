package conffile_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/testserver"
)

// The differential test of issue 11 item 9: a NUL byte made the parser read
// valkey.conf differently from valkey-server (which reads it with fgets and
// drops the rest of each 1024-byte chunk after a NUL), and lint missed a
// CRITICAL "no password" while the server ran without one. Here the real
// server reads generated files and the parse must predict it: whether the
// server starts, and then every watched directive's value.

// watched are the directives the generated files set; none is on the
// command line StartFile uses.
var watched = []string{"requirepass", "maxmemory", "hz", "timeout", "maxmemory-policy", "loglevel"}

func value(r *rand.Rand, name string) string {
	switch name {
	case "requirepass":
		return fmt.Sprintf("pw-%d", r.IntN(1000))
	case "maxmemory":
		return fmt.Sprintf("%dmb", 1+r.IntN(500))
	case "hz":
		return fmt.Sprint(1 + r.IntN(400))
	case "timeout":
		return fmt.Sprint(r.IntN(1000))
	case "maxmemory-policy":
		return []string{"allkeys-lru", "noeviction", "volatile-ttl"}[r.IntN(3)]
	default:
		return []string{"notice", "warning", "verbose"}[r.IntN(3)]
	}
}

// genConfig writes a file of directive lines, comments, blank and long lines
// with NUL bytes placed before and after the 1024-byte fgets boundary.
func genConfig(seed uint64) string {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var b strings.Builder
	n := 2 + r.IntN(8)
	for i := 0; i < n; i++ {
		var line string
		switch r.IntN(5) {
		case 0:
			line = "# " + strings.Repeat("c", r.IntN(1500))
		case 1:
			line = ""
		default:
			name := watched[r.IntN(len(watched))]
			if r.IntN(4) == 0 {
				name = strings.ToUpper(name)
			}
			line = name + " " + value(r, name)
		}
		if r.IntN(3) == 0 {
			at := r.IntN(len(line) + 1)
			junk := strings.Repeat("j", r.IntN(1200))
			line = line[:at] + "\x00" + junk + line[at:]
		}
		if r.IntN(6) == 0 {
			line += "\r"
		}
		b.WriteString(line)
		if i < n-1 || r.IntN(2) == 0 {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// predict reads content with the parser and says whether the server starts
// and, if it does, the canonical value of every watched directive it sets.
func predict(t *testing.T, path string) (starts bool, set map[string]string) {
	cfg, err := conffile.Load(path)
	if err != nil {
		return false, nil
	}
	set = map[string]string{}
	for _, o := range cfg.All() {
		d, ok := directives.Lookup(o.Name)
		if !ok {
			return false, nil
		}
		v, err := d.FromFile(o.Args)
		if err != nil {
			return false, nil
		}
		set[d.Name] = v.Canonical
	}
	return true, set
}

func FuzzServerReadsLikeTheParser(f *testing.F) {
	for seed := uint64(1); seed <= 40; seed++ {
		f.Add(genConfig(seed))
	}
	// The reported case: a NUL in a comment glues the next line to it.
	f.Add("# managed by hand\x00\nrequirepass s3cret\n")
	f.Add("requirepass s3cret\x00\n# hz 20\n")
	f.Add("# " + strings.Repeat("x", 1100) + "\x00tail\nrequirepass s3cret\n")
	f.Add("hz 20\x00" + strings.Repeat("x", 1100) + "\nrequirepass s3cret\n")
	if _, err := os.Stat("/usr/bin/valkey-server"); err != nil && os.Getenv(testserver.RequireEnv) != "1" {
		f.Skip("valkey-server is not installed")
	}
	var defaults map[string]string
	f.Fuzz(func(t *testing.T, content string) {
		if len(content) > 1<<16 || strings.Contains(strings.ToLower(content), "include") {
			return
		}
		path := filepath.Join(t.TempDir(), "valkey.conf")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if defaults == nil {
			defaults = liveValues(t, emptyServer(t))
		}
		starts, set := predict(t, path)
		srv, log := testserver.StartFile(t, path)
		if (srv != nil) != starts {
			t.Fatalf("the parser predicts start=%v, the server started=%v\nfile %q\nserver: %s", starts, srv != nil, content, log)
		}
		if srv == nil {
			return
		}
		// Log in with the password the parser read: a server that wants
		// another (or none) fails CONFIG GET, which is a disagreement too.
		srv.Password = set["requirepass"]
		live := liveValues(t, srv)
		for _, name := range watched {
			want, ok := set[name]
			if !ok {
				want = defaults[name]
			}
			if live[name] != want {
				t.Errorf("%s: the parser reads %q, the server runs with %q\nfile %q", name, want, live[name], content)
			}
		}
	})
}

func emptyServer(t *testing.T) *testserver.Server {
	path := filepath.Join(t.TempDir(), "empty.conf")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, log := testserver.StartFile(t, path)
	if srv == nil {
		t.Fatalf("an empty file did not start: %s", log)
	}
	return srv
}

// liveValues reads the watched directives from srv, canonical.
func liveValues(t *testing.T, srv *testserver.Server) map[string]string {
	out := map[string]string{}
	for _, name := range watched {
		d, _ := directives.Lookup(name)
		v, err := d.FromServer(srv.ConfigGet(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = v.Canonical
	}
	return out
}

// TestGlobIncludeReadsLikeTheServer: the server reads the files one include
// glob matches as one text, so a file without a final line break joins its
// last line to the next file's first line. Here that hides a requirepass from
// the server, and the parser must see the same.
func TestGlobIncludeReadsLikeTheServer(t *testing.T) {
	dir := t.TempDir()
	confd := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(confd, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(confd, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	main := filepath.Join(dir, "valkey.conf")
	if err := os.WriteFile(main, []byte("include "+filepath.Join(confd, "*.conf")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write("10-ops.conf", "# managed by ops") // no final line break
	write("20-auth.conf", "requirepass s3cret-from-conf-d\n")

	cfg, err := conffile.Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if occ := cfg.Occurrences("requirepass"); len(occ) != 0 {
		t.Fatalf("the parser reads requirepass from %v; the server does not", occ)
	}
	found := false
	for _, w := range cfg.Warnings {
		found = found || strings.Contains(w, "10-ops.conf does not end with a line break")
	}
	if !found {
		t.Errorf("no warning about the missing line break: %q", cfg.Warnings)
	}
	srv, log := testserver.StartFile(t, main)
	if srv == nil {
		t.Fatalf("the server did not start: %s", log)
	}
	if got := srv.ConfigGet("requirepass"); got != "" {
		t.Fatalf("the server runs with requirepass %q", got)
	}

	// A directive line without its line break glues the next one to it:
	// the server refuses to start, and the parse gives it two arguments.
	write("10-ops.conf", "maxmemory 1gb")
	cfg, err = conffile.Load(main)
	if err != nil {
		t.Fatal(err)
	}
	occ := cfg.Occurrences("maxmemory")
	if len(occ) != 1 || strings.Join(occ[0].Args, " ") != "1gbrequirepass s3cret-from-conf-d" || !strings.HasSuffix(occ[0].File, "10-ops.conf") {
		t.Fatalf("got %+v", occ)
	}
	if srv, _ := testserver.StartFile(t, main); srv != nil {
		t.Fatal("the server started with the glued line")
	}
}
