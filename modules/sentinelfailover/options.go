// Package sentinelfailover is the valkey_sentinel_failover module: the move
// of a replication group's primary through its Sentinel with no
// acknowledged write lost, in one process on the primary's host. Writes are
// paused on the primary (CLIENT PAUSE WRITE, which ends by itself if the
// module dies), the replicas' acknowledged offsets must equal the
// primary's, one Sentinel fails over (SENTINEL FAILOVER), and once it names
// the replica it promoted the old primary follows it; then the pause ends.
// Every wait polls every few milliseconds and is bounded by one deadline
// inside the pause, so the writes are blocked for as long as Valkey itself
// takes, not for a sequence of Ansible tasks.
package sentinelfailover

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/journal"
)

// Defaults and bounds of the options.
const (
	// DefaultSentinelPort is Sentinel's own port.
	DefaultSentinelPort = 26379
	// DefaultTimeout is how long writes may stay paused (milliseconds).
	DefaultTimeout = 10000
	// MinTimeout and MaxTimeout bound timeout: a Sentinel needs a few
	// hundred milliseconds to promote a replica, and writes paused for
	// minutes are an outage, not a switchover.
	MinTimeout = 500
	MaxTimeout = 300000
)

// Options are valkey_sentinel_failover's options. The shared connection
// options (login_*) reach the current primary, the server the task runs
// beside; the sentinel_* options reach the Sentinel that moves the role.
type Options struct {
	conn.Options
	journal.JournalOptions

	// Group is the Sentinel monitor's name (the replication group). Required.
	Group string `json:"group" spec:"required"`
	// To is the replica to promote, "host:port" as the primary lists it
	// (INFO replication); empty lets the Sentinel choose among the
	// replicas. The module checks the Sentinel promoted it; making it the
	// only candidate (replica-priority) is the caller's part.
	To string `json:"to"`

	// SentinelUnixSocket is the Sentinel's unix socket (a Sentinel on this
	// host); it takes precedence over sentinel_host/sentinel_port.
	SentinelUnixSocket string `json:"sentinel_unix_socket" spec:"path"`
	// SentinelHost and SentinelPort reach a Sentinel over TCP (default
	// 127.0.0.1:26379); on another host a password goes to it only over
	// TLS with a verified certificate (sentinel_tls).
	SentinelHost string `json:"sentinel_host" spec:"default=127.0.0.1"`
	SentinelPort int    `json:"sentinel_port" spec:"default=26379"`
	// SentinelUser and SentinelPassword log in to the Sentinel.
	SentinelUser     string         `json:"sentinel_user"`
	SentinelPassword ansible.Secret `json:"sentinel_password"`
	// SentinelTLS connects to the Sentinel with TLS; the certificate is
	// always verified (against sentinel_tls_ca_cert, default: the system
	// roots), by sentinel_tls_server_name (default: sentinel_host).
	SentinelTLS           bool   `json:"sentinel_tls" spec:"default=false"`
	SentinelTLSCACert     string `json:"sentinel_tls_ca_cert" spec:"path"`
	SentinelTLSCert       string `json:"sentinel_tls_cert" spec:"path,together=sentinel_tls_key"`
	SentinelTLSKey        string `json:"sentinel_tls_key" spec:"path"`
	SentinelTLSServerName string `json:"sentinel_tls_server_name"`

	// Timeout is the longest time writes stay paused, in milliseconds
	// (default DefaultTimeout): the pause is set for that long, so it ends
	// by itself if the module dies, and every wait inside it ends sooner.
	Timeout int `json:"timeout" spec:"default=10000"`
}

func (o *Options) timeout() int {
	if o.Timeout == 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

// sentinel is the connection to the Sentinel, as conn opens it: its peer
// checks and its rule that a password goes to another host only over
// verified TLS. There is no validate_certs for the Sentinel: a switchover
// is never worth an unverified peer.
func (o *Options) sentinel() *conn.Options {
	s := &conn.Options{
		LoginHost: o.SentinelHost, LoginPort: o.SentinelPort, LoginUnixSocket: o.SentinelUnixSocket,
		LoginUser: o.SentinelUser, LoginPassword: o.SentinelPassword,
		TLS: o.SentinelTLS, TLSCACert: o.SentinelTLSCACert, TLSCert: o.SentinelTLSCert, TLSKey: o.SentinelTLSKey,
		TLSServerName: o.SentinelTLSServerName, ConnectTimeout: o.ConnectTimeout,
	}
	if s.LoginPort == 0 {
		s.LoginPort = DefaultSentinelPort
	}
	return s
}

// Validate checks the task before anything is read or changed; each
// refusal is one sentence naming the option, never holding a secret.
func (o *Options) Validate() error {
	if err := o.Options.Validate(); err != nil {
		return err
	}
	if err := o.JournalOptions.Validate(); err != nil {
		return err
	}
	if why := badName(o.Group); why != "" {
		return fmt.Errorf("option \"group\": %q %s; expected the name of the Sentinel's monitor", o.Group, why)
	}
	if o.To != "" {
		if _, _, err := splitAddress(o.To); err != nil {
			return fmt.Errorf("option \"to\": %q %v; expected host:port of a replica as the primary lists it", o.To, err)
		}
	}
	if o.SentinelPort < 0 || o.SentinelPort > 65535 {
		return fmt.Errorf("option \"sentinel_port\": %d is not a port; expected 1-65535", o.SentinelPort)
	}
	if (o.SentinelTLSCert == "") != (o.SentinelTLSKey == "") {
		return errors.New("options \"sentinel_tls_cert\" and \"sentinel_tls_key\" go together: give both or neither")
	}
	if !o.SentinelTLS && (o.SentinelTLSCACert != "" || o.SentinelTLSCert != "" || o.SentinelTLSServerName != "") {
		return errors.New("options \"sentinel_tls_ca_cert\", \"sentinel_tls_cert\", \"sentinel_tls_key\" and \"sentinel_tls_server_name\" need \"sentinel_tls: true\"")
	}
	if o.SentinelPassword.IsSet() && strings.ContainsAny(o.SentinelPassword.Reveal(), "\r\n") {
		return errors.New("option \"sentinel_password\": the value contains a line break")
	}
	if t := o.timeout(); t < MinTimeout || t > MaxTimeout {
		return fmt.Errorf("option \"timeout\": %d is out of range; expected %d-%d milliseconds", t, MinTimeout, MaxTimeout)
	}
	return nil
}

// badName says why s cannot be a Sentinel monitor name, or "".
func badName(s string) string {
	if s == "" {
		return "is empty"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c == 0x7f || c == '"' || c == '\'' {
			return "contains whitespace, a quote or a control character"
		}
	}
	return ""
}

// splitAddress reads "host:port" (an IPv6 host in brackets).
func splitAddress(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil || host == "" || strings.ContainsAny(host, " \t\r\n,=\"'") {
		return "", 0, errors.New("is not host:port")
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, errors.New("has no port from 1 to 65535")
	}
	return host, port, nil
}

func address(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
