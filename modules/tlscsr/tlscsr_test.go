package tlscsr_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible/ansibletest"
	"github.com/valkeyops/secure/internal/groupca"
	"github.com/valkeyops/secure/internal/x509check"
	"github.com/valkeyops/secure/modules/tlscsr"
)

func newCA(t *testing.T) *groupca.CA {
	t.Helper()
	c, k, err := groupca.GenerateCA("t", time.Now())
	require.NoError(t, err)
	ca, err := groupca.LoadCA(c, k, "c", "k", time.Now())
	require.NoError(t, err)
	return ca
}

func call(t *testing.T, args map[string]any) (string, map[string]any, int) {
	t.Helper()
	return ansibletest.Printed(t, "valkey_tls_csr", tlscsr.Main, ansibletest.WithJournal(t, args))
}

// The node's whole cycle: a key and a CSR, the signed certificate put in
// place, then nothing to do; the key never printed.
func TestKeyCSRThenNothing(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	names := []string{"lab16", "127.0.0.26"}
	args := map[string]any{"dest_dir": dir, "ca": string(ca.CertPEM), "server_names": names}

	// Check mode on a fresh node: would make a key, makes nothing.
	check := ansibletest.Args(args, map[string]any{"_ansible_check_mode": true})
	_, doc, code := call(t, check)
	require.Equal(t, 0, code, doc["msg"])
	require.Equal(t, true, doc["changed"])
	require.Equal(t, true, doc["key_created"])
	require.Equal(t, "", doc["csr"])
	require.NoFileExists(t, filepath.Join(dir, "server.key"))

	out, doc, code := call(t, args)
	require.Equal(t, 0, code, doc["msg"])
	require.Equal(t, true, doc["changed"])
	require.Equal(t, true, doc["renew"])
	key, err := os.ReadFile(filepath.Join(dir, "server.key"))
	require.NoError(t, err)
	st, _ := os.Stat(filepath.Join(dir, "server.key"))
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	for _, l := range x509check.KeyLines(key) {
		require.NotContains(t, out, l, "a line of the node's key was printed")
	}
	csr := doc["csr"].(string)
	require.Contains(t, csr, "BEGIN CERTIFICATE REQUEST")

	cert, err := ca.Sign([]byte(csr), names, 365, time.Now())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "server.crt"), cert, 0o644))

	_, doc, code = call(t, args)
	require.Equal(t, 0, code, doc["msg"])
	require.Equal(t, false, doc["changed"])
	require.Equal(t, false, doc["renew"], doc["reason"])
	require.Equal(t, "", doc["csr"])
	require.Equal(t, string(cert), doc["cert"])

	// A new name: a CSR for the same key (no new key, no change on disk).
	args["server_names"] = append(names, "lab16.example")
	_, doc, _ = call(t, args)
	require.Equal(t, false, doc["changed"])
	require.Equal(t, true, doc["renew"])
	require.Contains(t, doc["reason"], "the names changed")
	again, _ := os.ReadFile(filepath.Join(dir, "server.key"))
	require.Equal(t, key, again, "the key was replaced for a name change")
}

func TestRefused(t *testing.T) {
	ca := newCA(t)
	open := t.TempDir()
	require.NoError(t, os.Chmod(open, 0o777))
	for _, tc := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"dest dir others can write", map[string]any{"dest_dir": open, "ca": string(ca.CertPEM), "server_names": []string{"a"}},
			"refusing dest_dir " + `"` + open + `"`},
		{"bad name", map[string]any{"dest_dir": "/tmp", "ca": string(ca.CertPEM), "server_names": []string{"a b"}},
			`option "server_names": "a b" is not a host name or an IP address; nothing was changed`},
		{"no CA", map[string]any{"dest_dir": "/tmp", "ca": "nope", "server_names": []string{"a"}},
			`option "ca"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, doc, code := call(t, tc.args)
			require.Equal(t, 1, code)
			require.Equal(t, false, doc["changed"])
			require.True(t, strings.Contains(doc["msg"].(string), tc.want), "msg %q; want %q", doc["msg"], tc.want)
		})
	}
}
