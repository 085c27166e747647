package directives

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/valkeyops/secure/internal/conffile"
)

// Version is a Valkey release as major.minor.patch. The zero Version means
// "unknown": no version check is made against it.
type Version struct{ Major, Minor, Patch int }

// oldest is the oldest release whose facts this package holds
// (facts/valkey-7.2.json); a directive without a since() is at least that old.
var oldest = Version{7, 2, 0}

var versionRe = regexp.MustCompile(`^(\d{1,4})\.(\d{1,4})(?:\.(\d{1,6}))?`)

// ParseVersion reads "8.0.1" (or "8.0"); text after the numbers is ignored.
func ParseVersion(s string) (Version, error) {
	m := versionRe.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("%q is not a Valkey version; expected major.minor[.patch]", s)
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	return v, nil
}

// Known reports whether v is a real version (not the zero "unknown").
func (v Version) Known() bool { return v != Version{} }

// Less reports whether v is an older release than w.
func (v Version) Less(w Version) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	return v.Patch < w.Patch
}

func (v Version) String() string {
	if v.Patch == 0 {
		return fmt.Sprintf("%d.%d", v.Major, v.Minor)
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Since is the first release that has the directive.
func (d *Directive) Since() Version {
	if d.since.Known() {
		return d.since
	}
	return oldest
}

// NameSince is the first release that accepts name (the canonical name or an
// alias of d) in a config file or CONFIG SET.
func (d *Directive) NameSince(name string) Version {
	if v, ok := d.nameSince[conffile.ASCIILower(name)]; ok {
		return v
	}
	return d.Since()
}

// NameForVersion returns the name a server of version v knows d by: the
// canonical name when v has it (or v is unknown), else the first alias it has.
func (d *Directive) NameForVersion(v Version) string {
	for _, n := range d.Names() {
		if !v.Known() || !v.Less(d.NameSince(n)) {
			return n
		}
	}
	return d.Name
}

// ChoiceSince is the first release that accepts an Enum/Flags choice.
func (d *Directive) ChoiceSince(choice string) Version {
	if v, ok := d.choiceSince[choice]; ok {
		return v
	}
	return d.Since()
}

// ChoicesFor returns the choices a server of version v accepts (all of them
// when v is unknown).
func (d *Directive) ChoicesFor(v Version) []string {
	var out []string
	for _, c := range d.Choices {
		if !v.Known() || !v.Less(d.ChoiceSince(c)) {
			out = append(out, c)
		}
	}
	return out
}

// CheckVersion refuses a directive, the name it is given by (canonical or
// alias, as written), or a value of it, that a Valkey server of version v does
// not have. An unknown v (zero) passes everything. The error is one sentence
// naming the directive, the value (never a secret one), the release that
// introduced it and the target's version.
func (d *Directive) CheckVersion(v Version, name string, val Value) error {
	if !v.Known() {
		return nil
	}
	if s := d.Since(); v.Less(s) {
		return d.errorf("needs Valkey %s or newer; the target server is Valkey %s", s, v)
	}
	if s := d.NameSince(name); v.Less(s) {
		return d.errorf("the name %q needs Valkey %s or newer; the target server is Valkey %s; use %q", conffile.ASCIILower(name), s, v, d.NameForVersion(v))
	}
	if d.Kind != Enum && d.Kind != Flags {
		return nil
	}
	for _, c := range val.Args {
		if s := d.ChoiceSince(c); v.Less(s) {
			return d.errorf("%s needs Valkey %s or newer; the target server is Valkey %s; expected one of %s",
				d.show(c), s, v, joinChoices(d.ChoicesFor(v)))
		}
	}
	return nil
}

func joinChoices(c []string) string {
	var b bytes.Buffer
	for i, s := range c {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// ServerBinaries are the only places InstalledVersion looks for
// valkey-server: the paths distribution packages and `make install` use.
// $PATH is not consulted: root must not run whatever a user's PATH names.
var ServerBinaries = []string{"/usr/bin/valkey-server", "/usr/local/bin/valkey-server", "/usr/sbin/valkey-server"}

// ErrNoServerBinary is returned by InstalledVersion when none of
// ServerBinaries exists.
var ErrNoServerBinary = errors.New("no valkey-server is installed in " + fmt.Sprint(ServerBinaries))

// versionOutputMax bounds what is read from `valkey-server --version`.
const versionOutputMax = 4096

// versionTimeout bounds how long `valkey-server --version` may run.
const versionTimeout = 5 * time.Second

var serverVersionRe = regexp.MustCompile(`^Valkey server v=(\d+\.\d+\.\d+) `)

// InstalledVersion runs the first of ServerBinaries that exists with
// --version and returns the version it prints. The binary (after links) and
// every directory above it must be owned by root and writable by nobody else,
// the output is bounded and the run is killed after a few seconds.
func InstalledVersion(ctx context.Context) (Version, string, error) {
	for _, p := range ServerBinaries {
		real, err := filepath.EvalSymlinks(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return Version{}, p, fmt.Errorf("failed to resolve %s: %w", p, err)
		}
		if err := rootOwnedChain(real); err != nil {
			return Version{}, p, err
		}
		if err := rootOwnedChain(filepath.Dir(p)); err != nil {
			return Version{}, p, err
		}
		// Run the checked file, with the name it was found under as argv[0]:
		// Debian's valkey-server is a link to valkey-check-rdb, which picks
		// its mode from argv[0].
		v, err := runVersion(ctx, real, p)
		return v, p, err
	}
	return Version{}, "", ErrNoServerBinary
}

// rootOwnedChain checks that path and each of its parent directories are
// owned by root and not writable by group or others.
func rootOwnedChain(path string) error {
	for p := path; ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("failed to inspect %s: %w", p, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
			return fmt.Errorf("%s is not trusted to tell the server version: it must be owned by root and writable by nobody else", p)
		}
		if p == "/" {
			return nil
		}
	}
}

type boundedBuffer struct {
	bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room < len(p) {
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

func runVersion(ctx context.Context, bin, argv0 string) (Version, error) {
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	out := &boundedBuffer{max: versionOutputMax}
	cmd := exec.CommandContext(ctx, bin, "--version")
	cmd.Args[0] = argv0
	cmd.Stdout = out
	cmd.Stderr = io.Discard
	cmd.Env = []string{"LC_ALL=C"}
	if err := cmd.Run(); err != nil {
		return Version{}, fmt.Errorf("failed to run %s --version: %w", bin, err)
	}
	m := serverVersionRe.FindSubmatch(out.Bytes())
	if m == nil {
		return Version{}, fmt.Errorf("%s --version did not print a Valkey version", bin)
	}
	return ParseVersion(string(m[1]))
}
