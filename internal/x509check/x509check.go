// Package x509check validates TLS material before it is deployed: the PEM
// parses, the key matches the certificate, the chain verifies to the CA, now
// is within the validity period, keys are strong enough, no SHA-1/MD5
// signatures, and the wanted server names are covered by the SANs. It is
// pure (no I/O): callers pass the bytes and a label naming where they came
// from, and every failure is an *Error naming the check and that label.
// Nothing here ever quotes key material or a passphrase.
package x509check

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Check names, as they appear in error messages.
const (
	CheckPEM         = "pem"
	CheckPassphrase  = "passphrase"
	CheckKeyMatch    = "key match"
	CheckSignature   = "signature algorithm"
	CheckKeyStrength = "key strength"
	CheckValidity    = "validity"
	CheckChain       = "chain"
	CheckNames       = "server names"
	CheckMinDays     = "min days valid"
)

// Minimum key sizes.
const (
	MinRSABits = 2048
	MinECBits  = 256
)

// Error is one failed check. Its text is one sentence (without a final
// period) naming the check and the file.
type Error struct {
	Check  string // one of the Check* constants
	File   string // the label of the file (a path, or e.g. `option "cert"`)
	Detail string // what is wrong; never key material
}

func (e *Error) Error() string {
	return fmt.Sprintf("TLS check %q failed for %s: %s", e.Check, e.File, e.Detail)
}

func fail(check, file, format string, args ...any) *Error {
	return &Error{Check: check, File: file, Detail: fmt.Sprintf(format, args...)}
}

// Input is the material to check.
type Input struct {
	CertPEM  []byte // the server certificate, optionally followed by intermediates
	CertFile string // label for messages
	KeyPEM   []byte // the private key (PEM; may be encrypted)
	KeyFile  string
	CAPEM    []byte // the CA bundle the chain must verify to
	CAFile   string
	// Passphrase decrypts an encrypted key.
	Passphrase []byte
	// ServerNames must each be covered by the certificate's SANs.
	ServerNames []string
	// MinDaysValid: a certificate that expires sooner than this is reported
	// in Result.Expiring (the caller decides whether that fails).
	MinDaysValid int
	// Now is the time to check against (default time.Now()).
	Now time.Time
}

// Info describes a certificate, for results.
type Info struct {
	Subject           string    `json:"subject"`
	Issuer            string    `json:"issuer"`
	SANs              []string  `json:"sans"`
	NotBefore         time.Time `json:"not_before"`
	NotAfter          time.Time `json:"not_after"`
	DaysRemaining     int       `json:"days_remaining"`
	SHA256Fingerprint string    `json:"sha256_fingerprint"`
	KeyType           string    `json:"key_type"`
	KeySize           int       `json:"key_size"`
}

// Result is what a successful check learned.
type Result struct {
	Info Info
	Leaf *x509.Certificate
	// Expiring is set when the certificate expires within MinDaysValid.
	Expiring *Error
	// KeyEncrypted tells whether the key PEM was encrypted.
	KeyEncrypted bool
}

// Fingerprint is the SHA-256 of a DER certificate as colon-separated
// uppercase hex, as `openssl x509 -fingerprint -sha256` prints it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// ParseCerts returns every CERTIFICATE block of data. Other block types are
// an error (a key pasted into a certificate file must not go unnoticed).
func ParseCerts(data []byte, file string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			// The type only, never the content.
			return nil, fail(CheckPEM, file, "expected only CERTIFICATE blocks, found a %q block", safeType(block.Type))
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fail(CheckPEM, file, "certificate %d does not parse (%v)", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fail(CheckPEM, file, "no PEM certificate found")
	}
	return certs, nil
}

func safeType(t string) string {
	if strings.Contains(t, "PRIVATE KEY") {
		return "PRIVATE KEY"
	}
	if len(t) > 40 {
		return t[:40]
	}
	return t
}

// ErrNeedPassphrase and ErrBadPassphrase are wrapped by ParseKey's errors.
var (
	ErrNeedPassphrase = errors.New("the private key is encrypted and key_passphrase is not set")
	ErrBadPassphrase  = errors.New("key_passphrase does not decrypt the private key")
)

// ParseKey returns the private key in data, decrypting it with passphrase
// when it is encrypted (PKCS#8 PBES2, or legacy OpenSSL Proc-Type headers).
func ParseKey(data []byte, file string, passphrase []byte) (key crypto.Signer, encrypted bool, err error) {
	var block *pem.Block
	rest := data
	for {
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, false, fail(CheckPEM, file, "no PEM private key found")
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			break
		}
		if block.Type == "EC PARAMETERS" {
			continue // openssl ecparam -genkey writes this first
		}
		return nil, false, fail(CheckPEM, file, "expected a PRIVATE KEY block, found a %q block", safeType(block.Type))
	}
	if p, _ := pem.Decode(rest); p != nil && strings.HasSuffix(p.Type, "PRIVATE KEY") {
		return nil, false, fail(CheckPEM, file, "more than one private key found")
	}
	der := block.Bytes
	//nolint:staticcheck // legacy encrypted PEM is still what some tools write
	legacy := x509.IsEncryptedPEMBlock(block)
	encrypted = legacy || block.Type == "ENCRYPTED PRIVATE KEY"
	if encrypted && len(passphrase) == 0 {
		return nil, true, &Error{Check: CheckPassphrase, File: file, Detail: ErrNeedPassphrase.Error()}
	}
	switch {
	case legacy:
		//nolint:staticcheck // see above
		der, err = x509.DecryptPEMBlock(block, passphrase)
		if err != nil {
			return nil, true, &Error{Check: CheckPassphrase, File: file, Detail: ErrBadPassphrase.Error()}
		}
	case block.Type == "ENCRYPTED PRIVATE KEY":
		der, err = decryptPKCS8(der, passphrase)
		if errors.Is(err, errUnsupportedEncryption) {
			return nil, true, fail(CheckPassphrase, file, "%v", err)
		}
		if err != nil {
			return nil, true, &Error{Check: CheckPassphrase, File: file, Detail: ErrBadPassphrase.Error()}
		}
	}
	var k any
	switch {
	case block.Type == "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(der)
	case block.Type == "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(der)
	default:
		k, err = x509.ParsePKCS8PrivateKey(der)
	}
	if err != nil {
		if block.Type == "ENCRYPTED PRIVATE KEY" {
			// A wrong passphrase can still unpad correctly by chance.
			return nil, true, &Error{Check: CheckPassphrase, File: file, Detail: ErrBadPassphrase.Error()}
		}
		return nil, encrypted, fail(CheckPEM, file, "the private key does not parse (%s)", keyParseKind(err))
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, encrypted, fail(CheckPEM, file, "unsupported private key type %T", k)
	}
	return s, encrypted, nil
}

// keyParseKind describes a key parse error without any bytes of the key.
func keyParseKind(err error) string {
	// x509's parse errors name the structure that failed, never the bytes.
	msg := err.Error()
	return msg[:min(len(msg), 120)]
}

// Check runs every check in order and returns the first failure.
func Check(in Input) (*Result, error) {
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	certs, err := ParseCerts(in.CertPEM, in.CertFile)
	if err != nil {
		return nil, err
	}
	leaf := certs[0]
	cas, err := ParseCerts(in.CAPEM, in.CAFile)
	if err != nil {
		return nil, err
	}
	key, encrypted, err := ParseKey(in.KeyPEM, in.KeyFile, in.Passphrase)
	if err != nil {
		return nil, err
	}
	if !publicKeyEqual(key.Public(), leaf.PublicKey) {
		return nil, fail(CheckKeyMatch, in.KeyFile, "the private key does not match the certificate in %s", in.CertFile)
	}
	for i, c := range certs {
		if weakSignature(c.SignatureAlgorithm) {
			return nil, fail(CheckSignature, in.CertFile, "%s is signed with %s; SHA-1 and MD5 signatures are refused, use SHA-256 or better", describe(i, c), c.SignatureAlgorithm)
		}
	}
	for i, c := range certs {
		if msg := weakKey(c.PublicKey); msg != "" {
			return nil, fail(CheckKeyStrength, in.CertFile, "%s has %s", describe(i, c), msg)
		}
	}
	for _, c := range cas {
		if msg := weakKey(c.PublicKey); msg != "" {
			return nil, fail(CheckKeyStrength, in.CAFile, "CA %q has %s", c.Subject.String(), msg)
		}
	}
	for i, c := range certs {
		if now.Before(c.NotBefore) {
			return nil, fail(CheckValidity, in.CertFile, "%s is not valid yet (not_before %s)", describe(i, c), c.NotBefore.UTC().Format(time.RFC3339))
		}
		if now.After(c.NotAfter) {
			return nil, fail(CheckValidity, in.CertFile, "%s has expired (not_after %s)", describe(i, c), c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, verr := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if verr != nil {
		return nil, fail(CheckChain, in.CertFile, "the certificate does not verify to the CA in %s (%s)", in.CAFile, chainReason(verr))
	}
	for _, name := range in.ServerNames {
		if err := leaf.VerifyHostname(name); err != nil {
			return nil, fail(CheckNames, in.CertFile, "server name %q is not covered by the certificate's SANs (%s)", name, strings.Join(sans(leaf), ", "))
		}
	}
	res := &Result{Leaf: leaf, Info: Describe(leaf, now), KeyEncrypted: encrypted}
	if in.MinDaysValid > 0 && leaf.NotAfter.Before(now.Add(time.Duration(in.MinDaysValid)*24*time.Hour)) {
		res.Expiring = fail(CheckMinDays, in.CertFile, "the certificate expires in %d days (not_after %s), sooner than min_days_valid %d",
			res.Info.DaysRemaining, leaf.NotAfter.UTC().Format(time.RFC3339), in.MinDaysValid)
	}
	return res, nil
}

func describe(i int, c *x509.Certificate) string {
	if i == 0 {
		return "the certificate"
	}
	return fmt.Sprintf("intermediate %q", c.Subject.String())
}

func chainReason(err error) string {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return "signed by an unknown authority"
	case errors.As(err, &ci):
		switch ci.Reason {
		case x509.IncompatibleUsage:
			return "its extended key usage does not allow TLS server authentication"
		case x509.NotAuthorizedToSign:
			return "an issuer in the chain is not a CA"
		case x509.Expired:
			return "a certificate in the chain is expired or not yet valid"
		}
	}
	return err.Error()
}

func weakSignature(a x509.SignatureAlgorithm) bool {
	switch a {
	case x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1, x509.MD5WithRSA, x509.MD2WithRSA:
		return true
	}
	return false
}

// weakKey returns why a public key is too weak, or "".
func weakKey(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return fmt.Sprintf("a %d-bit RSA key; at least %d bits are required", k.N.BitLen(), MinRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve.Params().BitSize < MinECBits {
			return fmt.Sprintf("an EC key on %s; at least P-256 is required", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Sprintf("an unsupported key type (%T)", pub)
	}
	return ""
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

func sans(c *x509.Certificate) []string {
	out := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// Describe returns the Info of a certificate.
func Describe(c *x509.Certificate, now time.Time) Info {
	t, size := KeyDescription(c.PublicKey)
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return Info{
		Subject:           c.Subject.String(),
		Issuer:            c.Issuer.String(),
		SANs:              names,
		NotBefore:         c.NotBefore.UTC(),
		NotAfter:          c.NotAfter.UTC(),
		DaysRemaining:     int(c.NotAfter.Sub(now).Hours() / 24),
		SHA256Fingerprint: Fingerprint(c.Raw),
		KeyType:           t,
		KeySize:           size,
	}
}

// KeyDescription returns a key's type ("RSA", "EC", "Ed25519") and size in bits.
func KeyDescription(pub any) (string, int) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "EC", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	}
	return fmt.Sprintf("%T", pub), 0
}

// WeakKey returns why a public key is too weak (or of a type not
// accepted), or "" when it is strong enough.
func WeakKey(pub any) string { return weakKey(pub) }

// KeyLines are the base64 lines of a PEM key, registered as secrets so that
// not even one line of a key could be printed.
func KeyLines(pemData []byte) []string {
	var out []string
	for _, l := range strings.Split(string(pemData), "\n") {
		l = strings.TrimSpace(l)
		if len(l) >= 16 && !strings.HasPrefix(l, "-----") && !strings.Contains(l, ":") {
			out = append(out, l)
		}
	}
	return out
}
