package x509check

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Validity of generated material.
const (
	SelfSignedCADays     = 3650
	SelfSignedServerDays = 365
)

// Generated is a CA and a server certificate signed by it, PEM encoded.
// The CA's private key is not kept: a lab CA signs once.
type Generated struct {
	CACertPEM []byte
	CertPEM   []byte
	KeyPEM    []byte // PKCS#8, unencrypted
}

// GenerateSelfSigned makes a CA and a server certificate (ECDSA P-256) for
// names (DNS names and IP addresses as SANs; the first is the CN), valid
// from now (minus a minute of clock skew) for SelfSignedServerDays.
func GenerateSelfSigned(names []string, now time.Time) (*Generated, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("no server names to put in the certificate")
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("failed to generate the CA key: %w", err)
	}
	start := now.Add(-time.Minute)
	caTmpl := CATemplate("valkeyops self-signed CA", now, SelfSignedCADays)
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("failed to create the CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("failed to generate the server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: Serial(),
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"valkeyops.secure lab"}},
		NotBefore:    start,
		NotAfter:     start.Add(SelfSignedServerDays * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Client auth too: Valkey presents the same certificate as a client
		// for replication and cluster links.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("failed to create the server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Generated{
		CACertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CertPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// CATemplate is a lab CA's certificate template: cn, valid from now (minus
// a minute of clock skew) for days, signing certificates only (no
// intermediate below it).
func CATemplate(cn string, now time.Time, days int) *x509.Certificate {
	start := now.Add(-time.Minute)
	return &x509.Certificate{
		SerialNumber:          Serial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"valkeyops.secure lab"}},
		NotBefore:             start,
		NotAfter:              start.Add(time.Duration(days) * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
}

// Serial is a random 127-bit certificate serial number (never 0).
func Serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n.Add(n, big.NewInt(1))
}
