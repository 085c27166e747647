// Package conffile parses, edits and atomically writes a valkey.conf file.
//
// Parsing follows valkey-server: the file is read line by line, each line is
// trimmed of " \t\r\n", empty lines and lines starting with '#' are skipped,
// and the rest is split with sdssplitargs rules (see SplitArgs). "include"
// pulls in other files (globs expanded in sorted order) at that point, so the
// effective order of directives is the flattened order.
//
// Edits touch only the main file and keep every byte that is not part of an
// edited line identical.
package conffile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/valkeyops/secure/internal/safefs"
)

// ErrInIncludedFile is returned (wrapped) when an edit would have to change
// a line in a file included by the main config file.
var ErrInIncludedFile = errors.New("setting is defined in an included file")

// MaxIncludeDepth is how deep includes may nest below the main file.
const MaxIncludeDepth = 16

// MaxFileSize bounds the main file and each included file, and
// MaxTotalSize all of them together: a config file is a few kilobytes, so
// `include /dev/zero` or a runaway file is an error, never an
// out-of-memory crash. FIFOs and devices are refused (a read would hang).
const (
	MaxFileSize  = 8 << 20
	MaxTotalSize = 32 << 20
)

// Mode says how repeated occurrences of a directive combine.
type Mode int

const (
	// Replace: the last occurrence wins.
	Replace Mode = iota
	// Accumulate: every occurrence counts (e.g. save, rename-command).
	Accumulate
)

// Occurrence is one directive line in flattened (server read) order.
type Occurrence struct {
	File string   // absolute path of the file holding the line
	Line int      // 1-based line number in that file
	Name string   // directive as written, lowercased
	Args []string // arguments after the directive name, unquoted
	Main bool     // true when File is the main config file
}

// Config is a parsed main config file plus the files it includes.
type Config struct {
	Path     string   // absolute path of the main file
	Warnings []string // non-fatal problems (missing includes, cycles, ...)

	original []byte
	lines    []string // main file lines, each with its "\n" if it had one
	nulLines []int    // main file lines holding a NUL byte (edits are refused)
	occs     []Occurrence
	includes []string
	cache    map[string]*incFile // included files by absolute path
	size     int64               // bytes read from included files
}

type incFile struct {
	lines []string
	err   error // read error (not-exist or is-a-directory)
}

// Load reads path and, recursively, its includes. A missing main file is an
// error wrapping fs.ErrNotExist. A missing include file is not an error; it is
// recorded in Warnings. Lines with unbalanced quotes are an error naming the
// file and line number.
func Load(path string) (*Config, error) {
	data, err := safefs.ReadFile(path, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("failed to read config %q: %w", path, err)
	}
	return Parse(path, data)
}

// LoadTrusted reads the main file at path the way root may write it: every
// directory checked by t, no link followed that root did not make, the file
// opened relative to its directory's descriptor (so a link swapped in after
// a check is refused, not read: root would copy what it points to, a
// root-only file, into a file that user can read). Includes are read as
// Load reads them.
func LoadTrusted(path string, t safefs.Trust) (*Config, error) {
	d, name, err := safefs.OpenParent(path, t)
	if err != nil {
		return nil, fmt.Errorf("failed to read config %q: %w", path, err)
	}
	defer d.Close()
	data, _, err := d.ReadFile(name, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("failed to read config %q: %w", path, err)
	}
	return Parse(path, data)
}

// Parse builds a Config from the in-memory content of the main file at path
// (includes are still read from disk). content may be nil for a main file
// that does not exist yet.
func Parse(path string, content []byte) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("failed to resolve config path %q: %w", path, err)
	}
	c := &Config{
		Path:     abs,
		original: bytes.Clone(content),
		lines:    splitLines(string(content)),
		cache:    map[string]*incFile{},
	}
	if c.original == nil {
		c.original = []byte{}
	}
	if err := c.rebuild(); err != nil {
		return nil, err
	}
	return c, nil
}

// splitLines splits s after every "\n"; joining the result gives s back.
func splitLines(s string) []string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// Bytes returns the main file's current content (after edits).
func (c *Config) Bytes() []byte { return []byte(strings.Join(c.lines, "")) }

// Original returns the main file's content as loaded.
func (c *Config) Original() []byte { return bytes.Clone(c.original) }

// Changed reports whether the main content differs from what was loaded.
func (c *Config) Changed() bool { return !bytes.Equal(c.Bytes(), c.original) }

// Includes returns the absolute paths of the included files actually read,
// in the order they were first read.
func (c *Config) Includes() []string { return slices.Clone(c.includes) }

// Occurrences returns every occurrence of any of names (aliases of one
// setting, compared case-insensitively) in the order the server reads them.
func (c *Config) Occurrences(names ...string) []Occurrence {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[ASCIILower(n)] = true
	}
	var out []Occurrence
	for _, o := range c.occs {
		if want[o.Name] {
			o.Args = slices.Clone(o.Args)
			out = append(out, o)
		}
	}
	return out
}

// All returns every directive occurrence, includes flattened, in the order
// the server reads them.
func (c *Config) All() []Occurrence {
	out := make([]Occurrence, len(c.occs))
	for i, o := range c.occs {
		o.Args = slices.Clone(o.Args)
		out[i] = o
	}
	return out
}

// rebuild re-parses the main lines and re-walks the includes.
func (c *Config) rebuild() error {
	c.occs = nil
	c.includes = nil
	c.Warnings = nil
	c.nulLines = nil
	w := walker{c: c, read: map[string]bool{}}
	return w.walk([]source{{c.Path, strings.Join(c.lines, "")}}, 0, []string{realKey(c.Path)})
}

type walker struct {
	c    *Config
	read map[string]bool
}

func (w *walker) warnf(format string, a ...any) {
	w.c.Warnings = append(w.c.Warnings, fmt.Sprintf(format, a...))
}

// walk reads files as the server reads one include (the main file alone,
// or every file a glob matched, joined) and follows their includes.
func (w *walker) walk(files []source, depth int, stack []string) error {
	logical, nuls := serverLines(files)
	for _, f := range files {
		for _, n := range nuls[f.path] {
			w.warnf("%s:%d holds a NUL byte: the server ignores the rest of that line, its line break included, so the next line is read as part of it", f.path, n)
		}
	}
	w.c.nulLines = append(w.c.nulLines, nuls[w.c.Path]...)
	if len(files) > 1 {
		for _, f := range files[:len(files)-1] {
			if f.content != "" && !strings.HasSuffix(f.content, "\n") {
				w.warnf("%s does not end with a line break: the server reads the files of one include glob as one text, so its last line joins the first line of the next file", f.path)
			}
		}
	}
	for _, l := range logical {
		t := strings.Trim(l.Text, " \t\r\n")
		if t == "" || t[0] == '#' {
			continue
		}
		where := fmt.Sprintf("%s:%d", l.File, l.Number)
		args, err := SplitArgs(t)
		if err != nil {
			return fmt.Errorf("failed to parse config line %q: %w", where, err)
		}
		if len(args) == 0 {
			continue
		}
		name := ASCIILower(args[0])
		w.c.occs = append(w.c.occs, Occurrence{
			File: l.File,
			Line: l.Number,
			Name: name,
			Args: args[1:],
			Main: l.File == w.c.Path,
		})
		if name != "include" {
			continue
		}
		if len(args) != 2 {
			w.warnf("ignoring include at %q: expected exactly one path, got %d arguments", where, len(args)-1)
			continue
		}
		if err := w.include(args[1], where, depth+1, stack); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) include(pattern, where string, depth int, stack []string) error {
	p := pattern
	if !filepath.IsAbs(p) {
		// The server resolves relative paths against its working directory;
		// the main file's directory is the best guess.
		p = filepath.Join(filepath.Dir(w.c.Path), p)
	}
	var matches []string
	if strings.ContainsAny(p, "*?[") {
		m, err := filepath.Glob(p)
		if err != nil {
			w.warnf("ignoring include %q at %q: %v", pattern, where, err)
			return nil
		}
		sort.Strings(m)
		matches = m
	} else {
		matches = []string{filepath.Clean(p)}
	}
	var files []source
	keys := slices.Clone(stack)
	for _, m := range matches {
		key := realKey(m)
		if slices.Contains(stack, key) {
			w.warnf("ignoring include %q at %q: include cycle", m, where)
			continue
		}
		if depth > MaxIncludeDepth {
			w.warnf("ignoring include %q at %q: includes nested deeper than %d", m, where, MaxIncludeDepth)
			continue
		}
		f, err := w.c.readInclude(m)
		if err != nil {
			return fmt.Errorf("failed to read include %q at %q: %w", m, where, err)
		}
		if f.err != nil {
			w.warnf("include %q at %q not read: %v", m, where, f.err)
			continue
		}
		if !w.read[m] {
			w.read[m] = true
			w.c.includes = append(w.c.includes, m)
		}
		files = append(files, source{m, strings.Join(f.lines, "")})
		keys = append(keys, key)
	}
	if len(files) == 0 {
		return nil
	}
	return w.walk(files, depth, keys)
}

// readInclude reads (once) an included file. A missing file or a directory
// is recorded in incFile.err; other read errors are returned.
func (c *Config) readInclude(path string) (*incFile, error) {
	if f, ok := c.cache[path]; ok {
		return f, nil
	}
	data, err := safefs.ReadFile(path, MaxFileSize)
	f := &incFile{}
	switch {
	case err == nil:
		if c.size += int64(len(data)); c.size+int64(len(c.original)) > MaxTotalSize {
			return nil, fmt.Errorf("the included files add up to more than %s", safefs.Size(MaxTotalSize))
		}
		f.lines = splitLines(string(data))
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.EISDIR):
		f.err = err
	default:
		return nil, err
	}
	c.cache[path] = f
	return f, nil
}

// realKey identifies a file for cycle detection.
func realKey(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return filepath.Clean(path)
}

// Set makes the setting named by names (aliases; names[0] is the spelling
// used for a new line) have exactly args, editing only the main file in
// memory.
//
// Replace: when the last occurrence is in the main file that line is
// rewritten (keeping its indentation and the name as written); otherwise a
// new line is appended to the main file, which makes it win.
//
// Accumulate: an occurrence in an included file is an error wrapping
// ErrInIncludedFile; otherwise the first occurrence in the main file is
// rewritten and the others are deleted, or a new line is appended.
//
// When the setting already has exactly args, nothing changes.
func (c *Config) Set(names []string, args []string, mode Mode) error {
	if len(names) == 0 {
		return errors.New("failed to set directive: no directive name given")
	}
	name := names[0]
	if needsQuoting(name) || name[0] == '#' {
		return fmt.Errorf("failed to set %q: invalid directive name", name)
	}
	if err := c.editable(); err != nil {
		return fmt.Errorf("failed to set %q: %w", name, err)
	}
	occs := c.Occurrences(names...)
	lines := slices.Clone(c.lines)
	switch mode {
	case Replace:
		if len(occs) > 0 {
			last := occs[len(occs)-1]
			if slices.Equal(last.Args, args) {
				return nil
			}
			if last.Main {
				lines[last.Line-1] = rewriteLine(lines[last.Line-1], args)
				return c.commit(lines, name)
			}
		}
		return c.commit(c.appendLine(lines, name, args), name)
	case Accumulate:
		for _, o := range occs {
			if !o.Main {
				return fmt.Errorf("failed to set %q: occurrence at %q: %w", name, fmt.Sprintf("%s:%d", o.File, o.Line), ErrInIncludedFile)
			}
		}
		if len(occs) == 0 {
			return c.commit(c.appendLine(lines, name, args), name)
		}
		if len(occs) == 1 && slices.Equal(occs[0].Args, args) {
			return nil
		}
		lines[occs[0].Line-1] = rewriteLine(lines[occs[0].Line-1], args)
		return c.commit(deleteLines(lines, occs[1:]), name)
	default:
		return fmt.Errorf("failed to set %q: unknown mode %d", name, int(mode))
	}
}

// Remove deletes every occurrence line of names in the main file. An
// occurrence in an included file is an error wrapping ErrInIncludedFile.
func (c *Config) Remove(names ...string) error {
	if err := c.editable(); err != nil {
		return fmt.Errorf("failed to remove %q: %w", names, err)
	}
	occs := c.Occurrences(names...)
	for _, o := range occs {
		if !o.Main {
			return fmt.Errorf("failed to remove %q: occurrence at %q: %w", names, fmt.Sprintf("%s:%d", o.File, o.Line), ErrInIncludedFile)
		}
	}
	if len(occs) == 0 {
		return nil
	}
	return c.commit(deleteLines(slices.Clone(c.lines), occs), strings.Join(names, ","))
}

// ErrNULByte is returned (wrapped) by Set and Remove when the main file
// holds a NUL byte: the server reads such a file differently from its lines
// (see serverLines), so an edit by line could change what it means.
var ErrNULByte = errors.New("the file holds a NUL byte, which the server reads differently from the lines around it; remove it by hand")

func (c *Config) editable() error {
	if len(c.nulLines) > 0 {
		return fmt.Errorf("%s:%d: %w", c.Path, c.nulLines[0], ErrNULByte)
	}
	return nil
}

// commit installs new main lines and re-parses; on failure the old state is kept.
func (c *Config) commit(lines []string, name string) error {
	old := c.lines
	c.lines = lines
	if err := c.rebuild(); err != nil {
		c.lines = old
		_ = c.rebuild() // the old state parsed before
		return fmt.Errorf("failed to apply edit of %q: %w", name, err)
	}
	return nil
}

// eol returns the line ending used by the main file's last terminated line.
func eol(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasSuffix(lines[i], "\n") {
			if strings.HasSuffix(lines[i], "\r\n") {
				return "\r\n"
			}
			return "\n"
		}
	}
	return "\n"
}

func (c *Config) appendLine(lines []string, name string, args []string) []string {
	nl := eol(lines)
	if n := len(lines); n > 0 && !strings.HasSuffix(lines[n-1], "\n") {
		lines[n-1] += nl
	}
	return append(lines, FormatArgs(append([]string{name}, args...))+nl)
}

// rewriteLine replaces the arguments of a directive line, keeping its
// leading indentation, the directive name as written and its line ending.
func rewriteLine(raw string, args []string) string {
	body, nl := strings.CutSuffix(raw, "\n")
	cr := strings.HasSuffix(body, "\r")
	indent := body[:len(body)-len(strings.TrimLeft(body, " \t\r\n"))]
	t := strings.Trim(body, " \t\r\n")
	nameRaw := t
	if _, ends, err := splitArgs(t); err == nil && len(ends) > 0 {
		nameRaw = t[:ends[0]]
	}
	out := indent + nameRaw
	if a := FormatArgs(args); a != "" {
		out += " " + a
	}
	if cr {
		out += "\r"
	}
	if nl {
		out += "\n"
	}
	return out
}

func deleteLines(lines []string, occs []Occurrence) []string {
	drop := make(map[int]bool, len(occs))
	for _, o := range occs {
		drop[o.Line-1] = true
	}
	out := lines[:0:0]
	for i, l := range lines {
		if !drop[i] {
			out = append(out, l)
		}
	}
	return out
}
