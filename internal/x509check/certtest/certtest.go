// Package certtest makes certificates and keys for tests, at test time, so
// no key is ever committed. Test support only; nothing in the binary
// imports it.
package certtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  []byte
}

// NewCA returns an ECDSA P-256 CA valid for a year.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	return newCA(t, name, ECKey(t))
}

// NewRSACA returns a CA with an RSA 2048 key (to sign with SHA-1).
func NewRSACA(t testing.TB, name string) *CA {
	t.Helper()
	return newCA(t, name, RSAKey(t, 2048))
}

func newCA(t testing.TB, name string, key crypto.Signer) *CA {
	t.Helper()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("certtest: CA: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("certtest: CA: %v", err)
	}
	return &CA{Cert: c, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Options of an issued certificate; zero values mean: P-256 key, valid
// from an hour ago for 90 days, names localhost and 127.0.0.1, server and
// client auth, the CA's default signature algorithm.
type Options struct {
	Names     []string
	Key       crypto.Signer
	NotBefore time.Time
	NotAfter  time.Time
	SigAlg    x509.SignatureAlgorithm
	CN        string
}

// Leaf is an issued certificate with its key.
type Leaf struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte // PKCS#8
}

// Issue signs a certificate.
func (ca *CA) Issue(t testing.TB, o Options) *Leaf {
	t.Helper()
	now := time.Now()
	if o.Names == nil {
		o.Names = []string{"localhost", "127.0.0.1"}
	}
	if o.Key == nil {
		o.Key = ECKey(t)
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(90 * 24 * time.Hour)
	}
	if o.CN == "" {
		o.CN = "valkey test server"
	}
	tmpl := &x509.Certificate{
		SerialNumber:       serial(t),
		Subject:            pkix.Name{CommonName: o.CN},
		NotBefore:          o.NotBefore,
		NotAfter:           o.NotAfter,
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		SignatureAlgorithm: o.SigAlg,
	}
	for _, n := range o.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, o.Key.Public(), ca.Key)
	if err != nil {
		t.Fatalf("certtest: issue: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("certtest: issue: %v", err)
	}
	return &Leaf{Cert: c, Key: o.Key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: KeyPEM(t, o.Key)}
}

// ECKey returns a new P-256 key.
func ECKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// RSAKey returns a new RSA key of bits.
func RSAKey(t testing.TB, bits int) crypto.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// KeyPEM encodes a key as PKCS#8 PEM.
func KeyPEM(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// EncryptKey encrypts a PEM key with passphrase using openssl (PKCS#8,
// PBES2, AES-256-CBC: what `openssl pkey -aes256` writes). It skips the
// test when openssl is missing.
func EncryptKey(t testing.TB, keyPEM []byte, passphrase string) []byte {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not on PATH")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.key")
	if err := os.WriteFile(in, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("openssl", "pkey", "-in", in, "-aes256", "-passout", "env:CERTTEST_PASS")
	cmd.Env = append(os.Environ(), "CERTTEST_PASS="+passphrase)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl pkey: %v", err)
	}
	return out
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}
