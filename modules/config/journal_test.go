package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/testserver"
)

const controller = `{"user":"alice","playbook":"/src/site.yml","git_commit":"0123456789abcdef0123456789abcdef01234567","git_dirty":true}`

func rawJSON(s string) json.RawMessage { return json.RawMessage(s) }

func journalLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestJournalRecordsAppliedChangesOnly(t *testing.T) {
	srv := testserver.Start(t, "maxmemory 10mb", "timeout 0")
	path := filepath.Join(t.TempDir(), "log", "changes.jsonl")
	settings := map[string]any{"maxmemory": "20mb", "timeout": 30, "hz": 10}

	// Check mode: nothing recorded (the journal is not even created).
	mod.CallOK(t, task(srv, map[string]any{"settings": settings, "journal_path": path, "_ansible_check_mode": true}))
	assert.NoFileExists(t, path)

	// A real run: one line for the change set, with the controller's metadata.
	args := task(srv, map[string]any{"settings": settings, "journal_path": path, "_valkeyops_controller": rawJSON(controller)})
	res, _ := mod.CallOK(t, args)
	require.True(t, res.Changed)
	got := journalLines(t, path)
	require.Len(t, got, 1)
	entries, _, err := journal.Read(path, journal.Filter{})
	require.NoError(t, err)
	e := entries[0]
	assert.Equal(t, "valkey_config", e.Module)
	host, _ := os.Hostname()
	assert.Equal(t, host, e.Host)
	assert.Equal(t, srv.Addr, e.Server)
	assert.Equal(t, srv.Port, e.Port)
	assert.Equal(t, srv.ConfPath, e.ConfigFile)
	assert.Equal(t, "default", e.Instance, "valkey.conf is the default instance")
	require.NotNil(t, e.Controller)
	assert.Equal(t, "alice", e.Controller.User)
	assert.Equal(t, "/src/site.yml", e.Controller.Playbook)
	assert.Equal(t, "0123456789abcdef0123456789abcdef01234567", e.Controller.GitCommit)
	require.NotNil(t, e.Controller.GitDirty)
	assert.True(t, *e.Controller.GitDirty)
	assert.Equal(t, []journal.Change{
		{Kind: "directive", Name: "hz", After: journal.Value("10"), Where: []string{"file"}}, // running already, new in the file
		{Kind: "directive", Name: "maxmemory", Before: journal.Value("10485760"), After: journal.Value("20971520"), Where: []string{"runtime", "file"}},
		{Kind: "directive", Name: "timeout", Before: journal.Value("0"), After: journal.Value("30"), Where: []string{"runtime", "file"}},
	}, e.Changes)

	// No-op: nothing more.
	res, _ = mod.CallOK(t, args)
	require.False(t, res.Changed)
	assert.Len(t, journalLines(t, path), 1)

	// The audit's reader sees the value the server now runs with.
	rec, err := journal.LastRecorded(path, "maxmemory")
	require.NoError(t, err)
	require.NotNil(t, rec)
	assert.Equal(t, srv.ConfigGet("maxmemory"), *rec.Change.After)

	// journal: false records nothing.
	mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{"timeout": 31}, "journal_path": path, "journal": false}))
	assert.Len(t, journalLines(t, path), 1)
}

func TestJournalDriftAndRestart(t *testing.T) {
	srv := testserver.Start(t, "maxmemory 10mb", "enable-debug-command yes")
	srv.ConfigSet("maxmemory", "30000000")
	path := filepath.Join(t.TempDir(), "changes.jsonl")
	mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "40000000", "enable-debug-command": "no"}, "journal_path": path}))
	entries, _, err := journal.Read(path, journal.Filter{})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, []journal.Change{
		{Kind: "directive", Name: "enable-debug-command", Before: journal.Value("yes"), After: journal.Value("no"), Where: []string{"file"}, RestartRequired: true},
		{Kind: "directive", Name: "maxmemory", Before: journal.Value("30000000"), After: journal.Value("40000000"), FileBefore: journal.Value("10485760"), Where: []string{"runtime", "file"}},
	}, entries[0].Changes)
}

func TestJournalSecretNameOnly(t *testing.T) {
	srv := testserver.Start(t)
	path := filepath.Join(t.TempDir(), "changes.jsonl")
	secret := randomSecret(t, "jr-")
	primary := randomSecret(t, "jp-")
	mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{"requirepass": secret, "masterauth": primary, "hz": 12}, "journal_path": path}))
	srv.Password = secret
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, string(b), secret)
	assert.NotContains(t, string(b), primary)
	entries, _, err := journal.Read(path, journal.Filter{})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, []journal.Change{
		{Kind: "directive", Name: "hz", Before: journal.Value("10"), After: journal.Value("12"), Where: []string{"runtime", "file"}},
		{Kind: "directive", Name: "primaryauth", Secret: true, Where: []string{"runtime", "file"}},
		{Kind: "directive", Name: "requirepass", Secret: true, Where: []string{"runtime", "file"}},
	}, entries[0].Changes)
}

func TestJournalUnwritable(t *testing.T) {
	srv := testserver.Start(t, "maxmemory 10mb")
	blocker := filepath.Join(t.TempDir(), "not-a-dir")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	path := filepath.Join(blocker, "changes.jsonl") // its parent is a file: never writable, even as root
	before, conf := srv.CLI("CONFIG", "GET", "*"), srv.ReadConf()

	res, f := mod.Call(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "20mb"}, "journal_path": path}))
	require.True(t, res.Failed)
	assert.False(t, res.Changed)
	assert.Equal(t, "cannot record the change: failed to write the change journal "+path+": mkdir "+blocker+
		": not a directory; set journal_path to a writable file, or journal_required: false to change without a record; nothing was changed", res.Msg)
	assert.Empty(t, f.RuntimeChanged)
	assert.Equal(t, before, srv.CLI("CONFIG", "GET", "*"), "server unchanged")
	assert.Equal(t, conf, srv.ReadConf(), "file unchanged")

	// Check mode and no-op runs do not need the journal.
	mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "20mb"}, "journal_path": path, "_ansible_check_mode": true}))
	mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "10mb"}, "journal_path": path}))

	// journal_required: false warns and applies.
	res, _ = mod.CallOK(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "20mb"}, "journal_path": path, "journal_required": false}))
	assert.True(t, res.Changed)
	assert.Equal(t, "20971520", srv.ConfigGet("maxmemory"))
	assert.Equal(t, []string{"failed to write the change journal " + path + ": mkdir " + blocker + ": not a directory; journal_required is false, so the change is applied without a record"}, res.Warnings, "one warning")
}

func TestJournalPathMustBeAbsolute(t *testing.T) {
	srv := testserver.Start(t)
	res, _ := mod.Call(t, task(srv, map[string]any{"settings": map[string]any{}, "journal_path": "changes.jsonl"}))
	require.True(t, res.Failed)
	assert.Equal(t, `option "journal_path": "changes.jsonl" is not an absolute path; nothing was changed`, res.Msg)
}

// Issue 14: with several instances on a host, each entry names the one it
// changed, from the server's config file (valkey-NAME.conf, as the
// valkey_server role lays them out), and `valkeyops journal --instance`
// selects them.
func TestJournalNamesTheInstance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "changes.jsonl")
	for _, name := range []string{"cache", "store"} {
		srv := testserver.StartWith(t, testserver.Options{ConfName: "valkey-" + name + ".conf", Extra: []string{"timeout 0"}})
		args := task(srv, map[string]any{"settings": map[string]any{"timeout": 30}, "journal_path": path})
		res, _ := mod.CallOK(t, args)
		require.True(t, res.Changed)
	}
	entries, _, err := journal.Read(path, journal.Filter{})
	require.NoError(t, err)
	require.Len(t, entries, 2)
	assert.Equal(t, "cache", entries[0].Instance)
	assert.Equal(t, "store", entries[1].Instance)

	store, _, err := journal.Read(path, journal.Filter{Instance: "store"})
	require.NoError(t, err)
	require.Len(t, store, 1)
	assert.Equal(t, "store", store[0].Instance)
	assert.True(t, strings.HasSuffix(store[0].ConfigFile, "/valkey-store.conf"), store[0].ConfigFile)
}
