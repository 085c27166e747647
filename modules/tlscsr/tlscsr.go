// Package tlscsr is the valkey_tls_csr module, the node's half of the
// group CA flow (internal/groupca): it makes the node's private key in
// dest_dir (it never leaves the node) and, when the node's certificate no
// longer serves the group, returns a certificate signing request for the
// controller to sign (valkey_tls_sign). A certificate that is still good
// (issued by the group CA, the inventory's names, the node's key, valid
// for min_days_valid) is returned as it is, so a converged group issues
// nothing and valkey_tls reports no change.
package tlscsr

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/groupca"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/outcome"
	"github.com/valkeyops/secure/internal/safefs"
	"github.com/valkeyops/secure/internal/x509check"
)

// File names in dest_dir (valkey_tls's).
const (
	CertName = "server.crt"
	KeyName  = "server.key"
	// DefaultMinDaysValid is min_days_valid's default.
	DefaultMinDaysValid = 30
	// KeyMode and KeyGroupMode are the key's modes without and with group.
	KeyMode      = 0o600
	KeyGroupMode = 0o640
	maxFileSize  = 1 << 20
)

// Options are valkey_tls_csr's options.
type Options struct {
	// JournalOptions: a key written is recorded (by path only).
	journal.JournalOptions
	// DestDir holds server.key (made here) and server.crt (valkey_tls's
	// dest_dir). It must exist and be root's.
	DestDir string `json:"dest_dir" spec:"path,required"`
	// CA is the group CA certificate (PEM), the issuer the current
	// certificate must verify to.
	CA string `json:"ca" spec:"required"`
	// ServerNames are the certificate's names, exactly (the inventory's).
	ServerNames []string `json:"server_names" spec:"required"`
	// MinDaysValid: a certificate expiring sooner is renewed (default 30).
	MinDaysValid *int `json:"min_days_valid" spec:"default=30"`
	// Owner and Group of the key (default: unchanged for an existing key,
	// the module's user for a new one). Group makes the key 0640.
	Owner string `json:"owner"`
	Group string `json:"group"`
	// RotateKey makes a new key (and so a new certificate) on this run.
	RotateKey bool `json:"rotate_key" spec:"default=false"`
	// Instance names the instance in the journal.
	Instance string `json:"instance"`
}

// Fields are the module's return values.
type Fields struct {
	Renew      bool            `json:"renew"`
	Reason     string          `json:"reason"`
	CSR        string          `json:"csr"`
	Cert       string          `json:"cert"`
	KeyFile    string          `json:"key_file"`
	KeyCreated bool            `json:"key_created"`
	Current    *x509check.Info `json:"certificate"`
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
	r := &run{req: req, o: &o, res: &ansible.Result{}, now: time.Now(), f: &Fields{}}
	defer r.close()
	return outcome.Run(&outcome.Task{Req: req, Res: r.res, Journal: o.JournalOptions, Timeout: 30 * time.Second}, r)
}

func (o *Options) validate() error {
	if err := o.JournalOptions.Validate(); err != nil {
		return err
	}
	if !filepath.IsAbs(o.DestDir) {
		return fmt.Errorf("option \"dest_dir\": %q is not an absolute path", o.DestDir)
	}
	if o.MinDaysValid == nil {
		d := DefaultMinDaysValid
		o.MinDaysValid = &d
	}
	if *o.MinDaysValid < 0 {
		return errors.New(`option "min_days_valid": expected 0 or a positive number of days`)
	}
	if err := groupca.CheckNames("server_names", o.ServerNames); err != nil {
		return err
	}
	if _, err := x509check.ParseCerts([]byte(o.CA), `option "ca"`); err != nil {
		return err
	}
	return nil
}

type run struct {
	req *ansible.Request
	o   *Options
	res *ansible.Result
	now time.Time
	f   *Fields

	dir      *safefs.Dir
	uid, gid int
	mode     fs.FileMode
	exists   bool // server.key exists
	oldMode  fs.FileMode
	oldUID   int
	oldGID   int
	newKey   []byte // PEM of a key to write
	fixAttrs bool
}

func (r *run) close() {
	if r.dir != nil {
		_ = r.dir.Close()
	}
}

// Plan reads the key and the certificate under dest_dir's lock and decides.
func (r *run) Plan(ctx context.Context, t *outcome.Task) error {
	r.res.Fields = r.f
	r.f.KeyFile = filepath.Join(r.o.DestDir, KeyName)
	if err := r.owner(); err != nil {
		return err
	}
	d, err := safefs.OpenDir(r.o.DestDir, safefs.Trust{})
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("dest_dir %q does not exist or is not a directory; create it first (ansible.builtin.file)", r.o.DestDir)
	case err != nil:
		return fmt.Errorf("refusing dest_dir %q: %v; make it owned by root and writable only by root", r.o.DestDir, err)
	}
	r.dir = d
	if err := t.Lock(filepath.Join(r.o.DestDir, CertName)); err != nil {
		return fmt.Errorf("failed to lock %s: %w", r.o.DestDir, err)
	}
	key, err := r.readKey()
	if err != nil {
		return err
	}
	if key == nil || r.o.RotateKey {
		var pemKey []byte
		if key, pemKey, err = groupca.MakeKey(); err != nil {
			return err
		}
		for _, l := range x509check.KeyLines(pemKey) {
			r.req.AddSecret(l)
		}
		r.newKey = pemKey
		r.f.KeyCreated = true
	}
	cert, err := r.readCert()
	if err != nil {
		return err
	}
	reason := "a new key"
	if !r.f.KeyCreated {
		reason = groupca.Status(cert, key, []byte(r.o.CA), r.o.ServerNames, *r.o.MinDaysValid, r.now)
	}
	if certs, err := x509check.ParseCerts(cert, CertName); err == nil && len(cert) > 0 {
		info := x509check.Describe(certs[0], r.now)
		r.f.Current = &info
	}
	r.f.Renew, r.f.Reason = reason != "", reason
	if reason == "" {
		r.f.Cert = string(cert)
	} else if !(r.f.KeyCreated && r.req.CheckMode) {
		// In check mode a new key is not written, so no CSR for it.
		csr, err := groupca.MakeCSR(key, r.o.ServerNames)
		if err != nil {
			return err
		}
		r.f.CSR = string(csr)
	}
	r.res.Changed = r.newKey != nil || r.fixAttrs
	if r.req.Diff && r.res.Changed {
		r.res.Diff = []ansible.DiffEntry{{BeforeHeader: r.f.KeyFile, AfterHeader: r.f.KeyFile,
			Before: r.describeKey(false), After: r.describeKey(true)}}
	}
	return nil
}

func (r *run) describeKey(after bool) string {
	if !after {
		if !r.exists {
			return "(absent)\n"
		}
		return fmt.Sprintf("key mode %04o owner %d:%d\n", r.oldMode, r.oldUID, r.oldGID)
	}
	what := "key"
	if r.newKey != nil {
		what = "new key (content not shown)"
	}
	return fmt.Sprintf("%s mode %04o owner %d:%d\n", what, r.mode, keep(r.uid, r.oldUID, r.exists), keep(r.gid, r.oldGID, r.exists))
}

func keep(want, old int, exists bool) int {
	if want >= 0 || !exists {
		return want
	}
	return old
}

// readKey returns the node's key when it is usable (parses, unencrypted,
// strong enough), nil when a new one is needed.
func (r *run) readKey() (crypto.Signer, error) {
	st, err := r.dir.Stat(KeyName)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to stat %s: %v", r.f.KeyFile, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink > 1 {
		return nil, fmt.Errorf("%s is not a regular file with one link; refusing to use or replace it (remove it)", r.f.KeyFile)
	}
	data, st, err := r.dir.ReadFile(KeyName, maxFileSize)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %v", r.f.KeyFile, err)
	}
	for _, l := range x509check.KeyLines(data) {
		r.req.AddSecret(l)
	}
	r.exists, r.oldMode, r.oldUID, r.oldGID = true, fs.FileMode(st.Mode).Perm(), int(st.Uid), int(st.Gid)
	r.fixAttrs = r.oldMode != r.mode || (r.uid >= 0 && r.uid != r.oldUID) || (r.gid >= 0 && r.gid != r.oldGID)
	key, encrypted, err := x509check.ParseKey(data, r.f.KeyFile, nil)
	if err != nil || encrypted || x509check.WeakKey(key.Public()) != "" {
		return nil, nil // replaced by a new key
	}
	return key, nil
}

func (r *run) readCert() ([]byte, error) {
	data, _, err := r.dir.ReadFile(CertName, maxFileSize)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %v", filepath.Join(r.o.DestDir, CertName), err)
	}
	return data, nil
}

func (r *run) owner() (err error) {
	r.mode = KeyMode
	if r.o.Group != "" {
		r.mode = KeyGroupMode
	}
	r.uid, r.gid, err = safefs.IDs(r.o.Owner, r.o.Group)
	return err
}

// Apply writes the new key (owner and mode before the first byte), or
// fixes the mode and owner of the existing one.
func (r *run) Apply(ctx context.Context, t *outcome.Task) error {
	attr := safefs.Attr{Mode: r.mode, UID: r.uid, GID: r.gid}
	if r.exists && r.fixAttrs {
		tr := safefs.Trust{UIDs: []int{r.oldUID}}
		if err := r.dir.SetAttr(KeyName, attr, tr); err != nil {
			return fmt.Errorf("failed to change the owner and mode of %s: %v", r.f.KeyFile, err)
		}
	}
	if r.newKey != nil {
		attr.UID, attr.GID = keep(r.uid, r.oldUID, r.exists), keep(r.gid, r.oldGID, r.exists)
		if err := r.dir.WriteFile(KeyName, r.newKey, attr); err != nil {
			if r.exists && r.fixAttrs {
				return outcome.Partial("failed to write %s: %v; its owner and mode were changed", r.f.KeyFile, err)
			}
			return fmt.Errorf("failed to write %s: %v", r.f.KeyFile, err)
		}
	}
	return nil
}

// Record names the key by path only.
func (r *run) Record(partial bool) journal.Entry {
	e := journal.NewEntry(r.req, "", 0)
	e.Instance = r.o.Instance
	e.Partial = partial
	detail := "key mode and owner"
	if r.newKey != nil {
		detail = "new key (content not recorded)"
	}
	e.Changes = append(e.Changes, journal.Change{Kind: journal.KindCertificate, Name: r.f.KeyFile, Detail: detail})
	return e
}

// Unchanged clears what reports a change.
func (r *run) Unchanged() {
	r.f.KeyCreated = false
	r.f.CSR = ""
}
