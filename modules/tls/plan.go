package tls

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/valkeyops/secure/internal/outcome"
	"github.com/valkeyops/secure/internal/settings"
	"github.com/valkeyops/secure/internal/x509check"
)

// validateMaterial (step 1) takes the lock of dest_dir (real runs), then
// reads, takes or generates the material and runs every check on it.
func (r *run) validateMaterial(t *outcome.Task) error {
	if fi, err := os.Stat(r.o.DestDir); err == nil && fi.IsDir() { // else resolveMaterial says what is wrong
		if err := t.Lock(filepath.Join(r.o.DestDir, "server.crt")); err != nil {
			return fmt.Errorf("failed to lock %s: %w", r.o.DestDir, err)
		}
	}
	mat, err := r.o.resolveMaterial(r.now)
	if err != nil {
		return err
	}
	r.mat = mat
	for _, l := range x509check.KeyLines(mat.key.data) {
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
		return err
	}
	if chk.Expiring != nil {
		if r.o.ExpiryPolicy == ExpiryFail {
			return fmt.Errorf("%v (expiry_policy: fail)", chk.Expiring)
		}
		r.res.Warn("%v", chk.Expiring)
	}
	r.check = chk
	info := chk.Info
	r.fields.Certificate, r.fields.Generated = &info, mat.generated
	r.fields.CertFile, r.fields.KeyFile, r.fields.CAFile = mat.cert.path, mat.key.path, mat.ca.path
	r.res.Fields = r.fields
	return nil
}

// planFiles (step 2) compares each managed file with what is on disk.
func (r *run) planFiles() error {
	for _, f := range r.mat.files() {
		if err := f.plan(); err != nil {
			return err
		}
		if f.changed() {
			r.fields.MaterialChanged = append(r.fields.MaterialChanged, f.path)
		}
	}
	if k := r.mat.key; !k.managed {
		if fi, err := statMode(k.path); err == nil && fi&0o004 != 0 {
			r.res.Warn("key_path %s is readable by every user (mode %04o); make it 0600 or 0640", k.path, fi)
		}
	}
	return nil
}

// readServer (step 3) reads TLS support, the current tls-* values and the
// certificate the server serves now.
func (r *run) readServer(ctx context.Context) error {
	if err := r.connect(ctx, r.runtime()); err != nil {
		return err
	}
	port, err := r.tlsPort()
	if err != nil {
		return err
	}
	r.fields.TLSPort = port
	if r.client != nil && r.tlsCfg["tls-port"] != "0" {
		cur, _ := strconv.Atoi(r.tlsCfg["tls-port"])
		r.servedBefore, err = servedFingerprint(ctx, r.handshakeHost(), cur, r.o.Timeout()/6)
		if err != nil {
			r.res.Warn("could not read the certificate the server serves on port %d before the run: %v", cur, err)
		}
	}
	r.fields.ServedFingerprint = r.servedBefore
	return nil
}

// planDirectives (step 4) plans the tls-* directives with the engine, in
// the same task: the config file's lock joins dest_dir's (once, when both
// are one directory) and check mode runs the same plan.
func (r *run) planDirectives(ctx context.Context, t *outcome.Task) error {
	r.engine = settings.New(r.req, r.o.settingsOptions(r.directives(r.fields.TLSPort)))
	err := r.engine.Plan(ctx, t)
	r.fields.Fields = r.engine.Fields()
	if err != nil {
		return err
	}
	r.res.Warnings = mergeWarnings(r.res.Warnings, r.engine.Result().Warnings)
	return nil
}

// decide (step 5) sets changed, reloaded and the diff from the plans.
func (r *run) decide() {
	expected := r.check.Info.SHA256Fingerprint
	materialChanged := len(r.fields.MaterialChanged) > 0
	r.needReload = r.runtime() && r.client != nil && (materialChanged || r.servedBefore != expected)
	r.fields.Reloaded = r.needReload
	r.res.Changed = materialChanged || r.engine.Result().Changed || r.needReload
	r.diff()
}

// diff is the engine's diff and the material's.
func (r *run) diff() {
	if r.req.Diff {
		r.res.Diff = append(slices.Clone(r.engine.Result().Diff), r.materialDiff(r.servedBefore, r.needReload)...)
	}
}

// engineLoads reports whether the engine's CONFIG SET set a file
// directive, which makes the server load the files.
func (r *run) engineLoads() bool {
	return slices.ContainsFunc(r.engine.Fields().RuntimeChanged, func(n string) bool { return slices.Contains(fileDirectives, n) })
}

func mergeWarnings(have, more []string) []string {
	for _, w := range more {
		if !slices.Contains(have, w) {
			have = append(have, w)
		}
	}
	return have
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
