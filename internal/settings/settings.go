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

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/outcome"
	"github.com/valkeyops/secure/internal/peer"
	"github.com/valkeyops/secure/internal/safefs"
)

// LockTimeout bounds the wait for another run editing the same directory.
const LockTimeout = outcome.LockTimeout

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
// and, outside check mode, applies them, as one task of the outcome
// protocol (internal/outcome). opts must have passed Validate. The result
// carries *Fields; req supplies check mode, diff and secret masking.
func Converge(req *ansible.Request, opts Options) *ansible.Result {
	e := New(req, opts)
	defer e.Close()
	return outcome.Run(&outcome.Task{Req: req, Res: e.res, Journal: opts.JournalOptions, Timeout: opts.Timeout()}, e)
}

// New prepares a convergence of opts (which passed Validate). Its result
// (Result) carries *Fields.
func New(req *ansible.Request, opts Options) *Engine {
	m := &Engine{req: req, opts: &opts, res: &ansible.Result{}, fields: &Fields{
		Values: map[string]string{}, RuntimeChanged: []string{}, FileChanged: []string{},
		RestartRequiredDirectives: []string{}, Drift: map[string]DriftEntry{},
	}}
	m.res.Fields = m.fields
	return m
}

// Result is the engine's own result: changed, diff, warnings and *Fields.
func (m *Engine) Result() *ansible.Result { return m.res }

// Fields are the engine's return values.
func (m *Engine) Fields() *Fields { return m.fields }

// Unchanged clears the lists of changes, for a failure after which nothing
// changed.
func (m *Engine) Unchanged() {
	m.fields.RuntimeChanged = []string{}
	m.fields.FileChanged = []string{}
	m.fields.BackupFile = ""
}

// Engine is one convergence of directives, an outcome.Module: a module that
// converges directives as part of a larger task (valkey_tls) calls its Plan,
// Apply and Record from its own, with the same Task, so that the directory
// locks are shared and the task writes one journal entry.
type Engine struct {
	req    *ansible.Request
	opts   *Options
	res    *ansible.Result
	fields *Fields

	srv   *server
	items []*item
	cfg   *conffile.Config
	// peer is the verified server process (nil: not connected, or on
	// another host); trust is who besides root may own the file's path.
	peer  *peer.Process
	trust safefs.Trust
}

// Plan reads the server and the file, under the lock of the file's
// directory outside check mode, and plans every change. It changes nothing.
func (m *Engine) Plan(ctx context.Context, t *outcome.Task) error {
	// 1. Everything that needs neither the server nor the file.
	m.registerSecrets()
	pending, err := m.parseSettings()
	if err != nil {
		return err
	}
	// 2. The server, when the task involves it or can learn from it.
	if err := m.connect(ctx, pending); err != nil {
		return err
	}
	if err := m.checkVersions(ctx); err != nil {
		return err
	}
	// 3. The file path.
	path, err := m.configPath()
	if err != nil {
		return err
	}
	m.fields.ConfigFile = path
	// 4. Lock (real runs only), then read the state the plan is made from:
	// a run that waited for the lock plans from what the run before it
	// left, in the server as in the file. The lock is on the directory: a
	// missing one is reported as such, not as a locking failure.
	if path != "" && m.opts.file() {
		if _, err := os.Stat(filepath.Dir(path)); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("config_file %q: its directory does not exist", path)
		}
		if err := t.Lock(path); err != nil {
			return fmt.Errorf("failed to lock %s: %w", filepath.Dir(path), err)
		}
		if err := m.reread(ctx, t); err != nil {
			return err
		}
	}
	if err := m.readFile(path); err != nil {
		return err
	}
	// 5. Plan; every check that can fail is done here, before any change.
	if err := m.plan(); err != nil {
		return err
	}
	m.report()
	return nil
}

// reread reads the server's values again once the lock is held (outside
// check mode), so that the plan, the rollback and the journal's before
// come from the state the lock protects.
func (m *Engine) reread(ctx context.Context, t *outcome.Task) error {
	if m.srv == nil || t.Req.CheckMode {
		return nil
	}
	srv, err := readServer(ctx, m.srv.client)
	if err != nil {
		return err
	}
	m.srv.values = srv.values
	return nil
}

// Apply makes the planned changes (apply.go).
func (m *Engine) Apply(ctx context.Context, _ *outcome.Task) error { return m.apply(ctx) }

// Record is the journal entry of what Apply changed.
func (m *Engine) Record(partial bool) journal.Entry { return m.journalEntry(partial) }

// Close closes the connection to the server, if one was opened.
func (m *Engine) Close() {
	if m.srv != nil {
		m.srv.client.Close()
	}
}

// registerSecrets registers the value of every secret directive of the task
// before anything is checked, so that no message can show one, whatever the
// order in which directives are checked.
func (m *Engine) registerSecrets() {
	for key, v := range m.opts.Settings {
		d, ok := directives.Lookup(strings.ToLower(strings.TrimSpace(key)))
		if !ok || !d.Secret {
			continue
		}
		registerValue(m.req, v)
	}
}

func registerValue(req *ansible.Request, v any) {
	switch x := v.(type) {
	case string:
		req.AddSecret(x)
	case []any:
		for _, e := range x {
			registerValue(req, e)
		}
	case nil, bool:
	default:
		req.AddSecret(fmt.Sprint(x))
	}
}

// journalEntry describes the applied changes for the change journal:
// directive names always, values (canonical form) only for directives that
// are not secret. A directive the table does not know (a newer server's)
// may be secret: its value is not recorded either. partial records only
// the runtime change that stayed after a failed file write.
func (m *Engine) journalEntry(partial bool) journal.Entry {
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

// parseSettings normalises every desired value. Directives the static table
// does not know are returned to be checked against the server.
func (m *Engine) parseSettings() (pending []string, err error) {
	keys := make([]string, 0, len(m.opts.Settings))
	for k := range m.opts.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[string]string{}
	for _, key := range keys {
		name := directives.FoldName(key)
		if reason, bad := directives.Unsupported(name); bad {
			return nil, fmt.Errorf("settings: directive %q is not managed by valkey_config: %s", key, reason)
		}
		d, ok := directives.Lookup(name)
		if !ok {
			pending = append(pending, key)
			continue
		}
		if prev, dup := seen[d.Name]; dup {
			return nil, fmt.Errorf("settings: %q and %q are the same directive (%s); give it once", prev, key, d.Name)
		}
		seen[d.Name] = key
		if err := m.addItem(key, d); err != nil {
			return nil, err
		}
	}
	return pending, nil
}

func (m *Engine) addItem(key string, d *directives.Directive) error {
	v := m.opts.Settings[key]
	if d.Secret {
		if s, ok := v.(string); ok {
			m.req.AddSecret(s)
		}
	}
	val, err := d.Desired(v)
	if err != nil {
		return fmt.Errorf("settings: %v", err)
	}
	if d.Secret {
		m.req.AddSecret(val.Set)
	}
	m.items = append(m.items, &item{key: key, dir: d, desired: val, serverName: d.Name})
	return nil
}

// connect opens the server when the task needs it; with persist: file it is
// optional (used to find the file and to know newer directives).
func (m *Engine) connect(ctx context.Context, pending []string) error {
	needed := m.opts.runtime() || m.opts.ConfigFile == "" || len(pending) > 0
	if !needed {
		// persist: file with an explicit path: the server is not needed.
		return nil
	}
	m.opts.CarriesSecrets = m.req.HasSecrets()
	client, p, err := conn.OpenPeer(&m.opts.Options)
	if err != nil {
		if errors.Is(err, conn.ErrConnect) && !errors.Is(err, peer.ErrUntrusted) && !m.opts.runtime() {
			if m.opts.ConfigFile == "" {
				return fmt.Errorf("%v; with persist: file, config_file is required when the server is not reachable", err)
			}
			return m.unknown(pending, nil)
		}
		return fmt.Errorf("%v", err)
	}
	srv, err := readServer(ctx, client)
	if err != nil {
		client.Close()
		return fmt.Errorf("%v", err)
	}
	m.srv, m.peer, m.trust = srv, p, p.Trust()
	m.fields.Server = &srv.info
	names := srv.names()
	for _, it := range m.items {
		it.serverName = it.dir.NameFor(names)
	}
	return m.unknown(pending, names)
}

// unknown resolves directives the table lacks: known to the server means a
// newer directive, treated as a plain string; otherwise an error.
func (m *Engine) unknown(pending []string, serverNames map[string]bool) error {
	for _, key := range pending {
		name := directives.FoldName(key)
		if !serverNames[name] {
			where := "to valkey_config"
			if serverNames != nil {
				where = fmt.Sprintf("to valkey_config or to the server (%s %s)", m.srv.info.Name, m.srv.info.Version)
			}
			return fmt.Errorf("settings: unknown directive %+q: not known %s; check the spelling", key, where)
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

// checkVersions refuses a directive, a name of it or a value that the target's
// Valkey release lacks (a 9.0 value written for an 8.0 server stops it at its
// next start). The release is the connected server's; without one (persist:
// file), the installed valkey-server's. With persist: file the name written is
// one that release knows (masterauth for 7.2).
func (m *Engine) checkVersions(ctx context.Context) error {
	var ver directives.Version
	if m.srv != nil {
		if m.srv.info.Name != "valkey" {
			return nil // Redis numbers its releases differently
		}
		v, err := directives.ParseVersion(m.srv.info.Version)
		if err != nil {
			m.res.Warn("the server reports an unreadable version: %v; values are not checked against it", err)
			return nil
		}
		ver = v
	} else {
		v, _, err := directives.InstalledVersion(ctx)
		if err != nil {
			m.res.Warn("the server is not reachable and its version is unknown (%v); values are not checked against it", err)
			return nil
		}
		ver = v
	}
	for _, it := range m.items {
		if err := it.dir.CheckVersion(ver, it.key, it.desired); err != nil {
			return fmt.Errorf("settings: %v", err)
		}
		if m.srv == nil {
			it.serverName = it.dir.NameForVersion(ver)
		}
	}
	return nil
}

// configPath decides which file to edit and that root may write it: an
// explicit config_file must be absolute; the server's own (INFO
// config_file) is used only from a verified local process; either must
// pass the path rules (internal/safefs) before anything is read or changed.
func (m *Engine) configPath() (string, error) {
	path := m.opts.ConfigFile
	if path != "" && !filepath.IsAbs(path) {
		return "", fmt.Errorf("option \"config_file\": %q is a relative path; give the absolute path of the server's config file", path)
	}
	if path == "" && m.srv != nil && m.srv.configFile != "" {
		p, err := m.peer.ConfigFile(m.srv.configFile)
		if err != nil && !m.opts.file() {
			m.res.Warn("the config file is left out of the drift report: %v", err)
		} else if err != nil {
			return "", fmt.Errorf("cannot use the server's config file: %v; set config_file (or use persist: runtime)", err)
		}
		path = p
	}
	if path == "" && m.opts.file() {
		return "", fmt.Errorf("persist: %s needs a config file, but the server runs without one and config_file is not set; set config_file or use persist: runtime", m.opts.Persist)
	}
	if path != "" && m.opts.file() {
		err := safefs.Check(path, m.trust)
		switch {
		case err == nil, errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, safefs.ErrUnsafe), errors.Is(err, safefs.ErrNotRegular):
			return "", fmt.Errorf("refusing to write config_file %q: %v", path, err)
		default: // e.g. a directory this user may not enter
			return "", fmt.Errorf("failed to write %s: %v", path, err)
		}
	}
	return path, nil
}

// readFile loads the config file (and its includes). A file that does not
// exist yet is created by persist: file/both when its directory exists.
func (m *Engine) readFile(path string) error {
	if path == "" {
		return nil
	}
	cfg, err := conffile.LoadTrusted(path, m.trust)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist) && m.opts.file():
		if _, derr := os.Stat(filepath.Dir(path)); derr != nil {
			return fmt.Errorf("config_file %q: its directory does not exist", path)
		}
		if cfg, err = conffile.Parse(path, nil); err != nil {
			return fmt.Errorf("failed to read %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		// persist: runtime: the file only serves the drift report.
		return nil
	default:
		if !m.opts.file() {
			m.res.Warn("could not read %s for the drift report: %v", path, err)
			return nil
		}
		return fmt.Errorf("failed to read %s: %w", path, err)
	}
	m.cfg = cfg
	for _, w := range cfg.Warnings {
		m.res.Warn("%s", w)
	}
	return nil
}

// plan compares desired, runtime and file values and edits the file in
// memory. It changes nothing outside this process.
func (m *Engine) plan() error {
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
					return fmt.Errorf("directive %q: cannot read the server's current value: %v", it.key, err)
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
					return fmt.Errorf("directive %q in %s line %d: %v", it.key, last.File, last.Line, err)
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
					return fmt.Errorf("directive %q cannot change while the server runs (%s); use persist: both or file and restart the server", it.key, immutableWhy(d))
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
				return fmt.Errorf("directive %q: %v", it.key, err)
			}
		}
	}
	if m.opts.Strict {
		for _, it := range m.items {
			if it.restart {
				return fmt.Errorf("directive %q needs a server restart to change (%s) and strict is set", it.key, immutableWhy(it.dir))
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
func (m *Engine) show(d *directives.Directive, v string) string {
	if d.Secret {
		return ansible.Mask
	}
	return v
}

// report fills changed, the lists, warnings and the diff from the plan.
func (m *Engine) report() {
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

func (m *Engine) line(d *directives.Directive, v, age string) string {
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
func (m *Engine) fillValues(after map[string]string) {
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
