package x509check_test

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/x509check"
	"github.com/valkeyops/secure/internal/x509check/certtest"
)

const (
	certFile = "/etc/valkey/tls/server.crt"
	keyFile  = "/etc/valkey/tls/server.key"
	caFile   = "/etc/valkey/tls/ca.crt"
)

func input(ca *certtest.CA, l *certtest.Leaf) x509check.Input {
	return x509check.Input{
		CertPEM: l.CertPEM, CertFile: certFile,
		KeyPEM: l.KeyPEM, KeyFile: keyFile,
		CAPEM: ca.PEM, CAFile: caFile,
		ServerNames: []string{"localhost"}, MinDaysValid: 30,
	}
}

func TestCheckRefusesBadMaterial(t *testing.T) {
	ca := certtest.NewCA(t, "test CA")
	rsaCA := certtest.NewRSACA(t, "rsa CA")
	other := certtest.NewCA(t, "other CA")
	now := time.Now()
	good := ca.Issue(t, certtest.Options{})

	tests := []struct {
		name   string
		mutate func(in *x509check.Input)
		want   string // the exact message, or a prefix ending in "…"
	}{
		{
			name: "expired",
			mutate: func(in *x509check.Input) {
				l := ca.Issue(t, certtest.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
				in.CertPEM, in.KeyPEM = l.CertPEM, l.KeyPEM
			},
			want: `TLS check "validity" failed for /etc/valkey/tls/server.crt: the certificate has expired (not_after …`,
		},
		{
			name: "not yet valid",
			mutate: func(in *x509check.Input) {
				l := ca.Issue(t, certtest.Options{NotBefore: now.Add(24 * time.Hour)})
				in.CertPEM, in.KeyPEM = l.CertPEM, l.KeyPEM
			},
			want: `TLS check "validity" failed for /etc/valkey/tls/server.crt: the certificate is not valid yet (not_before …`,
		},
		{
			name:   "key does not match",
			mutate: func(in *x509check.Input) { in.KeyPEM = certtest.KeyPEM(t, certtest.ECKey(t)) },
			want:   `TLS check "key match" failed for /etc/valkey/tls/server.key: the private key does not match the certificate in /etc/valkey/tls/server.crt`,
		},
		{
			name:   "chain does not verify",
			mutate: func(in *x509check.Input) { in.CAPEM = other.PEM },
			want:   `TLS check "chain" failed for /etc/valkey/tls/server.crt: the certificate does not verify to the CA in /etc/valkey/tls/ca.crt (signed by an unknown authority)`,
		},
		{
			name: "RSA 1024",
			mutate: func(in *x509check.Input) {
				l := ca.Issue(t, certtest.Options{Key: certtest.RSAKey(t, 1024)})
				in.CertPEM, in.KeyPEM = l.CertPEM, l.KeyPEM
			},
			want: `TLS check "key strength" failed for /etc/valkey/tls/server.crt: the certificate has a 1024-bit RSA key; at least 2048 bits are required`,
		},
		{
			name: "SHA-1 signature",
			mutate: func(in *x509check.Input) {
				l := rsaCA.Issue(t, certtest.Options{SigAlg: x509.SHA1WithRSA})
				in.CertPEM, in.KeyPEM, in.CAPEM = l.CertPEM, l.KeyPEM, rsaCA.PEM
			},
			want: `TLS check "signature algorithm" failed for /etc/valkey/tls/server.crt: the certificate is signed with SHA1-RSA; SHA-1 and MD5 signatures are refused, use SHA-256 or better`,
		},
		{
			name:   "missing SAN",
			mutate: func(in *x509check.Input) { in.ServerNames = []string{"localhost", "valkey.example.com"} },
			want:   `TLS check "server names" failed for /etc/valkey/tls/server.crt: server name "valkey.example.com" is not covered by the certificate's SANs (localhost, 127.0.0.1)`,
		},
		{
			name:   "missing IP SAN",
			mutate: func(in *x509check.Input) { in.ServerNames = []string{"10.1.2.3"} },
			want:   `TLS check "server names" failed for /etc/valkey/tls/server.crt: server name "10.1.2.3" is not covered by the certificate's SANs (localhost, 127.0.0.1)`,
		},
		{
			name:   "cert not PEM",
			mutate: func(in *x509check.Input) { in.CertPEM = []byte("hello") },
			want:   `TLS check "pem" failed for /etc/valkey/tls/server.crt: no PEM certificate found`,
		},
		{
			name:   "key in the cert file",
			mutate: func(in *x509check.Input) { in.CertPEM = append(append([]byte{}, in.CertPEM...), in.KeyPEM...) },
			want:   `TLS check "pem" failed for /etc/valkey/tls/server.crt: expected only CERTIFICATE blocks, found a "PRIVATE KEY" block`,
		},
		{
			name:   "key not PEM",
			mutate: func(in *x509check.Input) { in.KeyPEM = []byte("not a key") },
			want:   `TLS check "pem" failed for /etc/valkey/tls/server.key: no PEM private key found`,
		},
		{
			name: "key garbage inside PEM",
			mutate: func(in *x509check.Input) {
				in.KeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage")})
			},
			want: `TLS check "pem" failed for /etc/valkey/tls/server.key: the private key does not parse (…`,
		},
		{
			name:   "CA not PEM",
			mutate: func(in *x509check.Input) { in.CAPEM = nil },
			want:   `TLS check "pem" failed for /etc/valkey/tls/ca.crt: no PEM certificate found`,
		},
		{
			name:   "encrypted key without passphrase",
			mutate: func(in *x509check.Input) { in.KeyPEM = certtest.EncryptKey(t, in.KeyPEM, "pass-phrase-1") },
			want:   `TLS check "passphrase" failed for /etc/valkey/tls/server.key: the private key is encrypted and key_passphrase is not set`,
		},
		{
			name: "encrypted key with the wrong passphrase",
			mutate: func(in *x509check.Input) {
				in.KeyPEM = certtest.EncryptKey(t, in.KeyPEM, "pass-phrase-1")
				in.Passphrase = []byte("wrong-phrase")
			},
			want: `TLS check "passphrase" failed for /etc/valkey/tls/server.key: key_passphrase does not decrypt the private key`,
		},
		{
			name: "server certificate of a CA without server auth",
			mutate: func(in *x509check.Input) {
				in.CertPEM, in.KeyPEM = ca.PEM, certtest.KeyPEM(t, ca.Key)
			},
			want: `TLS check "server names" failed for /etc/valkey/tls/server.crt: server name "localhost" is not covered by the certificate's SANs (none)`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := input(ca, good)
			tc.mutate(&in)
			res, err := x509check.Check(in)
			require.Error(t, err)
			assert.Nil(t, res)
			if p, ok := strings.CutSuffix(tc.want, "…"); ok {
				assert.True(t, strings.HasPrefix(err.Error(), p), "got %q", err.Error())
			} else {
				assert.Equal(t, tc.want, err.Error())
			}
			var ce *x509check.Error
			require.ErrorAs(t, err, &ce)
			// No key material in any message.
			body := keyBody(in.KeyPEM)
			if len(body) > 16 {
				assert.NotContains(t, err.Error(), body[:16])
			}
			assert.NotContains(t, err.Error(), "pass-phrase-1")
		})
	}
}

func keyBody(p []byte) string {
	s := string(p)
	lines := strings.Split(s, "\n")
	if len(lines) < 3 {
		return ""
	}
	return lines[1]
}

func TestCheckAcceptsGoodMaterial(t *testing.T) {
	ca := certtest.NewCA(t, "test CA")
	rsaCA := certtest.NewRSACA(t, "rsa CA")
	tests := []struct {
		name      string
		in        func() x509check.Input
		keyType   string
		keySize   int
		expiring  bool
		encrypted bool
	}{
		{name: "ECDSA P-256", in: func() x509check.Input { return input(ca, ca.Issue(t, certtest.Options{})) }, keyType: "EC", keySize: 256},
		{name: "RSA 2048 signed with SHA-256", in: func() x509check.Input {
			return input(rsaCA, rsaCA.Issue(t, certtest.Options{Key: certtest.RSAKey(t, 2048)}))
		}, keyType: "RSA", keySize: 2048},
		{name: "expires within min_days_valid", in: func() x509check.Input {
			return input(ca, ca.Issue(t, certtest.Options{NotAfter: time.Now().Add(10*24*time.Hour + time.Hour)}))
		}, keyType: "EC", keySize: 256, expiring: true},
		{name: "encrypted PKCS#8 key with its passphrase", in: func() x509check.Input {
			in := input(ca, ca.Issue(t, certtest.Options{}))
			in.KeyPEM = certtest.EncryptKey(t, in.KeyPEM, "right-phrase")
			in.Passphrase = []byte("right-phrase")
			return in
		}, keyType: "EC", keySize: 256, encrypted: true},
		{name: "PKCS#1 RSA key", in: func() x509check.Input {
			k := certtest.RSAKey(t, 2048).(*rsa.PrivateKey)
			in := input(ca, ca.Issue(t, certtest.Options{Key: k}))
			in.KeyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
			return in
		}, keyType: "RSA", keySize: 2048},
		{name: "SEC1 EC key after EC PARAMETERS", in: func() x509check.Input {
			k := certtest.ECKey(t).(*ecdsa.PrivateKey)
			in := input(ca, ca.Issue(t, certtest.Options{Key: k}))
			der, err := x509.MarshalECPrivateKey(k)
			require.NoError(t, err)
			in.KeyPEM = append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}),
				pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...)
			return in
		}, keyType: "EC", keySize: 256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in()
			res, err := x509check.Check(in)
			require.NoError(t, err)
			assert.Equal(t, tc.keyType, res.Info.KeyType)
			assert.Equal(t, tc.keySize, res.Info.KeySize)
			assert.Equal(t, tc.encrypted, res.KeyEncrypted)
			assert.Equal(t, []string{"localhost", "127.0.0.1"}, res.Info.SANs)
			assert.Equal(t, "CN=valkey test server", res.Info.Subject)
			assert.Regexp(t, `^([0-9A-F]{2}:){31}[0-9A-F]{2}$`, res.Info.SHA256Fingerprint)
			if tc.expiring {
				require.NotNil(t, res.Expiring)
				assert.Equal(t, 10, res.Info.DaysRemaining)
				assert.True(t, strings.HasPrefix(res.Expiring.Error(),
					`TLS check "min days valid" failed for /etc/valkey/tls/server.crt: the certificate expires in 10 days (not_after `), res.Expiring.Error())
				assert.True(t, strings.HasSuffix(res.Expiring.Error(), "), sooner than min_days_valid 30"), res.Expiring.Error())
			} else {
				assert.Nil(t, res.Expiring)
			}
		})
	}
}

func TestFingerprintMatchesOpenSSLFormat(t *testing.T) {
	assert.Equal(t, "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55", x509check.Fingerprint(nil))
}

func TestGenerateSelfSigned(t *testing.T) {
	g, err := x509check.GenerateSelfSigned([]string{"valkey.lab", "127.0.0.1", "::1"}, time.Now())
	require.NoError(t, err)
	res, err := x509check.Check(x509check.Input{
		CertPEM: g.CertPEM, CertFile: "c", KeyPEM: g.KeyPEM, KeyFile: "k", CAPEM: g.CACertPEM, CAFile: "ca",
		ServerNames: []string{"valkey.lab", "127.0.0.1", "::1"}, MinDaysValid: 300,
	})
	require.NoError(t, err)
	assert.Equal(t, "EC", res.Info.KeyType)
	assert.Equal(t, 256, res.Info.KeySize)
	assert.Equal(t, []string{"valkey.lab", "127.0.0.1", "::1"}, res.Info.SANs)
	assert.Nil(t, res.Expiring)
	assert.Equal(t, 364, res.Info.DaysRemaining)

	_, err = x509check.GenerateSelfSigned(nil, time.Now())
	assert.EqualError(t, err, "no server names to put in the certificate")
}
