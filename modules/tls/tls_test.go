package tls

import (
	"crypto/tls"
	"crypto/x509"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/x509check"
	"github.com/valkeyops/secure/internal/x509check/certtest"
)

func TestEnableTLSOnARunningServer(t *testing.T) {
	l := newLab(t)
	pid := l.srv.CLI("INFO", "server")
	runID := runIDOf(pid)
	before := l.state(t)
	want := x509check.Fingerprint(l.leaf.Cert.Raw)

	// Check mode: the plan, nothing applied.
	cres, cf := mod.CallOK(t, l.args(map[string]any{"_ansible_check_mode": true, "_ansible_diff": true}))
	assert.True(t, cres.Changed)
	assert.True(t, cf.Reloaded)
	assert.Equal(t, before, l.state(t), "check mode changed something")
	assert.Equal(t, "", cf.ServedFingerprint)

	res, f := mod.CallOK(t, l.args(map[string]any{"_ansible_diff": true}))
	assert.True(t, res.Changed)
	assert.Equal(t, cres.Changed, res.Changed)
	assert.Equal(t, cf.Reloaded, f.Reloaded)
	assert.Equal(t, cf.RuntimeChanged, f.RuntimeChanged)
	assert.Equal(t, cf.FileChanged, f.FileChanged)
	assert.Equal(t, cf.MaterialChanged, f.MaterialChanged)
	assert.Equal(t, []string{"tls-ca-cert-file", "tls-cert-file", "tls-key-file", "tls-port", "tls-protocols"}, f.RuntimeChanged)
	assert.Equal(t, []string{filepath.Join(l.dest, "server.crt"), filepath.Join(l.dest, "server.key"), filepath.Join(l.dest, "ca.crt")}, f.MaterialChanged)

	// The server serves the deployed certificate, without a restart.
	assert.Equal(t, want, f.ServedFingerprint)
	assert.Equal(t, want, served(t, l.tlsPort))
	assert.Equal(t, runID, runIDOf(l.srv.CLI("INFO", "server")), "the server restarted")
	reply, err := ping(l.tlsPort, l.ca, l.leaf, 0)
	require.NoError(t, err)
	assert.Equal(t, "+PONG", reply)

	// The result describes the certificate.
	assert.Equal(t, want, f.Certificate.SHA256Fingerprint)
	assert.Equal(t, "CN=valkey test server", f.Certificate.Subject)
	assert.Equal(t, "CN=valkeyops test CA", f.Certificate.Issuer)
	assert.Equal(t, []string{"localhost", "127.0.0.1"}, f.Certificate.SANs)
	assert.Equal(t, "EC", f.Certificate.KeyType)
	assert.Equal(t, 256, f.Certificate.KeySize)
	assert.InDelta(t, 89, f.Certificate.DaysRemaining, 1)
	assert.Equal(t, l.tlsPort, f.TLSPort)

	// Files: modes, content; the server and its config file agree.
	assert.Equal(t, "0644", mode(t, filepath.Join(l.dest, "server.crt")))
	assert.Equal(t, "0600", mode(t, filepath.Join(l.dest, "server.key")))
	assert.Equal(t, "0644", mode(t, filepath.Join(l.dest, "ca.crt")))
	key, err := os.ReadFile(filepath.Join(l.dest, "server.key"))
	require.NoError(t, err)
	assert.Equal(t, l.leaf.KeyPEM, key)
	assert.Equal(t, strconv.Itoa(l.tlsPort), l.srv.ConfigGet("tls-port"))
	assert.Equal(t, "TLSv1.2 TLSv1.3", l.srv.ConfigGet("tls-protocols"))
	assert.Equal(t, filepath.Join(l.dest, "server.crt"), l.srv.ConfigGet("tls-cert-file"))
	assert.Equal(t, []string{"tls-port " + strconv.Itoa(l.tlsPort)}, confLines(t, l, "tls-port "))
	assert.Equal(t, []string{`tls-protocols "TLSv1.2 TLSv1.3"`}, confLines(t, l, "tls-protocols "))
	assert.Equal(t, []string{"tls-cert-file " + filepath.Join(l.dest, "server.crt")}, confLines(t, l, "tls-cert-file "))

	// Diff: fingerprints and paths, never key material.
	require.NotEmpty(t, res.Diff)
	var diff strings.Builder
	for _, d := range res.Diff {
		diff.WriteString(d.Before + d.After)
	}
	assert.Contains(t, diff.String(), "cert "+filepath.Join(l.dest, "server.crt")+" 0644 sha256 "+want)
	assert.Contains(t, diff.String(), "key "+filepath.Join(l.dest, "server.key")+" 0600 (new content hidden)")
	assert.Contains(t, diff.String(), "served 127.0.0.1:"+strconv.Itoa(l.tlsPort)+" sha256 "+want)
	assert.Contains(t, diff.String(), "tls-port "+strconv.Itoa(l.tlsPort))

	// Second run: nothing to do.
	res, f = mod.CallOK(t, l.args(nil))
	assert.False(t, res.Changed)
	assert.False(t, f.Reloaded)
	assert.Empty(t, f.MaterialChanged)
	assert.Empty(t, f.RuntimeChanged)
	assert.Empty(t, f.FileChanged)
	assert.Equal(t, want, f.ServedFingerprint)
	// Also in check mode.
	res, _ = mod.CallOK(t, l.args(map[string]any{"_ansible_check_mode": true}))
	assert.False(t, res.Changed)
}

func runIDOf(info string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			return v
		}
	}
	return ""
}

func TestAuthClientsModes(t *testing.T) {
	tests := []struct {
		mode          string
		withoutCert   bool // a client without a certificate gets PONG
		withCert      bool
		wrongCAClient bool
	}{
		{mode: "yes", withoutCert: false, withCert: true},
		{mode: "optional", withoutCert: true, withCert: true},
		{mode: "no", withoutCert: true, withCert: true},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			l := newLab(t)
			_, f := mod.CallOK(t, l.args(map[string]any{"auth_clients": tc.mode}))
			assert.Equal(t, tc.mode, l.srv.ConfigGet("tls-auth-clients"))
			assert.Equal(t, tc.mode, f.Values["tls-auth-clients"])
			client := l.ca.Issue(t, certtest.Options{CN: "app client"})

			reply, err := ping(l.tlsPort, l.ca, nil, 0)
			if tc.withoutCert {
				require.NoError(t, err)
				assert.Equal(t, "+PONG", reply)
			} else {
				assert.NotEqual(t, "+PONG", reply, "a client without a certificate was served")
			}
			reply, err = ping(l.tlsPort, l.ca, client, 0)
			require.NoError(t, err)
			assert.Equal(t, "+PONG", reply)

			// A client certificate from another CA is refused where
			// certificates are checked.
			stranger := certtest.NewCA(t, "stranger").Issue(t, certtest.Options{})
			reply, _ = ping(l.tlsPort, l.ca, stranger, 0)
			if tc.mode == "no" {
				assert.Equal(t, "+PONG", reply)
			} else {
				assert.NotEqual(t, "+PONG", reply)
			}

			res, _ := mod.CallOK(t, l.args(map[string]any{"auth_clients": tc.mode}))
			assert.False(t, res.Changed)
		})
	}
}

func TestRotationIsVerifiedByHandshake(t *testing.T) {
	l := newLab(t)
	mod.CallOK(t, l.args(map[string]any{"auth_clients": "yes"}))
	first := served(t, l.tlsPort)
	require.Equal(t, x509check.Fingerprint(l.leaf.Cert.Raw), first)

	// New certificate and key, same CA, same paths: the server reloads them
	// without a restart (auth_clients yes: the module's own handshake must
	// still read the certificate).
	next := l.ca.Issue(t, certtest.Options{CN: "rotated"})
	args := l.args(map[string]any{"cert": string(next.CertPEM), "key": string(next.KeyPEM), "auth_clients": "yes", "_ansible_diff": true})
	check := maps.Clone(args)
	check["_ansible_check_mode"] = true
	cres, cf := mod.CallOK(t, check)
	assert.True(t, cres.Changed)
	assert.True(t, cf.Reloaded)
	assert.Equal(t, first, served(t, l.tlsPort), "check mode reloaded")

	res, f := mod.CallOK(t, args)
	assert.True(t, res.Changed)
	assert.True(t, f.Reloaded)
	assert.Empty(t, f.RuntimeChanged, "same paths: no directive changes")
	want := x509check.Fingerprint(next.Cert.Raw)
	assert.Equal(t, want, f.ServedFingerprint)
	assert.Equal(t, want, served(t, l.tlsPort))
	assert.Equal(t, "CN=rotated", f.Certificate.Subject)
	var diff strings.Builder
	for _, d := range res.Diff {
		diff.WriteString(d.Before + d.After)
	}
	assert.Contains(t, diff.String(), "served sha256 "+first)
	assert.Contains(t, diff.String(), "served 127.0.0.1:"+strconv.Itoa(l.tlsPort)+" sha256 "+want)
	assert.Contains(t, diff.String(), "key "+filepath.Join(l.dest, "server.key")+" 0600 (old content hidden)")

	res, f = mod.CallOK(t, args)
	assert.False(t, res.Changed)
	assert.False(t, f.Reloaded)
}

func TestRotationOfFilesReplacedOnDisk(t *testing.T) {
	// Files managed by another tool (cert_path/key_path/ca_path): when they
	// change on disk, the served certificate no longer matches and the
	// module reloads.
	l := newLab(t)
	dir := t.TempDir()
	paths := map[string]string{"cert_path": filepath.Join(dir, "c.pem"), "key_path": filepath.Join(dir, "k.pem"), "ca_path": filepath.Join(dir, "ca.pem")}
	write := func(leaf *certtest.Leaf) {
		require.NoError(t, os.WriteFile(paths["cert_path"], leaf.CertPEM, 0o644))
		require.NoError(t, os.WriteFile(paths["key_path"], leaf.KeyPEM, 0o600))
		require.NoError(t, os.WriteFile(paths["ca_path"], l.ca.PEM, 0o644))
	}
	write(l.leaf)
	args := map[string]any{"login_port": l.srv.Port, "port": l.tlsPort}
	for k, v := range paths {
		args[k] = v
	}
	_, f := mod.CallOK(t, args)
	assert.Equal(t, x509check.Fingerprint(l.leaf.Cert.Raw), served(t, l.tlsPort))
	assert.Empty(t, f.MaterialChanged)

	next := l.ca.Issue(t, certtest.Options{CN: "renewed"})
	write(next)
	res, f := mod.CallOK(t, args)
	assert.True(t, res.Changed)
	assert.True(t, f.Reloaded)
	assert.Equal(t, x509check.Fingerprint(next.Cert.Raw), served(t, l.tlsPort))
	res, _ = mod.CallOK(t, args)
	assert.False(t, res.Changed)
}

func TestRefusedMaterialChangesNothing(t *testing.T) {
	l := newLab(t)
	// TLS is on with good material, so "nothing changed" covers a running
	// TLS configuration and existing files.
	mod.CallOK(t, l.args(nil))
	good := served(t, l.tlsPort)
	now := time.Now()
	rsaCA := certtest.NewRSACA(t, "rsa CA")
	other := certtest.NewCA(t, "other CA")
	certFor := "option cert (for " + filepath.Join(l.dest, "server.crt") + ")"
	keyFor := "option key (for " + filepath.Join(l.dest, "server.key") + ")"
	caFor := "option ca (for " + filepath.Join(l.dest, "ca.crt") + ")"

	tests := []struct {
		name string
		args func() map[string]any
		want string // exact, or a prefix ending in "…"
	}{
		{"expired", func() map[string]any {
			x := l.ca.Issue(t, certtest.Options{NotBefore: now.Add(-72 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
			return l.args(map[string]any{"cert": string(x.CertPEM), "key": string(x.KeyPEM)})
		}, `TLS check "validity" failed for ` + certFor + `: the certificate has expired (not_after …`},
		{"not yet valid", func() map[string]any {
			x := l.ca.Issue(t, certtest.Options{NotBefore: now.Add(48 * time.Hour)})
			return l.args(map[string]any{"cert": string(x.CertPEM), "key": string(x.KeyPEM)})
		}, `TLS check "validity" failed for ` + certFor + `: the certificate is not valid yet (not_before …`},
		{"key does not match", func() map[string]any {
			return l.args(map[string]any{"key": string(certtest.KeyPEM(t, certtest.ECKey(t)))})
		}, `TLS check "key match" failed for ` + keyFor + `: the private key does not match the certificate in ` + certFor + `; nothing was changed`},
		{"chain does not verify", func() map[string]any {
			return l.args(map[string]any{"ca": string(other.PEM)})
		}, `TLS check "chain" failed for ` + certFor + `: the certificate does not verify to the CA in ` + caFor + ` (signed by an unknown authority); nothing was changed`},
		{"RSA 1024", func() map[string]any {
			x := l.ca.Issue(t, certtest.Options{Key: certtest.RSAKey(t, 1024)})
			return l.args(map[string]any{"cert": string(x.CertPEM), "key": string(x.KeyPEM)})
		}, `TLS check "key strength" failed for ` + certFor + `: the certificate has a 1024-bit RSA key; at least 2048 bits are required; nothing was changed`},
		{"SHA-1 signature", func() map[string]any {
			x := rsaCA.Issue(t, certtest.Options{SigAlg: x509.SHA1WithRSA})
			return l.args(map[string]any{"cert": string(x.CertPEM), "key": string(x.KeyPEM), "ca": string(rsaCA.PEM)})
		}, `TLS check "signature algorithm" failed for ` + certFor + `: the certificate is signed with SHA1-RSA; SHA-1 and MD5 signatures are refused, use SHA-256 or better; nothing was changed`},
		{"missing SAN", func() map[string]any {
			return l.args(map[string]any{"server_names": []string{"localhost", "valkey.example.com"}})
		}, `TLS check "server names" failed for ` + certFor + `: server name "valkey.example.com" is not covered by the certificate's SANs (localhost, 127.0.0.1); nothing was changed`},
		{"TLSv1.1 requested", func() map[string]any {
			return l.args(map[string]any{"protocols": []string{"TLSv1.1", "TLSv1.2"}})
		}, `option "protocols": TLSv1.1 is refused because it is deprecated and insecure (RFC 8996); use TLSv1.2 and TLSv1.3, or set allow_legacy_protocols: true; nothing was changed`},
		{"expires within min_days_valid", func() map[string]any {
			x := l.ca.Issue(t, certtest.Options{NotAfter: now.Add(5*24*time.Hour + time.Hour)})
			return l.args(map[string]any{"cert": string(x.CertPEM), "key": string(x.KeyPEM)})
		}, `TLS check "min days valid" failed for ` + certFor + `: the certificate expires in 5 days (not_after …`},
		{"encrypted key without passphrase", func() map[string]any {
			return l.args(map[string]any{"key": string(certtest.EncryptKey(t, l.leaf.KeyPEM, "phrase-for-test"))})
		}, `TLS check "passphrase" failed for ` + keyFor + `: the private key is encrypted and key_passphrase is not set; nothing was changed`},
		{"cert path missing", func() map[string]any {
			return l.args(map[string]any{"cert": nil, "cert_path": "/nonexistent/server.crt"})
		}, `failed to read cert_path "/nonexistent/server.crt": no such file or directory; nothing was changed`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := l.state(t)
			args := tc.args()
			out, doc, code := mod.Printed(t, args)
			assert.Equal(t, 1, code, out)
			assert.Equal(t, false, doc["changed"])
			msg, _ := doc["msg"].(string)
			if p, ok := strings.CutSuffix(tc.want, "…"); ok {
				assert.True(t, strings.HasPrefix(msg, p), "got %q", msg)
				assert.True(t, strings.HasSuffix(msg, "; nothing was changed"), "got %q", msg)
			} else {
				assert.Equal(t, tc.want, msg)
			}
			assert.Equal(t, before, l.state(t), "a refused task changed something")
			assert.Equal(t, good, served(t, l.tlsPort))
			if k, ok := args["key"].(string); ok {
				for _, line := range x509check.KeyLines([]byte(k)) {
					assert.NotContains(t, out, line)
				}
			}
		})
	}
}

func TestExpiryPolicyWarn(t *testing.T) {
	l := newLab(t)
	x := l.ca.Issue(t, certtest.Options{NotAfter: time.Now().Add(5*24*time.Hour + time.Hour)})
	res, f := mod.CallOK(t, l.args(map[string]any{"cert": string(x.CertPEM), "key": string(x.KeyPEM), "expiry_policy": "warn"}))
	assert.True(t, res.Changed)
	require.Len(t, res.Warnings, 1)
	assert.True(t, strings.HasPrefix(res.Warnings[0], `TLS check "min days valid" failed for option cert (for `), res.Warnings[0])
	assert.Equal(t, 5, f.Certificate.DaysRemaining)
	assert.Equal(t, x509check.Fingerprint(x.Cert.Raw), served(t, l.tlsPort))
}

func TestLegacyClientRefused(t *testing.T) {
	l := newLab(t)
	mod.CallOK(t, l.args(map[string]any{"auth_clients": "no"}))
	_, err := ping(l.tlsPort, l.ca, nil, tls.VersionTLS11)
	require.Error(t, err, "a TLS 1.1 client was served")
	reply, err := ping(l.tlsPort, l.ca, nil, tls.VersionTLS12)
	require.NoError(t, err)
	assert.Equal(t, "+PONG", reply)
	reply, err = ping(l.tlsPort, l.ca, nil, tls.VersionTLS13)
	require.NoError(t, err)
	assert.Equal(t, "+PONG", reply)
}

func TestPlaintextPortOff(t *testing.T) {
	l := newLab(t)
	plain := l.srv.Port
	_, f := mod.CallOK(t, l.args(map[string]any{"plaintext_port": 0, "auth_clients": "no"}))
	assert.Equal(t, x509check.Fingerprint(l.leaf.Cert.Raw), f.ServedFingerprint)
	_, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(plain), time.Second)
	assert.Error(t, err, "plain TCP still open")
	// The next run logs in over TLS.
	ca := filepath.Join(l.dest, "ca.crt")
	res, _ := mod.CallOK(t, l.args(map[string]any{"plaintext_port": 0, "auth_clients": "no",
		"login_port": l.tlsPort, "tls": true, "tls_ca_cert": ca}))
	assert.False(t, res.Changed)
}

func TestEncryptedKeyWithPassphrase(t *testing.T) {
	l := newLab(t)
	const phrase = "s3cret-phrase-for-the-key"
	enc := certtest.EncryptKey(t, l.leaf.KeyPEM, phrase)
	args := l.args(map[string]any{"key": string(enc), "key_passphrase": phrase, "_ansible_diff": true, "_ansible_verbosity": 4})
	out, doc, code := mod.Printed(t, args)
	require.Equal(t, 0, code, out)
	assert.Equal(t, true, doc["changed"])
	assert.NotContains(t, out, phrase)
	for _, line := range x509check.KeyLines(enc) {
		assert.NotContains(t, out, line)
	}
	assert.Equal(t, "********", doc["values"].(map[string]any)["tls-key-file-pass"])
	assert.Equal(t, x509check.Fingerprint(l.leaf.Cert.Raw), served(t, l.tlsPort))
	assert.Equal(t, phrase, l.srv.ConfigGet("tls-key-file-pass"))

	// A wrong passphrase: refused, nothing changed.
	before := l.state(t)
	out, doc, code = mod.Printed(t, l.args(map[string]any{"key": string(enc), "key_passphrase": "wrong-phrase-xyz"}))
	assert.Equal(t, 1, code)
	assert.Equal(t, `TLS check "passphrase" failed for option key (for `+filepath.Join(l.dest, "server.key")+`): key_passphrase does not decrypt the private key; nothing was changed`, doc["msg"])
	assert.NotContains(t, out, "wrong-phrase-xyz")
	assert.NotContains(t, out, phrase)
	assert.Equal(t, before, l.state(t))

	// Rotation with the same passphrase: the second run is clean.
	out, doc, code = mod.Printed(t, l.args(map[string]any{"key": string(enc), "key_passphrase": phrase}))
	assert.Equal(t, 0, code, out)
	assert.Equal(t, false, doc["changed"])
	assert.NotContains(t, out, phrase)
}

func TestGenerateSelfSigned(t *testing.T) {
	l := newLab(t)
	args := map[string]any{"login_port": l.srv.Port, "port": l.tlsPort, "generate_self_signed": true,
		"dest_dir": l.dest, "server_names": []string{"valkey.lab", "127.0.0.1"}, "auth_clients": "no"}
	res, f := mod.CallOK(t, args)
	assert.True(t, res.Changed)
	assert.True(t, f.Generated)
	assert.Equal(t, []string{"valkey.lab", "127.0.0.1"}, f.Certificate.SANs)
	assert.Equal(t, "EC", f.Certificate.KeyType)
	assert.Equal(t, 256, f.Certificate.KeySize)
	assert.Equal(t, f.Certificate.SHA256Fingerprint, served(t, l.tlsPort))
	assert.Equal(t, "0600", mode(t, filepath.Join(l.dest, "server.key")))

	// A client trusting the generated CA verifies the server.
	caPEM, err := os.ReadFile(filepath.Join(l.dest, "ca.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(l.tlsPort), &tls.Config{RootCAs: pool, ServerName: "valkey.lab"})
	require.NoError(t, err)
	_ = c.Close()

	// Second run keeps the material.
	res, f = mod.CallOK(t, args)
	assert.False(t, res.Changed)
	assert.False(t, f.Generated)

	// A new name regenerates.
	args["server_names"] = []string{"valkey.lab", "other.lab", "127.0.0.1"}
	res, f = mod.CallOK(t, args)
	assert.True(t, res.Changed)
	assert.True(t, f.Generated)
	assert.Equal(t, f.Certificate.SHA256Fingerprint, served(t, l.tlsPort))
}

func TestOptionErrors(t *testing.T) {
	l := newLab(t)
	before := l.state(t)
	tests := []struct {
		name string
		args map[string]any
		want string
	}{
		{"generate with material", l.args(map[string]any{"generate_self_signed": true}),
			`option "generate_self_signed" cannot be combined with certificate material (cert, key, ca given): use one or the other; nothing was changed`},
		{"content and path", l.args(map[string]any{"cert_path": "/etc/valkey/server.crt"}),
			`options "cert" and "cert_path" are mutually exclusive: give one or the other; nothing was changed`},
		{"no CA", l.args(map[string]any{"ca": nil}),
			`option "ca" or "ca_path" is required (the CA certificate the chain verifies to), or set generate_self_signed: true for a lab; nothing was changed`},
		{"content without dest_dir", l.args(map[string]any{"dest_dir": nil}),
			`option "dest_dir" is required when cert, key or ca is given as content; nothing was changed`},
		{"dest_dir missing", l.args(map[string]any{"dest_dir": "/nonexistent/tls"}),
			`dest_dir "/nonexistent/tls" does not exist or is not a directory; create it first (ansible.builtin.file); nothing was changed`},
		{"relative path", l.args(map[string]any{"dest_dir": "tls"}),
			`option "dest_dir": "tls" is not an absolute path; nothing was changed`},
		{"bad auth_clients", l.args(map[string]any{"auth_clients": "maybe"}),
			`option "auth_clients": "maybe" is not one of yes, no, optional; nothing was changed`},
		{"unknown protocol", l.args(map[string]any{"protocols": []string{"SSLv3"}}),
			`option "protocols": "SSLv3" is not one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3; nothing was changed`},
		{"same ports", l.args(map[string]any{"plaintext_port": l.tlsPort}),
			`options "port" and "plaintext_port" are both ` + strconv.Itoa(l.tlsPort) + `; they must differ; nothing was changed`},
		{"unknown option", l.args(map[string]any{"certificate": "x"}),
			"unsupported option for valkey_tls: certificate; valid options: …"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := mod.Call(t, tc.args)
			assert.True(t, res.Failed)
			if p, ok := strings.CutSuffix(tc.want, "…"); ok {
				assert.True(t, strings.HasPrefix(res.Msg, p), res.Msg)
			} else {
				assert.Equal(t, tc.want, res.Msg)
			}
		})
	}
	assert.Equal(t, before, l.state(t))
}

func TestLegacyProtocolsWhenAllowed(t *testing.T) {
	l := newLab(t)
	res, _ := mod.CallOK(t, l.args(map[string]any{"protocols": []string{"TLSv1.3", "TLSv1.1", "TLSv1.2"}, "allow_legacy_protocols": true}))
	assert.True(t, res.Changed)
	assert.Equal(t, "TLSv1.1 TLSv1.2 TLSv1.3", l.srv.ConfigGet("tls-protocols"))
	res, _ = mod.CallOK(t, l.args(map[string]any{"protocols": []string{"TLSv1.2", "TLSv1.1", "TLSv1.3"}, "allow_legacy_protocols": true}))
	assert.False(t, res.Changed, "order is not a change")
}

func TestFileModesAndGroup(t *testing.T) {
	l := newLab(t)
	// A key left world-readable by someone else is fixed, and counts as a change.
	require.NoError(t, os.WriteFile(filepath.Join(l.dest, "server.key"), l.leaf.KeyPEM, 0o644))
	res, f := mod.CallOK(t, l.args(map[string]any{"group": "root", "owner": "root"}))
	assert.True(t, res.Changed)
	assert.Equal(t, "0640", mode(t, filepath.Join(l.dest, "server.key")))
	assert.Contains(t, f.MaterialChanged, filepath.Join(l.dest, "server.key"))
	res, _ = mod.CallOK(t, l.args(map[string]any{"group": "root", "owner": "root"}))
	assert.False(t, res.Changed)
	res, _ = mod.CallOK(t, l.args(nil))
	assert.True(t, res.Changed, "without group the key goes back to 0600")
	assert.Equal(t, "0600", mode(t, filepath.Join(l.dest, "server.key")))
}

func TestPortChangeIsVerified(t *testing.T) {
	l := newLab(t)
	mod.CallOK(t, l.args(nil))
	next := freePort(t)
	res, f := mod.CallOK(t, l.args(map[string]any{"port": next}))
	assert.True(t, res.Changed)
	assert.False(t, f.Reloaded, "same material: nothing to reload")
	assert.Equal(t, []string{"tls-port"}, f.RuntimeChanged)
	assert.Equal(t, next, f.TLSPort)
	assert.Equal(t, x509check.Fingerprint(l.leaf.Cert.Raw), f.ServedFingerprint)
	assert.Equal(t, f.ServedFingerprint, served(t, next))
}

func TestPersistFileOnly(t *testing.T) {
	l := newLab(t)
	res, f := mod.CallOK(t, l.args(map[string]any{"persist": "file"}))
	assert.True(t, res.Changed)
	assert.False(t, f.Reloaded)
	assert.Empty(t, f.RuntimeChanged)
	assert.Equal(t, []string{"tls-ca-cert-file", "tls-cert-file", "tls-key-file", "tls-port", "tls-protocols"}, f.FileChanged)
	assert.Equal(t, "0", l.srv.ConfigGet("tls-port"), "persist: file changed the running server")
	assert.Equal(t, []string{"tls-port " + strconv.Itoa(l.tlsPort)}, confLines(t, l, "tls-port "))
	assert.Equal(t, "", f.ServedFingerprint)
	res, _ = mod.CallOK(t, l.args(map[string]any{"persist": "file"}))
	assert.False(t, res.Changed)
}

func TestServerRefusalRestoresTheFiles(t *testing.T) {
	l := newLab(t)
	mod.CallOK(t, l.args(nil))
	before := l.state(t)
	good := served(t, l.tlsPort)
	next := l.ca.Issue(t, certtest.Options{CN: "next"})
	// Valid material, but a cipher list the server refuses: the CONFIG SET
	// fails after the files were written, so they are put back.
	res, _ := mod.Call(t, l.args(map[string]any{"cert": string(next.CertPEM), "key": string(next.KeyPEM), "ciphers": "NO-SUCH-CIPHER"}))
	require.True(t, res.Failed)
	assert.False(t, res.Changed)
	assert.True(t, strings.HasPrefix(res.Msg, "the server refused the change: "), res.Msg)
	assert.True(t, strings.HasSuffix(res.Msg, "; nothing was changed (the certificate files were restored)"), res.Msg)
	assert.Equal(t, before, l.state(t))
	assert.Equal(t, good, served(t, l.tlsPort))
}
