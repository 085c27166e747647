package tls

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conffile/locktest"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/x509check/certtest"
)

// TestPlansUnderTheLock plays a second operator: certificate A is deployed;
// the test holds dest_dir's lock (the other run), a task that wants A again
// starts and must block on it; the other run deploys B (files and reload),
// releases, and the waiting task must see B and put A back, in the files
// and in the server. 0.1.0 took no lock for dest_dir: it planned from A,
// reported no change and left B.
func TestPlansUnderTheLock(t *testing.T) {
	l := newLab(t)
	jpath := filepath.Join(t.TempDir(), "changes.jsonl")
	mod.CallOK(t, l.args(map[string]any{"journal_path": jpath}))
	a := served(t, l.tlsPort)

	var res *ansible.Result
	var fields *Fields
	locktest.Race(t, filepath.Join(l.dest, "server.crt"), func() {
		res, fields = mod.Call(t, l.args(map[string]any{"journal_path": jpath}))
	}, func() {
		// The other run, under the lock: B in the files and in the server.
		b := l.ca.Issue(t, certtest.Options{CN: "other-run"})
		require.NoError(t, os.WriteFile(filepath.Join(l.dest, "server.crt"), b.CertPEM, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(l.dest, "server.key"), b.KeyPEM, 0o600))
		l.srv.ConfigSet("tls-cert-file", filepath.Join(l.dest, "server.crt"))
		require.NotEqual(t, a, served(t, l.tlsPort))
	})

	require.False(t, res.Failed, res.Msg)
	assert.True(t, res.Changed)
	assert.True(t, fields.Reloaded)
	assert.ElementsMatch(t, []string{filepath.Join(l.dest, "server.crt"), filepath.Join(l.dest, "server.key")}, fields.MaterialChanged)
	assert.Equal(t, a, served(t, l.tlsPort), "the server serves A again")
	crt, err := os.ReadFile(filepath.Join(l.dest, "server.crt"))
	require.NoError(t, err)
	assert.Equal(t, string(l.leaf.CertPEM), string(crt))

	// One journal entry for the task, the certificate by fingerprint, the
	// key by path only.
	entries, _, err := journal.Read(jpath, journal.Filter{})
	require.NoError(t, err)
	require.Len(t, entries, 2)
	assert.Equal(t, []journal.Change{
		{Kind: journal.KindCertificate, Name: filepath.Join(l.dest, "server.crt"), Detail: a},
		{Kind: journal.KindCertificate, Name: filepath.Join(l.dest, "server.key"), Detail: "key (content not recorded)"},
	}, entries[1].Changes)
}

// TestDestDirIsTheConfigDir: the material and valkey.conf in one directory
// take one lock (the task's lock set is reentrant), not two that deadlock.
func TestDestDirIsTheConfigDir(t *testing.T) {
	l := newLab(t)
	l.dest = filepath.Dir(l.srv.ConfPath)
	res, f := mod.CallOK(t, l.args(map[string]any{"journal_path": filepath.Join(t.TempDir(), "changes.jsonl")}))
	assert.True(t, res.Changed)
	assert.Contains(t, f.FileChanged, "tls-cert-file")
	assert.Equal(t, []string{"tls-cert-file " + filepath.Join(l.dest, "server.crt")}, confLines(t, l, "tls-cert-file "))
}
