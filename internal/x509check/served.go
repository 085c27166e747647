package x509check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"time"
)

// Served connects to host:port with TLS and returns the certificates the
// server presents (leaf first), read during the handshake: a server that
// then refuses a client without a certificate (tls-auth-clients yes) still
// shows them. Nothing is sent but the handshake, and the chain is not
// verified on purpose: callers compare or inspect what was served.
func Served(ctx context.Context, host string, port int, timeout time.Duration) ([]*x509.Certificate, error) {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	var certs []*x509.Certificate
	var parseErr error
	cfg := &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // see above: what is served is read, not trusted
		MinVersion:         tls.VersionTLS10,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			for _, der := range raw {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					parseErr = errors.New("the served certificate does not parse")
					return nil
				}
				certs = append(certs, c)
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
	switch {
	case len(certs) > 0:
		return certs, nil
	case parseErr != nil:
		return nil, parseErr
	case err == nil:
		return nil, errors.New("the server presented no certificate")
	}
	return nil, err
}
