package tls

import (
	"errors"
	"fmt"
	"github.com/valkeyops/secure/internal/journal"
	"path/filepath"
	"slices"
	"strings"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/settings"
)

// Defaults of valkey_tls's options.
const (
	DefaultMinDaysValid = 30
	DefaultExpiryPolicy = ExpiryFail
	ExpiryFail          = "fail"
	ExpiryWarn          = "warn"
)

// DefaultProtocols is the default of the protocols option.
var DefaultProtocols = []string{"TLSv1.2", "TLSv1.3"}

// Protocols in the order Valkey lists them; the legacy ones need
// allow_legacy_protocols.
var (
	knownProtocols  = []string{"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}
	legacyProtocols = []string{"TLSv1", "TLSv1.1"}
)

// File names in dest_dir.
const (
	CertName = "server.crt"
	KeyName  = "server.key"
	CAName   = "ca.crt"
)

// File modes of deployed material.
const (
	CertMode      = 0o644 // certificates and the CA are public
	KeyMode       = 0o600 // the key, owner only
	KeyGroupMode  = 0o640 // the key when group is set: readable by the server's group
	DefaultCN     = "localhost"
	DefaultIPName = "127.0.0.1"
)

// Options are valkey_tls's options.
type Options struct {
	conn.Options
	// JournalOptions are the change journal's options (journal,
	// journal_path, journal_required, journal_syslog).
	journal.JournalOptions

	// Cert, Key and CA are PEM content, written to DestDir. Each conflicts
	// with its *_path counterpart.
	Cert string         `json:"cert" spec:"exclusive=cert_path"`
	Key  ansible.Secret `json:"key" spec:"exclusive=key_path"`
	CA   string         `json:"ca" spec:"exclusive=ca_path"`
	// CertPath, KeyPath and CAPath are files already on the target.
	CertPath string `json:"cert_path" spec:"path"`
	KeyPath  string `json:"key_path" spec:"path"`
	CAPath   string `json:"ca_path" spec:"path"`
	// DestDir is where content (or generated material) is written, as
	// server.crt, server.key and ca.crt. It must exist.
	DestDir string `json:"dest_dir" spec:"path"`
	// Owner and Group of the files written (default: unchanged for existing
	// files, the module's user for new ones). Group makes the key 0640.
	Owner string `json:"owner"`
	Group string `json:"group"`
	// KeyPassphrase decrypts an encrypted key (tls-key-file-pass).
	KeyPassphrase ansible.Secret `json:"key_passphrase"`

	// Port is tls-port (default: the server's current one, which must not be 0).
	Port *int `json:"port"`
	// PlaintextPort is port; 0 disables plain TCP (default: unmanaged).
	PlaintextPort *int `json:"plaintext_port"`
	// AuthClients is tls-auth-clients: yes, no or optional (default: unmanaged).
	AuthClients string `json:"auth_clients" spec:"choices=yes|no|optional"`
	// Protocols is tls-protocols (default DefaultProtocols).
	Protocols []string `json:"protocols" spec:"default=TLSv1.2|TLSv1.3,choices=TLSv1|TLSv1.1|TLSv1.2|TLSv1.3"`
	// AllowLegacyProtocols permits TLSv1 and TLSv1.1 in Protocols.
	AllowLegacyProtocols bool `json:"allow_legacy_protocols" spec:"default=false"`
	// Ciphers and Ciphersuites are tls-ciphers (TLSv1.2) and
	// tls-ciphersuites (TLSv1.3), OpenSSL syntax (default: unmanaged).
	Ciphers      string `json:"ciphers"`
	Ciphersuites string `json:"ciphersuites"`
	// The tls-* booleans (default: unmanaged).
	PreferServerCiphers *bool `json:"prefer_server_ciphers"`
	Replication         *bool `json:"replication"`
	Cluster             *bool `json:"cluster"`
	SessionCaching      *bool `json:"session_caching"`

	// Persist, ConfigFile, Backup and Strict are valkey_config's.
	Persist    string `json:"persist" spec:"default=both,choices=runtime|file|both"`
	ConfigFile string `json:"config_file" spec:"path"`
	Backup     bool   `json:"backup" spec:"default=false"`
	Strict     bool   `json:"strict" spec:"default=false"`

	// MinDaysValid: a certificate expiring sooner fails (or warns, with
	// ExpiryPolicy warn). Default DefaultMinDaysValid; 0 turns it off.
	MinDaysValid *int `json:"min_days_valid" spec:"default=30"`
	// ExpiryPolicy is fail or warn (default DefaultExpiryPolicy).
	ExpiryPolicy string `json:"expiry_policy" spec:"default=fail,choices=fail|warn"`

	// GenerateSelfSigned creates a CA and a server certificate in DestDir
	// (labs and tests); conflicts with every material option.
	GenerateSelfSigned bool `json:"generate_self_signed" spec:"default=false"`
	// ServerNames must be covered by the certificate's SANs; with
	// GenerateSelfSigned they are the SANs (default localhost, 127.0.0.1).
	ServerNames []string `json:"server_names"`
}

// validate checks the options and fills defaults; it touches nothing.
func (o *Options) validate() error {
	if err := o.JournalOptions.Validate(); err != nil {
		return err
	}
	if o.MinDaysValid == nil {
		d := DefaultMinDaysValid
		o.MinDaysValid = &d
	}
	if *o.MinDaysValid < 0 {
		return errors.New(`option "min_days_valid": expected 0 or a positive number of days`)
	}
	switch o.ExpiryPolicy {
	case "":
		o.ExpiryPolicy = DefaultExpiryPolicy
	case ExpiryFail, ExpiryWarn:
	default:
		return fmt.Errorf(`option "expiry_policy": %q is not one of fail, warn`, o.ExpiryPolicy)
	}
	switch o.AuthClients {
	case "", "yes", "no", "optional":
	default:
		return fmt.Errorf(`option "auth_clients": %q is not one of yes, no, optional`, o.AuthClients)
	}
	if err := o.validateProtocols(); err != nil {
		return err
	}
	if o.Port != nil && (*o.Port < 1 || *o.Port > 65535) {
		return fmt.Errorf(`option "port": %d is not a port; expected 1-65535`, *o.Port)
	}
	if o.PlaintextPort != nil && (*o.PlaintextPort < 0 || *o.PlaintextPort > 65535) {
		return fmt.Errorf(`option "plaintext_port": %d is not a port; expected 0 (off) or 1-65535`, *o.PlaintextPort)
	}
	if o.Port != nil && o.PlaintextPort != nil && *o.Port == *o.PlaintextPort {
		return fmt.Errorf(`options "port" and "plaintext_port" are both %d; they must differ`, *o.Port)
	}
	for _, c := range []struct{ name, v string }{{"ciphers", o.Ciphers}, {"ciphersuites", o.Ciphersuites}} {
		if strings.ContainsAny(c.v, "\r\n") {
			return fmt.Errorf("option %q: the value contains a line break", c.name)
		}
	}
	for _, n := range o.ServerNames {
		if strings.TrimSpace(n) == "" || strings.ContainsAny(n, " \t\r\n") {
			return fmt.Errorf(`option "server_names": %q is not a host name or an IP address`, n)
		}
	}
	if err := o.validateMaterial(); err != nil {
		return err
	}
	return nil
}

func (o *Options) validateProtocols() error {
	if o.Protocols == nil {
		o.Protocols = slices.Clone(DefaultProtocols)
	}
	var fields []string
	for _, p := range o.Protocols {
		fields = append(fields, strings.Fields(p)...)
	}
	if len(fields) == 0 {
		return errors.New(`option "protocols": give at least one of TLSv1.2, TLSv1.3`)
	}
	seen := map[string]bool{}
	for _, p := range fields {
		canon := ""
		for _, k := range knownProtocols {
			if strings.EqualFold(p, k) {
				canon = k
			}
		}
		if canon == "" {
			return fmt.Errorf(`option "protocols": %q is not one of %s`, p, strings.Join(knownProtocols, ", "))
		}
		if slices.Contains(legacyProtocols, canon) && !o.AllowLegacyProtocols {
			return fmt.Errorf(`option "protocols": %s is refused because it is deprecated and insecure (RFC 8996); use TLSv1.2 and TLSv1.3, or set allow_legacy_protocols: true`, canon)
		}
		seen[canon] = true
	}
	// Valkey's own order, so that a reordered list is no change.
	o.Protocols = o.Protocols[:0]
	for _, k := range knownProtocols {
		if seen[k] {
			o.Protocols = append(o.Protocols, k)
		}
	}
	return nil
}

func (o *Options) validateMaterial() error {
	given := func() []string {
		var g []string
		for _, x := range []struct {
			name string
			set  bool
		}{{"cert", o.Cert != ""}, {"key", o.Key.IsSet()}, {"ca", o.CA != ""}, {"cert_path", o.CertPath != ""}, {"key_path", o.KeyPath != ""}, {"ca_path", o.CAPath != ""}} {
			if x.set {
				g = append(g, x.name)
			}
		}
		return g
	}()
	if o.GenerateSelfSigned {
		if len(given) > 0 {
			return fmt.Errorf(`option "generate_self_signed" cannot be combined with certificate material (%s given): use one or the other`, strings.Join(given, ", "))
		}
		if o.KeyPassphrase.IsSet() {
			return errors.New(`option "key_passphrase" does not apply to generate_self_signed (the generated key is not encrypted)`)
		}
		if o.DestDir == "" {
			return errors.New(`option "dest_dir" is required with generate_self_signed`)
		}
		if len(o.ServerNames) == 0 {
			o.ServerNames = []string{DefaultCN, DefaultIPName}
		}
	} else {
		for _, pair := range [][2]string{{"cert", "cert_path"}, {"key", "key_path"}, {"ca", "ca_path"}} {
			if slices.Contains(given, pair[0]) && slices.Contains(given, pair[1]) {
				return fmt.Errorf("options %q and %q are mutually exclusive: give the content or the path", pair[0], pair[1])
			}
		}
		for _, pair := range [][2]string{{"cert", "cert_path"}, {"key", "key_path"}, {"ca", "ca_path"}} {
			if !slices.Contains(given, pair[0]) && !slices.Contains(given, pair[1]) {
				what := map[string]string{"cert": "the server certificate", "key": "its private key", "ca": "the CA certificate the chain verifies to"}[pair[0]]
				return fmt.Errorf("option %q or %q is required (%s), or set generate_self_signed: true for a lab", pair[0], pair[1], what)
			}
		}
		content := o.Cert != "" || o.Key.IsSet() || o.CA != ""
		if content && o.DestDir == "" {
			return errors.New(`option "dest_dir" is required when cert, key or ca is given as content`)
		}
		if !content && o.DestDir != "" {
			return errors.New(`option "dest_dir" is only used with cert, key or ca content (or generate_self_signed)`)
		}
		if !content && (o.Owner != "" || o.Group != "") {
			return errors.New(`options "owner" and "group" apply to files the module writes (content in dest_dir); they are not used with *_path options`)
		}
	}
	for _, p := range []struct{ name, v string }{{"dest_dir", o.DestDir}, {"cert_path", o.CertPath}, {"key_path", o.KeyPath}, {"ca_path", o.CAPath}, {"config_file", o.ConfigFile}} {
		if p.v != "" && !filepath.IsAbs(p.v) {
			return fmt.Errorf("option %q: %q is not an absolute path", p.name, p.v)
		}
	}
	return nil
}

// settingsOptions are the options handed to the settings engine.
func (o *Options) settingsOptions(values map[string]any) settings.Options {
	var s settings.Options
	s.Options = o.Options
	s.Settings = values
	s.Persist = o.Persist
	s.ConfigFile = o.ConfigFile
	s.Backup = o.Backup
	s.Strict = o.Strict
	s.JournalOptions = o.JournalOptions
	return s
}
