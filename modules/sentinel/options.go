// Package sentinel is the valkey_sentinel module: a Sentinel's monitors and
// its global settings, applied at runtime with SENTINEL MONITOR / SET /
// REMOVE / CONFIG SET, which Sentinel persists itself (it rewrites its own
// config file after each of them). The module never writes sentinel.conf:
// Sentinel's state lines (myid, epochs, known replicas and sentinels, the
// primary address a failover wrote) stay exactly as Sentinel wrote them.
package sentinel

import (
	"fmt"
	"strings"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/journal"
)

// DefaultPort is Sentinel's own port, the default of login_port here (the
// data nodes' 6379 is the default of every other module).
const DefaultPort = 26379

// DefaultPrimaryPort is a new monitor's primary_port when the task leaves it
// out: a data node's port.
const DefaultPrimaryPort = conn.DefaultPort

// A monitor's states. A setting the task leaves out keeps what Sentinel
// has (its own default for a new monitor).
const (
	StatePresent = "present"
	StateAbsent  = "absent"
)

// Options are valkey_sentinel's options.
type Options struct {
	conn.Options
	journal.JournalOptions

	// LoginPort shadows conn.Options.LoginPort: Sentinel listens on 26379
	// (DefaultPort) by default, not on 6379.
	LoginPort int `json:"login_port" spec:"default=26379"`

	// ConfigFile is Sentinel's config file (default: INFO server config_file
	// of the verified Sentinel process). Read only: auth-user/auth-pass are
	// not reported at runtime, so the file says whether they are set, and
	// after a change it proves that Sentinel persisted it.
	ConfigFile string `json:"config_file" spec:"path"`
	// Monitors are the primaries this Sentinel watches.
	Monitors []Monitor `json:"monitors" spec:"default=,item_required=name"`
	// Exclusive removes monitors the task does not list (default false).
	Exclusive bool `json:"exclusive" spec:"default=false"`
	// Reset names monitors to SENTINEL RESET: an explicit operation, always
	// reported as a change.
	Reset []string `json:"reset" spec:"default="`

	// SentinelUser and SentinelPass are what this Sentinel logs in with on
	// the other Sentinels (sentinel-user / sentinel-pass).
	SentinelUser *string        `json:"sentinel_user"`
	SentinelPass ansible.Secret `json:"sentinel_pass"`
	// ResolveHostnames and AnnounceHostnames (default: left as they are).
	ResolveHostnames  *bool `json:"resolve_hostnames"`
	AnnounceHostnames *bool `json:"announce_hostnames"`
	// AnnounceIP and AnnouncePort are this Sentinel's announced address
	// (per node; default: left as they are; "" / 0 clear them).
	AnnounceIP   *string `json:"announce_ip"`
	AnnouncePort *int    `json:"announce_port"`
	// DenyScriptsReconfig must be true (Sentinel's default): scripts run as
	// Sentinel's user, and reconfiguring them at runtime is a way to run
	// commands on the host. Sentinel cannot change it at runtime; the module
	// checks that Sentinel refuses script reconfiguration.
	DenyScriptsReconfig *bool `json:"deny_scripts_reconfig" spec:"default=true"`
}

// Monitor is one monitored primary.
type Monitor struct {
	// Name is the monitor's (the primary set's) name.
	Name string `json:"name" spec:"required"`
	// PrimaryHost and PrimaryPort are used only to create the monitor:
	// after a failover Sentinel follows the new primary, and the module
	// reports (never undoes) the difference.
	PrimaryHost string `json:"primary_host"`
	PrimaryPort *int   `json:"primary_port" spec:"default=6379"`
	// Quorum: Sentinels that must agree the primary is down (required to
	// create a monitor).
	Quorum                *int `json:"quorum"`
	DownAfterMilliseconds *int `json:"down_after_milliseconds"`
	FailoverTimeout       *int `json:"failover_timeout"`
	ParallelSyncs         *int `json:"parallel_syncs"`
	// AuthUser and AuthPass are what Sentinel logs in with on the data
	// nodes (default: left as they are).
	AuthUser string         `json:"auth_user"`
	AuthPass ansible.Secret `json:"auth_pass"`
	// State is present (default) or absent.
	State string `json:"state" spec:"default=present,choices=present|absent"`
}

func (m *Monitor) state() string {
	if m.State == "" {
		return StatePresent
	}
	return m.State
}

func (m *Monitor) port() int {
	if m.PrimaryPort == nil {
		return DefaultPrimaryPort
	}
	return *m.PrimaryPort
}

// badWord says why s cannot be written into sentinel.conf by Sentinel's own
// rewrite, or "" when it can. Sentinel writes names, users, passwords and
// addresses into its file unquoted (sentinel monitor NAME ..., sentinel
// auth-pass NAME PASS), and reads the file back with sdssplitargs: a space
// splits the word, a quote anywhere starts a quoted string, a control
// character ends the line. Sentinel accepts such values at runtime and
// then writes a file it cannot load (measured on Valkey 8.0.1).
func badWord(s string) string {
	if s == "" {
		return "is empty"
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			return "contains whitespace"
		case c < 0x20 || c == 0x7f:
			return "contains a control character"
		case c == '"' || c == '\'':
			return "contains a quote"
		}
	}
	return ""
}

const wordRule = "expected characters Sentinel writes into its config file as they are: no whitespace, quotes or control characters"

// Validate checks the task before anything is read or changed. Messages
// never contain a secret.
func (o *Options) Validate() error {
	if o.LoginPort < 0 || o.LoginPort > 65535 {
		return fmt.Errorf("option \"login_port\": %d is not a port; expected 1-65535", o.LoginPort)
	}
	o.Options.LoginPort = o.LoginPort
	if o.Options.LoginPort == 0 {
		o.Options.LoginPort = DefaultPort
	}
	if err := o.Options.Validate(); err != nil {
		return err
	}
	if err := o.JournalOptions.Validate(); err != nil {
		return err
	}
	if o.DenyScriptsReconfig != nil && !*o.DenyScriptsReconfig {
		return fmt.Errorf("option \"deny_scripts_reconfig\": false is refused; Sentinel's scripts run as its user, and letting SENTINEL SET change them at runtime lets anyone with a Sentinel login run commands on the host (expected true)")
	}
	seen := map[string]bool{}
	for i := range o.Monitors {
		m := &o.Monitors[i]
		if why := badWord(m.Name); why != "" {
			return fmt.Errorf("option \"monitors[%d].name\": %q %s; %s", i, m.Name, why, wordRule)
		}
		if seen[m.Name] {
			return fmt.Errorf("option \"monitors\": monitor %q is listed twice; expected each name once", m.Name)
		}
		seen[m.Name] = true
		if m.state() == StateAbsent {
			continue
		}
		if err := m.validate(i); err != nil {
			return err
		}
	}
	for i, name := range o.Reset {
		if why := badWord(name); why != "" {
			return fmt.Errorf("option \"reset[%d]\": %q %s; %s", i, name, why, wordRule)
		}
		if m := o.monitor(name); m != nil && m.state() == StateAbsent {
			return fmt.Errorf("option \"reset\": monitor %q is also listed with state absent; expected a monitor that stays", name)
		}
	}
	if o.SentinelUser != nil && *o.SentinelUser != "" {
		if why := badWord(*o.SentinelUser); why != "" {
			return fmt.Errorf("option \"sentinel_user\": %q %s; %s", *o.SentinelUser, why, wordRule)
		}
	}
	if o.SentinelPass.IsSet() {
		if why := badWord(o.SentinelPass.Reveal()); why != "" {
			return fmt.Errorf("option \"sentinel_pass\": the value %s; %s", why, wordRule)
		}
	}
	if o.SentinelPass.IsSet() && (o.SentinelUser == nil || *o.SentinelUser == "") {
		return fmt.Errorf("option \"sentinel_pass\" needs \"sentinel_user\": Sentinels log in to each other as a named ACL user; expected both")
	}
	if o.AnnounceIP != nil && *o.AnnounceIP != "" {
		if why := badWord(*o.AnnounceIP); why != "" {
			return fmt.Errorf("option \"announce_ip\": %q %s; %s", *o.AnnounceIP, why, wordRule)
		}
	}
	if o.AnnouncePort != nil && (*o.AnnouncePort < 0 || *o.AnnouncePort > 65535) {
		return fmt.Errorf("option \"announce_port\": %d is not a port; expected 0 (none) or 1-65535", *o.AnnouncePort)
	}
	return nil
}

func (m *Monitor) validate(i int) error {
	opt := func(name string) string { return fmt.Sprintf("option \"monitors[%d].%s\"", i, name) }
	if p := m.PrimaryPort; p != nil && (*p < 1 || *p > 65535) {
		return fmt.Errorf("%s: %d is not a port; expected 1-65535", opt("primary_port"), *p)
	}
	if m.PrimaryHost != "" {
		if why := badWord(m.PrimaryHost); why != "" {
			return fmt.Errorf("%s: %q %s; %s", opt("primary_host"), m.PrimaryHost, why, wordRule)
		}
	}
	if m.Quorum != nil && *m.Quorum < 1 {
		return fmt.Errorf("%s: %d is less than 1; expected at least 1 Sentinel", opt("quorum"), *m.Quorum)
	}
	for _, f := range []struct {
		name string
		v    *int
		min  int
		what string
	}{
		{"down_after_milliseconds", m.DownAfterMilliseconds, 1, "milliseconds"},
		{"failover_timeout", m.FailoverTimeout, 1, "milliseconds"},
		{"parallel_syncs", m.ParallelSyncs, 1, "replica"},
	} {
		if f.v != nil && *f.v < f.min {
			return fmt.Errorf("%s: %d is less than %d; expected at least %d %s", opt(f.name), *f.v, f.min, f.min, f.what)
		}
	}
	if m.AuthUser != "" {
		if why := badWord(m.AuthUser); why != "" {
			return fmt.Errorf("%s: %q %s; %s", opt("auth_user"), m.AuthUser, why, wordRule)
		}
		if !m.AuthPass.IsSet() {
			return fmt.Errorf("%s is set without \"auth_pass\"; expected the user's password in monitors[%d].auth_pass", opt("auth_user"), i)
		}
	}
	if m.AuthPass.IsSet() {
		if why := badWord(m.AuthPass.Reveal()); why != "" {
			return fmt.Errorf("%s: the value %s; %s", opt("auth_pass"), why, wordRule)
		}
	}
	return nil
}

// createError says what a missing monitor lacks to be created, or nil.
func (m *Monitor) createError(i int) error {
	var missing []string
	if m.PrimaryHost == "" {
		missing = append(missing, "primary_host")
	}
	if m.Quorum == nil {
		missing = append(missing, "quorum")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("option \"monitors[%d]\": monitor %q does not exist yet, and creating it needs %s", i, m.Name, strings.Join(missing, " and "))
}

func (o *Options) monitor(name string) *Monitor {
	for i := range o.Monitors {
		if o.Monitors[i].Name == name {
			return &o.Monitors[i]
		}
	}
	return nil
}

// carriesSecrets: any password the task sends to Sentinel.
func (o *Options) carriesSecrets() bool {
	if o.SentinelPass.IsSet() {
		return true
	}
	for _, m := range o.Monitors {
		if m.AuthPass.IsSet() {
			return true
		}
	}
	return false
}
