// Package tlssign is the valkey_tls_sign module, the controller's half of
// the group CA flow (internal/groupca). Run on the controller (delegate_to:
// localhost), it loads the group CA (given as content, e.g. from Ansible
// Vault, or kept in a 0700 directory; for labs generated there once) and
// signs a node's certificate signing request with exactly the names the
// inventory gives for that node. The CA key never leaves the controller and
// the node's key never reaches it: only the CSR and the certificate travel.
package tlssign

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/groupca"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/outcome"
	"github.com/valkeyops/secure/internal/x509check"
)

// Options are valkey_tls_sign's options.
type Options struct {
	// CACert and CAKey are the group CA as PEM content; CAKey is a secret.
	CACert string         `json:"ca_cert" spec:"exclusive=ca_dir,together=ca_key"`
	CAKey  ansible.Secret `json:"ca_key" spec:"exclusive=ca_dir"`
	// CADir holds ca.crt and ca.key on the controller (0700, the play's
	// user's; the key 0600).
	CADir string `json:"ca_dir" spec:"path"`
	// GenerateCA creates the CA in CADir when it holds none (labs only).
	GenerateCA bool `json:"generate_ca" spec:"default=false"`
	// GroupName names a generated CA ("valkeyops group CA NAME").
	GroupName string `json:"group_name" spec:"default=valkey"`
	// CSR is the node's certificate signing request (valkey_tls_csr's csr).
	// Without it the task only loads (or generates) the CA.
	CSR string `json:"csr"`
	// Names are the certificate's names: the inventory's for this node.
	Names []string `json:"names"`
	// Days is the certificate's validity (default groupca.DefaultDays).
	Days *int `json:"days" spec:"default=365"`
}

// Fields are the module's return values.
type Fields struct {
	Cert        string          `json:"cert"`
	CACert      string          `json:"ca_cert"`
	CAGenerated bool            `json:"ca_generated"`
	Certificate *x509check.Info `json:"certificate"`
}

// Main is the module's entry point.
func Main(req *ansible.Request) *ansible.Result {
	var o Options
	if err := req.Decode(&o); err != nil {
		return outcome.Fail(err)
	}
	if err := o.validate(); err != nil {
		return outcome.Fail(err)
	}
	r := &run{req: req, o: &o, res: &ansible.Result{}, f: &Fields{}, now: time.Now()}
	defer r.close()
	off := false
	// Nothing on a Valkey host changes here; the node's journal records
	// the certificate when valkey_tls installs it.
	return outcome.Run(&outcome.Task{Req: req, Res: r.res, Journal: journal.JournalOptions{Journal: &off}, Timeout: 30 * time.Second}, r)
}

func (o *Options) validate() error {
	switch {
	case o.CADir == "" && o.CACert == "":
		return errors.New(`give the group CA: options "ca_cert" and "ca_key", or "ca_dir"`)
	case o.CACert != "" && !o.CAKey.IsSet():
		return errors.New(`option "ca_key" is required with "ca_cert"`)
	case o.CAKey.IsSet() && o.CACert == "":
		return errors.New(`option "ca_cert" is required with "ca_key"`)
	case o.GenerateCA && o.CADir == "":
		return errors.New(`option "generate_ca" needs "ca_dir", where the CA is kept`)
	case o.CADir != "" && !filepath.IsAbs(o.CADir):
		return fmt.Errorf("option \"ca_dir\": %q is not an absolute path", o.CADir)
	}
	if o.Days == nil {
		d := groupca.DefaultDays
		o.Days = &d
	}
	if *o.Days < 1 || *o.Days > groupca.MaxDays {
		return fmt.Errorf(`option "days": %d is out of range; expected 1-%d`, *o.Days, groupca.MaxDays)
	}
	if o.CSR != "" {
		if err := groupca.CheckNames("names", o.Names); err != nil {
			return err
		}
	} else if len(o.Names) > 0 {
		return errors.New(`option "names" needs "csr", the request to sign`)
	}
	return nil
}

type run struct {
	req *ansible.Request
	o   *Options
	res *ansible.Result
	f   *Fields
	now time.Time

	dir            *groupca.Dir
	newCert, newKy []byte // a CA to store
}

func (r *run) close() {
	if r.dir != nil {
		r.dir.Close()
	}
}

// Plan loads (or makes, in memory) the CA and signs the CSR. Signing has
// no side effect, so check mode signs too when the CA exists.
func (r *run) Plan(ctx context.Context, t *outcome.Task) error {
	r.res.Fields = r.f
	certPEM, keyPEM := []byte(r.o.CACert), []byte(r.o.CAKey.Reveal())
	certLabel, keyLabel := `option "ca_cert"`, `option "ca_key"`
	if r.o.CADir != "" && r.req.CheckMode && r.o.GenerateCA && !exists(r.o.CADir) {
		// Check mode does not make the directory: it would make the CA.
		r.f.CAGenerated = true
		r.res.Changed = true
		return nil
	}
	if r.o.CADir != "" {
		d, err := groupca.OpenDir(r.o.CADir, r.o.GenerateCA && !r.req.CheckMode)
		if err != nil {
			return err
		}
		r.dir = d
		if err := t.Lock(filepath.Join(r.o.CADir, groupca.CAKeyName)); err != nil {
			return fmt.Errorf("failed to lock the CA directory %q: %w", r.o.CADir, err)
		}
		if certPEM, keyPEM, err = d.Read(); err != nil {
			return err
		}
		certLabel, keyLabel = filepath.Join(d.Path(), groupca.CACertName), filepath.Join(d.Path(), groupca.CAKeyName)
		if certPEM == nil {
			if !r.o.GenerateCA {
				return fmt.Errorf("the CA directory %q holds no CA (%s, %s); put the group CA there, or set generate_ca: true for a lab", r.o.CADir, groupca.CACertName, groupca.CAKeyName)
			}
			if certPEM, keyPEM, err = groupca.GenerateCA(r.o.GroupName, r.now); err != nil {
				return err
			}
			r.newCert, r.newKy = certPEM, keyPEM
			r.f.CAGenerated = true
		}
	}
	for _, l := range x509check.KeyLines(keyPEM) {
		r.req.AddSecret(l)
	}
	ca, err := groupca.LoadCA(certPEM, keyPEM, certLabel, keyLabel, r.now)
	if err != nil {
		return err
	}
	if !r.f.CAGenerated || !r.req.CheckMode {
		r.f.CACert = string(ca.CertPEM)
	}
	if r.o.CSR != "" && r.f.CACert != "" {
		cert, err := ca.Sign([]byte(r.o.CSR), r.o.Names, *r.o.Days, r.now)
		if err != nil {
			return err
		}
		c, _ := x509check.ParseCerts(cert, "the certificate")
		info := x509check.Describe(c[0], r.now)
		r.f.Cert, r.f.Certificate = string(cert), &info
	}
	r.res.Changed = r.f.CAGenerated || r.f.Cert != ""
	return nil
}

// Apply stores a generated CA.
func (r *run) Apply(ctx context.Context, t *outcome.Task) error {
	if r.newCert == nil {
		return nil
	}
	return r.dir.Write(r.newCert, r.newKy)
}

// Record is not used (the journal is off for this controller-side module).
func (r *run) Record(partial bool) journal.Entry { return journal.Entry{} }

// Unchanged clears what reports a change.
func (r *run) Unchanged() {
	r.f.Cert, r.f.CAGenerated, r.f.Certificate = "", false, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
