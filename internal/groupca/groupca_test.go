package groupca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valkeyops/secure/internal/x509check"
)

func testCA(t *testing.T, now time.Time) *CA {
	t.Helper()
	c, k, err := GenerateCA("test", now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(c, k, "ca.crt", "ca.key", now)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// csrFor makes a CSR as an attacker on the node could: any names, any
// key, any extensions.
func csrFor(t *testing.T, key any, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func parse(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	c, err := x509check.ParseCerts(p, "cert")
	if err != nil {
		t.Fatal(err)
	}
	return c[0]
}

// The node asks for more names (another node's, a wildcard) and a CA
// certificate; it gets exactly the inventory's names, a leaf.
func TestSignOnlyTheInventorysNames(t *testing.T) {
	now := time.Now()
	ca := testCA(t, now)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := csrFor(t, key, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "lab17"},
		DNSNames:    []string{"lab16", "lab17", "*.example.com", "primary.internal"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.26"), net.ParseIP("10.0.0.1")},
		ExtraExtensions: []pkix.Extension{{ // basicConstraints CA:TRUE
			Id: []int{2, 5, 29, 19}, Critical: true, Value: []byte{0x30, 0x03, 0x01, 0x01, 0xff}}},
	})
	certPEM, err := ca.Sign(csr, []string{"lab16", "127.0.0.26"}, 365, now)
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, certPEM)
	if got := CertNames(c); !slices.Equal(got, []string{"127.0.0.26", "lab16"}) {
		t.Errorf("SANs = %v; want only the inventory's [127.0.0.26 lab16]", got)
	}
	if c.Subject.CommonName != "lab16" {
		t.Errorf("CN = %q; want lab16", c.Subject.CommonName)
	}
	if c.IsCA {
		t.Error("the CSR's CA extension made the certificate a CA")
	}
	if !key.PublicKey.Equal(c.PublicKey) {
		t.Error("the certificate is not for the CSR's key")
	}
	if Status(certPEM, key, ca.CertPEM, []string{"lab16", "127.0.0.26"}, 30, now) != "" {
		t.Error("the freshly issued certificate does not serve the group")
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca.Cert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("not usable as a client certificate: %v", err)
	}
}

func pool(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

func TestCSRRefused(t *testing.T) {
	now := time.Now()
	ca := testCA(t, now)
	good, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	weakRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	weakEC, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	okCSR := csrFor(t, good, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}})
	block, _ := pem.Decode(okCSR)
	tampered := slices.Clone(block.Bytes)
	tampered[len(tampered)-5] ^= 0xff // the signature
	huge := append(slices.Clone(okCSR), []byte(strings.Repeat("#", MaxCSRSize))...)
	for _, tc := range []struct {
		name, want string
		csr        []byte
	}{
		{"oversized", "the certificate signing request is 16", huge},
		{"weak RSA key", "has a 1024-bit RSA key; at least 2048 bits are required", csrFor(t, weakRSA, &x509.CertificateRequest{})},
		{"weak EC key", "has an EC key on P-224; at least P-256 is required", csrFor(t, weakEC, &x509.CertificateRequest{})},
		{"bad signature", "signature does not verify", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered})},
		{"not a CSR", "is not a PEM CERTIFICATE REQUEST", ca.CertPEM},
		{"two blocks", "has data after its PEM block", append(slices.Clone(okCSR), okCSR...)},
		{"garbage", "is not a PEM CERTIFICATE REQUEST", []byte("hello")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ca.Sign(tc.csr, []string{"x"}, 365, now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Sign = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	now := time.Now()
	ca := testCA(t, now)
	other := testCA(t, now)
	key, _, _ := MakeKey()
	otherKey, _, _ := MakeKey()
	names := []string{"lab16", "127.0.0.26"}
	csr, _ := MakeCSR(key, names)
	cert, err := ca.Sign(csr, names, 365, now)
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Sign(csr, names, 365, now)
	short, _ := ca.Sign(csr, names, 10, now)
	for _, tc := range []struct {
		name, want string
		cert       []byte
		key        crypto.Signer
		names      []string
	}{
		{"good", "", cert, key, names},
		{"names reordered", "", cert, key, []string{"127.0.0.26", "LAB16"}},
		{"none", "no certificate yet", nil, key, names},
		{"other CA", "not issued by the group CA", foreign, key, names},
		{"other key", "not for the node's key", cert, otherKey, names},
		{"name added", "the names changed", cert, key, append(slices.Clone(names), "lab16.example")},
		{"name removed", "the names changed", cert, key, names[:1]},
		{"expiring", "within min_days_valid 30", short, key, names},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Status(tc.cert, tc.key, ca.CertPEM, tc.names, 30, now)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("Status = %q; want %q", got, tc.want)
			}
		})
	}
}

func TestCADir(t *testing.T) {
	now := time.Now()
	base := t.TempDir()
	dir := filepath.Join(base, "ca")
	if _, err := OpenDir(dir, false); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing dir: %v", err)
	}
	d, err := OpenDir(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("created with mode %04o; want 0700", st.Mode().Perm())
	}
	c, k, _ := GenerateCA("g", now)
	if err := d.Write(c, k); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(dir, CAKeyName)); st.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode %04o; want 0600", st.Mode().Perm())
	}
	c2, k2, err := d.Read()
	if err != nil || string(c2) != string(c) || string(k2) != string(k) {
		t.Fatalf("Read = %v; want the CA written", err)
	}
	d.Close()

	// Attacks on the directory and the key.
	link := filepath.Join(base, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(link, false); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Errorf("symlinked dir: %v", err)
	}
	for _, mode := range []os.FileMode{0o770, 0o707, 0o750} {
		_ = os.Chmod(dir, mode)
		if _, err := OpenDir(dir, false); err == nil || !strings.Contains(err.Error(), "make it 0700") && !strings.Contains(err.Error(), "writable") {
			t.Errorf("dir mode %04o: %v", mode, err)
		}
	}
	_ = os.Chmod(dir, 0o700)
	_ = os.Chmod(filepath.Join(dir, CAKeyName), 0o640)
	d, err = OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Read(); err == nil || !strings.Contains(err.Error(), "lets other users read the CA key") {
		t.Errorf("ca.key 0640: %v", err)
	}
	_ = os.Remove(filepath.Join(dir, CAKeyName))
	if err := os.Symlink(filepath.Join(base, "elsewhere"), filepath.Join(dir, CAKeyName)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Read(); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("ca.key a link: %v", err)
	}
	_ = os.Remove(filepath.Join(dir, CAKeyName))
	if _, _, err := d.Read(); err == nil || !strings.Contains(err.Error(), "holds only one of") {
		t.Errorf("half a CA: %v", err)
	}
	d.Close()
}

func TestLoadCARefuses(t *testing.T) {
	now := time.Now()
	c, k, _ := GenerateCA("g", now)
	_, k2, _ := GenerateCA("h", now)
	leafKey, _, _ := MakeKey()
	ca, _ := LoadCA(c, k, "c", "k", now)
	csr, _ := MakeCSR(leafKey, []string{"x"})
	leaf, _ := ca.Sign(csr, []string{"x"}, 10, now)
	for _, tc := range []struct {
		name, want string
		cert, key  []byte
	}{
		{"key of another CA", "does not match the CA certificate", c, k2},
		{"a leaf as CA", "is not a CA certificate", leaf, k},
		{"two certificates", "holds 2 certificates", append(slices.Clone(c), c...), k},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := LoadCA(tc.cert, tc.key, "c", "k", now); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadCA = %v; want %q", err, tc.want)
			}
		})
	}
}
