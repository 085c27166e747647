// Package tls is the valkey_tls module: it validates TLS material, deploys
// it atomically, converges the tls-* directives with the valkey_config
// engine (internal/settings: one CONFIG SET, the config file, rollback),
// reloads the files at runtime without a restart, and proves with a real
// handshake that the server serves the deployed certificate.
package tls

import (
	"context"
	"fmt"
	"github.com/valkeyops/secure/internal/journal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/settings"
	"github.com/valkeyops/secure/internal/x509check"
)

// Fields are valkey_tls's return values: the engine's (values,
// runtime_changed, file_changed, config_file, ...) plus the material's.
type Fields struct {
	*settings.Fields
	Certificate       *x509check.Info `json:"certificate"`
	ServedFingerprint string          `json:"served_fingerprint"`
	Reloaded          bool            `json:"reloaded"`
	TLSPort           int             `json:"tls_port"`
	CertFile          string          `json:"cert_file"`
	KeyFile           string          `json:"key_file"`
	CAFile            string          `json:"ca_file"`
	MaterialChanged   []string        `json:"material_changed"`
	Generated         bool            `json:"generated"`
}

// fileDirectives are the directives naming the files the server loads.
var fileDirectives = []string{"tls-cert-file", "tls-key-file", "tls-ca-cert-file", "tls-key-file-pass"}

// Main is the module's entry point.
func Main(req *ansible.Request) *ansible.Result {
	var o Options
	if err := req.Decode(&o); err != nil {
		return ansible.Fail(err.Error() + "; nothing was changed")
	}
	if err := o.validate(); err != nil {
		return ansible.Fail(err.Error() + "; nothing was changed")
	}
	so := o.settingsOptions(map[string]any{})
	if err := so.Validate(); err != nil {
		return ansible.Fail(err.Error() + "; nothing was changed")
	}
	o.Persist = so.Persist
	r := &run{req: req, o: &o, res: &ansible.Result{}, now: time.Now()}
	return r.execute()
}

type run struct {
	req *ansible.Request
	o   *Options
	res *ansible.Result
	now time.Time

	mat    *material
	check  *x509check.Result
	client valkey.Client
	tlsCfg map[string]string // CONFIG GET tls-* before the run
	fields *Fields
}

func (r *run) fail(err error) *ansible.Result {
	r.res.Failed = true
	r.res.Changed = false
	r.res.Diff = nil
	r.res.Msg = err.Error() + "; nothing was changed"
	return r.res
}

func (r *run) execute() *ansible.Result {
	ctx, cancel := context.WithTimeout(context.Background(), r.o.Timeout()+settings.LockTimeout)
	defer cancel()

	// 1. The material: read, taken or generated, then every check. Nothing
	// outside this process has changed yet.
	mat, err := r.o.resolveMaterial(r.now)
	if err != nil {
		return r.fail(err)
	}
	r.mat = mat
	for _, l := range keyLines(mat.key.data) {
		r.req.AddSecret(l)
	}
	chk, err := x509check.Check(x509check.Input{
		CertPEM: mat.cert.data, CertFile: mat.cert.label,
		KeyPEM: mat.key.data, KeyFile: mat.key.label,
		CAPEM: mat.ca.data, CAFile: mat.ca.label,
		Passphrase:  []byte(r.o.KeyPassphrase.Reveal()),
		ServerNames: r.o.ServerNames, MinDaysValid: *r.o.MinDaysValid, Now: r.now,
	})
	if err != nil {
		return r.fail(err)
	}
	if chk.Expiring != nil {
		if r.o.ExpiryPolicy == ExpiryFail {
			return r.fail(fmt.Errorf("%v (expiry_policy: fail)", chk.Expiring))
		}
		r.res.Warn("%v", chk.Expiring)
	}
	r.check = chk
	info := chk.Info
	r.fields = &Fields{Certificate: &info, CertFile: mat.cert.path, KeyFile: mat.key.path, CAFile: mat.ca.path,
		MaterialChanged: []string{}, Generated: mat.generated}
	r.res.Fields = r.fields
	for _, f := range mat.files() {
		if err := f.plan(); err != nil {
			return r.fail(err)
		}
	}
	if !mat.key.managed {
		if fi, err := statMode(mat.key.path); err == nil && fi&0o004 != 0 {
			r.res.Warn("key_path %s is readable by every user (mode %04o); make it 0600 or 0640", mat.key.path, fi)
		}
	}

	// 2. The server: TLS support, the current tls-* values, and what it
	// serves now.
	runtime := r.o.Persist != settings.PersistFile
	if err := r.connect(ctx, runtime); err != nil {
		return r.fail(err)
	}
	if r.client != nil {
		defer r.client.Close()
	}
	port, err := r.tlsPort()
	if err != nil {
		return r.fail(err)
	}
	r.fields.TLSPort = port
	servedBefore := ""
	if r.client != nil && r.tlsCfg["tls-port"] != "0" {
		cur, _ := strconv.Atoi(r.tlsCfg["tls-port"])
		servedBefore, err = servedFingerprint(ctx, r.handshakeHost(), cur, r.o.Timeout()/6)
		if err != nil {
			r.res.Warn("could not read the certificate the server serves on port %d before the run: %v", cur, err)
		}
	}

	// 3. Plan the directives with the engine, in check mode: same plan as
	// the real run, nothing applied.
	values := r.directives(port)
	planReq, err := ansible.ParseRequest(r.req.Module, []byte(fmt.Sprintf(`{"_ansible_check_mode":true,"_ansible_diff":%t}`, r.req.Diff)))
	if err != nil {
		return r.fail(err)
	}
	plan := settings.Converge(planReq, r.o.settingsOptions(values))
	pf, _ := plan.Fields.(*settings.Fields)
	r.fields.Fields = pf
	if plan.Failed {
		r.res.Failed, r.res.Msg = true, plan.Msg
		return r.res
	}
	r.res.Warnings = append(r.res.Warnings, plan.Warnings...)

	materialChanged := false
	for _, f := range mat.files() {
		if f.changed() {
			materialChanged = true
			r.fields.MaterialChanged = append(r.fields.MaterialChanged, f.path)
		}
	}
	expected := chk.Info.SHA256Fingerprint
	needReload := runtime && r.client != nil && (materialChanged || servedBefore != expected)
	engineLoads := pf != nil && slices.ContainsFunc(pf.RuntimeChanged, func(n string) bool { return slices.Contains(fileDirectives, n) })
	r.fields.Reloaded = needReload
	r.res.Changed = materialChanged || plan.Changed || needReload
	r.fields.ServedFingerprint = servedBefore
	if r.req.Diff {
		r.res.Diff = append(plan.Diff, r.materialDiff(servedBefore, needReload)...)
	}
	if r.req.CheckMode || !r.res.Changed {
		return r.res
	}

	// 4. Apply: the files, then the directives (one CONFIG SET and the
	// config file, by the engine), then a reload if the engine's CONFIG SET
	// did not already load the files. Any failure puts the files back.
	written := []*file{}
	undo := func() string {
		var bad []string
		for _, f := range slices.Backward(written) {
			if err := f.restore(); err != nil {
				bad = append(bad, fmt.Sprintf("%s (%v)", f.path, err))
			}
		}
		// A refused CONFIG SET makes the server re-apply its old tls-*
		// values, which re-reads the files: those we had just written. Load
		// the restored files again so that it serves what it served before.
		if len(written) > 0 && len(bad) == 0 {
			if err := r.reloadBefore(ctx); err != nil {
				bad = append(bad, fmt.Sprintf("reloading the restored files in the server (%v)", err))
			}
		}
		return strings.Join(bad, ", ")
	}
	// A change that cannot be recorded is not made: check the journal
	// before the first file is written (the engine appends the entry).
	if warning, err := journal.Guard(r.o.JournalOptions); err != nil {
		return r.fail(err)
	} else if warning != "" {
		r.res.Warn("%s", warning)
	}
	for _, f := range mat.files() {
		if !f.changed() {
			continue
		}
		written = append(written, f)
		if err := f.apply(); err != nil {
			if bad := undo(); bad != "" {
				return r.partial(fmt.Sprintf("failed to write %s: %v; restoring the other files also failed: %s", f.path, err, bad))
			}
			return r.fail(fmt.Errorf("failed to write %s: %v; the files written before it were restored", f.path, err))
		}
	}
	applied := plan
	if plan.Changed {
		applied = settings.Converge(r.req, r.o.settingsOptions(values))
		if af, ok := applied.Fields.(*settings.Fields); ok {
			r.fields.Fields = af
		}
		if applied.Failed {
			bad := undo()
			msg := applied.Msg
			if bad != "" {
				msg += "; restoring the certificate files also failed: " + bad
			} else if len(written) > 0 {
				msg += " (the certificate files were restored)"
			}
			r.res.Failed, r.res.Msg = true, msg
			r.res.Changed = applied.Changed || bad != ""
			return r.res
		}
		r.res.Warnings = mergeWarnings(r.res.Warnings, applied.Warnings)
		if r.req.Diff {
			r.res.Diff = append(applied.Diff, r.materialDiff(servedBefore, needReload)...)
		}
	}
	runtimeChanged := false
	if af, ok := applied.Fields.(*settings.Fields); ok {
		runtimeChanged = len(af.RuntimeChanged) > 0
	}
	if !needReload && !(runtime && r.client != nil && runtimeChanged) {
		return r.res
	}
	if needReload && !engineLoads {
		if err := r.reload(ctx); err != nil {
			// The server keeps its old TLS configuration when it refuses.
			bad := undo()
			if !plan.Changed && bad == "" {
				return r.fail(fmt.Errorf("the server refused to load the new TLS files: %v; the certificate files were restored", err))
			}
			msg := fmt.Sprintf("the server refused to load the new TLS files: %v", err)
			if plan.Changed {
				msg += fmt.Sprintf("; the directives %s were applied", strings.Join(appliedNames(applied), ", "))
			}
			if bad != "" {
				msg += "; restoring the certificate files also failed: " + bad
			} else {
				msg += "; the certificate files were restored"
			}
			return r.partial(msg)
		}
	}

	// 5. Verify (after a reload, or any runtime change such as a new
	// tls-port): a real handshake must show the deployed certificate.
	served, err := r.waitServed(ctx, port, expected)
	r.fields.ServedFingerprint = served
	if err != nil {
		return r.partial(fmt.Sprintf("the TLS settings were applied, but a TLS handshake with %s:%d failed: %v", r.handshakeHost(), port, err))
	}
	if served != expected {
		return r.partial(fmt.Sprintf("the TLS settings were applied, but %s:%d serves the certificate with sha256 fingerprint %s, not the deployed %s", r.handshakeHost(), port, served, expected))
	}
	return r.res
}

// partial fails after something changed: the message says what.
func (r *run) partial(msg string) *ansible.Result {
	r.res.Failed = true
	r.res.Changed = true
	r.res.Msg = msg
	return r.res
}

func mergeWarnings(have, more []string) []string {
	for _, w := range more {
		if !slices.Contains(have, w) {
			have = append(have, w)
		}
	}
	return have
}

func appliedNames(res *ansible.Result) []string {
	f, ok := res.Fields.(*settings.Fields)
	if !ok {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(f.RuntimeChanged), f.FileChanged...))))
}

// connect opens the module's own connection (for TLS support, the tls-*
// values and the reload). With persist: file the server is optional.
func (r *run) connect(ctx context.Context, runtime bool) error {
	client, err := conn.Open(&r.o.Options)
	if err != nil {
		if !runtime {
			r.res.Warn("the server is not reachable (%v): only the files are changed", err)
			return nil
		}
		return err
	}
	m, err := client.Do(ctx, client.B().ConfigGet().Parameter("tls-*", "port", "bind").Build()).AsStrMap()
	if err != nil {
		client.Close()
		return fmt.Errorf("failed to read the server's TLS settings (CONFIG GET tls-*): %v", err)
	}
	if _, ok := m["tls-port"]; !ok {
		client.Close()
		return fmt.Errorf("the server at %s does not support TLS (it knows no tls-port directive): it was built without TLS (BUILD_TLS=yes)", r.o.Address())
	}
	for _, name := range []string{"tls-key-file-pass", "tls-client-key-file-pass"} {
		r.req.AddSecret(m[name])
	}
	r.client, r.tlsCfg = client, m
	return nil
}

// tlsPort is the port TLS will listen on after the run.
func (r *run) tlsPort() (int, error) {
	if r.o.Port != nil {
		return *r.o.Port, nil
	}
	cur := 0
	if r.tlsCfg != nil {
		cur, _ = strconv.Atoi(r.tlsCfg["tls-port"])
	}
	if cur == 0 {
		return 0, fmt.Errorf(`option "port" is required: the server has no TLS port yet (tls-port 0)`)
	}
	return cur, nil
}

// directives are the tls-* settings the task manages.
func (r *run) directives(port int) map[string]any {
	o := r.o
	v := map[string]any{
		"tls-port":         strconv.Itoa(port),
		"tls-cert-file":    r.mat.cert.path,
		"tls-key-file":     r.mat.key.path,
		"tls-ca-cert-file": r.mat.ca.path,
		"tls-protocols":    strings.Join(o.Protocols, " "),
	}
	if o.KeyPassphrase.IsSet() {
		v["tls-key-file-pass"] = o.KeyPassphrase.Reveal()
	}
	if o.PlaintextPort != nil {
		v["port"] = strconv.Itoa(*o.PlaintextPort)
	}
	if o.AuthClients != "" {
		v["tls-auth-clients"] = o.AuthClients
	}
	if o.Ciphers != "" {
		v["tls-ciphers"] = o.Ciphers
	}
	if o.Ciphersuites != "" {
		v["tls-ciphersuites"] = o.Ciphersuites
	}
	for name, b := range map[string]*bool{
		"tls-prefer-server-ciphers": o.PreferServerCiphers, "tls-replication": o.Replication,
		"tls-cluster": o.Cluster, "tls-session-caching": o.SessionCaching,
	} {
		if b != nil {
			v[name] = *b
		}
	}
	return v
}

// reload makes the server load the files again: CONFIG SET of the file
// directives, with their (unchanged) paths, which Valkey re-reads even when
// the value is the same.
func (r *run) reload(ctx context.Context) error {
	cmd := r.client.B().ConfigSet().ParameterValue().
		ParameterValue("tls-cert-file", r.mat.cert.path).
		ParameterValue("tls-key-file", r.mat.key.path).
		ParameterValue("tls-ca-cert-file", r.mat.ca.path)
	if r.o.KeyPassphrase.IsSet() {
		cmd = cmd.ParameterValue("tls-key-file-pass", r.o.KeyPassphrase.Reveal())
	}
	return r.client.Do(ctx, cmd.Build()).Error()
}

// reloadBefore makes the server load its files as they were before the
// run, with the tls-* values read at the start (when TLS was configured).
func (r *run) reloadBefore(ctx context.Context) error {
	if r.client == nil || r.tlsCfg["tls-cert-file"] == "" {
		return nil
	}
	cmd := r.client.B().ConfigSet().ParameterValue().
		ParameterValue("tls-cert-file", r.tlsCfg["tls-cert-file"]).
		ParameterValue("tls-key-file", r.tlsCfg["tls-key-file"]).
		ParameterValue("tls-ca-cert-file", r.tlsCfg["tls-ca-cert-file"]).
		ParameterValue("tls-key-file-pass", r.tlsCfg["tls-key-file-pass"])
	return r.client.Do(ctx, cmd.Build()).Error()
}

// handshakeHost is where the TLS port is reached from the target: login_host,
// or over a unix socket the first address the server binds (a server bound
// to its host's own address listens on no 127.0.0.1, and another server may).
func (r *run) handshakeHost() string {
	if r.o.LoginUnixSocket == "" && r.o.LoginHost != "" {
		return r.o.LoginHost
	}
	if r.o.LoginUnixSocket != "" {
		return bindHost(r.tlsCfg["bind"])
	}
	return conn.DefaultHost
}

// bindHost is the address a client on the same host reaches a server at,
// from the server's bind directive ("-" marks an optional address; "*" and
// the unspecified addresses mean every interface, loopback included).
func bindHost(bind string) string {
	for _, a := range strings.Fields(bind) {
		a = strings.TrimPrefix(a, "-")
		switch a {
		case "*", "0.0.0.0", "":
			return conn.DefaultHost
		case "::", "::*":
			return "::1"
		}
		return a
	}
	return conn.DefaultHost
}

// waitServed reads the served fingerprint, retrying briefly while a new
// listener comes up.
func (r *run) waitServed(ctx context.Context, port int, expected string) (string, error) {
	var fp string
	var err error
	for i := 0; i < 10; i++ {
		fp, err = servedFingerprint(ctx, r.handshakeHost(), port, r.o.Timeout()/6)
		if err == nil && fp == expected {
			return fp, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fp, err
}

// materialDiff shows fingerprints and paths, never key material.
func (r *run) materialDiff(servedBefore string, reload bool) []ansible.DiffEntry {
	var before, after []string
	for _, f := range r.mat.files() {
		if !f.changed() {
			continue
		}
		switch {
		case f.role == "key":
			if f.exists {
				before = append(before, fmt.Sprintf("key %s %04o (old content hidden)", f.path, f.oldMode))
			}
			after = append(after, fmt.Sprintf("key %s %04o (new content hidden)", f.path, f.mode))
		default:
			if f.exists {
				before = append(before, fmt.Sprintf("%s %s %04o sha256 %s", f.role, f.path, f.oldMode, pemFingerprint(f.old)))
			}
			after = append(after, fmt.Sprintf("%s %s %04o sha256 %s", f.role, f.path, f.mode, pemFingerprint(f.data)))
		}
	}
	if reload {
		where := fmt.Sprintf("%s:%d", r.handshakeHost(), r.fields.TLSPort)
		if servedBefore == "" {
			before = append(before, "served (none)")
		} else {
			before = append(before, "served sha256 "+servedBefore)
		}
		after = append(after, fmt.Sprintf("served %s sha256 %s", where, r.check.Info.SHA256Fingerprint))
	}
	if len(before)+len(after) == 0 {
		return nil
	}
	return []ansible.DiffEntry{{BeforeHeader: "TLS material", AfterHeader: "TLS material", Before: joinLines(before), After: joinLines(after)}}
}

func joinLines(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return strings.Join(ls, "\n") + "\n"
}

// pemFingerprint is the fingerprint of the first certificate of a PEM
// file, or a note when there is none.
func pemFingerprint(data []byte) string {
	certs, err := x509check.ParseCerts(data, "")
	if err != nil {
		return "(not a certificate)"
	}
	return x509check.Fingerprint(certs[0].Raw)
}
