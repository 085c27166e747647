package settings

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/journal"
)

// LockTimeout bounds the wait for another run editing the same directory.
const LockTimeout = 60 * time.Second

// Fields are valkey_config's own return values.
type Fields struct {
	Server                    *ServerInfo           `json:"server,omitempty"`
	ConfigFile                string                `json:"config_file,omitempty"`
	Values                    map[string]string     `json:"values"`
	RuntimeChanged            []string              `json:"runtime_changed"`
	FileChanged               []string              `json:"file_changed"`
	RestartRequired           bool                  `json:"restart_required"`
	RestartRequiredDirectives []string              `json:"restart_required_directives"`
	Drift                     map[string]DriftEntry `json:"drift"`
	BackupFile                string                `json:"backup_file,omitempty"`
}

// DriftEntry is a directive whose running value and file value differed
// before the run.
type DriftEntry struct {
	Runtime string `json:"runtime"`
	File    string `json:"file"`
}

// item is one directive of the task with its desired value.
type item struct {
	key     string // as the user wrote it
	dir     *directives.Directive
	desired directives.Value
	// serverName is the name the connected server knows it by.
	serverName string

	runtimeBefore string // raw CONFIG GET value
	runtimeNorm   directives.Value
	hasRuntime    bool
	fileArgs      []string
	fileNorm      directives.Value
	inFile        bool

	setRuntime bool
	setFile    bool
	restart    bool
}

// Converge plans the directives of opts against the server and its file
// and, outside check mode, applies them. opts must have passed Validate. The
// result carries *Fields; req supplies check mode, diff and secret masking.
func Converge(req *ansible.Request, opts Options) *ansible.Result {
	m := &run{req: req, opts: &opts, res: &ansible.Result{}, fields: &Fields{
		Values: map[string]string{}, RuntimeChanged: []string{}, FileChanged: []string{},
		RestartRequiredDirectives: []string{}, Drift: map[string]DriftEntry{},
	}}
	m.res.Fields = m.fields
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout()+LockTimeout)
	defer cancel()
	if err := m.execute(ctx); err != nil {
		m.res.Failed = true
		m.res.Msg = err.Error()
		var pe *partialError
		if !errors.As(err, &pe) {
			// Every other failure leaves server and file as they were
			// (the message says "nothing was changed"): report no change.
			m.res.Changed = false
			m.res.Diff = nil
			m.fields.RuntimeChanged = []string{}
			m.fields.FileChanged = []string{}
		}
	}
	return m.res
}

// partialError is the one failure after which something did change: the
// runtime change could not be rolled back after the file write failed.
type partialError struct{ msg string }

func (e *partialError) Error() string { return e.msg }

type run struct {
	req    *ansible.Request
	opts   *Options
	res    *ansible.Result
	fields *Fields

	srv   *server
	items []*item
	cfg   *conffile.Config
}

func (m *run) execute(ctx context.Context) error {
	// 1. Everything that needs neither the server nor the file.
	pending, err := m.parseSettings()
	if err != nil {
		return err
	}
	// 2. The server, when the task involves it or can learn from it.
	if err := m.connect(ctx, pending); err != nil {
		return err
	}
	if m.srv != nil {
		defer m.srv.client.Close()
	}
	// 3. The file path.
	path, err := m.configPath()
	if err != nil {
		return err
	}
	m.fields.ConfigFile = path
	// 4. Lock (real runs only) before reading the file, so a concurrent run's
	// edit is read, not overwritten. The lock is on the directory: a missing
	// one is reported as such, not as a locking failure.
	if path != "" && m.opts.file() {
		if _, err := os.Stat(filepath.Dir(path)); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("config_file %q: its directory does not exist; nothing was changed", path)
		}
	}
	if path != "" && m.opts.file() && !m.req.CheckMode {
		unlock, err := conffile.Lock(path, LockTimeout)
		if err != nil {
			return fmt.Errorf("failed to lock %s: %w; nothing was changed", filepath.Dir(path), err)
		}
		defer unlock()
	}
	if err := m.readFile(path); err != nil {
		return err
	}
	// 5. Plan; every check that can fail is done here, before any change.
	if err := m.plan(); err != nil {
		return err
	}
	m.report()
	if m.req.CheckMode || !m.res.Changed {
		return nil
	}
	// 6. A change that cannot be recorded is not made: check the journal
	// before the first side effect.
	warning, err := journal.Guard(m.opts.JournalOptions)
	if err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	if warning != "" {
		m.res.Warn("%s", warning)
	}
	// 7. Apply, then record what was applied (also when the task fails
	// after changing something: the change happened).
	err = m.apply(ctx)
	var pe *partialError
	if err != nil && !errors.As(err, &pe) {
		return err
	}
	entry := m.journalEntry(pe != nil)
	var jerr error
	if warning == "" { // else already warned: the journal cannot be written
		warning, jerr = journal.Append(m.opts.JournalOptions, entry)
		if warning != "" {
			m.res.Warn("%s", warning)
		}
	}
	if err != nil {
		if jerr != nil {
			return &partialError{fmt.Sprintf("%v; recording it also failed: %v", err, jerr)}
		}
		return err
	}
	if jerr != nil {
		return &partialError{fmt.Sprintf("the change of %s was applied but could not be recorded: %v", changedNames(entry), jerr)}
	}
	return nil
}

// journalEntry describes the applied changes for the change journal:
// directive names always, values (canonical form) only for directives that
// are not secret. A directive the table does not know (a newer server's)
// may be secret: its value is not recorded either. partial records only
// the runtime change that stayed after a failed file write.
func (m *run) journalEntry(partial bool) journal.Entry {
	addr := m.opts.Address()
	port := 0
	if m.opts.LoginUnixSocket == "" {
		if _, p, err := net.SplitHostPort(addr); err == nil {
			port, _ = strconv.Atoi(p)
		}
	}
	if m.srv == nil {
		addr, port = "", 0 // persist: file without the server
	}
	e := journal.NewEntry(m.req, addr, port)
	e.Instance = journal.InstanceName(m.fields.ConfigFile)
	e.Partial = partial
	for _, it := range m.items {
		setFile := it.setFile && !partial
		if !it.setRuntime && !setFile {
			continue
		}
		c := journal.Change{Kind: journal.KindDirective, Name: it.dir.Name, RestartRequired: it.restart}
		if it.setRuntime {
			c.Where = append(c.Where, "runtime")
		}
		if setFile {
			c.Where = append(c.Where, "file")
			e.ConfigFile = m.fields.ConfigFile
		}
		if _, known := directives.Lookup(it.dir.Name); it.dir.Secret || !known {
			c.Secret = true
		} else {
			// Before is the running value for a runtime change, else the
			// file's (nil: the file did not set it).
			switch {
			case it.setRuntime && it.hasRuntime:
				c.Before = journal.Value(m.req.Masked(it.runtimeNorm.Canonical))
				if setFile && it.inFile && it.fileNorm.Canonical != it.runtimeNorm.Canonical {
					c.FileBefore = journal.Value(m.req.Masked(it.fileNorm.Canonical))
				}
			case !it.setRuntime && it.inFile:
				c.Before = journal.Value(m.req.Masked(it.fileNorm.Canonical))
			}
			c.After = journal.Value(m.req.Masked(it.desired.Canonical))
		}
		e.Changes = append(e.Changes, c)
	}
	return e
}

func changedNames(e journal.Entry) string {
	ns := make([]string, len(e.Changes))
	for i, c := range e.Changes {
		ns[i] = c.Name
	}
	return strings.Join(ns, ", ")
}

// parseSettings normalises every desired value. Directives the static table
// does not know are returned to be checked against the server.
func (m *run) parseSettings() (pending []string, err error) {
	keys := make([]string, 0, len(m.opts.Settings))
	for k := range m.opts.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[string]string{}
	for _, key := range keys {
		name := strings.ToLower(strings.TrimSpace(key))
		if reason, bad := directives.Unsupported(name); bad {
			return nil, fmt.Errorf("settings: directive %q is not managed by valkey_config: %s; nothing was changed", key, reason)
		}
		d, ok := directives.Lookup(name)
		if !ok {
			pending = append(pending, key)
			continue
		}
		if prev, dup := seen[d.Name]; dup {
			return nil, fmt.Errorf("settings: %q and %q are the same directive (%s); give it once; nothing was changed", prev, key, d.Name)
		}
		seen[d.Name] = key
		if err := m.addItem(key, d); err != nil {
			return nil, err
		}
	}
	return pending, nil
}

func (m *run) addItem(key string, d *directives.Directive) error {
	v := m.opts.Settings[key]
	if d.Secret {
		if s, ok := v.(string); ok {
			m.req.AddSecret(s)
		}
	}
	val, err := d.Desired(v)
	if err != nil {
		return fmt.Errorf("settings: %v; nothing was changed", err)
	}
	if d.Secret {
		m.req.AddSecret(val.Set)
	}
	m.items = append(m.items, &item{key: key, dir: d, desired: val, serverName: d.Name})
	return nil
}

// connect opens the server when the task needs it; with persist: file it is
// optional (used to find the file and to know newer directives).
func (m *run) connect(ctx context.Context, pending []string) error {
	needed := m.opts.runtime() || m.opts.ConfigFile == "" || len(pending) > 0
	if !needed {
		// persist: file with an explicit path: the server is not needed.
		return nil
	}
	client, err := conn.Open(&m.opts.Options)
	if err != nil {
		if errors.Is(err, conn.ErrConnect) && !m.opts.runtime() {
			if m.opts.ConfigFile == "" {
				return fmt.Errorf("%v; with persist: file, config_file is required when the server is not reachable; nothing was changed", err)
			}
			return m.unknown(pending, nil)
		}
		return fmt.Errorf("%v; nothing was changed", err)
	}
	srv, err := readServer(ctx, client)
	if err != nil {
		client.Close()
		return fmt.Errorf("%v; nothing was changed", err)
	}
	m.srv = srv
	m.fields.Server = &srv.info
	names := srv.names()
	for _, it := range m.items {
		it.serverName = it.dir.NameFor(names)
	}
	return m.unknown(pending, names)
}

// unknown resolves directives the table lacks: known to the server means a
// newer directive, treated as a plain string; otherwise an error.
func (m *run) unknown(pending []string, serverNames map[string]bool) error {
	for _, key := range pending {
		name := strings.ToLower(strings.TrimSpace(key))
		if !serverNames[name] {
			where := "to valkey_config"
			if serverNames != nil {
				where = fmt.Sprintf("to valkey_config or to the server (%s %s)", m.srv.info.Name, m.srv.info.Version)
			}
			return fmt.Errorf("settings: unknown directive %q: not known %s; check the spelling; nothing was changed", key, where)
		}
		d := directives.Unknown(name)
		if err := m.addItem(key, d); err != nil {
			return err
		}
		m.items[len(m.items)-1].serverName = name
	}
	sort.Slice(m.items, func(i, j int) bool { return m.items[i].dir.Name < m.items[j].dir.Name })
	return nil
}

func (m *run) configPath() (string, error) {
	path := m.opts.ConfigFile
	if path == "" && m.srv != nil {
		path = m.srv.configFile
	}
	if path == "" && m.opts.file() {
		return "", fmt.Errorf("persist: %s needs a config file, but the server runs without one and config_file is not set; set config_file or use persist: runtime; nothing was changed", m.opts.Persist)
	}
	if path != "" && !filepath.IsAbs(path) {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", fmt.Errorf("config_file %q: %w", path, err)
		}
		path = abs
	}
	return path, nil
}

// readFile loads the config file (and its includes). A file that does not
// exist yet is created by persist: file/both when its directory exists.
func (m *run) readFile(path string) error {
	if path == "" {
		return nil
	}
	cfg, err := conffile.Load(path)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist) && m.opts.file():
		if _, derr := os.Stat(filepath.Dir(path)); derr != nil {
			return fmt.Errorf("config_file %q: its directory does not exist; nothing was changed", path)
		}
		if cfg, err = conffile.Parse(path, nil); err != nil {
			return fmt.Errorf("failed to read %s: %w; nothing was changed", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		// persist: runtime: the file only serves the drift report.
		return nil
	default:
		if !m.opts.file() {
			m.res.Warn("could not read %s for the drift report: %v", path, err)
			return nil
		}
		return fmt.Errorf("failed to read %s: %w; nothing was changed", path, err)
	}
	m.cfg = cfg
	for _, w := range cfg.Warnings {
		m.res.Warn("%s", w)
	}
	return nil
}

// plan compares desired, runtime and file values and edits the file in
// memory. It changes nothing outside this process.
func (m *run) plan() error {
	for _, it := range m.items {
		d := it.dir
		if m.srv != nil {
			raw, ok := m.srv.values[it.serverName]
			if ok {
				if d.Secret {
					m.req.AddSecret(raw)
				}
				norm, err := d.FromServer(raw)
				if err != nil {
					return fmt.Errorf("directive %q: cannot read the server's current value: %v; nothing was changed", it.key, err)
				}
				it.runtimeBefore, it.runtimeNorm, it.hasRuntime = raw, norm, true
			}
		}
		if m.cfg != nil {
			if args, last, ok := m.cfg.Effective(d.Accumulates, d.Names()...); ok {
				if d.Secret {
					for _, a := range args {
						m.req.AddSecret(a)
					}
				}
				norm, err := d.FromFile(args)
				if err != nil {
					return fmt.Errorf("directive %q in %s line %d: %v; nothing was changed", it.key, last.File, last.Line, err)
				}
				it.fileArgs, it.fileNorm, it.inFile = args, norm, true
			}
		}
		if it.hasRuntime && it.inFile && it.runtimeNorm.Canonical != it.fileNorm.Canonical {
			m.fields.Drift[d.Name] = DriftEntry{Runtime: m.show(d, it.runtimeNorm.Canonical), File: m.show(d, it.fileNorm.Canonical)}
		}

		if m.opts.runtime() && it.hasRuntime && it.runtimeNorm.Canonical != it.desired.Canonical {
			if d.Immutable || (d.Protected && m.srv.values["enable-protected-configs"] == "no") {
				if !m.opts.file() {
					return fmt.Errorf("directive %q cannot change while the server runs (%s); use persist: both or file and restart the server; nothing was changed", it.key, immutableWhy(d))
				}
				it.restart = true
			} else {
				it.setRuntime = true
			}
		}
		if m.opts.file() && m.cfg != nil && (!it.inFile || it.fileNorm.Canonical != it.desired.Canonical) {
			it.setFile = true
			mode := conffile.Replace
			if d.Accumulates {
				mode = conffile.Accumulate
			}
			if err := m.cfg.Set(fileNames(it), it.desired.Args, mode); err != nil {
				return fmt.Errorf("directive %q: %v; nothing was changed", it.key, err)
			}
		}
	}
	if m.opts.Strict {
		for _, it := range m.items {
			if it.restart {
				return fmt.Errorf("directive %q needs a server restart to change (%s) and strict is set; nothing was changed", it.key, immutableWhy(it.dir))
			}
		}
	}
	return nil
}

func immutableWhy(d *directives.Directive) string {
	if d.Immutable {
		return "the server does not allow changing it at runtime"
	}
	return "it is a protected config and enable-protected-configs is off"
}

// fileNames lists the spellings of a directive for the file, the one a new
// line uses first: the name the server knows (Redis 7 knows masterauth, not
// primaryauth).
func fileNames(it *item) []string {
	names := []string{it.serverName}
	for _, n := range it.dir.Names() {
		if n != it.serverName {
			names = append(names, n)
		}
	}
	return names
}

// show renders a value for output: secrets are never shown.
func (m *run) show(d *directives.Directive, v string) string {
	if d.Secret {
		return ansible.Mask
	}
	return v
}

// report fills changed, the lists, warnings and the diff from the plan.
func (m *run) report() {
	var rtBefore, rtAfter, fBefore, fAfter []string
	for _, it := range m.items {
		d := it.dir
		if it.setRuntime {
			m.fields.RuntimeChanged = append(m.fields.RuntimeChanged, d.Name)
			rtBefore = append(rtBefore, m.line(d, it.runtimeNorm.Set, "old"))
			rtAfter = append(rtAfter, m.line(d, it.desired.Canonical, "new"))
		}
		if it.setFile {
			m.fields.FileChanged = append(m.fields.FileChanged, d.Name)
			if it.inFile {
				fBefore = append(fBefore, m.line(d, conffile.FormatArgs(it.fileArgs), "old"))
			}
			fAfter = append(fAfter, m.line(d, conffile.FormatArgs(it.desired.Args), "new"))
		}
		if it.restart {
			m.fields.RestartRequired = true
			m.fields.RestartRequiredDirectives = append(m.fields.RestartRequiredDirectives, d.Name)
		}
	}
	m.res.Changed = len(m.fields.RuntimeChanged) > 0 || len(m.fields.FileChanged) > 0
	if m.fields.RestartRequired {
		m.res.Warn("restart the server to apply %s: the running server keeps the old value until then",
			strings.Join(m.fields.RestartRequiredDirectives, ", "))
	}
	// Drift on a directive that waits for a restart is that restart, already
	// warned about above; it stays in the drift field.
	var drifted []string
	for n := range m.fields.Drift {
		if !slices.Contains(m.fields.RestartRequiredDirectives, n) {
			drifted = append(drifted, n)
		}
	}
	if len(drifted) > 0 {
		sort.Strings(drifted)
		m.res.Warn("drift before this run: the running server and %s disagreed on %s", m.fields.ConfigFile, strings.Join(drifted, ", "))
	}
	if m.req.Diff {
		if len(rtBefore)+len(rtAfter) > 0 {
			where := m.opts.Address()
			m.res.Diff = append(m.res.Diff, ansible.DiffEntry{
				BeforeHeader: "runtime (" + where + ")", AfterHeader: "runtime (" + where + ")",
				Before: lines(rtBefore), After: lines(rtAfter),
			})
		}
		if len(fBefore)+len(fAfter) > 0 {
			m.res.Diff = append(m.res.Diff, ansible.DiffEntry{
				BeforeHeader: m.fields.ConfigFile, AfterHeader: m.fields.ConfigFile,
				Before: lines(fBefore), After: lines(fAfter),
			})
		}
	}
	m.fillValues(nil)
}

func (m *run) line(d *directives.Directive, v, age string) string {
	if d.Secret {
		return d.Name + " " + ansible.Mask + " (" + age + " value hidden)"
	}
	return d.Name + " " + v
}

func lines(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return strings.Join(ls, "\n") + "\n"
}

// fillValues reports what the server says for each directive (after a real
// run: re-read; in check mode: the planned value).
func (m *run) fillValues(after map[string]string) {
	for _, it := range m.items {
		v, ok := "", false
		if after != nil {
			v, ok = after[it.serverName]
			if ok {
				if n, err := it.dir.FromServer(v); err == nil {
					v = n.Set
				}
			}
		} else if it.hasRuntime {
			v, ok = it.runtimeNorm.Set, true
			if it.setRuntime {
				// As the server will print it, so that check mode and
				// the real run report the same values (64mb -> 67108864).
				v = it.desired.Set
				if it.dir.Kind == directives.Memory {
					v = it.desired.Canonical
				}
			}
		}
		if ok {
			m.fields.Values[it.dir.Name] = m.show(it.dir, v)
		}
	}
}
