package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/directives"
)

// Filter selects entries. The zero value selects all.
type Filter struct {
	Since     time.Time // entries at or after this time
	Directive string    // entries that changed this directive (any of its names)
	Module    string    // entries of this module
	Instance  string    // entries of this instance (Entry.Instance)
	// ConfigFile and Server select the entries of one server: those that
	// went to its config file, or that reached it at this address (a
	// runtime-only change records no file). Both empty: any server.
	ConfigFile string
	Server     string
}

// canonical returns the canonical name of a directive (masterauth ->
// primaryauth), or the name lowercased when the table does not know it.
func canonical(name string) string {
	if d, ok := directives.Lookup(name); ok {
		return d.Name
	}
	return strings.ToLower(strings.TrimSpace(name))
}

// Match reports whether e passes the filter. When the filter names a
// directive, only that directive's changes are kept in the returned entry.
func (f Filter) Match(e Entry) (Entry, bool) {
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return e, false
	}
	if f.Module != "" && e.Module != f.Module {
		return e, false
	}
	if f.Instance != "" && e.Instance != f.Instance {
		return e, false
	}
	if f.ConfigFile != "" || f.Server != "" {
		same := (f.ConfigFile != "" && e.ConfigFile == f.ConfigFile) || (f.Server != "" && e.Server == f.Server)
		if !same {
			return e, false
		}
	}
	if f.Directive == "" {
		return e, true
	}
	want := canonical(f.Directive)
	var kept []Change
	for _, c := range e.Changes {
		if c.Kind == KindDirective && canonical(c.Name) == want {
			kept = append(kept, c)
		}
	}
	if len(kept) == 0 {
		return e, false
	}
	e.Changes = kept
	return e, true
}

// Scan reads journal lines from r and calls fn for every entry the filter
// selects, in file order. A line that is not a journal entry (a line cut
// short by a crash, garbage) is skipped and counted, not fatal: one bad line
// must not hide the rest of the record.
func Scan(r io.Reader, f Filter, fn func(Entry) error) (skipped int, err error) {
	br := bufio.NewReader(r)
	for {
		line, rerr := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var e Entry
			if jerr := json.Unmarshal(line, &e); jerr != nil || e.Time.IsZero() || e.Module == "" {
				skipped++
			} else if m, ok := f.Match(e); ok {
				if err := fn(m); err != nil {
					return skipped, err
				}
			}
		}
		if errors.Is(rerr, io.EOF) {
			return skipped, nil
		}
		if rerr != nil {
			return skipped, rerr
		}
	}
}

// Read returns the entries of the journal file at path that the filter
// selects, and how many unreadable lines were skipped.
func Read(path string, f Filter) ([]Entry, int, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("failed to read the change journal %s: %w", path, unwrap(err, path))
	}
	defer file.Close()
	var out []Entry
	skipped, err := Scan(file, f, func(e Entry) error { out = append(out, e); return nil })
	if err != nil {
		return nil, skipped, fmt.Errorf("failed to read the change journal %s: %w", path, err)
	}
	return out, skipped, nil
}

// Record is the last recorded change of one directive and the entry that
// holds it.
type Record struct {
	Entry  Entry  // Entry.Changes holds only Change
	Change Change // Change.After is the value set (nil when secret)
}

// LastRecorded returns the most recent recorded change of directive (any of
// its names) in the journal at path, or nil when the journal never recorded
// one (a journal file that does not exist has recorded nothing). The audit
// uses it to tell a value set by a recorded change from one changed outside
// Ansible: when the server's value differs from Record.Change.After (both
// normalised by internal/directives), the change was out of band. A secret
// directive's record has no value: compare its time instead.
func LastRecorded(path, directive string) (*Record, error) {
	return LastRecordedMatching(path, Filter{Directive: directive})
}

// LastRecordedMatching is LastRecorded for the entries f selects (f.Directive
// is required): the audit asks about one server's directive, not every
// server's on the host.
func LastRecordedMatching(path string, f Filter) (*Record, error) {
	file, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the change journal %s: %w", path, unwrap(err, path))
	}
	defer file.Close()
	var last *Record
	_, err = Scan(file, f, func(e Entry) error {
		c := e.Changes[len(e.Changes)-1]
		last = &Record{Entry: e, Change: c}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read the change journal %s: %w", path, err)
	}
	return last, nil
}
