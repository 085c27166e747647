package tls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/valkeyops/secure/internal/x509check"
)

// servedFingerprint connects to host:port with TLS and returns the sha256
// fingerprint of the leaf certificate the server presents. It reads the
// certificate during the handshake, so a server that then refuses a client
// without a certificate (tls-auth-clients yes) still shows it.
//
// The certificate is not verified here on purpose: the caller compares its
// fingerprint with the one of the deployed certificate, which is stricter
// than any chain check.
func servedFingerprint(ctx context.Context, host string, port int, timeout time.Duration) (string, error) {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	var fp string
	cfg := &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // see above: the fingerprint is compared instead
		MinVersion:         tls.VersionTLS10,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) > 0 {
				fp = x509check.Fingerprint(raw[0])
			}
			return nil
		},
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: cfg}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if c != nil {
		_ = c.Close()
	}
	if fp != "" {
		return fp, nil
	}
	if err == nil {
		err = errors.New("the server presented no certificate")
	}
	return "", err
}

func statMode(path string) (fs.FileMode, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Mode().Perm(), nil
}
