package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/pkg/sftp"
	"github.com/valkey-io/valkey-go"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/valkeyops/secure/internal/audit"
	"github.com/valkeyops/secure/internal/policy"
	"github.com/valkeyops/secure/internal/report"
)

// DefaultParallel bounds the targets scanned at once.
const DefaultParallel = 16

// Target is one host of the targets file. Empty fields take the defaults.
type Target struct {
	Name string `yaml:"name" json:"name"`
	// SSH.
	Host           string `yaml:"host" json:"host"`
	Port           int    `yaml:"port" json:"port"`
	User           string `yaml:"user" json:"-"`
	IdentityFile   string `yaml:"identity_file" json:"-"`
	KnownHosts     string `yaml:"known_hosts" json:"-"`
	ConnectTimeout int    `yaml:"connect_timeout" json:"-"` // seconds
	// The server, reached through the SSH connection.
	ValkeyHost        string `yaml:"valkey_host" json:"-"`
	ValkeyPort        int    `yaml:"valkey_port" json:"-"`
	ValkeyUser        string `yaml:"valkey_user" json:"-"`
	ValkeyPasswordEnv string `yaml:"valkey_password_env" json:"-"` // the name of an environment variable
	ConfigFile        string `yaml:"config_file" json:"-"`
	ACLFile           string `yaml:"aclfile" json:"-"`
	// Desired state (settings, users), as valkey_audit takes it.
	Desired *audit.Desired `yaml:"desired" json:"-"`
}

type targetsFile struct {
	Defaults Target   `yaml:"defaults"`
	Targets  []Target `yaml:"targets"`
}

func (t *Target) fill(d Target) {
	str := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	num := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	str(&t.User, d.User)
	str(&t.IdentityFile, d.IdentityFile)
	str(&t.KnownHosts, d.KnownHosts)
	str(&t.ValkeyHost, d.ValkeyHost)
	str(&t.ValkeyUser, d.ValkeyUser)
	str(&t.ValkeyPasswordEnv, d.ValkeyPasswordEnv)
	str(&t.ConfigFile, d.ConfigFile)
	str(&t.ACLFile, d.ACLFile)
	num(&t.Port, d.Port)
	num(&t.ValkeyPort, d.ValkeyPort)
	num(&t.ConnectTimeout, d.ConnectTimeout)
	if t.Desired == nil {
		t.Desired = d.Desired
	}
	num(&t.Port, 22)
	num(&t.ValkeyPort, 6379)
	num(&t.ConnectTimeout, 10)
	str(&t.ValkeyHost, "127.0.0.1")
	str(&t.KnownHosts, expandHome("~/.ssh/known_hosts"))
	str(&t.Name, t.Host)
	t.IdentityFile, t.KnownHosts = expandHome(t.IdentityFile), expandHome(t.KnownHosts)
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, p[2:])
		}
	}
	return p
}

// loadTargets reads and validates the targets file.
func loadTargets(path string) ([]Target, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read targets %s: %w", path, unwrap(err))
	}
	var tf targetsFile
	if err := yaml.UnmarshalWithOptions(data, &tf, yaml.Strict()); err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil && ye.GetToken().Position != nil {
			return nil, fmt.Errorf("invalid targets %s:%d: %s", path, ye.GetToken().Position.Line, ye.GetMessage())
		}
		return nil, fmt.Errorf("invalid targets %s: %v", path, err)
	}
	if len(tf.Targets) == 0 {
		return nil, fmt.Errorf("invalid targets %s: no targets", path)
	}
	seen := map[string]bool{}
	for i := range tf.Targets {
		t := &tf.Targets[i]
		if t.Host == "" {
			return nil, fmt.Errorf("invalid targets %s: targets[%d]: host is required", path, i)
		}
		t.fill(tf.Defaults)
		if seen[t.Name] {
			return nil, fmt.Errorf("invalid targets %s: targets[%d]: duplicate name %q", path, i, t.Name)
		}
		seen[t.Name] = true
		if t.User == "" {
			return nil, fmt.Errorf("invalid targets %s: target %q: user is required (here or in defaults)", path, t.Name)
		}
		if t.Desired != nil {
			if _, err := audit.ValidateDesired(t.Desired); err != nil {
				return nil, fmt.Errorf("invalid targets %s: target %q: %v", path, t.Name, err)
			}
		}
	}
	return tf.Targets, nil
}

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// TargetResult is one target's outcome.
type TargetResult struct {
	Name     string        `json:"name"`
	Address  string        `json:"address"`
	Status   string        `json:"status"` // ok, drift, findings, unreachable, error
	Error    string        `json:"error,omitempty"`
	Report   *audit.Report `json:"report,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
	Seconds  float64       `json:"seconds"`
}

// Drift runs `valkeyops drift --targets targets.yml`.
func Drift(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("valkeyops drift", flag.ContinueOnError)
	fs.SetOutput(stderr)
	targetsPath := fs.String("targets", "", "the targets file (YAML)")
	format := fs.String("format", "table", "output: table, json, junit, sarif or html")
	parallel := fs.Int("parallel", DefaultParallel, "targets scanned at once")
	previous := fs.String("previous", "", "html: show what changed since this earlier scan's --format json output")
	var policies multiFlag
	fs.Var(&policies, "policy", "a policy file adding or overriding rules (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: valkeyops drift --targets targets.yml [--format table|json|junit|sarif|html] [--previous scan.json] [--parallel N] [--policy P]...")
		fs.PrintDefaults()
	}
	pos, exit, ok := parseArgs(fs, args)
	if !ok {
		return exit
	}
	if len(pos) != 0 || *targetsPath == "" {
		fs.Usage()
		return ExitUsage
	}
	if !slices.Contains(driftFormats, *format) {
		fmt.Fprintf(stderr, "valkeyops drift: --format %q is not one of %s\n", *format, strings.Join(driftFormats, ", "))
		return ExitUsage
	}
	if *parallel < 1 {
		fmt.Fprintln(stderr, "valkeyops drift: --parallel must be at least 1")
		return ExitUsage
	}
	var prev *report.Run
	if *previous != "" {
		var err error
		if prev, err = readPrevious(*previous, ""); err != nil {
			fmt.Fprintf(stderr, "valkeyops drift: %v\n", err)
			return ExitUsage
		}
	}
	targets, err := loadTargets(*targetsPath)
	if err != nil {
		fmt.Fprintf(stderr, "valkeyops drift: %v\n", err)
		return ExitUsage
	}
	pol, err := policy.Load(false, policies...)
	if err != nil {
		fmt.Fprintf(stderr, "valkeyops drift: %v\n", err)
		return ExitUsage
	}
	progress := isTerminal(stderr)
	results := Scan(context.Background(), targets, pol, *parallel, func(done, total int) {
		if progress {
			fmt.Fprintf(stderr, "\rscanned %d/%d targets", done, total)
			if done == total {
				fmt.Fprintln(stderr)
			}
		}
	})
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(results)
	case "table":
		writeTable(stdout, results)
	default:
		run := report.New("valkeyops drift "+*targetsPath, Version, time.Now(), report.Rules(pol), driftInstances(results))
		if prev != nil {
			run.Compare(prev)
		}
		if err := report.Write(stdout, *format, run); err != nil {
			fmt.Fprintf(stderr, "valkeyops drift: failed to write the report: %v\n", err)
			return ExitUsage
		}
	}
	for _, r := range results {
		if r.Status != "ok" && r.Status != "findings" {
			return ExitFindings
		}
	}
	return ExitOK
}

// driftFormats are drift's --format values.
var driftFormats = []string{"table", "json", "junit", "sarif", "html"}

// driftInstances are the scan's results as the report's instances.
func driftInstances(results []TargetResult) []report.Instance {
	out := make([]report.Instance, 0, len(results))
	for _, r := range results {
		in := report.Instance{Host: r.Name, Address: r.Address, Report: r.Report, Warnings: r.Warnings, Error: r.Error}
		if r.Report != nil {
			in.Instance = r.Report.Instance
		}
		out = append(out, in)
	}
	return out
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Scan scans every target, at most parallel at once. One target's failure
// never stops the others. Results are in the targets' order.
func Scan(ctx context.Context, targets []Target, pol *policy.Policy, parallel int, progress func(done, total int)) []TargetResult {
	results := make([]TargetResult, len(targets))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var done atomic.Int32
	var mu sync.Mutex
	for i := range targets {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = scanOne(ctx, &targets[i], pol)
			n := int(done.Add(1))
			if progress != nil {
				mu.Lock()
				progress(n, len(targets))
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	return results
}

func scanOne(ctx context.Context, t *Target, pol *policy.Policy) (res TargetResult) {
	start := time.Now()
	res = TargetResult{Name: t.Name, Address: net.JoinHostPort(t.Host, strconv.Itoa(t.Port))}
	defer func() { res.Seconds = float64(time.Since(start).Milliseconds()) / 1000 }()
	timeout := time.Duration(t.ConnectTimeout) * time.Second
	client, err := dialSSH(t, timeout)
	if err != nil {
		res.Status, res.Error = "unreachable", err.Error()
		return res
	}
	defer client.Close()
	sf, err := sftp.NewClient(client)
	if err != nil {
		res.Status, res.Error = "error", "failed to start SFTP: "+err.Error()
		return res
	}
	defer sf.Close()
	password := ""
	if t.ValkeyPasswordEnv != "" {
		password = os.Getenv(t.ValkeyPasswordEnv)
	}
	addr := net.JoinHostPort(t.ValkeyHost, strconv.Itoa(t.ValkeyPort))
	vc, err := valkey.NewClient(valkey.ClientOption{
		InitAddress: []string{addr},
		Username:    t.ValkeyUser,
		Password:    password,
		DialCtxFn: func(ctx context.Context, _ string, _ *net.Dialer, _ *tls.Config) (net.Conn, error) {
			return client.DialContext(ctx, "tcp", addr)
		},
		ConnWriteTimeout:  timeout,
		DisableCache:      true,
		DisableRetry:      true,
		ForceSingleClient: true,
		ClientSetInfo:     valkey.DisableClientSetInfo,
	})
	if err != nil {
		res.Status, res.Error = "error", "cannot reach the server at "+addr+" through SSH: "+scrub(err.Error(), password)
		return res
	}
	defer vc.Close()
	cctx, cancel := context.WithTimeout(ctx, 6*timeout)
	defer cancel()
	g, err := audit.Gather(cctx, audit.Source{
		Client: vc, FS: sftpFS{sf}, ConfigFile: t.ConfigFile, ACLFile: t.ACLFile,
		LocalServer: t.ValkeyHost == "127.0.0.1" || t.ValkeyHost == "localhost" || t.ValkeyHost == "::1",
		NoIncludes:  true,
		// The TLS port would be dialed from here, not through the tunnel.
		NoServedCert: true,
	})
	if err != nil {
		res.Status, res.Error = "error", scrub(err.Error(), password)
		return res
	}
	drift, err := audit.ComputeDrift(g, t.Desired)
	if err != nil {
		res.Status, res.Error = "error", err.Error()
		return res
	}
	res.Report = audit.BuildReport(pol, g, drift)
	res.Warnings = g.Warnings
	switch {
	case res.Report.Summary.DriftedSettings+res.Report.Summary.DriftedUsers > 0:
		res.Status = "drift"
	case res.Report.Summary.Findings > 0:
		res.Status = "findings"
	default:
		res.Status = "ok"
	}
	return res
}

func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "********")
}

// dialSSH connects with the target's key and/or the SSH agent, checking the
// host key against known_hosts.
func dialSSH(t *Target, timeout time.Duration) (*ssh.Client, error) {
	hostKeys, err := knownhosts.New(t.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("failed to read known_hosts %s: %v", t.KnownHosts, unwrap(err))
	}
	var auths []ssh.AuthMethod
	if t.IdentityFile != "" {
		key, err := os.ReadFile(t.IdentityFile)
		if err != nil {
			return nil, fmt.Errorf("failed to read identity_file %s: %v", t.IdentityFile, unwrap(err))
		}
		signer, err := ssh.ParsePrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("identity_file %s: not a private key without a passphrase (use the SSH agent for protected keys)", t.IdentityFile)
		}
		auths = append(auths, ssh.PublicKeys(signer))
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.DialTimeout("unix", sock, timeout); err == nil {
			auths = append(auths, ssh.PublicKeysCallback(agent.NewClient(c).Signers))
		}
	}
	if len(auths) == 0 {
		return nil, errors.New("no SSH credentials: set identity_file or run an SSH agent (SSH_AUTH_SOCK)")
	}
	cfg := &ssh.ClientConfig{User: t.User, Auth: auths, HostKeyCallback: hostKeys, Timeout: timeout}
	addr := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	c, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) == 0 {
				return nil, fmt.Errorf("ssh %s: the host key is not in %s", addr, t.KnownHosts)
			}
			return nil, fmt.Errorf("ssh %s: the host key does not match %s (possible man-in-the-middle)", addr, t.KnownHosts)
		}
		return nil, fmt.Errorf("ssh %s: %v", addr, err)
	}
	return c, nil
}

// sftpFS reads the target's files over SFTP.
type sftpFS struct{ c *sftp.Client }

func (s sftpFS) ReadFile(path string) ([]byte, error) {
	f, err := s.c.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 16<<20))
}

func (s sftpFS) Stat(path string) *policy.FileInfo {
	fi := &policy.FileInfo{Path: path}
	st, err := s.c.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fi
	case err != nil:
		fi.Err = err.Error()
		return fi
	}
	fi.Exists, fi.Mode, fi.IsDir = true, st.Mode().Perm(), st.IsDir()
	if fs, ok := st.Sys().(*sftp.FileStat); ok {
		fi.UID, fi.GID = int(fs.UID), int(fs.GID)
	}
	return fi
}

func writeTable(w io.Writer, results []TargetResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tINSTANCE\tSTATUS\tFINDINGS (C/H/M/L)\tDRIFT\tDETAIL")
	for _, r := range results {
		instance, findings, drift, detail := "-", "-", "-", r.Error
		if r.Report != nil {
			if r.Report.Instance != "" {
				instance = r.Report.Instance
			}
			s := r.Report.Summary
			findings = fmt.Sprintf("%d/%d/%d/%d", s.Critical, s.High, s.Medium, s.Low)
			var d []string
			d = append(d, keys(r.Report.Drift.Settings)...)
			for _, u := range keys(r.Report.Drift.Users) {
				d = append(d, "user:"+u)
			}
			if len(d) > 0 {
				drift = strings.Join(d, ",")
			}
			var ids []string
			for _, f := range r.Report.Findings {
				ids = append(ids, f.ID)
			}
			detail = strings.Join(ids, " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, instance, r.Status, findings, drift, detail)
	}
	_ = tw.Flush()
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
