package tls

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible/ansibletest"
	"github.com/valkeyops/secure/internal/testserver"
	"github.com/valkeyops/secure/internal/x509check"
	"github.com/valkeyops/secure/internal/x509check/certtest"
)

// mod runs valkey_tls in tests as the binary does (ansibletest.Module).
var mod = ansibletest.Module[Fields]{Name: "valkey_tls", Main: Main}

// lab is a plain test server plus a CA, a server certificate and a
// destination directory for the material.
type lab struct {
	srv     *testserver.Server
	ca      *certtest.CA
	leaf    *certtest.Leaf
	dest    string
	tlsPort int
}

func newLab(t *testing.T, extra ...string) *lab {
	t.Helper()
	srv := testserver.Start(t, extra...)
	ca := certtest.NewCA(t, "valkeyops test CA")
	dest := filepath.Join(t.TempDir(), "tls")
	require.NoError(t, os.Mkdir(dest, 0o755))
	return &lab{srv: srv, ca: ca, leaf: ca.Issue(t, certtest.Options{}), dest: dest, tlsPort: freePort(t)}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// args are the module arguments that deploy l's material as content.
func (l *lab) args(extra map[string]any) map[string]any {
	a := map[string]any{
		"login_port": l.srv.Port,
		"cert":       string(l.leaf.CertPEM),
		"key":        string(l.leaf.KeyPEM),
		"ca":         string(l.ca.PEM),
		"dest_dir":   l.dest,
		"port":       l.tlsPort,
	}
	for k, v := range extra {
		if v == nil {
			delete(a, k)
			continue
		}
		a[k] = v
	}
	return a
}

// state is everything a refused task must leave as it was: the server's
// tls-* values (and port), the config file and every file in dest.
type state struct {
	tls   string
	port  string
	conf  []byte
	files map[string]string
}

func (l *lab) state(t *testing.T) state {
	t.Helper()
	s := state{tls: l.srv.CLI("--raw", "CONFIG", "GET", "tls-*"), port: l.srv.ConfigGet("port"), conf: l.srv.ReadConf(), files: map[string]string{}}
	entries, err := os.ReadDir(l.dest)
	require.NoError(t, err)
	for _, e := range entries {
		p := filepath.Join(l.dest, e.Name())
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		fi, err := os.Stat(p)
		require.NoError(t, err)
		s.files[e.Name()] = fmt.Sprintf("%04o %s", fi.Mode().Perm(), b)
	}
	return s
}

// served is the fingerprint a TLS client sees on port.
func served(t *testing.T, port int) string {
	t.Helper()
	var fp string
	c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			fp = x509check.Fingerprint(raw[0])
			return nil
		},
	})
	require.NoError(t, err)
	_ = c.Close()
	return fp
}

// ping runs PING over TLS, verifying the server with ca for 127.0.0.1,
// optionally presenting a client certificate, and returns the first reply
// line or the error.
func ping(port int, ca *certtest.CA, client *certtest.Leaf, maxVersion uint16) (string, error) {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS10, MaxVersion: maxVersion}
	if client != nil {
		cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{client.Cert.Raw}, PrivateKey: client.Key}}
	}
	c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func mode(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fmt.Sprintf("%04o", fi.Mode().Perm())
}

func confLines(t *testing.T, l *lab, prefix string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(string(l.srv.ReadConf()), "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return out
}
