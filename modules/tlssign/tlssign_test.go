package tlssign_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible/ansibletest"
	"github.com/valkeyops/secure/internal/groupca"
	"github.com/valkeyops/secure/internal/x509check"
	"github.com/valkeyops/secure/modules/tlssign"
)

func call(t *testing.T, args map[string]any) (string, map[string]any, int) {
	t.Helper()
	return ansibletest.Printed(t, "valkey_tls_sign", tlssign.Main, args)
}

// A lab CA is generated once; the CSR's own names are ignored; the CA key
// is never printed.
func TestGenerateOnceSignInventoryNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"lab16", "evil.example"}}, k)
	require.NoError(t, err)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))

	_, doc, code := call(t, map[string]any{"ca_dir": dir, "generate_ca": true, "_ansible_check_mode": true})
	require.Equal(t, 0, code, doc["msg"])
	require.Equal(t, true, doc["ca_generated"])
	require.NoDirExists(t, dir, "check mode made the CA directory")

	_, doc, code = call(t, map[string]any{"ca_dir": dir, "generate_ca": true})
	require.Equal(t, 0, code, doc["msg"])
	require.Equal(t, true, doc["ca_generated"])
	key, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	require.NoError(t, err)

	out, doc, code := call(t, map[string]any{"ca_dir": dir, "generate_ca": true, "csr": csr, "names": []string{"lab17", "127.0.0.27"}})
	require.Equal(t, 0, code, doc["msg"])
	require.Equal(t, false, doc["ca_generated"], "a second CA was generated")
	again, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	require.Equal(t, key, again)
	for _, l := range x509check.KeyLines(key) {
		require.NotContains(t, out, l)
	}
	certs, err := x509check.ParseCerts([]byte(doc["cert"].(string)), "cert")
	require.NoError(t, err)
	require.True(t, slices.Equal(groupca.CertNames(certs[0]), []string{"127.0.0.27", "lab17"}), "SANs %v", groupca.CertNames(certs[0]))
}

func TestRefused(t *testing.T) {
	empty := t.TempDir()
	require.NoError(t, os.Chmod(empty, 0o700))
	for _, tc := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"no CA", map[string]any{}, `give the group CA: options "ca_cert" and "ca_key", or "ca_dir"; nothing was changed`},
		{"cert without key", map[string]any{"ca_cert": "x"}, `options "ca_cert" and "ca_key" go together: give both or neither; nothing was changed`},
		{"generate without dir", map[string]any{"ca_cert": "x", "ca_key": "y", "generate_ca": true},
			`option "generate_ca" needs "ca_dir", where the CA is kept; nothing was changed`},
		{"csr without names", map[string]any{"ca_dir": empty, "csr": "x"}, `option "names": give at least one host name or address; nothing was changed`},
		{"empty dir", map[string]any{"ca_dir": empty}, "holds no CA (ca.crt, ca.key); put the group CA there, or set generate_ca: true for a lab; nothing was changed"},
		{"days", map[string]any{"ca_dir": empty, "days": 5000}, `option "days": 5000 is out of range; expected 1-825; nothing was changed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, doc, code := call(t, tc.args)
			require.Equal(t, 1, code)
			require.Equal(t, false, doc["changed"])
			require.Contains(t, doc["msg"], tc.want)
		})
	}
}
