package journal

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible"
)

func boolp(b bool) *bool { return &b }

func entry(module string, changes ...Change) Entry {
	req, _ := ansible.ParseRequest(module, []byte(`{"_valkeyops_controller":{"user":"alice","playbook":"/src/site.yml","git_commit":"0123456789abcdef0123456789abcdef01234567","git_dirty":false}}`))
	e := NewEntry(req, "127.0.0.1:6379", 6379)
	e.Changes = changes
	return e
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestOptionsDefaults(t *testing.T) {
	var o JournalOptions
	assert.True(t, o.Enabled())
	assert.True(t, o.Required())
	assert.Equal(t, DefaultPath, o.Path())
	assert.NoError(t, o.Validate())
	o = JournalOptions{Journal: boolp(false), JournalRequired: boolp(false), JournalPath: "/x/j.jsonl"}
	assert.False(t, o.Enabled())
	assert.False(t, o.Required())
	assert.Equal(t, "/x/j.jsonl", o.Path())
	assert.EqualError(t, JournalOptions{JournalPath: "rel/j.jsonl"}.Validate(), `option "journal_path": "rel/j.jsonl" is not an absolute path`)
}

func TestCheckAndAppendCreateWithModes(t *testing.T) {
	old := syscall.Umask(0o077) // as under the action plugin's remote script
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "log", "valkeyops")
	o := JournalOptions{JournalPath: filepath.Join(dir, "changes.jsonl")}
	w, err := Check(o)
	require.NoError(t, err)
	assert.Empty(t, w)
	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(DirMode), st.Mode().Perm())
	st, err = os.Stat(o.Path())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(FileMode), st.Mode().Perm())
	assert.Zero(t, st.Size(), "Check writes nothing")

	e := entry("valkey_config",
		Change{Kind: KindDirective, Name: "maxmemory", Before: Value("104857600"), After: Value("1073741824"), Where: []string{"runtime", "file"}},
		Change{Kind: KindDirective, Name: "requirepass", Secret: true, Where: []string{"runtime", "file"}})
	w, err = Append(o, e)
	require.NoError(t, err)
	assert.Empty(t, w)
	got := lines(t, o.Path())
	require.Len(t, got, 1)
	var back Entry
	require.NoError(t, json.Unmarshal([]byte(got[0]), &back))
	assert.Equal(t, "valkey_config", back.Module)
	assert.Equal(t, time.UTC, back.Time.Location())
	assert.True(t, strings.HasPrefix(got[0], `{"time":"`) && strings.Contains(got[0][:40], "Z\""), "UTC time first: %s", got[0])
	require.NotNil(t, back.Controller)
	assert.Equal(t, "alice", back.Controller.User)
	assert.Equal(t, "0123456789abcdef0123456789abcdef01234567", back.Controller.GitCommit)
	assert.Equal(t, e.Changes, back.Changes)
	assert.NotContains(t, got[0], `"before":null`)

	// An entry without changes, or with the journal off, writes nothing.
	_, err = Append(o, entry("valkey_config"))
	require.NoError(t, err)
	_, err = Append(JournalOptions{Journal: boolp(false), JournalPath: o.JournalPath}, e)
	require.NoError(t, err)
	assert.Len(t, lines(t, o.Path()), 1)

	// Existing file: appended to, mode kept.
	require.NoError(t, os.Chmod(o.Path(), 0o600))
	_, err = Append(o, e)
	require.NoError(t, err)
	assert.Len(t, lines(t, o.Path()), 2)
	st, _ = os.Stat(o.Path())
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestConcurrentAppendsNeverInterleave(t *testing.T) {
	o := JournalOptions{JournalPath: filepath.Join(t.TempDir(), "changes.jsonl")}
	big := strings.Repeat("x", 64<<10) // larger than a pipe buffer
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := Append(o, entry("valkey_config", Change{Kind: KindDirective, Name: "dir", After: Value(big)}))
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	got := lines(t, o.Path())
	require.Len(t, got, 20)
	for _, l := range got {
		var e Entry
		require.NoError(t, json.Unmarshal([]byte(l), &e))
	}
}

func TestRotationBetweenWrites(t *testing.T) {
	dir := t.TempDir()
	o := JournalOptions{JournalPath: filepath.Join(dir, "changes.jsonl")}
	_, err := Append(o, entry("valkey_config", Change{Kind: KindDirective, Name: "hz", After: Value("11")}))
	require.NoError(t, err)
	require.NoError(t, os.Rename(o.Path(), o.Path()+".1")) // what logrotate does
	_, err = Append(o, entry("valkey_config", Change{Kind: KindDirective, Name: "hz", After: Value("12")}))
	require.NoError(t, err)
	assert.Len(t, lines(t, o.Path()+".1"), 1)
	assert.Len(t, lines(t, o.Path()), 1, "the next write goes to a new file")
}

func TestUnwritableJournal(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	target := filepath.Join(dir, "target")
	require.NoError(t, os.WriteFile(target, nil, 0o600))
	require.NoError(t, os.Symlink(target, filepath.Join(dir, "link.jsonl")))
	tests := []struct {
		name, path, want string
	}{
		{"parent is a file", filepath.Join(notDir, "changes.jsonl"), "failed to write the change journal " + filepath.Join(notDir, "changes.jsonl") + ": mkdir " + notDir + ": not a directory"},
		{"path is a directory", dir, "failed to write the change journal " + dir + ": is a directory"},
		{"path is a symlink", filepath.Join(dir, "link.jsonl"), "failed to write the change journal " + filepath.Join(dir, "link.jsonl") + ": not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := JournalOptions{JournalPath: tc.path}
			w, err := Check(o)
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
			assert.Empty(t, w)
			_, err = Append(o, entry("valkey_config", Change{Kind: KindDirective, Name: "hz"}))
			require.Error(t, err)

			o.JournalRequired = boolp(false)
			w, err = Check(o)
			require.NoError(t, err)
			assert.Equal(t, tc.want+"; journal_required is false, so the change is applied without a record", w)
			w, err = Append(o, entry("valkey_config", Change{Kind: KindDirective, Name: "hz"}))
			require.NoError(t, err)
			assert.Contains(t, w, "the change was applied and is not recorded")

			o.Journal = boolp(false)
			w, err = Check(o)
			assert.NoError(t, err)
			assert.Empty(t, w)
		})
	}
	b, _ := os.ReadFile(target)
	assert.Empty(t, b, "a symlink is never followed")
}

func TestSyslog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()
	old := syslogAddr
	syslogAddr = sock
	defer func() { syslogAddr = old }()

	o := JournalOptions{JournalPath: filepath.Join(t.TempDir(), "changes.jsonl"), JournalSyslog: true}
	_, err = Check(o)
	require.NoError(t, err)
	_, err = Append(o, entry("valkey_config", Change{Kind: KindDirective, Name: "hz", After: Value("13")}))
	require.NoError(t, err)
	buf := make([]byte, 64<<10)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, err := conn.Read(buf)
	require.NoError(t, err)
	msg := string(buf[:n])
	// <37>: facility auth (4) * 8 + severity notice (5).
	assert.True(t, strings.HasPrefix(msg, "<37>"), msg)
	assert.Contains(t, msg, SyslogTag+"[")
	assert.Contains(t, msg, strings.TrimSuffix(lines(t, o.Path())[0], "\n"))

	// No syslog listening: a required journal fails before the change.
	syslogAddr = filepath.Join(t.TempDir(), "nobody-listens")
	_, err = Check(o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "failed to reach the local syslog for the change journal")
	o.JournalRequired = boolp(false)
	w, err := Check(o)
	require.NoError(t, err)
	assert.Contains(t, w, "journal_required is false")
}

func writeJournal(t *testing.T, entries ...Entry) string {
	t.Helper()
	o := JournalOptions{JournalPath: filepath.Join(t.TempDir(), "changes.jsonl")}
	for _, e := range entries {
		_, err := Append(o, e)
		require.NoError(t, err)
	}
	return o.Path()
}

func at(e Entry, ts string) Entry {
	e.Time, _ = time.Parse(time.RFC3339, ts)
	return e
}

func TestReadFiltersAndLastRecorded(t *testing.T) {
	path := writeJournal(t,
		at(entry("valkey_config", Change{Kind: KindDirective, Name: "maxmemory", After: Value("1")}, Change{Kind: KindDirective, Name: "hz", After: Value("10")}), "2026-01-01T00:00:00Z"),
		at(entry("valkey_config", Change{Kind: KindDirective, Name: "primaryauth", Secret: true}), "2026-01-02T00:00:00Z"),
		at(entry("valkey_config", Change{Kind: KindDirective, Name: "maxmemory", Before: Value("1"), After: Value("2")}), "2026-01-03T00:00:00Z"),
		at(entry("valkey_acl", Change{Kind: KindUser, Name: "maxmemory"}), "2026-01-04T00:00:00Z"),
	)
	// A torn line and garbage are skipped, not fatal.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, _ = f.WriteString("not json\n{\"time\":\"2026-01-05T00:00:00Z\",\"mod")
	f.Close()

	all, skipped, err := Read(path, Filter{})
	require.NoError(t, err)
	assert.Len(t, all, 4)
	assert.Equal(t, 2, skipped)

	since, _ := time.Parse(time.RFC3339, "2026-01-02T00:00:00Z")
	got, _, err := Read(path, Filter{Since: since, Directive: "maxmemory"})
	require.NoError(t, err)
	require.Len(t, got, 1, "users named like a directive are not directive changes")
	assert.Equal(t, "2", *got[0].Changes[0].After)

	got, _, err = Read(path, Filter{Directive: "hz"})
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Len(t, got[0].Changes, 1, "only the directive asked for")

	got, _, err = Read(path, Filter{Module: "valkey_acl"})
	require.NoError(t, err)
	assert.Len(t, got, 1)

	rec, err := LastRecorded(path, "maxmemory")
	require.NoError(t, err)
	require.NotNil(t, rec)
	assert.Equal(t, "2", *rec.Change.After)
	assert.Equal(t, "2026-01-03T00:00:00Z", rec.Entry.Time.Format(time.RFC3339))
	assert.Equal(t, "alice", rec.Entry.Controller.User)

	rec, err = LastRecorded(path, "masterauth") // an alias finds the canonical name
	require.NoError(t, err)
	require.NotNil(t, rec)
	assert.True(t, rec.Change.Secret)
	assert.Nil(t, rec.Change.After)

	rec, err = LastRecorded(path, "timeout")
	require.NoError(t, err)
	assert.Nil(t, rec)
	rec, err = LastRecorded(filepath.Join(t.TempDir(), "none.jsonl"), "timeout")
	require.NoError(t, err)
	assert.Nil(t, rec, "no journal: nothing recorded")
	_, err = LastRecorded(t.TempDir(), "timeout")
	assert.Error(t, err, "a directory is not a journal")
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in, want, err string
	}{
		{in: "2026-01-02T15:04:05Z", want: "2026-01-02T15:04:05Z"},
		{in: "2026-01-02T15:04:05+02:00", want: "2026-01-02T13:04:05Z"},
		{in: "2026-01-02", want: "2026-01-02T00:00:00Z"},
		{in: "24h", want: "2026-03-09T12:00:00Z"},
		{in: "7d", want: "2026-03-03T12:00:00Z"},
		{in: "90m", want: "2026-03-10T10:30:00Z"},
		{in: "yesterday", err: `--since "yesterday": expected`},
		{in: "-5h", err: "expected"},
		{in: "7dd", err: "expected"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSince(tc.in, now)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got.UTC().Format(time.RFC3339))
		})
	}
}

func TestCLI(t *testing.T) {
	path := writeJournal(t,
		at(entry("valkey_config", Change{Kind: KindDirective, Name: "maxmemory", Before: Value("104857600"), After: Value("1073741824"), Where: []string{"runtime", "file"}}), "2026-01-01T00:00:00Z"),
		at(entry("valkey_config", Change{Kind: KindDirective, Name: "requirepass", Secret: true}, Change{Kind: KindDirective, Name: "enable-debug-command", Before: Value("yes"), After: Value("no"), RestartRequired: true}), "2026-01-03T00:00:00Z"),
	)
	now := time.Date(2026, 1, 3, 12, 0, 0, 0, time.UTC)
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := CLI(args, &out, &errb, now)
		return code, out.String(), errb.String()
	}

	code, out, errs := run("--path", path)
	require.Equal(t, 0, code, errs)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, rows, 4)
	assert.Regexp(t, `^TIME\s+MODULE\s+HOST\s+INSTANCE\s+SERVER\s+CHANGE\s+BEFORE\s+AFTER\s+BY\s+COMMIT$`, rows[0])
	assert.Regexp(t, `^2026-01-01T00:00:00Z\s+valkey_config\s+\S+\s+-\s+127.0.0.1:6379\s+maxmemory\s+104857600\s+1073741824\s+alice\s+0123456789ab$`, rows[1])
	assert.Regexp(t, `requirepass\s+\(hidden\)\s+\(hidden\)`, rows[2])
	assert.Regexp(t, `enable-debug-command\s+yes\s+no \(restart required\)`, rows[3])

	code, out, _ = run("--path", path, "--format", "json", "--since", "24h", "--directive", "requirepass")
	require.Equal(t, 0, code)
	rows = strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, rows, 1)
	var e Entry
	require.NoError(t, json.Unmarshal([]byte(rows[0]), &e))
	require.Len(t, e.Changes, 1)
	assert.Equal(t, "requirepass", e.Changes[0].Name)

	code, out, _ = run("--path", path, "--since", "2026-01-02", "--directive", "maxmemory")
	assert.Equal(t, 0, code)
	assert.Equal(t, 1, strings.Count(out, "\n"), "header only: %s", out)

	code, _, errs = run("--path", filepath.Join(t.TempDir(), "missing.jsonl"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "failed to read the change journal")
	assert.Contains(t, errs, "no such file or directory")

	for _, bad := range [][]string{{"--format", "xml"}, {"--since", "soon"}, {"--bogus"}, {"extra"}} {
		code, _, errs = run(append([]string{"--path", path}, bad...)...)
		assert.Equal(t, 2, code, "%v: %s", bad, errs)
	}
	code, _, errs = run("--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, errs, CLIUsage)
}

func TestFilterSelectsOneServer(t *testing.T) {
	e := Entry{Server: "127.0.0.1:6379", ConfigFile: "/etc/valkey/valkey.conf", Changes: []Change{{Kind: KindDirective, Name: "hz"}}}
	for _, tc := range []struct {
		name string
		f    Filter
		want bool
	}{
		{"any server", Filter{}, true},
		{"same file", Filter{ConfigFile: "/etc/valkey/valkey.conf"}, true},
		{"same address, other file", Filter{ConfigFile: "/other.conf", Server: "127.0.0.1:6379"}, true},
		{"other server", Filter{ConfigFile: "/other.conf", Server: "127.0.0.1:6380"}, false},
	} {
		if _, got := tc.f.Match(e); got != tc.want {
			t.Errorf("%s: got %v", tc.name, got)
		}
	}
}

func TestInstanceName(t *testing.T) {
	for _, tc := range []struct{ configFile, want string }{
		{"/etc/valkey/valkey.conf", "default"},
		{"/etc/valkey/valkey-cache.conf", "cache"},
		{"/etc/valkey/valkey-my_store-2.conf", "my_store-2"},
		{"/etc/redis/redis.conf", "redis"},
		{"/srv/shard1.conf", "shard1"},
		{"/etc/valkey/valkey-.conf", "valkey-"},
		{"", ""},
	} {
		t.Run(tc.configFile, func(t *testing.T) {
			assert.Equal(t, tc.want, InstanceName(tc.configFile))
		})
	}
}

func TestCLIInstance(t *testing.T) {
	cache := entry("valkey_config", Change{Kind: KindDirective, Name: "timeout", Before: Value("0"), After: Value("30")})
	cache.Instance = "cache"
	store := entry("valkey_config", Change{Kind: KindDirective, Name: "timeout", Before: Value("0"), After: Value("60")})
	store.Instance = "store"
	path := writeJournal(t, cache, store)
	var out, errb bytes.Buffer
	require.Equal(t, 0, CLI([]string{"--path", path, "--instance", "store"}, &out, &errb, time.Now()), errb.String())
	rows := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, rows, 2)
	assert.Regexp(t, `^\S+\s+valkey_config\s+\S+\s+store\s+127.0.0.1:6379\s+timeout\s+0\s+60\s`, rows[1])
}
