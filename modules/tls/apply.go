package tls

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/valkeyops/secure/internal/outcome"
)

// writeFiles (step 6) writes the changed files; a failure puts back the
// ones written before it.
func (r *run) writeFiles(ctx context.Context) error {
	for _, f := range r.mat.files() {
		if !f.changed() {
			continue
		}
		r.written = append(r.written, f)
		if err := f.apply(); err != nil {
			if bad := r.undo(ctx); bad != "" {
				return outcome.Partial("failed to write %s: %v; restoring the other files also failed: %s", f.path, err, bad)
			}
			return fmt.Errorf("failed to write %s: %v; the files written before it were restored", f.path, err)
		}
	}
	return nil
}

// convergeDirectives (step 7) applies the engine's plan: one CONFIG SET
// and the config file. A failure puts the certificate files back.
func (r *run) convergeDirectives(ctx context.Context, t *outcome.Task) error {
	eng := r.engine.Result()
	if !eng.Changed {
		return nil
	}
	err := r.engine.Apply(ctx, t)
	r.res.Warnings = mergeWarnings(r.res.Warnings, eng.Warnings)
	r.diff()
	if err == nil {
		return nil
	}
	wrote := len(r.written) > 0
	bad := r.undo(ctx)
	switch {
	case bad != "":
		return outcome.Partial("%v; restoring the certificate files also failed: %s", err, bad)
	case outcome.IsPartial(err):
		return err
	case wrote:
		return outcome.Stated("%s (the certificate files were restored)", outcome.Message(err))
	}
	return err
}

// reloadFiles (step 8) makes the server load the files when they changed
// (or it serves another certificate) and the engine's CONFIG SET did not
// already load them. The server keeps its old TLS configuration when it
// refuses.
func (r *run) reloadFiles(ctx context.Context) error {
	if !r.needReload || r.engineLoads() {
		return nil
	}
	err := r.reload(ctx)
	if err == nil {
		return nil
	}
	bad := r.undo(ctx)
	directivesChanged := r.engine.Result().Changed
	if !directivesChanged && bad == "" {
		return fmt.Errorf("the server refused to load the new TLS files: %v; the certificate files were restored", err)
	}
	msg := fmt.Sprintf("the server refused to load the new TLS files: %v", err)
	if directivesChanged {
		msg += fmt.Sprintf("; the directives %s were applied", strings.Join(r.appliedNames(), ", "))
	}
	if bad != "" {
		msg += "; restoring the certificate files also failed: " + bad
	} else {
		msg += "; the certificate files were restored"
	}
	return outcome.Partial("%s", msg)
}

// verifyHandshake (step 9), after a reload or any runtime change (a new
// tls-port): a real handshake must show the deployed certificate.
func (r *run) verifyHandshake(ctx context.Context) error {
	runtimeChanged := len(r.engine.Fields().RuntimeChanged) > 0
	if !r.needReload && !(r.runtime() && r.client != nil && runtimeChanged) {
		return nil
	}
	port, expected := r.fields.TLSPort, r.check.Info.SHA256Fingerprint
	served, err := r.waitServed(ctx, port, expected)
	r.fields.ServedFingerprint = served
	if err != nil {
		return outcome.Partial("the TLS settings were applied, but a TLS handshake with %s:%d failed: %v", r.handshakeHost(), port, err)
	}
	if served != expected {
		return outcome.Partial("the TLS settings were applied, but %s:%d serves the certificate with sha256 fingerprint %s, not the deployed %s", r.handshakeHost(), port, served, expected)
	}
	return nil
}

// undo restores the files written so far, newest first, and makes the
// server load them again. It returns what could not be restored ("" when
// all was).
func (r *run) undo(ctx context.Context) string {
	var bad []string
	for _, f := range slices.Backward(r.written) {
		if err := f.restore(); err != nil {
			bad = append(bad, fmt.Sprintf("%s (%v)", f.path, err))
		}
	}
	// A refused CONFIG SET makes the server re-apply its old tls-* values,
	// which re-reads the files: those we had just written. Load the
	// restored files again so that it serves what it served before.
	if len(r.written) > 0 && len(bad) == 0 {
		if err := r.reloadBefore(ctx); err != nil {
			bad = append(bad, fmt.Sprintf("reloading the restored files in the server (%v)", err))
		}
	}
	if len(bad) == 0 {
		r.written = nil // nothing of them stays changed
	}
	return strings.Join(bad, ", ")
}

// appliedNames are the directives the engine changed, sorted.
func (r *run) appliedNames() []string {
	f := r.engine.Fields()
	return slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(f.RuntimeChanged), f.FileChanged...))))
}
