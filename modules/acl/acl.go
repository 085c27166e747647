package acl

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/aclrule"
	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/outcome"
	"github.com/valkeyops/secure/internal/peer"
)

// DefaultUser is the server's built-in user: it cannot be deleted and is
// left alone by exclusive unless listed.
const DefaultUser = "default"

// Fields are valkey_acl's own return values.
type Fields struct {
	Created     []string `json:"created"`
	Updated     []string `json:"updated"`
	Deleted     []string `json:"deleted"`
	PersistedTo string   `json:"persisted_to"`
}

// user is one user of the task with its desired state.
type user struct {
	spec      *UserSpec
	absent    bool
	desired   *aclrule.User // nil when absent
	passwords []string      // plain text, for the finisher connection only
	rules     []ruleRef     // command rules, checked against the server's catalog
}

// ruleRef is a command rule and where the user wrote it.
type ruleRef struct{ where, rule string }

// change is one planned ACL SETUSER or ACL DELUSER.
type change struct {
	name   string
	before *aclrule.User // nil: the user is created
	after  *aclrule.User // nil: the user is deleted
}

// Main is the module's entry point.
func Main(req *ansible.Request) *ansible.Result {
	var opts Options
	if err := req.Decode(&opts); err != nil {
		return outcome.Fail(err)
	}
	m := &run{req: req, opts: &opts, res: &ansible.Result{}, fields: &Fields{Created: []string{}, Updated: []string{}, Deleted: []string{}}}
	m.res.Fields = m.fields
	defer m.close()
	return outcome.Run(&outcome.Task{Req: req, Res: m.res, Journal: opts.JournalOptions, Timeout: opts.Timeout()}, m)
}

type run struct {
	req    *ansible.Request
	opts   *Options
	res    *ansible.Result
	fields *Fields

	users   []*user
	client  valkey.Client
	srv     *serverState
	changes []*change
	final   map[string]*aclrule.User
	// persistCmd is "acl|save", "config|rewrite", "sentinel|flushconfig"
	// or "" (nothing to save).
	persistCmd string
	// finisher is the user whose connection saves and restores when the
	// login user loses the right to (its password in finisherPassword).
	finisher         string
	finisherPassword string
	// peer is the verified server process (nil: on another host); kept
	// holds the saved file's owner and mode, restored after saving.
	peer *peer.Process
	kept *keptFile
}

// Plan reads the users, under the lock of the file they are saved to
// outside check mode (ACL SAVE and CONFIG REWRITE rewrite a whole file that
// valkey_config and other valkey_acl runs also write), and plans every
// change. It changes nothing.
func (m *run) Plan(ctx context.Context, t *outcome.Task) error {
	// 1. Everything that needs no server.
	if err := m.validate(); err != nil {
		return err
	}
	// 2. Where the users are saved, and that file's lock; then one round
	// trip of reads, under the lock.
	m.opts.CarriesSecrets = m.req.HasSecrets()
	client, p, err := conn.OpenPeer(&m.opts.Options)
	if err != nil {
		return err
	}
	m.client, m.peer = client, p
	if !t.Req.CheckMode && m.opts.Persist != PersistNone {
		aclfile, configFile, sentinel, err := readPaths(ctx, client)
		if err != nil {
			return err
		}
		if _, path := persistChoice(m.opts.Persist, aclfile, configFile, sentinel); path != "" {
			if err := t.Lock(path); err != nil {
				return fmt.Errorf("failed to lock %s: %w", filepath.Dir(path), err)
			}
		}
	}
	if m.srv, err = readState(ctx, client); err != nil {
		return err
	}
	// 3. Plan; every check that can fail is done here, before any change.
	if err := m.plan(); err != nil {
		return err
	}
	m.report()
	if t.Req.CheckMode || len(m.changes) == 0 {
		return nil
	}
	// The file the server will rewrite: its owner and mode, to restore.
	return m.keepPersisted()
}

// Apply makes the planned changes (apply.go).
func (m *run) Apply(ctx context.Context, _ *outcome.Task) error { return m.apply(ctx) }

// Record lists the users this run created, updated or deleted: names only,
// never a password or a hash.
func (m *run) Record(partial bool) journal.Entry { return m.journalEntry(partial) }

// Unchanged clears the lists of changes, for a failure after which nothing
// changed.
func (m *run) Unchanged() {
	m.fields.Created, m.fields.Updated, m.fields.Deleted = []string{}, []string{}, []string{}
	m.fields.PersistedTo = ""
}

func (m *run) close() {
	if m.client != nil {
		m.client.Close()
	}
	m.kept.close()
}

func changedUsers(changes []*change) []string {
	names := make([]string, len(changes))
	for i, c := range changes {
		names[i] = c.name
	}
	return names
}

// journalEntry lists the users this run created, updated or deleted.
func (m *run) journalEntry(partial bool) journal.Entry {
	e := journal.NewEntry(m.req, m.opts.Address(), m.opts.LoginPort)
	if m.opts.LoginUnixSocket != "" {
		e.Port = 0
	}
	e.Instance = journal.InstanceName(m.srv.configFile)
	e.Partial = partial
	for _, c := range m.changes {
		detail := "updated"
		switch {
		case slices.Contains(m.fields.Created, c.name):
			detail = "created"
		case slices.Contains(m.fields.Deleted, c.name):
			detail = "deleted"
		}
		e.Changes = append(e.Changes, journal.Change{Kind: journal.KindUser, Name: c.name, Detail: detail})
	}
	return e
}

// validate checks the options and builds each user's desired state.
func (m *run) validate() error {
	o := m.opts
	if err := o.JournalOptions.Validate(); err != nil {
		return err
	}
	switch o.Persist {
	case "":
		o.Persist = DefaultPersist
	case PersistAuto, PersistACLFile, PersistConfig, PersistNone:
	default:
		return fmt.Errorf("option \"persist\": %q is not one of auto, aclfile, config, none", o.Persist)
	}
	if err := o.Options.Validate(); err != nil {
		return err
	}
	var specs []*UserSpec
	switch {
	case o.Name != "" && o.Users != nil:
		return errors.New("give either name (one user) or users (a list of users), not both")
	case o.Name != "":
		specs = []*UserSpec{&o.UserSpec}
	case o.Users == nil:
		if f := o.UserSpec.given(); f != "" {
			return fmt.Errorf("option %q needs name (or use users, a list of users)", f)
		}
		return errors.New("give name (one user) or users (a list of users)")
	default:
		if f := o.UserSpec.given(); f != "" {
			return fmt.Errorf("option %q at the top level needs name; with users, give it inside each user", f)
		}
		for i := range o.Users {
			specs = append(specs, &o.Users[i])
		}
	}
	// Every hash a user of the task will have is a secret from the start,
	// so that no message (of an earlier user) can show one.
	for _, s := range specs {
		for _, p := range s.Passwords {
			m.req.AddSecret(aclrule.HashPassword(p.Reveal()))
		}
		for _, h := range s.PasswordHashes {
			m.req.AddSecret(strings.ToLower(h.Reveal()))
		}
	}
	seen := map[string]bool{}
	for i, s := range specs {
		if s.Name == "" {
			return fmt.Errorf("users: item %d has no name", i+1)
		}
		if seen[s.Name] {
			return fmt.Errorf("user %q is listed twice; give each user once", s.Name)
		}
		seen[s.Name] = true
		u, err := buildUser(s)
		if err != nil {
			return fmt.Errorf("user %q: %v", s.Name, err)
		}
		m.users = append(m.users, u)
	}
	return nil
}

// given names the first user field set at the top level (for the error
// when there is no name to go with it).
func (s *UserSpec) given() string {
	switch {
	case len(s.Passwords) > 0:
		return "passwords"
	case len(s.PasswordHashes) > 0:
		return "password_hashes"
	case s.NoPass:
		return "nopass"
	case len(s.Keys) > 0:
		return "keys"
	case len(s.Channels) > 0:
		return "channels"
	case len(s.Commands) > 0:
		return "commands"
	case len(s.Selectors) > 0:
		return "selectors"
	case s.Enabled != nil && !*s.Enabled:
		return "enabled"
	case s.State == StateAbsent:
		return "state"
	case s.UpdatePassword == UpdateOnCreate:
		return "update_password"
	}
	return ""
}

// buildUser validates one user's fields and builds its desired state.
// Errors name the rule but never a password or hash.
func buildUser(s *UserSpec) (*user, error) {
	if strings.IndexFunc(s.Name, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return nil, errors.New("the name contains a space or control character")
	}
	if err := aclrule.CheckReadBack(s.Name); err != nil {
		return nil, fmt.Errorf("the name %v", err)
	}
	switch s.State {
	case "":
		s.State = StatePresent
	case StatePresent, StateAbsent:
	default:
		return nil, fmt.Errorf("state %q is not one of present, absent", s.State)
	}
	switch s.UpdatePassword {
	case "":
		s.UpdatePassword = UpdateAlways
	case UpdateAlways, UpdateOnCreate:
	default:
		return nil, fmt.Errorf("update_password %q is not one of always, on_create", s.UpdatePassword)
	}
	if s.State == StateAbsent {
		if s.Name == DefaultUser {
			return nil, errors.New("the default user cannot be deleted; use enabled: false to disable it")
		}
		if f := s.given(); f != "" && f != "state" && f != "update_password" {
			return nil, fmt.Errorf("state absent takes no other field, but %s is given", f)
		}
		return &user{spec: s, absent: true}, nil
	}
	u := &user{spec: s, desired: aclrule.NewUser()}
	d := u.desired
	d.Enabled = s.Enabled == nil || *s.Enabled
	if s.NoPass && (len(s.Passwords) > 0 || len(s.PasswordHashes) > 0) {
		return nil, errors.New("nopass and passwords/password_hashes exclude each other")
	}
	d.NoPass = s.NoPass
	for i, p := range s.Passwords {
		if p.Reveal() == "" {
			return nil, fmt.Errorf("passwords item %d is empty", i+1)
		}
		u.passwords = append(u.passwords, p.Reveal())
		if err := d.Apply("#" + aclrule.HashPassword(p.Reveal())); err != nil {
			return nil, fmt.Errorf("passwords item %d: %v", i+1, err)
		}
	}
	for i, h := range s.PasswordHashes {
		if !aclrule.ValidHash(h.Reveal()) {
			return nil, fmt.Errorf("password_hashes item %d is not a SHA-256 hash (64 hexadecimal characters)", i+1)
		}
		if err := d.Apply("#" + strings.ToLower(h.Reveal())); err != nil {
			return nil, fmt.Errorf("password_hashes item %d: %v", i+1, err)
		}
	}
	rules, err := buildSelector(&d.Root, "", s.Keys, s.Channels, s.Commands)
	if err != nil {
		return nil, err
	}
	u.rules = rules
	for i, sel := range s.Selectors {
		where := fmt.Sprintf("selector %d: ", i+1)
		if len(sel.Keys)+len(sel.Channels)+len(sel.Commands) == 0 {
			return nil, fmt.Errorf("selector %d is empty; give keys, channels or commands", i+1)
		}
		var one aclrule.Selector
		rules, err := buildSelector(&one, where, sel.Keys, sel.Channels, sel.Commands)
		if err != nil {
			return nil, err
		}
		u.rules = append(u.rules, rules...)
		d.Selectors = append(d.Selectors, one)
	}
	return u, nil
}

// buildSelector applies keys, channels and commands to sel. Command rules
// are checked for syntax here and against the server later.
func buildSelector(sel *aclrule.Selector, where string, keys, channels, commands []string) ([]ruleRef, error) {
	readBack := aclrule.CheckReadBack
	if where != "" {
		readBack = aclrule.CheckReadBackInSelector
	}
	for _, k := range keys {
		tok, err := keyToken(k)
		if err == nil {
			err = readBack(tok)
		}
		if err == nil {
			err = sel.Apply(tok)
		}
		if err != nil {
			return nil, fmt.Errorf("%skey pattern %q: %v", where, k, explain(err))
		}
	}
	for _, c := range channels {
		tok, err := channelToken(c)
		if err == nil {
			err = readBack(tok)
		}
		if err == nil {
			err = sel.Apply(tok)
		}
		if err != nil {
			return nil, fmt.Errorf("%schannel pattern %q: %v", where, c, explain(err))
		}
	}
	var refs []ruleRef
	for _, c := range commands {
		low := strings.ToLower(c)
		if low != "allcommands" && low != "nocommands" {
			if c == "" || (c[0] != '+' && c[0] != '-') {
				hint := "a command rule starts with + or - (+@read, -@dangerous, +get, +client|setname), or is allcommands or nocommands"
				if c != "" && (c[0] == '~' || c[0] == '%') {
					hint += "; key patterns go in keys"
				} else if c != "" && c[0] == '&' {
					hint += "; channel patterns go in channels"
				}
				return nil, fmt.Errorf("%scommand rule %q: %s", where, c, hint)
			}
			if err := readBack(c); err != nil {
				return nil, fmt.Errorf("%scommand rule %q: %v", where, c, err)
			}
			refs = append(refs, ruleRef{where, c})
		}
		if err := sel.Apply(c); err != nil {
			return nil, fmt.Errorf("%scommand rule %q: %v", where, c, explain(err))
		}
	}
	return refs, nil
}

// keyToken turns a keys item into a rule: plain patterns get ~.
func keyToken(k string) (string, error) {
	if strings.EqualFold(k, "allkeys") {
		return "allkeys", nil
	}
	tok := k
	if !strings.HasPrefix(k, "~") && !strings.HasPrefix(k, "%") {
		tok = "~" + k
	}
	if strings.HasSuffix(tok, "~") {
		return "", aclrule.ErrEmpty
	}
	return tok, nil
}

// channelToken turns a channels item into a rule: plain patterns get &.
func channelToken(c string) (string, error) {
	if strings.EqualFold(c, "allchannels") {
		return "allchannels", nil
	}
	tok := c
	if !strings.HasPrefix(c, "&") {
		tok = "&" + c
	}
	if tok == "&" {
		return "", aclrule.ErrEmpty
	}
	return tok, nil
}

func explain(err error) string {
	switch {
	case errors.Is(err, aclrule.ErrAfterAll):
		return "comes after the pattern that already allows everything (allkeys, ~*, allchannels, &*) and would have no effect; remove one of them"
	case errors.Is(err, aclrule.ErrSpaces):
		return "patterns cannot contain spaces or control characters"
	case errors.Is(err, aclrule.ErrEmpty):
		return "the pattern is empty"
	case errors.Is(err, aclrule.ErrSyntax):
		return "not a valid rule (keys take pattern, ~pattern, %R~pattern, %W~pattern or %RW~pattern; channels take pattern or &pattern)"
	}
	return err.Error()
}

// plan compares every user with the server and checks that the result
// leaves the server manageable. It changes nothing.
func (m *run) plan() error {
	for _, u := range m.users {
		for _, r := range u.rules {
			if err := m.srv.catalog.CheckCommand(r.rule); err != nil {
				return fmt.Errorf("user %q: %scommand rule %q: %v", u.spec.Name, r.where, r.rule, err)
			}
		}
	}
	m.final = make(map[string]*aclrule.User, len(m.srv.users))
	for n, u := range m.srv.users {
		m.final[n] = u
	}
	listed := map[string]bool{}
	for _, u := range m.users {
		name := u.spec.Name
		listed[name] = true
		cur := m.srv.users[name]
		if cur != nil {
			for _, h := range cur.Hashes {
				m.req.AddSecret(h)
			}
		}
		switch {
		case u.absent && cur != nil:
			m.changes = append(m.changes, &change{name: name, before: cur})
			delete(m.final, name)
		case u.absent:
		default:
			want := u.desired
			if cur != nil && u.spec.UpdatePassword == UpdateOnCreate {
				want = want.Clone()
				want.NoPass, want.Hashes = cur.NoPass, slices.Clone(cur.Hashes)
			}
			if cur == nil || !cur.Equal(want) {
				m.changes = append(m.changes, &change{name: name, before: cur, after: want})
			}
			m.final[name] = want
			if want.NoPass {
				m.res.Warn("user %q has nopass: anyone can log in as it without a password", name)
			}
		}
	}
	if m.opts.Exclusive {
		for _, name := range m.srv.order {
			if !listed[name] && name != DefaultUser {
				m.changes = append(m.changes, &change{name: name, before: m.srv.users[name]})
				delete(m.final, name)
			}
		}
	}
	// The login user's change goes last: its connection stays open.
	login := m.srv.whoami
	sort.SliceStable(m.changes, func(i, j int) bool { return m.changes[j].name == login && m.changes[i].name != login })
	if err := m.persistTarget(); err != nil {
		return err
	}
	if len(m.changes) == 0 {
		return nil
	}
	if !m.opts.AllowLockout && !m.manageable() {
		return fmt.Errorf("refusing the change: afterwards no enabled user that can log in (with a password, or nopass) could run ACL SETUSER, so nobody could manage users any more; keep or create such a user, or set allow_lockout: true if this is intended")
	}
	return m.chooseFinisher()
}

// manageable reports whether some enabled user that can log in may run
// ACL SETUSER once the plan is applied.
func (m *run) manageable() bool {
	for _, u := range m.final {
		if u.Enabled && (u.NoPass || len(u.Hashes) > 0) && m.srv.may(u, "acl|setuser") {
			return true
		}
	}
	return false
}

// keepPersisted records the owner and mode of the file ACL SAVE or CONFIG
// REWRITE will replace, after checking that root may touch its path.
func (m *run) keepPersisted() error {
	if m.persistCmd == "" {
		return nil
	}
	path := m.fields.PersistedTo
	if m.persistCmd == "config|rewrite" || m.persistCmd == "sentinel|flushconfig" {
		if _, err := m.peer.ConfigFile(path); err != nil {
			return fmt.Errorf("refusing to save the users with CONFIG REWRITE: %v; use persist: none or aclfile", err)
		}
	}
	if m.peer == nil {
		m.res.Warn("the server is on another host: the owner and mode of %s are not checked after it saves the users", path)
		return nil
	}
	k, err := keepAttrs(path, m.peer.Trust())
	if err != nil {
		return fmt.Errorf("refusing to save the users to %s: %v", path, err)
	}
	m.kept = k
	return nil
}

// persistTarget resolves persist against what the server has.
func (m *run) persistTarget() error {
	s := m.srv
	switch m.opts.Persist {
	case PersistACLFile:
		if s.aclfile == "" {
			return errors.New("persist: aclfile, but the server has no aclfile configured; use persist: auto, config or none")
		}
	case PersistConfig:
		if s.aclfile != "" {
			return fmt.Errorf("persist: config, but the server keeps its users in the aclfile %s (and ignores user lines in its config file); use persist: aclfile or auto", s.aclfile)
		}
		if s.configFile == "" {
			return errors.New("persist: config, but the server runs without a config file; use persist: none")
		}
	}
	m.persistCmd, m.fields.PersistedTo = persistChoice(m.opts.Persist, s.aclfile, s.configFile, s.sentinel)
	if len(m.changes) == 0 {
		m.fields.PersistedTo = ""
	}
	if m.opts.Persist == PersistAuto && m.persistCmd == "" && len(m.changes) > 0 {
		m.res.Warn("the ACL changes live only in the server's memory: it has neither an aclfile nor a config file, so they are lost when it restarts")
	}
	return nil
}

// persistChoice is how the users are saved ("acl|save", "config|rewrite"
// or "") and the file that writes, for persist and the server's files.
// A Sentinel saves its users in its config file with its own rewrite,
// "sentinel|flushconfig".
func persistChoice(persist, aclfile, configFile string, sentinel bool) (cmd, path string) {
	switch {
	case persist == PersistNone:
	case sentinel && configFile != "":
		return "sentinel|flushconfig", configFile
	case persist != PersistConfig && aclfile != "":
		return "acl|save", aclfile
	case configFile != "":
		return "config|rewrite", configFile
	}
	return "", ""
}

// needs lists the commands the connection that finishes the run must be
// allowed: restore users and save them.
func (m *run) needs() []string {
	n := []string{"acl|setuser", "acl|deluser"}
	if m.persistCmd != "" {
		n = append(n, m.persistCmd)
	}
	return n
}

// chooseFinisher decides which connection saves (and restores, if saving
// fails) after the login user's own change: the login connection when the
// login user keeps the rights to, else a connection as a user of this task
// with a known password and those rights.
func (m *run) chooseFinisher() error {
	login := m.srv.whoami
	after, kept := m.final[login]
	if m.persistCmd == "" || (kept && m.srv.may(after, m.needs()...)) {
		return nil
	}
	touched := false
	for _, c := range m.changes {
		touched = touched || c.name == login
	}
	if !touched {
		return nil
	}
	for _, u := range m.users {
		f := m.final[u.spec.Name]
		if u.absent || u.spec.Name == login || f == nil || !f.Enabled || !m.srv.may(f, m.needs()...) {
			continue
		}
		for _, p := range u.passwords {
			if slices.Contains(f.Hashes, aclrule.HashPassword(p)) {
				m.finisher, m.finisherPassword = u.spec.Name, p
				return nil
			}
		}
	}
	return fmt.Errorf("the login user %q loses the right to run %s with this task, and no other user of the task has both that right and a password given in passwords to finish the run with; give the new admin user's password in passwords (not only password_hashes), or log in as another admin",
		login, strings.ToUpper(strings.ReplaceAll(m.persistCmd, "|", " ")))
}

// report fills the result from the plan: the lists and a diff per user
// (flags, password count, keys, channels, commands, selectors; never a
// password or hash).
func (m *run) report() {
	for _, c := range m.changes {
		switch {
		case c.before == nil:
			m.fields.Created = append(m.fields.Created, c.name)
		case c.after == nil:
			m.fields.Deleted = append(m.fields.Deleted, c.name)
		default:
			m.fields.Updated = append(m.fields.Updated, c.name)
		}
		if m.req.Diff {
			h := "user " + c.name
			m.res.Diff = append(m.res.Diff, ansible.DiffEntry{BeforeHeader: h, AfterHeader: h, Before: describe(c.before), After: describe(c.after)})
		}
	}
	sort.Strings(m.fields.Created)
	sort.Strings(m.fields.Updated)
	sort.Strings(m.fields.Deleted)
	m.res.Changed = len(m.changes) > 0
}

func describe(u *aclrule.User) string {
	if u == nil {
		return ""
	}
	return fmt.Sprintf("flags: %s\npasswords: %d\nkeys: %s\nchannels: %s\ncommands: %s\nselectors: %s\n",
		u.Flags(), len(u.Hashes), u.Root.KeysText(), u.Root.ChannelsText(), u.Root.CommandsText(), u.SelectorsText())
}
