// Package groupca is the group CA of a replication group or cluster: one CA
// issues every node its own certificate, so that every node verifies every
// other (tls-replication, tls-cluster, tls-auth-clients yes: a node's
// certificate is also its client certificate).
//
// The flow keeps each private key where it is used: the node makes its key
// and a certificate signing request (MakeKey, MakeCSR; the CSR is public),
// the controller signs it (Sign) with the CA key, which never leaves the
// controller, and the node installs the certificate with valkey_tls. The
// controller signs only the names the inventory gives for that node: the
// CSR is the node's, so it is attacker-controlled input, and only its public
// key (after the proof of possession) is taken from it.
//
// Status tells a node whether its current certificate is still good for the
// group (issued by the group CA, the inventory's names exactly, its key,
// valid for min_days_valid), so a converged group issues nothing.
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
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/x509check"
)

// Bounds and defaults.
const (
	// MaxCSRSize bounds the CSR the controller reads: an ECDSA CSR is
	// about 500 bytes, an RSA 4096 one about 1.7 KiB.
	MaxCSRSize = 16 << 10
	// MaxNames bounds the names of one certificate.
	MaxNames = 100
	// DefaultDays is the validity of an issued certificate.
	DefaultDays = 365
	// MaxDays bounds it (825 days: what browsers accepted last; a group
	// CA renews on every run anyway).
	MaxDays = 825
	// CADays is the validity of a generated lab CA.
	CADays = 3650
	// MaxRSABits bounds an RSA key in a CSR (verifying a huge one costs
	// the controller seconds).
	MaxRSABits = 8192
)

// CA is a loaded group CA: its certificate and its key.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     crypto.Signer
}

// MakeKey makes a node key (ECDSA P-256) and returns it with its PKCS#8 PEM.
func MakeKey() (crypto.Signer, []byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to generate a key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MakeCSR returns a PEM CSR for key naming names (CN the first). The
// names are informative only: the controller signs its own list.
func MakeCSR(key crypto.Signer, names []string) ([]byte, error) {
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: names[0]}}
	tmpl.DNSNames, tmpl.IPAddresses = splitNames(names)
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("failed to create the certificate signing request: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

func splitNames(names []string) (dns []string, ips []net.IP) {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	return dns, ips
}

// CheckNames validates the names of a certificate (option names the
// option in messages).
func CheckNames(option string, names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("option %q: give at least one host name or address", option)
	}
	if len(names) > MaxNames {
		return fmt.Errorf("option %q: %d names; at most %d", option, len(names), MaxNames)
	}
	for _, n := range names {
		if net.ParseIP(n) != nil {
			continue
		}
		if !validDNSName(n) {
			return fmt.Errorf("option %q: %q is not a host name or an IP address", option, n)
		}
	}
	return nil
}

func validDNSName(n string) bool {
	if n == "" || len(n) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimPrefix(n, "*."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ParseCSR reads a CSR the node sent: bounded, exactly one PEM block of
// type CERTIFICATE REQUEST and nothing else, its signature verified (the
// node holds the key), its key strong enough. Nothing else of it is used.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	if len(data) > MaxCSRSize {
		return nil, fmt.Errorf("the certificate signing request is %d bytes; at most %d are accepted", len(data), MaxCSRSize)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("the certificate signing request is not a PEM CERTIFICATE REQUEST")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("the certificate signing request has data after its PEM block")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the certificate signing request does not parse: %v", err)
	}
	if k, ok := csr.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() > MaxRSABits {
		return nil, fmt.Errorf("the certificate signing request has a %d-bit RSA key; at most %d bits are accepted", k.N.BitLen(), MaxRSABits)
	}
	if w := x509check.WeakKey(csr.PublicKey); w != "" {
		return nil, fmt.Errorf("the certificate signing request has %s", w)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the certificate signing request's signature does not verify (%v)", err)
	}
	return csr, nil
}

// Sign issues a certificate for the key of csrPEM with exactly names (the
// inventory's, never the CSR's), valid from now for days (capped at the
// CA's own expiry), for TLS server and client authentication.
func (ca *CA) Sign(csrPEM []byte, names []string, days int, now time.Time) ([]byte, error) {
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	start := now.Add(-time.Minute)
	end := start.Add(time.Duration(days) * 24 * time.Hour)
	if end.After(ca.Cert.NotAfter) {
		end = ca.Cert.NotAfter
	}
	if !end.After(now) {
		return nil, fmt.Errorf("the group CA expired on %s", ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	tmpl := &x509.Certificate{
		SerialNumber: x509check.Serial(),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    start,
		NotAfter:     end,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Client auth too: a node presents the same certificate to its
		// primary and to the other nodes of a cluster.
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	if _, ok := csr.PublicKey.(*rsa.PublicKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	tmpl.DNSNames, tmpl.IPAddresses = splitNames(names)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("failed to sign the certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// LoadCA checks a CA certificate and its key: one certificate, a CA that
// may sign certificates, valid now, a strong key that matches it.
func LoadCA(certPEM, keyPEM []byte, certLabel, keyLabel string, now time.Time) (*CA, error) {
	certs, err := x509check.ParseCerts(certPEM, certLabel)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%s holds %d certificates; give the group CA's certificate alone", certLabel, len(certs))
	}
	c := certs[0]
	if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s is not a CA certificate that may sign certificates (basic constraints CA and key usage certSign)", certLabel)
	}
	if w := x509check.WeakKey(c.PublicKey); w != "" {
		return nil, fmt.Errorf("%s has %s", certLabel, w)
	}
	if now.After(c.NotAfter) || now.Before(c.NotBefore) {
		return nil, fmt.Errorf("%s is not valid now (valid %s to %s)", certLabel, c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	}
	key, encrypted, err := x509check.ParseKey(keyPEM, keyLabel, nil)
	if err != nil {
		return nil, err
	}
	if encrypted {
		return nil, fmt.Errorf("%s is encrypted; give the CA key decrypted (from Ansible Vault)", keyLabel)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(c.PublicKey) {
		return nil, fmt.Errorf("%s does not match the CA certificate in %s", keyLabel, certLabel)
	}
	return &CA{Cert: c, CertPEM: certPEM, key: key}, nil
}

// GenerateCA makes a lab group CA (ECDSA P-384) named for group.
func GenerateCA(group string, now time.Time) (certPEM, keyPEM []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to generate the CA key: %w", err)
	}
	tmpl := x509check.CATemplate("valkeyops group CA "+group, now, CADays)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create the CA certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// Status says whether a node's current certificate serves the group: ""
// when it does, else why a new one is needed.
func Status(certPEM []byte, key crypto.Signer, caPEM []byte, names []string, minDays int, now time.Time) string {
	if len(certPEM) == 0 {
		return "no certificate yet"
	}
	certs, err := x509check.ParseCerts(certPEM, "the certificate")
	if err != nil || len(certs) != 1 {
		return "the current certificate does not parse as one certificate"
	}
	leaf := certs[0]
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
		return "the current certificate is not for the node's key"
	}
	cas, err := x509check.ParseCerts(caPEM, "the CA")
	if err != nil {
		return "the group CA does not parse"
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
		return "the current certificate is not issued by the group CA (or not valid now)"
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return "the current certificate is not for both server and client authentication"
	}
	if have, want := CertNames(leaf), normNames(names); !slices.Equal(have, want) {
		return fmt.Sprintf("the names changed (certificate: %s; inventory: %s)", strings.Join(have, ", "), strings.Join(want, ", "))
	}
	if minDays > 0 && leaf.NotAfter.Before(now.Add(time.Duration(minDays)*24*time.Hour)) {
		return fmt.Sprintf("the certificate expires on %s, within min_days_valid %d", leaf.NotAfter.UTC().Format(time.RFC3339), minDays)
	}
	return ""
}

// CertNames are a certificate's SANs, sorted (IP addresses in canonical form).
func CertNames(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return normNames(out)
}

func normNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		} else {
			n = strings.ToLower(n)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
