package tls

import (
	"context"
	"io/fs"
	"os"
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
	certs, err := x509check.Served(ctx, host, port, timeout)
	if err != nil {
		return "", err
	}
	return x509check.Fingerprint(certs[0].Raw), nil
}

func statMode(path string) (fs.FileMode, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Mode().Perm(), nil
}
