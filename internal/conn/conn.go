// Package conn opens a valkey-go client from the connection options every
// module shares (the `connection` doc fragment).
package conn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/peer"
	"github.com/valkeyops/secure/internal/safefs"
)

// Defaults of the shared connection options.
const (
	DefaultHost           = "127.0.0.1"
	DefaultPort           = 6379
	DefaultConnectTimeout = 5 // seconds
)

// Options are the shared connection options. Embed this struct in a module's
// options struct; the JSON names follow community.general's redis modules.
type Options struct {
	// LoginHost is the server's address (default DefaultHost). Ignored when
	// LoginUnixSocket is set.
	LoginHost string `json:"login_host" spec:"default=127.0.0.1"`
	// LoginPort is the TCP port (default DefaultPort); the TLS port when TLS is on.
	LoginPort int `json:"login_port" spec:"default=6379"`
	// LoginUnixSocket is a unix socket path; takes precedence over host/port.
	LoginUnixSocket string `json:"login_unix_socket" spec:"path"`
	// LoginUser is the ACL user (default: the server's `default` user).
	LoginUser string `json:"login_user"`
	// LoginPassword is the user's password (no_log).
	LoginPassword ansible.Secret `json:"login_password"`
	// TLS connects with TLS (default false: modules run on the target and
	// usually reach the server on loopback or a unix socket).
	TLS bool `json:"tls" spec:"default=false"`
	// TLSCACert is a CA bundle file to verify the server with (default: system roots).
	TLSCACert string `json:"tls_ca_cert" spec:"path"`
	// TLSCert and TLSKey are a client certificate and key file, for servers
	// with tls-auth-clients on. Both or neither.
	TLSCert string `json:"tls_cert" spec:"path,together=tls_key"`
	TLSKey  string `json:"tls_key" spec:"path"`
	// ValidateCerts verifies the server certificate (default true).
	ValidateCerts *bool `json:"validate_certs" spec:"default=true"`
	// TLSServerName is the name to verify the certificate against (default: LoginHost).
	TLSServerName string `json:"tls_server_name"`
	// CarriesSecrets is set by a module whose commands hold secrets (a
	// requirepass value, an ACL password hash): like the login password,
	// they go to another host only over verified TLS. Not an option.
	CarriesSecrets bool `json:"-"`
	// ConnectTimeout in seconds (default DefaultConnectTimeout).
	ConnectTimeout int `json:"connect_timeout" spec:"default=5"`
}

// Address describes where the options point, for messages.
func (o *Options) Address() string {
	if o.LoginUnixSocket != "" {
		return "unix:" + o.LoginUnixSocket
	}
	return net.JoinHostPort(o.host(), strconv.Itoa(o.port()))
}

func (o *Options) host() string {
	if o.LoginHost == "" {
		return DefaultHost
	}
	return o.LoginHost
}

func (o *Options) port() int {
	if o.LoginPort == 0 {
		return DefaultPort
	}
	return o.LoginPort
}

func (o *Options) timeout() time.Duration {
	if o.ConnectTimeout <= 0 {
		return DefaultConnectTimeout * time.Second
	}
	return time.Duration(o.ConnectTimeout) * time.Second
}

// Validate checks the options without touching the network or the server.
func (o *Options) Validate() error {
	if o.LoginPort < 0 || o.LoginPort > 65535 {
		return fmt.Errorf("option \"login_port\": %d is not a port; expected 1-65535", o.LoginPort)
	}
	if o.ConnectTimeout < 0 {
		return fmt.Errorf("option \"connect_timeout\": expected a positive number of seconds")
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("options \"tls_cert\" and \"tls_key\" go together: give both or neither")
	}
	if !o.TLS && (o.TLSCACert != "" || o.TLSCert != "" || o.TLSServerName != "") {
		return errors.New("options \"tls_ca_cert\", \"tls_cert\", \"tls_key\" and \"tls_server_name\" need \"tls: true\"")
	}
	if o.LoginPassword.IsSet() && strings.ContainsAny(o.LoginPassword.Reveal(), "\r\n") {
		return errors.New("option \"login_password\": the value contains a line break")
	}
	return nil
}

func (o *Options) tlsConfig() (*tls.Config, error) {
	if !o.TLS {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.TLSServerName}
	if cfg.ServerName == "" && o.LoginUnixSocket == "" {
		cfg.ServerName = o.host()
	}
	if o.ValidateCerts != nil && !*o.ValidateCerts {
		cfg.InsecureSkipVerify = true // the user asked for it with validate_certs: false
	}
	if o.TLSCACert != "" {
		pem, err := safefs.ReadFile(o.TLSCACert, MaxPEMSize)
		if err != nil {
			return nil, fmt.Errorf("failed to read tls_ca_cert %q: %w", o.TLSCACert, pathErr(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca_cert %q holds no PEM certificate", o.TLSCACert)
		}
		cfg.RootCAs = pool
	}
	if o.TLSCert != "" {
		certPEM, err := safefs.ReadFile(o.TLSCert, MaxPEMSize)
		if err != nil {
			return nil, fmt.Errorf("failed to read tls_cert %q: %w", o.TLSCert, pathErr(err))
		}
		keyPEM, err := safefs.ReadFile(o.TLSKey, MaxPEMSize)
		if err != nil {
			return nil, fmt.Errorf("failed to read tls_key %q: %w", o.TLSKey, pathErr(err))
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("failed to load tls_cert %q with tls_key %q: the files are unreadable, not PEM, or do not match", o.TLSCert, o.TLSKey)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ErrConnect wraps every failure to reach or log in to the server, so a
// module can tell "server unreachable" from a command error.
var ErrConnect = errors.New("cannot connect")

// MaxPEMSize bounds the TLS files the client reads (a CA bundle of a few
// hundred certificates fits easily).
const MaxPEMSize = 1 << 20

// Open connects and authenticates. The client does no client-side caching,
// no retries and no cluster discovery: one plain connection, the fewest
// commands on the wire, so an ACL user with narrow rights can use it.
//
// Before valkey-go sends anything (HELLO carries the password), every
// connection is checked by verifyPeer: a server on this host must be a
// verified server process, a remote one gets a password only over TLS with
// certificate validation. Replies are bounded (guardConn).
func Open(o *Options) (valkey.Client, error) {
	c, _, err := OpenPeer(o)
	return c, err
}

// OpenPeer is Open that also returns the verified server process (nil for
// a server on another host), for callers that trust what it names (its
// config file, its aclfile).
func OpenPeer(o *Options) (valkey.Client, *peer.Process, error) {
	if err := o.Validate(); err != nil {
		return nil, nil, err
	}
	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	var verified *peer.Process
	network, target := "tcp", o.Address()
	if o.LoginUnixSocket != "" {
		network, target = "unix", o.LoginUnixSocket
	}
	opt := valkey.ClientOption{
		InitAddress:       []string{target},
		Username:          o.LoginUser,
		Password:          o.LoginPassword.Reveal(),
		TLSConfig:         tlsCfg,
		Dialer:            net.Dialer{Timeout: o.timeout()},
		ConnWriteTimeout:  o.timeout() * 2,
		DisableCache:      true,
		DisableRetry:      true,
		ForceSingleClient: true,
		ClientSetInfo:     valkey.DisableClientSetInfo,
		DialCtxFn: func(ctx context.Context, _ string, d *net.Dialer, cfg *tls.Config) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, target)
			if err != nil {
				return nil, err
			}
			p, err := o.verifyPeer(ctx, c)
			if err != nil {
				_ = c.Close()
				return nil, err
			}
			mu.Lock()
			verified = p
			mu.Unlock()
			if cfg != nil {
				c = tls.Client(c, cfg)
			}
			return &guardConn{Conn: c}, nil
		},
	}
	client, err := valkey.NewClient(opt)
	if err != nil {
		if errors.Is(err, peer.ErrUntrusted) {
			// Kept matchable: a refused peer is not an unreachable one
			// (settings goes on file-only only for the latter).
			return nil, nil, fmt.Errorf("%w to %s: %w", ErrConnect, o.Address(), err)
		}
		return nil, nil, fmt.Errorf("%w to %s: %s", ErrConnect, o.Address(), describe(err))
	}
	mu.Lock()
	defer mu.Unlock()
	return client, verified, nil
}

// identify is peer.Identify; a test replaces it to play a server on
// another host, which a single machine cannot produce.
var identify = peer.Identify

// verifyPeer decides whether the server behind c may be talked to (and
// sent the password): a process on this host must pass peer.Verify; a
// server on another host gets a password only over TLS whose certificate
// is verified.
func (o *Options) verifyPeer(ctx context.Context, c net.Conn) (*peer.Process, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout())
	defer cancel()
	p, err := identify(ctx, c)
	if err == nil && p != nil {
		err = p.Verify()
	}
	if err != nil {
		return nil, fmt.Errorf("refusing the server: %w; nothing was sent to it", err)
	}
	unverifiedTLS := !o.TLS || (o.ValidateCerts != nil && !*o.ValidateCerts)
	if p == nil && !o.LoginPassword.IsSet() && o.CarriesSecrets && unverifiedTLS {
		return nil, fmt.Errorf("refusing to send the task's secrets to %s: the server is not on this host, and a secret goes to another host only over TLS with a verified certificate (tls: true, validate_certs: true); nothing was sent to it", o.Address())
	}
	if p == nil && o.LoginPassword.IsSet() && unverifiedTLS {
		return nil, fmt.Errorf("refusing to send the password to %s: the server is not on this host, and a password goes to another host only over TLS with a verified certificate (tls: true, validate_certs: true); nothing was sent to it", o.Address())
	}
	return p, nil
}

// describe turns a connection error into text without any credential.
func describe(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS"):
		return "authentication failed (wrong user name or password, or the user is disabled)"
	case strings.Contains(msg, "NOAUTH"):
		return "the server requires authentication: set login_user and login_password"
	case strings.Contains(msg, "NOPERM"):
		return "the login user lacks a permission needed to connect: " + msg
	}
	var tlsErr *tls.CertificateVerificationError
	if errors.As(err, &tlsErr) {
		return "the server's TLS certificate did not verify: " + tlsErr.Err.Error()
	}
	return msg
}

// Timeout is the context deadline a module uses for its commands.
func (o *Options) Timeout() time.Duration { return o.timeout() * 6 }

// ParseInfo reads the text of an INFO reply into field: value pairs
// (section headers and blank lines skipped).
func ParseInfo(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}
