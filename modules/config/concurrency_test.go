package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conffile/locktest"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/testserver"
)

// TestPlansFromStateReadUnderTheLock plays two operators: the test holds the
// directory lock (the other run), the module starts and blocks on it, the
// other run changes server and file, releases, and the waiting run must plan
// from what it left. Planned from the values read before the lock (0.1.0),
// the run sees maxmemory already 1gb at runtime, changes only the file, and
// the server ends with 100mb while the file says 1gb.
func TestPlansFromStateReadUnderTheLock(t *testing.T) {
	srv := testserver.Start(t, "maxmemory 1gb")
	jpath := filepath.Join(t.TempDir(), "changes.jsonl")
	var res *ansible.Result
	var fields *Fields
	locktest.Race(t, srv.ConfPath, func() {
		res, fields = mod.Call(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "1gb"}, "journal_path": jpath}))
	}, func() {
		// The other run, while it holds the lock: 100mb in the server and the file.
		srv.ConfigSet("maxmemory", "100mb")
		conf := strings.Replace(string(srv.ReadConf()), "maxmemory 1gb", "maxmemory 100mb", 1)
		require.NoError(t, os.WriteFile(srv.ConfPath, []byte(conf), 0o640))
		require.Equal(t, []string{"100mb"}, fileArgs(t, srv.ConfPath, "maxmemory"))
	})

	require.False(t, res.Failed, res.Msg)
	assert.True(t, res.Changed)
	assert.Equal(t, []string{"maxmemory"}, fields.RuntimeChanged)
	assert.Equal(t, []string{"maxmemory"}, fields.FileChanged)
	assert.Equal(t, "1073741824", srv.ConfigGet("maxmemory"), "runtime")
	assert.Equal(t, []string{"1gb"}, fileArgs(t, srv.ConfPath, "maxmemory"), "file")
	entries, _, err := journal.Read(jpath, journal.Filter{})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Len(t, entries[0].Changes, 1)
	require.NotNil(t, entries[0].Changes[0].Before)
	assert.Equal(t, "104857600", *entries[0].Changes[0].Before, "the journal's before is the value the other run left")
}
