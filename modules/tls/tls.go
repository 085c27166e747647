// Package tls is the valkey_tls module: it validates TLS material, deploys
// it atomically, converges the tls-* directives with the valkey_config
// engine (internal/settings: one CONFIG SET, the config file, rollback),
// reloads the files at runtime without a restart, and proves with a real
// handshake that the server serves the deployed certificate.
//
// It runs as one task of the outcome protocol (internal/outcome), in the
// steps of plan.go (validate the material, plan the files, read the server,
// plan the directives) and apply.go (write the files, converge the
// directives, reload, verify the handshake), then records one journal entry
// for the files and the directives together. The directory locks of
// dest_dir and of the config file are taken once for the task (one lock
// when they are the same directory).
package tls

import (
	"context"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/outcome"
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
		return outcome.Fail(err)
	}
	if err := o.validate(); err != nil {
		return outcome.Fail(err)
	}
	so := o.settingsOptions(map[string]any{})
	if err := so.Validate(); err != nil {
		return outcome.Fail(err)
	}
	o.Persist = so.Persist
	r := &run{req: req, o: &o, res: &ansible.Result{}, now: time.Now(), fields: &Fields{MaterialChanged: []string{}}}
	defer r.close()
	return outcome.Run(&outcome.Task{Req: req, Res: r.res, Journal: o.JournalOptions, Timeout: o.Timeout()}, r)
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

	engine       *settings.Engine // the tls-* directives
	servedBefore string           // fingerprint served before the run ("" unknown)
	needReload   bool
	written      []*file // files written so far, for undo
}

// runtime reports whether the task changes the running server.
func (r *run) runtime() bool { return r.o.Persist != settings.PersistFile }

// Plan validates the material, plans the files and the directives, and
// decides on a reload. It changes nothing.
func (r *run) Plan(ctx context.Context, t *outcome.Task) error {
	if err := r.validateMaterial(t); err != nil {
		return err
	}
	if err := r.planFiles(); err != nil {
		return err
	}
	if err := r.readServer(ctx); err != nil {
		return err
	}
	if err := r.planDirectives(ctx, t); err != nil {
		return err
	}
	r.decide()
	return nil
}

// Apply writes the files, converges the directives, reloads and verifies.
func (r *run) Apply(ctx context.Context, t *outcome.Task) error {
	if err := r.writeFiles(ctx); err != nil {
		return err
	}
	if err := r.convergeDirectives(ctx, t); err != nil {
		return err
	}
	if err := r.reloadFiles(ctx); err != nil {
		return err
	}
	return r.verifyHandshake(ctx)
}

// Record is one journal entry: the directives the engine changed and the
// files written (certificates by fingerprint, the key by path only).
func (r *run) Record(partial bool) journal.Entry {
	var e journal.Entry
	if r.engine.Result().Changed {
		e = r.engine.Record(partial)
	} else {
		e = journal.NewEntry(r.req, r.o.Address(), r.o.LoginPort)
		if r.o.LoginUnixSocket != "" {
			e.Port = 0
		}
		e.Partial = partial
	}
	for _, f := range r.written {
		c := journal.Change{Kind: journal.KindCertificate, Name: f.path, Detail: "key (content not recorded)"}
		if f.role != "key" {
			c.Detail = pemFingerprint(f.data)
		}
		e.Changes = append(e.Changes, c)
	}
	return e
}

// Unchanged clears what reports a change, for a failure after which
// nothing changed.
func (r *run) Unchanged() {
	r.fields.MaterialChanged = []string{}
	r.fields.Reloaded = false
	if r.engine != nil {
		r.engine.Unchanged()
	}
}

func (r *run) close() {
	if r.client != nil {
		r.client.Close()
	}
	if r.engine != nil {
		r.engine.Close()
	}
	r.mat.close()
}
