// Package audit gathers the facts a policy is evaluated against (the running
// server, its config file and aclfile, the host's files and the server
// process), computes drift between a desired state, the running server and
// the file, and builds the report that valkey_audit, `valkeyops lint` and
// `valkeyops drift` print. It only reads: nothing here changes a server or
// a file.
package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/valkeyops/secure/internal/conn"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/policy"
	"github.com/valkeyops/secure/internal/safefs"
	"github.com/valkeyops/secure/internal/topology"
	"github.com/valkeyops/secure/internal/x509check"
)

// HostFS reads the target host's files: the local disk for the module and
// lint, SFTP for the drift scanner.
type HostFS interface {
	ReadFile(path string) ([]byte, error)
	// Stat returns the file's mode and owner; a missing file is
	// Exists=false, any other problem is in Err.
	Stat(path string) *policy.FileInfo
}

// LocalFS is the local disk.
type LocalFS struct{}

// ReadFile reads a local file: a regular file only (a FIFO or a device
// would hang or never end), at most conffile.MaxFileSize bytes.
func (LocalFS) ReadFile(path string) ([]byte, error) {
	return safefs.ReadFile(path, conffile.MaxFileSize)
}

// Stat inspects a local file.
func (LocalFS) Stat(path string) *policy.FileInfo {
	fi := &policy.FileInfo{Path: path}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fi
	case err != nil:
		fi.Err = describePathErr(err)
		return fi
	}
	fi.Exists, fi.Mode, fi.IsDir = true, st.Mode().Perm(), st.IsDir()
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		fi.UID, fi.GID = int(sys.Uid), int(sys.Gid)
	}
	return fi
}

func describePathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Source says where the facts come from.
type Source struct {
	// Client is a connected server; nil without one (lint).
	Client valkey.Client
	// FS is the host the server runs on; nil when there is no host (lint
	// reads only ConfigFile and ACLFile, from the local disk).
	FS HostFS
	// ConfigFile overrides the path the server reports (INFO config_file).
	ConfigFile string
	// ACLFile overrides the aclfile directive's value.
	ACLFile string
	// LocalServer is true when the server runs on the host of FS (so its
	// process can be inspected through /proc).
	LocalServer bool
	// NoIncludes: include lines are not followed (over SFTP the included
	// files would be read from the wrong disk); a warning says so.
	NoIncludes bool
	// TLSHost is where the server's TLS port is reached to read the
	// certificate it serves (the login host); empty: the first address it
	// binds (a unix socket login). NoServedCert skips that handshake.
	TLSHost      string
	NoServedCert bool
}

// Gathered is the facts plus what the report needs besides them.
type Gathered struct {
	Facts    *policy.Facts
	Server   *ServerInfo
	Warnings []string
	// Secrets are values read from the server or the files that must
	// never be printed (requirepass, primaryauth, ...).
	Secrets []string
	// FileUsers are the users defined in the aclfile or config file (nil
	// when unknown); RuntimeUsers those from ACL LIST (nil when unknown).
	FileUsers    []policy.User
	RuntimeUsers []policy.User
	ACLFile      string
	// Replication is INFO replication (nil when it could not be read);
	// ReplID its master_replid, which a primary and its replicas share.
	Replication *topology.Replication
	ReplID      string
	// CA is the tls-ca-cert-file certificate (nil without one, or when the
	// host was not inspected): the cross-node rule compares its expiry.
	CA *policy.CertInfo
	// aclLines are the ACL LIST lines by user (password hashes included:
	// only ever digested with the run's compare key, never printed).
	aclLines map[string]string
	// sentinelPass is a Sentinel's sentinel-pass (digested likewise).
	sentinelPass string
}

// ServerInfo names the server.
type ServerInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

func (g *Gathered) warnf(format string, a ...any) {
	g.Warnings = append(g.Warnings, fmt.Sprintf(format, a...))
}

// Gather reads the facts. Only the server being unreachable or refusing
// CONFIG GET is an error; everything else that cannot be read is a warning
// and the rules that need it are skipped.
func Gather(ctx context.Context, src Source) (*Gathered, error) {
	g := &Gathered{Facts: &policy.Facts{Now: time.Now(), Host: src.FS != nil}}
	f := g.Facts
	if src.Client != nil {
		if err := g.readServer(ctx, src.Client); err != nil {
			return nil, err
		}
	}
	cfgPath := src.ConfigFile
	if cfgPath == "" && f.Info != nil {
		cfgPath = f.Info["config_file"]
	}
	fsys := src.FS
	if fsys == nil {
		fsys = LocalFS{}
	}
	if cfgPath != "" {
		g.readConfig(fsys, cfgPath, src.NoIncludes)
	}
	// The aclfile: the override, else the server's, else the file's.
	aclPath := src.ACLFile
	if aclPath == "" {
		if f.Runtime != nil {
			aclPath = f.Runtime["aclfile"]
		} else if f.Config != nil {
			if occ := f.Config.Occurrences("aclfile"); len(occ) > 0 && len(occ[len(occ)-1].Args) == 1 {
				aclPath = occ[len(occ)-1].Args[0]
			}
		}
	}
	if aclPath != "" && !filepath.IsAbs(aclPath) && f.Config != nil {
		aclPath = filepath.Join(filepath.Dir(f.Config.Path), aclPath)
	}
	g.ACLFile = aclPath
	if aclPath != "" {
		if data, err := fsys.ReadFile(aclPath); err != nil {
			g.warnf("could not read the aclfile %s: %s", aclPath, describePathErr(err))
		} else {
			var ws []string
			g.FileUsers, ws = policy.UsersFromACLFile(aclPath, data)
			g.Warnings = append(g.Warnings, ws...)
		}
	} else if f.Config != nil {
		var ws []string
		g.FileUsers, ws = policy.UsersFromConfig(f.Config)
		g.Warnings = append(g.Warnings, ws...)
	}
	requirepass := g.requirepass()
	switch {
	case g.RuntimeUsers != nil:
		f.Users, f.UsersFrom = g.RuntimeUsers, "ACL LIST"
	case aclPath != "" && g.FileUsers != nil:
		f.Users, f.UsersFrom = policy.WithDefaultUser(g.FileUsers, requirepass), aclPath
	case aclPath == "" && f.Config != nil:
		f.Users, f.UsersFrom = policy.WithDefaultUser(g.FileUsers, requirepass), f.Config.Path
	}
	if src.FS != nil {
		g.inspectHost(src.FS, src.LocalServer)
	}
	if src.Client != nil && !src.NoServedCert {
		g.readServed(ctx, src.TLSHost)
	}
	return g, nil
}

// readServed reads the certificate the server serves on its TLS port (a
// handshake; nothing is sent). Reached at host, else at the first address
// the server binds ("*" and "::*" through loopback).
func (g *Gathered) readServed(ctx context.Context, host string) {
	port, err := strconv.Atoi(g.Facts.Runtime["tls-port"])
	if err != nil || port <= 0 {
		return
	}
	if host == "" {
		host = "127.0.0.1"
		if words := strings.Fields(g.Facts.Runtime["bind"]); len(words) > 0 {
			if h := strings.TrimPrefix(words[0], "-"); h != "*" && h != "::*" {
				host = h
			}
		}
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	certs, err := x509check.Served(ctx, host, port, servedTimeout)
	if err != nil {
		g.warnf("could not read the certificate served on %s: %v", addr, err)
		return
	}
	g.Facts.Served = &policy.ServedCert{Address: addr, Cert: describeCerts(certs)}
}

// servedTimeout bounds the handshake that reads the served certificate.
const servedTimeout = 5 * time.Second

// requirepass is the default user's password when no ACL user says
// otherwise: the server's, else the file's last requirepass line ("" when
// none). It is a secret: only compared, never shown (Secrets holds it).
func (g *Gathered) requirepass() string {
	f := g.Facts
	if f.Runtime != nil {
		return f.Runtime["requirepass"]
	}
	if f.Config != nil {
		if occ := f.Config.Occurrences("requirepass"); len(occ) > 0 {
			if a := occ[len(occ)-1].Args; len(a) == 1 {
				return a[0]
			}
		}
	}
	return ""
}

func (g *Gathered) readServer(ctx context.Context, c valkey.Client) error {
	resps := c.DoMulti(ctx,
		c.B().Info().Section("server").Build(),
		c.B().ConfigGet().Parameter("*").Build(),
		c.B().AclList().Build(),
		c.B().Info().Section("replication").Build(),
		c.B().Info().Section("persistence").Build(),
	)
	infoText, err := resps[0].ToString()
	if err != nil {
		return fmt.Errorf("failed to read INFO server: %w", err)
	}
	if info := conn.ParseInfo(infoText); info["server_mode"] == "sentinel" {
		return g.readSentinel(ctx, c, info, &resps[2])
	}
	values, err := resps[1].AsStrMap()
	if err != nil {
		return fmt.Errorf("failed to read the server's configuration (CONFIG GET *): %w", err)
	}
	f := g.Facts
	f.Info = conn.ParseInfo(infoText)
	if text, err := resps[4].ToString(); err == nil {
		f.Persistence = conn.ParseInfo(text)
	}
	f.Runtime = make(map[string]string, len(values))
	for k, v := range values {
		k = strings.ToLower(k)
		f.Runtime[k] = v
		if d, ok := directives.Lookup(k); ok && d.Secret && v != "" {
			g.Secrets = append(g.Secrets, v)
		}
	}
	switch {
	case f.Info["valkey_version"] != "":
		g.Server = &ServerInfo{Name: "valkey", Version: f.Info["valkey_version"]}
	case f.Info["server_name"] != "":
		g.Server = &ServerInfo{Name: f.Info["server_name"], Version: f.Info["redis_version"]}
	default:
		g.Server = &ServerInfo{Name: "redis", Version: f.Info["redis_version"]}
	}
	g.readReplication(&resps[3])
	if f.Runtime["cluster-enabled"] == "yes" {
		g.readCluster(ctx, c)
	}
	g.readACLList(&resps[2])
	return nil
}

// readACLList reads ACL LIST into RuntimeUsers (left nil, with a warning,
// when the login user may not run it).
func (g *Gathered) readACLList(resp *valkey.ValkeyResult) {
	lines, err := resp.AsStrSlice()
	if err != nil {
		// Never quote the reply: it is an error, but be careful anyway.
		g.warnf("could not read ACL LIST (the login user may lack the permission): the ACL rules are checked from the files only")
		return
	}
	g.RuntimeUsers = []policy.User{}
	g.aclLines = map[string]string{}
	for _, l := range lines {
		u, err := policy.UserFromACLList(l)
		if err != nil {
			g.warnf("could not read a line of ACL LIST (%v): user %q is taken to have every right", err, u.Name)
		}
		g.RuntimeUsers = append(g.RuntimeUsers, u)
		g.aclLines[u.Name] = l
	}
}

// readSentinel reads a Sentinel: its own settings (SENTINEL CONFIG GET *;
// sentinel-pass is kept only as set or empty), its monitors (SENTINEL
// PRIMARIES, parsed strictly: a reply the parser refuses leaves the
// monitors unknown, with a warning) and its ACL users. A Sentinel has no
// CONFIG GET: the directive rules do not run on it (their targets).
func (g *Gathered) readSentinel(ctx context.Context, c valkey.Client, info map[string]string, acl *valkey.ValkeyResult) error {
	f := g.Facts
	f.Info = info
	g.Server = &ServerInfo{Name: "valkey-sentinel", Version: info["valkey_version"]}
	s := &policy.SentinelFacts{Config: map[string]string{}}
	r := c.DoMulti(ctx, c.B().Arbitrary("SENTINEL", "CONFIG", "GET", "*").Build(), c.B().Arbitrary("SENTINEL", "PRIMARIES").Build())
	values, err := r[0].AsStrMap()
	if err != nil {
		return fmt.Errorf("failed to read the Sentinel's configuration (SENTINEL CONFIG GET *): %w", err)
	}
	for k, v := range values {
		k = strings.ToLower(k)
		if k == "sentinel-pass" && v != "" {
			g.Secrets = append(g.Secrets, v)
			g.sentinelPass, v = v, "set"
		}
		s.Config[k] = v
	}
	if entries, err := r[1].ToArray(); err != nil {
		g.warnf("could not read SENTINEL PRIMARIES (the login user may lack the permission): the monitor rules are skipped")
	} else {
		for _, e := range entries {
			m, err := e.AsStrMap()
			if err == nil {
				var mon *topology.Monitor
				if mon, err = topology.ParseMonitor(m); err == nil {
					s.Monitors = append(s.Monitors, mon)
					continue
				}
			}
			g.warnf("the monitor rules are skipped: %v", err)
			s.Monitors = nil
			break
		}
	}
	f.Sentinel = s
	g.readACLList(acl)
	return nil
}

// readCluster reads the node's CLUSTER NODES and CLUSTER INFO for the
// cluster rules (VK-040..VK-049). A reply the strict parser refuses (a
// hostile or broken server) leaves the cluster unknown, with a warning.
func (g *Gathered) readCluster(ctx context.Context, c valkey.Client) {
	r := c.DoMulti(ctx, c.B().ClusterNodes().Build(), c.B().ClusterInfo().Build())
	nodes, err1 := r[0].ToString()
	info, err2 := r[1].ToString()
	if err1 != nil || err2 != nil {
		g.warnf("could not read CLUSTER NODES and CLUSTER INFO (the login user may lack the permission): the cluster rules are skipped")
		return
	}
	v, err := topology.ParseClusterNodes(strings.TrimPrefix(nodes, "txt:"))
	if err != nil {
		g.warnf("the cluster rules are skipped: %v", err)
		return
	}
	ci, err := topology.ParseClusterInfo(strings.TrimPrefix(info, "txt:"))
	if err != nil {
		g.warnf("the cluster rules are skipped: %v", err)
		return
	}
	g.Facts.Cluster = &policy.ClusterFacts{State: ci.State, View: v}
}

// readReplication reads INFO replication for the topology section; a
// reply that cannot be read or parsed is a warning (the rest of the audit
// does not depend on it).
func (g *Gathered) readReplication(resp *valkey.ValkeyResult) {
	text, err := resp.ToString()
	if err != nil {
		g.warnf("could not read INFO replication: the topology is not reported")
		return
	}
	// Over RESP3 INFO is a verbatim string, which valkey-go returns with its format prefix.
	text, _ = strings.CutPrefix(text, "txt:")
	if g.Replication, err = topology.ParseReplication(text); err != nil {
		g.warnf("%v: the topology is not reported", err)
	}
	g.Facts.Replication = g.Replication
	g.ReplID = conn.ParseInfo(text)["master_replid"]
}

func (g *Gathered) readConfig(fsys HostFS, path string, noIncludes bool) {
	data, err := fsys.ReadFile(path)
	if err != nil {
		g.warnf("could not read the config file %s: %s", path, describePathErr(err))
		return
	}
	if noIncludes {
		var kept []string
		for i, l := range strings.SplitAfter(string(data), "\n") {
			if args, err := conffile.SplitArgs(strings.Trim(l, " \t\r\n")); err == nil && len(args) > 0 && strings.EqualFold(args[0], "include") {
				g.warnf("%s:%d: include not followed over SFTP; directives in included files are not checked", path, i+1)
				l = "# " + l
			}
			kept = append(kept, l)
		}
		data = []byte(strings.Join(kept, ""))
	}
	cfg, err := conffile.Parse(path, data)
	if err != nil {
		g.warnf("could not parse the config file: %v", err)
		return
	}
	for _, w := range cfg.Warnings {
		g.warnf("%s", w)
	}
	for _, name := range []string{"requirepass", "primaryauth", "masterauth", "tls-key-file-pass", "tls-client-key-file-pass"} {
		for _, o := range cfg.Occurrences(name) {
			for _, a := range o.Args {
				if a != "" {
					g.Secrets = append(g.Secrets, a)
				}
			}
		}
	}
	g.Facts.Config = cfg
}

// inspectHost stats the server's files, reads its certificates and finds
// the user the process runs as.
func (g *Gathered) inspectHost(fsys HostFS, localServer bool) {
	f := g.Facts
	f.Files = map[string]*policy.FileInfo{}
	f.Certs = map[string]*policy.CertInfo{}
	users := readPasswd(fsys)
	paths := map[string]bool{}
	if f.Config != nil {
		paths[f.Config.Path] = true
	}
	if g.ACLFile != "" {
		paths[g.ACLFile] = true
	}
	for _, name := range []string{"dir", "tls-key-file", "tls-cert-file", "aclfile"} {
		if p := g.value(name); p != "" {
			paths[p] = true
		}
	}
	f.Paths = g.dataAndModulePaths(fsys)
	for _, list := range f.Paths {
		for _, p := range list {
			paths[p] = true
		}
	}
	for p := range paths {
		fi := fsys.Stat(p)
		fi.Owner = users[fi.UID]
		if fi.Owner == "" {
			fi.Owner = strconv.Itoa(fi.UID)
		}
		f.Files[p] = fi
	}
	if p := g.value("tls-cert-file"); p != "" {
		f.Certs[p] = readCert(fsys, p)
	}
	if p := g.value("tls-ca-cert-file"); p != "" {
		g.CA = readCert(fsys, p)
	}
	if localServer && f.Info != nil {
		if pid, err := strconv.Atoi(f.Info["process_id"]); err == nil && pid > 0 {
			f.Process = readProcess(fsys, pid, users)
		}
	}
	if localServer {
		f.Kernel = readKernel(fsys)
		cfg := ""
		if f.Config != nil {
			cfg = f.Config.Path
		}
		f.Sandbox = readSandbox(fsys, cfg)
	}
}

// value is a directive's value for locating files: runtime, else file.
func (g *Gathered) value(name string) string {
	f := g.Facts
	if f.Runtime != nil {
		if v, ok := f.Runtime[name]; ok {
			return v
		}
	}
	if f.Config != nil {
		if occ := f.Config.Occurrences(name); len(occ) > 0 && len(occ[len(occ)-1].Args) == 1 {
			v := occ[len(occ)-1].Args[0]
			if v != "" && !filepath.IsAbs(v) {
				v = filepath.Join(filepath.Dir(f.Config.Path), v)
			}
			return v
		}
	}
	return ""
}

// readPasswd maps uids to names from the host's /etc/passwd.
func readPasswd(fsys HostFS) map[int]string {
	out := map[int]string{}
	data, err := fsys.ReadFile("/etc/passwd")
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		parts := strings.Split(sc.Text(), ":")
		if len(parts) < 3 {
			continue
		}
		if uid, err := strconv.Atoi(parts[2]); err == nil {
			if _, dup := out[uid]; !dup {
				out[uid] = parts[0]
			}
		}
	}
	return out
}

func readProcess(fsys HostFS, pid int, users map[int]string) *policy.ProcessInfo {
	data, err := fsys.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	p := &policy.ProcessInfo{PID: pid, UID: -1}
	name := ""
	for _, l := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(l, ":")
		fields := strings.Fields(v)
		switch {
		case k == "Name" && len(fields) > 0:
			name = fields[0]
		case k == "Uid" && len(fields) > 1:
			p.UID, _ = strconv.Atoi(fields[1]) // effective uid
		}
	}
	// Only trust the pid when it is a server process (a pid read through a
	// tunnel or from another namespace could be anything).
	if p.UID < 0 || !(strings.Contains(name, "valkey") || strings.Contains(name, "redis")) {
		return nil
	}
	p.User = users[p.UID]
	if p.User == "" {
		p.User = strconv.Itoa(p.UID)
	}
	return p
}

func readCert(fsys HostFS, path string) *policy.CertInfo {
	data, err := fsys.ReadFile(path)
	if err != nil {
		return &policy.CertInfo{Err: describePathErr(err)}
	}
	certs, err := x509check.ParseCerts(data, path)
	if err != nil || len(certs) == 0 {
		return &policy.CertInfo{Err: "no PEM certificate in the file"}
	}
	return describeCerts(certs)
}

// describeCerts is what the policy checks of a certificate chain, leaf first.
func describeCerts(certs []*x509.Certificate) *policy.CertInfo {
	leaf := certs[0]
	info := &policy.CertInfo{NotAfter: leaf.NotAfter, Subject: leaf.Subject.String(), SelfSigned: selfSigned(leaf)}
	info.KeyType, info.KeyBits = x509check.KeyDescription(leaf.PublicKey)
	info.KeyWeakness = x509check.KeyWeakness(leaf.PublicKey)
	for i, c := range certs {
		if i > 0 && selfSigned(c) {
			continue // a root's signature on itself is never checked by a client
		}
		if x509check.WeakSignature(c.SignatureAlgorithm) {
			info.WeakSignatures = append(info.WeakSignatures, fmt.Sprintf("%s: %s", c.Subject, c.SignatureAlgorithm))
		}
	}
	return info
}

// selfSigned: issuer and subject are the same name and the certificate's own
// key made its signature (a signature over MD5, which Go refuses to check, is
// taken as self-made when no authority key id says otherwise).
func selfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	var insecure x509.InsecureAlgorithmError
	if errors.As(err, &insecure) {
		return len(c.AuthorityKeyId) == 0 || bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId)
	}
	return err == nil
}
