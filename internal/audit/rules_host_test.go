package audit

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/policy"
	"github.com/valkeyops/secure/internal/testserver"
	"github.com/valkeyops/secure/internal/x509check/certtest"
)

// writeIssuedCert writes a CA and a server certificate it issued (EC P-256,
// SHA-256) with the server's key (0600) into dir.
func writeIssuedCert(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	authority := certtest.NewCA(t, "valkeyops test CA")
	leaf := authority.Issue(t, certtest.Options{})
	ca, cert, key = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	require.NoError(t, os.WriteFile(ca, authority.PEM, 0o644))
	require.NoError(t, os.WriteFile(cert, leaf.CertPEM, 0o644))
	require.NoError(t, os.WriteFile(key, leaf.KeyPEM, 0o600))
	return ca, cert, key
}

// writeWeakCert replaces path with a self-signed certificate on a 1024-bit
// RSA key signed with SHA-1 (OpenSSL at Debian's security level would not
// load it: it is what a rotation leaves on disk, not what the server serves).
func writeWeakCert(t *testing.T, path string, valid time.Duration) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(time.Now().UnixNano()),
		Subject:            pkix.Name{CommonName: "weak"},
		NotBefore:          time.Now().Add(-time.Hour),
		NotAfter:           time.Now().Add(valid),
		SignatureAlgorithm: x509.SHA1WithRSA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
}

// do runs one command on a test server (valkey-go, so no password on argv).
func do(t *testing.T, port int, user, password string, cmd ...string) string {
	t.Helper()
	c, err := conn.Open(&conn.Options{LoginPort: port, LoginUser: user, LoginPassword: ansible.Secret(password)})
	require.NoError(t, err)
	defer c.Close()
	out, err := c.Do(context.Background(), c.B().Arbitrary(cmd...).Build()).ToString()
	require.NoError(t, err, strings.Join(cmd, " "))
	return out
}

// testHost is the target host's disk with some paths answered from files of
// the test instead: the machine's kernel settings and service manager are not
// the test's to change (/proc/sys is read-only in a lab host too), so a
// host with overcommit 0 or systemd is files in a temp dir. Every other path
// is the real disk.
type testHost struct {
	LocalFS
	root  string
	paths map[string]string
}

func newHost() *testHost { return &testHost{paths: map[string]string{}} }

func (h *testHost) local(p string) string {
	for hp, lp := range h.paths {
		if p == hp || strings.HasPrefix(p, hp+"/") {
			return lp + strings.TrimPrefix(p, hp)
		}
	}
	return p
}

func (h *testHost) ReadFile(p string) ([]byte, error) { return h.LocalFS.ReadFile(h.local(p)) }

func (h *testHost) Stat(p string) *policy.FileInfo {
	fi := h.LocalFS.Stat(h.local(p))
	fi.Path = p
	return fi
}

func (h *testHost) file(t *testing.T, hostPath, content string) {
	t.Helper()
	local := filepath.Join(t.TempDir(), filepath.Base(hostPath))
	require.NoError(t, os.WriteFile(local, []byte(content), 0o644))
	h.paths[hostPath] = local
}

// systemdHost is a host running systemd, with or without the hardening
// drop-in of the default instance (valkey-server.service).
func systemdHost(t *testing.T, dropIn bool) *testHost {
	t.Helper()
	h := newHost()
	run := t.TempDir()
	h.paths["/run/systemd/system"] = run
	etc := t.TempDir()
	d := filepath.Join(etc, "valkey-server.service.d")
	require.NoError(t, os.Mkdir(d, 0o755))
	if dropIn {
		require.NoError(t, os.WriteFile(filepath.Join(d, SandboxDropIn), []byte("[Service]\nNoNewPrivileges=true\n"), 0o644))
	}
	h.paths["/etc/systemd/system"] = etc
	return h
}

// regather gathers a running test server's facts, as the module does, with
// fsys as the host's disk.
func regather(t *testing.T, srv *testserver.Server, user, password string, fsys HostFS) *Gathered {
	t.Helper()
	c, err := conn.Open(&conn.Options{LoginPort: srv.Port, LoginUser: user, LoginPassword: ansible.Secret(password)})
	require.NoError(t, err)
	defer c.Close()
	g, err := Gather(context.Background(), Source{Client: c, FS: fsys, LocalServer: true})
	require.NoError(t, err)
	return g
}

// moduleHost is a config file loading a module file with the given mode,
// inspected on this host (no server: a fake module would not load).
func moduleHost(t *testing.T, mode os.FileMode) *Gathered {
	t.Helper()
	dir := t.TempDir()
	mod := filepath.Join(dir, "mod.so")
	require.NoError(t, os.WriteFile(mod, []byte("\x7fELF"), mode))
	require.NoError(t, os.Chmod(mod, mode))
	conf := filepath.Join(dir, "valkey.conf")
	require.NoError(t, os.WriteFile(conf, []byte(hardenedConf+"loadmodule "+mod+"\n"), 0o640))
	g, err := Gather(context.Background(), Source{FS: LocalFS{}, ConfigFile: conf})
	require.NoError(t, err)
	return g
}

// failedSave is a server whose last BGSAVE failed: its data directory was
// removed under it, so the child cannot create its temp file.
func failedSave(t *testing.T) *Gathered {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.Mkdir(data, 0o750))
	srv := testserver.StartWith(t, testserver.Options{Extra: []string{"dir " + data, `save "3600 1"`}})
	require.NoError(t, os.RemoveAll(data))
	do(t, srv.Port, "", "", "BGSAVE")
	// The save runs in a child: wait for its outcome (bounded).
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(do(t, srv.Port, "", "", "INFO", "persistence"), "rdb_bgsave_in_progress:0\r\nrdb_last_save_time") ||
		!strings.Contains(do(t, srv.Port, "", "", "INFO", "persistence"), "rdb_last_bgsave_status:err") {
		require.True(t, time.Now().Before(deadline), "BGSAVE did not fail within 60s: %s", do(t, srv.Port, "", "", "INFO", "persistence"))
		time.Sleep(20 * time.Millisecond)
	}
	return gatherServer(t, srv, "", "")
}

// unsavedWrite is a server with a write that no save has covered, audited
// as if two days had passed (the audit's clock is a fact like the others).
func unsavedWrite(t *testing.T) *Gathered {
	t.Helper()
	srv := testserver.StartWith(t, testserver.Options{Extra: []string{`save "3600 1"`}})
	do(t, srv.Port, "", "", "SET", "k", "v")
	g := gatherServer(t, srv, "", "")
	g.Facts.Now = g.Facts.Now.Add(48 * time.Hour)
	return g
}

func TestKernelSettingsUnreadableAreSaid(t *testing.T) {
	h := newHost()
	h.file(t, "/proc/sys/vm/overcommit_memory", "one\n")
	h.paths["/proc/sys/net/core/somaxconn"] = filepath.Join(t.TempDir(), "missing")
	h.file(t, "/sys/kernel/mm/transparent_hugepage/enabled", "always madvise never\n")
	k := readKernel(h)
	assert.Empty(t, k.Values)
	assert.Equal(t, `/proc/sys/vm/overcommit_memory: not a number: "one"`, k.Errors["vm.overcommit_memory"])
	assert.Equal(t, "/proc/sys/net/core/somaxconn: no such file or directory", k.Errors["net.core.somaxconn"])
	assert.Equal(t, `/sys/kernel/mm/transparent_hugepage/enabled: no selected mode in "always madvise never"`, k.Errors["transparent_hugepage"])
	out := statuses(baseline(t), &Gathered{Facts: &policy.Facts{Host: true, Kernel: k, Config: gatherFile(t, hardenedConf).Facts.Config}})
	assert.Equal(t, policy.Skip, out["VK-056"].Status)
	assert.Equal(t, `cannot read vm.overcommit_memory: /proc/sys/vm/overcommit_memory: not a number: "one"`, out["VK-056"].Message)
}

// The machine's own kernel settings are read as they are (no test host).
func TestKernelSettingsOfThisMachine(t *testing.T) {
	k := readKernel(LocalFS{})
	for name, path := range kernelFiles {
		b, err := os.ReadFile(path)
		if err != nil {
			assert.Contains(t, k.Errors[name], path)
			continue
		}
		want := strings.TrimSpace(string(b))
		if name == "transparent_hugepage" {
			want = thpMode.FindStringSubmatch(want)[1]
		}
		assert.Equal(t, want, k.Values[name], name)
	}
}

// Without systemd the sandbox rule does not apply; with it, a drop-in anyone
// but root can write is no sandbox (whoever writes it chooses what runs).
func TestSandboxDropIn(t *testing.T) {
	assert.Equal(t, &policy.SandboxInfo{}, readSandbox(newHost(), "/etc/valkey/valkey.conf"))
	h := systemdHost(t, true)
	s := readSandbox(h, "/etc/valkey/valkey-cache.conf")
	assert.Equal(t, "valkey-server@cache.service", s.Unit)
	assert.False(t, s.Found)
	assert.Equal(t, "/etc/systemd/system/valkey-server@cache.service.d/valkeyops-hardening.conf does not exist", s.Problem)
	s = readSandbox(h, "/etc/valkey/valkey.conf")
	assert.True(t, s.Found, s.Problem)
	require.NoError(t, os.Chmod(filepath.Join(h.paths["/etc/systemd/system"], "valkey-server.service.d", SandboxDropIn), 0o666))
	s = readSandbox(h, "/etc/valkey/valkey.conf")
	assert.False(t, s.Found)
	assert.Equal(t, "/etc/systemd/system/valkey-server.service.d/valkeyops-hardening.conf is writable by others than root", s.Problem)
	if os.Geteuid() == 0 {
		p := filepath.Join(h.paths["/etc/systemd/system"], "valkey-server.service.d", SandboxDropIn)
		require.NoError(t, os.Chmod(p, 0o644))
		require.NoError(t, os.Chown(p, 65534, 65534))
		assert.Equal(t, p[:0]+"/etc/systemd/system/valkey-server.service.d/valkeyops-hardening.conf is not owned by root", readSandbox(h, "/etc/valkey/valkey.conf").Problem)
	}
}

func TestFindingMessagesOfTheNewRules(t *testing.T) {
	pol := baseline(t)
	srv, insecure := insecureServer(t)
	out := statuses(pol, insecure)
	// The served certificate is read too: the insecure server still serves its
	// first (self-signed, P-256, SHA-256) one, so only VK-055 names it.
	tlsPort := strings.Fields(srv.ConfigGet("tls-port"))[1]
	served := "the certificate served on 127.0.0.1:" + tlsPort + " (CN=valkeyops-test) is self-signed"
	assert.Contains(t, out["VK-055"].Message, served)
	assert.Contains(t, out["VK-014"].Message, "the certificate served on 127.0.0.1:"+tlsPort+" expires on")
	assert.NotContains(t, out["VK-053"].Message, "served")
	assert.NotContains(t, out["VK-054"].Message, "served")
	for id, want := range map[string]string{
		"VK-051": `tls-ciphers is "HIGH:RC4-SHA:DES-CBC3-SHA", which enables RC4-SHA, DES-CBC3-SHA`,
		"VK-052": `tls-ciphersuites is "TLS_AES_128_CCM_8_SHA256:TLS_AES_128_GCM_SHA256", which enables TLS_AES_128_CCM_8_SHA256`,
		"VK-053": "has a 1024-bit RSA key; at least 2048 bits are required",
		"VK-054": "is signed with a broken hash: CN=weak: SHA1-RSA",
		"VK-055": "(CN=weak) is self-signed: no CA stands behind it",
		"VK-058": "net.core.somaxconn is ",
		"VK-062": `no limit for the pubsub class`,
		"VK-067": `disabled ACL user "old" (from ACL LIST)`,
		"VK-068": `enabled ACL user "weak" has a well-known password`,
		"VK-069": `loglevel is "debug"`,
		"VK-075": "dump.rdb: mode 0644 allows more than 0640",
	} {
		assert.Contains(t, out[id].Message, want, id)
	}
	// The well-known password is never named.
	assert.NotContains(t, fmt.Sprint(out), "foobared")
	f := statuses(pol, gatherFile(t, "bind 0.0.0.0 -::1 127.0.0.1 10.1.2.3\nport 6379\n"))["VK-050"]
	assert.Equal(t, `bind is "0.0.0.0 -::1 127.0.0.1 10.1.2.3": 0.0.0.0, 10.1.2.3 are beyond loopback`, f.Message)
	assert.Equal(t, policy.Skip, statuses(pol, gatherFile(t, "bind 0.0.0.0\nport 0\n"))["VK-050"].Status, "no plain port, nothing to say")
}

// The server's user owns the data directory and may fill the AOF directory
// with files: the audit looks at MaxAOFFiles of them (which ones is the
// directory's order), whatever the count, and files others can read fail VK-075.
func TestAOFDirectoryIsReadBounded(t *testing.T) {
	data := t.TempDir()
	aof := filepath.Join(data, "appendonlydir")
	require.NoError(t, os.Mkdir(aof, 0o750))
	for i := 0; i < MaxAOFFiles+500; i++ {
		p := filepath.Join(aof, fmt.Sprintf("f%05d", i))
		require.NoError(t, os.WriteFile(p, nil, 0o644))
		require.NoError(t, os.Chmod(p, 0o644))
	}
	conf := filepath.Join(t.TempDir(), "valkey.conf")
	require.NoError(t, os.WriteFile(conf, []byte(hardenedConf+"dir "+data+"\nappenddirname appendonlydir\n"), 0o640))
	g, err := Gather(context.Background(), Source{FS: LocalFS{}, ConfigFile: conf})
	require.NoError(t, err)
	assert.Len(t, g.Facts.Paths["data"], MaxAOFFiles, "no dump.rdb; the AOF files, bounded")
	out := statuses(baseline(t), g)["VK-075"]
	assert.Equal(t, policy.Fail, out.Status)
	assert.True(t, strings.HasPrefix(out.Message, aof+"/f"), out.Message[:80])
	assert.Contains(t, out.Message, ": mode 0644 allows more than 0640; ")
	assert.True(t, strings.HasSuffix(out.Message, "0640 and 997 more"), "a finding names a few files, not a thousand: %s", out.Message)
}

// The classic: Redis's sample config suggested "requirepass foobared". With no
// ACL users the default user's password is requirepass, checked by lint too.
func TestRequirepassIsAPasswordToo(t *testing.T) {
	pol := baseline(t)
	out := statuses(pol, gatherFile(t, hardenedConf+"requirepass foobared\n"))["VK-068"]
	assert.Equal(t, policy.Fail, out.Status)
	assert.Contains(t, out.Message, `enabled ACL user "default" has a well-known password`)
	assert.NotContains(t, out.Message, "foobared")
	out = statuses(pol, gatherFile(t, hardenedConf+"requirepass "+insecureRequire+"\n"))["VK-068"]
	assert.Equal(t, policy.Pass, out.Status, out.Message)
}
