package audit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/policy"
	"github.com/valkeyops/secure/internal/testserver"
)

const (
	adminPassword    = "admin-Pw-4f1c9a"
	appPassword      = "app-Pw-77d2e0"
	insecureRequire  = "requirepass-Pw-93ab51"
	insecureAppUsers = "user app on nopass ~* &* +@all\n"
	// A leftover disabled user and a user with a well-known password.
	insecureLeftovers = "user old off >old-Pw-1c2d3e ~* +@all\nuser weak on >foobared ~app:* +get\n"
)

// secureServer is a real server that passes every rule a server can pass
// while TLS is on next to the plain port (VK-011 fails: the test client
// needs the plain port).
func secureServer(t *testing.T) (*testserver.Server, *Gathered) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o750))
	acl := filepath.Join(dir, "users.acl")
	require.NoError(t, os.WriteFile(acl, []byte(
		"user default off resetchannels -@all\n"+
			"user admin on >"+adminPassword+" ~* &* +@all\n"+
			"user app on >"+appPassword+" ~app:* &app:* +@read +@write -@dangerous\n"), 0o640))
	ca, cert, key := writeIssuedCert(t, dir)
	srv := testserver.StartWith(t, testserver.Options{Dir: dir, Extra: []string{
		"protected-mode yes",
		"enable-debug-command no",
		"enable-module-command no",
		"enable-protected-configs no",
		"maxmemory 100mb",
		"maxclients 1000",
		"hide-user-data-from-log yes",
		`save "3600 1"`,
		"aclfile " + acl,
		"unixsocket " + filepath.Join(dir, "s.sock"),
		"unixsocketperm 700",
		"tls-port " + strconv.Itoa(freePort(t)),
		"tls-cert-file " + cert,
		"tls-key-file " + key,
		"tls-ca-cert-file " + ca,
		"tls-auth-clients yes",
		`tls-protocols "TLSv1.2 TLSv1.3"`,
		"tls-replication yes",
		`tls-ciphers "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:!aNULL:!RC4"`,
		`tls-ciphersuites "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"`,
		"timeout 300",
		"tcp-keepalive 60",
		"maxmemory-clients 10%",
		"sanitize-dump-payload yes",
		"loglevel notice",
	}})
	// A snapshot, private as the role's UMask makes it.
	do(t, srv.Port, "admin", adminPassword, "SAVE")
	require.NoError(t, os.Chmod(filepath.Join(dir, "dump.rdb"), 0o600))
	return srv, gatherServer(t, srv, "admin", adminPassword)
}

// insecureServer is a real server that breaks every rule it can while
// listening on 127.0.0.1 only.
func insecureServer(t *testing.T) (*testserver.Server, *Gathered) {
	t.Helper()
	dir := t.TempDir()
	acl := filepath.Join(dir, "users.acl")
	require.NoError(t, os.WriteFile(acl, []byte(insecureAppUsers+insecureLeftovers), 0o644))
	require.NoError(t, os.Chmod(acl, 0o644))
	cert, key := writeCert(t, dir, 5*24*time.Hour, 0o644)
	srv := testserver.StartWith(t, testserver.Options{Dir: dir, Extra: []string{
		"protected-mode no",
		"enable-debug-command yes",
		"enable-module-command yes",
		"enable-protected-configs yes",
		"maxmemory 0",
		"hide-user-data-from-log no",
		`save ""`,
		"appendonly no",
		`logfile ""`,
		"requirepass " + insecureRequire,
		"aclfile " + acl,
		`rename-command FLUSHALL ""`,
		"unixsocket " + filepath.Join(dir, "s.sock"),
		"unixsocketperm 777",
		"tls-port " + strconv.Itoa(freePort(t)),
		"tls-cert-file " + cert,
		"tls-key-file " + key,
		"tls-ca-cert-file " + cert,
		"tls-auth-clients no",
		`tls-protocols "TLSv1.1 TLSv1.2"`,
		"tls-replication no",
		`tls-ciphers "HIGH:RC4-SHA:DES-CBC3-SHA"`,
		`tls-ciphersuites "TLS_AES_128_CCM_8_SHA256:TLS_AES_128_GCM_SHA256"`,
		"tcp-keepalive 0",
		"client-output-buffer-limit pubsub 0 0 0",
		"client-query-buffer-limit 2gb",
		"acl-pubsub-default allchannels",
		"loglevel debug",
		"acllog-max-len 0",
		"sanitize-dump-payload no",
		"tcp-backlog 8192",
		"disable-thp no",
	}})
	srv.Password = insecureRequire
	require.NoError(t, os.Chmod(srv.ConfPath, 0o644))
	require.NoError(t, os.Chmod(dir, 0o777))
	// What a careless rotation leaves: the server still serves the good
	// certificate from memory, the file now holds a weak, self-signed one.
	writeWeakCert(t, cert, 5*24*time.Hour)
	// A snapshot readable by every local user (the server's umask).
	do(t, srv.Port, "", insecureRequire, "SAVE")
	require.NoError(t, os.Chmod(filepath.Join(dir, "dump.rdb"), 0o644))
	return srv, gatherServer(t, srv, "", insecureRequire)
}

// nobodyServer runs valkey-server as the unprivileged user nobody.
func nobodyServer(t *testing.T) *Gathered {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a server as nobody")
	}
	bin := testserver.Bin(t)
	dir, err := os.MkdirTemp("", "valkeyops-nobody-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chown(dir, 65534, 65534))
	port := freePort(t)
	conf := filepath.Join(dir, "valkey.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nlogfile %s/log\n", port, dir, dir)), 0o644))
	cmd := exec.Command(bin, conf)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var g *Gathered
	require.Eventually(t, func() bool {
		g = gatherPort(port)
		return g != nil
	}, 10*time.Second, 50*time.Millisecond)
	return g
}

// hardenedConf is a config file that passes every rule lint can check.
const hardenedConf = `bind 127.0.0.1 -::1
protected-mode yes
port 0
tls-port 6380
tls-auth-clients yes
tls-protocols "TLSv1.2 TLSv1.3"
tls-replication yes
enable-debug-command no
enable-module-command no
enable-protected-configs no
maxmemory 1gb
maxclients 2000
hide-user-data-from-log yes
save 3600 1 300 100
logfile /var/log/valkey/valkey-server.log
`

func TestEveryRuleHasAPassingAndAFailingCase(t *testing.T) {
	testserver.Bin(t)
	pol := baseline(t)
	secureSrv, secure := secureServer(t)
	insecureSrv, insecure := insecureServer(t)
	nobody := nobodyServer(t)
	fixed := baseline(t)
	require.NoError(t, fixed.Add(policy.Source{Name: "fixed.yml", Data: []byte(`version: 1
rules:
  - id: VK-025
    check:
      version: {fixed: {"8.0": "8.0.1"}}
`)}))
	debian, err := os.ReadFile("../conffile/testdata/debian-valkey.conf")
	require.NoError(t, err)

	var trioMajority, trioMinority *Gathered
	sources := map[string]func() map[string]policy.Outcome{
		"secure":             func() map[string]policy.Outcome { return statuses(pol, secure) },
		"insecure":           func() map[string]policy.Outcome { return statuses(pol, insecure) },
		"nobody":             func() map[string]policy.Outcome { return statuses(pol, nobody) },
		"secure+8.0.1 fixed": func() map[string]policy.Outcome { return statuses(fixed, secure) },
		"file: bind 0.0.0.0": func() map[string]policy.Outcome {
			return statuses(pol, gatherFile(t, "bind 0.0.0.0\n"))
		},
		"file: debian": func() map[string]policy.Outcome {
			return statuses(pol, gatherFile(t, string(debian)))
		},
		// Cluster nodes (internal/audit/cluster_test.go).
		"cluster: replica on another host":  func() map[string]policy.Outcome { return statuses(pol, clusterPair(t, true, "127.0.0.2")) },
		"cluster: replica on the same host": func() map[string]policy.Outcome { return statuses(pol, clusterPair(t, true, "127.0.0.1")) },
		"cluster: no replica":               func() map[string]policy.Outcome { return statuses(pol, clusterPair(t, true, "")) },
		"cluster: no slots":                 func() map[string]policy.Outcome { return statuses(pol, clusterPair(t, false, "")) },
		"file: hardened": func() map[string]policy.Outcome {
			return statuses(pol, gatherFile(t, hardenedConf, "user default off", "user admin on >x ~* +@all"))
		},
		// The host rules where the machine cannot be changed: its kernel
		// settings and service manager as files of a test host.
		"secure, systemd with the drop-in": func() map[string]policy.Outcome {
			return statuses(pol, regather(t, secureSrv, "admin", adminPassword, systemdHost(t, true)))
		},
		"secure, systemd without the drop-in, overcommit 0": func() map[string]policy.Outcome {
			h := systemdHost(t, false)
			h.file(t, "/proc/sys/vm/overcommit_memory", "0\n")
			return statuses(pol, regather(t, secureSrv, "admin", adminPassword, h))
		},
		"insecure, THP always": func() map[string]policy.Outcome {
			h := newHost()
			h.file(t, "/sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never\n")
			return statuses(pol, regather(t, insecureSrv, "", insecureRequire, h))
		},
		"module root's": func() map[string]policy.Outcome { return statuses(pol, moduleHost(t, 0o755)) },
		"module others can write": func() map[string]policy.Outcome {
			return statuses(pol, moduleHost(t, 0o777))
		},
		// Replication groups and cluster nodes (group_rules_test.go).
		"replication: least-privilege user, min-replicas 1": func() map[string]policy.Outcome {
			_, r := replicationGroup(t, "resetchannels -@all +psync +replconf +ping", replLogin, nil)
			return statuses(pol, r)
		},
		"replication: admin as replication user": func() map[string]policy.Outcome {
			_, r := replicationGroup(t, "~* &* +@all", replLogin, nil)
			return statuses(pol, r)
		},
		"replication: replica without login": func() map[string]policy.Outcome {
			_, r := replicationGroup(t, "-@all +psync +replconf +ping", nil, nil)
			return statuses(pol, r)
		},
		"replication: primary, min-replicas 1": func() map[string]policy.Outcome {
			p, _ := replicationGroup(t, "-@all +psync +replconf +ping", replLogin, []string{"min-replicas-to-write 1"})
			return statuses(pol, p)
		},
		"replication: primary, min-replicas 0": func() map[string]policy.Outcome {
			p, _ := replicationGroup(t, "-@all +psync +replconf +ping", nil, nil)
			return statuses(pol, p)
		},
		"cluster: TLS, tls-cluster yes": func() map[string]policy.Outcome { return statuses(pol, tlsClusterNode(t, "yes")) },
		"cluster: TLS, tls-cluster no":  func() map[string]policy.Outcome { return statuses(pol, tlsClusterNode(t, "no")) },
		"cluster: full coverage chosen": func() map[string]policy.Outcome {
			return statuses(pol, clusterNode(t, "cluster-require-full-coverage no"))
		},
		"cluster: announces an address it binds": func() map[string]policy.Outcome { return statuses(pol, clusterNode(t)) },
		"cluster: announces an address not bound": func() map[string]policy.Outcome {
			return statuses(pol, clusterNode(t, "cluster-announce-ip 127.0.0.9"))
		},
		"sentinel: hardened": func() map[string]policy.Outcome { return statuses(pol, hardenedSentinel(t)) },
		"sentinel: open":     func() map[string]policy.Outcome { return statuses(pol, openSentinel(t)) },
		"sentinels: three, quorum 2": func() map[string]policy.Outcome {
			trioMajority, trioMinority = sentinelTrio(t)
			return statuses(pol, trioMajority)
		},
		"sentinels: three, quorum 1 on one": func() map[string]policy.Outcome {
			require.NotNil(t, trioMinority, "the quorum 2 case runs first")
			return statuses(pol, trioMinority)
		},
		"failed save":               func() map[string]policy.Outcome { return statuses(pol, failedSave(t)) },
		"written, two days unsaved": func() map[string]policy.Outcome { return statuses(pol, unsavedWrite(t)) },
	}
	cache := map[string]map[string]policy.Outcome{}
	get := func(src string) map[string]policy.Outcome {
		if cache[src] == nil {
			cache[src] = sources[src]()
		}
		return cache[src]
	}
	cases := []struct{ rule, pass, fail string }{
		{"VK-001", "secure", "file: bind 0.0.0.0"},
		{"VK-002", "secure", "insecure"},
		{"VK-003", "secure", "file: debian"},
		{"VK-004", "secure", "insecure"},
		{"VK-005", "secure", "insecure"},
		{"VK-006", "secure", "insecure"},
		{"VK-007", "secure", "insecure"},
		{"VK-008", "secure", "insecure"},
		{"VK-009", "secure", "insecure"},
		{"VK-010", "secure", "insecure"},
		{"VK-011", "file: hardened", "secure"},
		{"VK-012", "secure", "insecure"},
		{"VK-013", "secure", "insecure"},
		{"VK-014", "secure", "insecure"},
		{"VK-015", "secure", "insecure"},
		{"VK-016", "secure", "insecure"},
		{"VK-017", "secure", "insecure"},
		{"VK-018", "secure", "insecure"},
		{"VK-019", "secure", "insecure"},
		{"VK-020", "secure", "insecure"},
		{"VK-021", "secure", "insecure"},
		{"VK-022", "secure", "insecure"},
		{"VK-023", "secure", "insecure"},
		{"VK-024", "nobody", "secure"},
		{"VK-025", "secure+8.0.1 fixed", "secure"},
		{"VK-026", "secure", "insecure"},
		{"VK-027", "secure", "insecure"},
		{"VK-028", "secure", "insecure"},
		{"VK-029", "secure", "insecure"},
		{"VK-050", "secure", "file: bind 0.0.0.0"},
		{"VK-051", "secure", "insecure"},
		{"VK-052", "secure", "insecure"},
		{"VK-053", "secure", "insecure"},
		{"VK-054", "secure", "insecure"},
		{"VK-055", "secure", "insecure"},
		{"VK-056", "secure", "secure, systemd without the drop-in, overcommit 0"},
		{"VK-057", "insecure", "insecure, THP always"},
		{"VK-058", "secure", "insecure"},
		{"VK-059", "secure, systemd with the drop-in", "secure, systemd without the drop-in, overcommit 0"},
		{"VK-060", "secure", "insecure"},
		{"VK-061", "secure", "insecure"},
		{"VK-062", "secure", "insecure"},
		{"VK-063", "secure", "insecure"},
		{"VK-064", "secure", "insecure"},
		{"VK-065", "secure", "file: bind 0.0.0.0"},
		{"VK-066", "secure", "insecure"},
		{"VK-067", "secure", "insecure"},
		{"VK-068", "secure", "insecure"},
		{"VK-069", "secure", "insecure"},
		{"VK-070", "secure", "insecure"},
		{"VK-071", "secure", "insecure"},
		{"VK-072", "module root's", "module others can write"},
		{"VK-073", "secure", "failed save"},
		{"VK-074", "secure", "written, two days unsaved"},
		{"VK-075", "secure", "insecure"},
		{"VK-040", "cluster: replica on another host", "cluster: no slots"},
		{"VK-041", "cluster: replica on another host", "cluster: no slots"},
		{"VK-042", "cluster: replica on another host", "cluster: no replica"},
		{"VK-043", "cluster: replica on another host", "cluster: replica on the same host"},
		{"VK-044", "cluster: TLS, tls-cluster yes", "cluster: TLS, tls-cluster no"},
		{"VK-045", "cluster: full coverage chosen", "cluster: announces an address it binds"},
		{"VK-046", "cluster: announces an address it binds", "cluster: announces an address not bound"},
		{"VK-076", "replication: least-privilege user, min-replicas 1", "replication: replica without login"},
		{"VK-077", "replication: least-privilege user, min-replicas 1", "replication: admin as replication user"},
		{"VK-078", "replication: primary, min-replicas 1", "replication: primary, min-replicas 0"},
		{"VK-079", "sentinel: hardened", "sentinel: open"},
		{"VK-080", "sentinel: hardened", "sentinel: open"},
		{"VK-081", "sentinel: hardened", "sentinel: open"},
		{"VK-082", "sentinel: hardened", "sentinel: open"},
		{"VK-083", "sentinels: three, quorum 2", "sentinels: three, quorum 1 on one"},
		{"VK-084", "sentinels: three, quorum 2", "sentinel: hardened"},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.rule] = true
		t.Run(c.rule, func(t *testing.T) {
			p := get(c.pass)[c.rule]
			assert.Equal(t, policy.Pass, p.Status, "%s on %s should pass: %s", c.rule, c.pass, p.Message)
			f := get(c.fail)[c.rule]
			assert.Equal(t, policy.Fail, f.Status, "%s on %s should fail: %s", c.rule, c.fail, f.Message)
			assert.NotEmpty(t, f.Message)
			for _, secret := range []string{adminPassword, appPassword, insecureRequire} {
				assert.NotContains(t, f.Message, secret)
			}
		})
	}
	for _, r := range pol.Rules {
		assert.True(t, covered[r.ID], "rule %s has no test case", r.ID)
	}
	assert.GreaterOrEqual(t, len(pol.Rules), 55)
}

// The facts gathered from a real server never keep a password hash, and the
// requirepass value is only kept to be masked.
func TestGatheredSecretsAreKnown(t *testing.T) {
	_, g := insecureServer(t)
	assert.Contains(t, g.Secrets, insecureRequire)
	for _, u := range g.Facts.Users {
		assert.NotContains(t, fmt.Sprintf("%+v", u), "#")
	}
}

func TestStockDebianConfigHasFindings(t *testing.T) {
	data, err := os.ReadFile("../conffile/testdata/debian-valkey.conf")
	require.NoError(t, err)
	g := gatherFile(t, string(data))
	rep := BuildReport(baseline(t), g, Drift{})
	ids := []string{}
	for _, f := range rep.Findings {
		ids = append(ids, f.ID)
	}
	// Debian's file: no aclfile, no payload sanitizing, no idle timeout, no client memory limit.
	assert.Equal(t, []string{"VK-003", "VK-005", "VK-006", "VK-007", "VK-020", "VK-065", "VK-071", "VK-021", "VK-060", "VK-064"}, ids)
	assert.False(t, rep.Passed)
}

// A config file that includes another is read through the include.
func TestLintFollowsIncludes(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "extra.conf")
	require.NoError(t, os.WriteFile(inc, []byte("enable-debug-command yes\n"), 0o640))
	g := gatherFile(t, hardenedConf+"include "+inc+"\n", "user default off")
	out := statuses(baseline(t), g)
	assert.Equal(t, policy.Fail, out["VK-008"].Status)
	assert.Contains(t, out["VK-008"].Message, "enable-debug-command")
}
