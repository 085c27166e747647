package tls

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/conn"
)

// connect opens the module's own connection (for TLS support, the tls-*
// values and the reload). With persist: file the server is optional.
func (r *run) connect(ctx context.Context, runtime bool) error {
	r.o.CarriesSecrets = r.req.HasSecrets()
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
