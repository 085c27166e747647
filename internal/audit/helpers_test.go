package audit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/policy"
	"github.com/valkeyops/secure/internal/testserver"
)

// writeCert writes a self-signed certificate for 127.0.0.1 valid for the
// given duration and its key (mode keyMode) into dir.
func writeCert(t *testing.T, dir string, valid time.Duration, keyMode os.FileMode) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "valkeyops-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(valid),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	cert, key = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	require.NoError(t, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), keyMode))
	require.NoError(t, os.Chmod(key, keyMode))
	return cert, key
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// gatherServer gathers the facts of a running test server, as the module does.
func gatherServer(t *testing.T, srv *testserver.Server, user, password string) *Gathered {
	t.Helper()
	return regather(t, srv, user, password, LocalFS{})
}

// gatherFile gathers the facts lint sees: a config file (and aclfile) only.
func gatherFile(t *testing.T, conf string, aclLines ...string) *Gathered {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "valkey.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o640))
	src := Source{ConfigFile: path}
	if aclLines != nil {
		src.ACLFile = filepath.Join(dir, "users.acl")
		require.NoError(t, os.WriteFile(src.ACLFile, []byte(strings.Join(aclLines, "\n")+"\n"), 0o640))
	}
	g, err := Gather(context.Background(), src)
	require.NoError(t, err)
	return g
}

func baseline(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Build(false)
	require.NoError(t, err)
	return p
}

// statuses evaluates the policy: rule id -> status and message.
func statuses(p *policy.Policy, g *Gathered) map[string]policy.Outcome {
	out := map[string]policy.Outcome{}
	for _, o := range p.Evaluate(g.Facts) {
		out[o.Rule.ID] = o
	}
	return out
}

// gatherPort gathers from 127.0.0.1:port as the default user; nil when the
// server does not answer (yet).
func gatherPort(port int) *Gathered {
	c, err := conn.Open(&conn.Options{LoginPort: port})
	if err != nil {
		return nil
	}
	defer c.Close()
	g, err := Gather(context.Background(), Source{Client: c, FS: LocalFS{}, LocalServer: true})
	if err != nil {
		return nil
	}
	return g
}
