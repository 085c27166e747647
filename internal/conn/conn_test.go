package conn

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

func TestValidate(t *testing.T) {
	f := false
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "defaults", opts: Options{}},
		{name: "full tls", opts: Options{TLS: true, TLSCACert: "/ca", TLSCert: "/c", TLSKey: "/k", TLSServerName: "x", ValidateCerts: &f}},
		{name: "negative port", opts: Options{LoginPort: -1}, wantErr: `option "login_port": -1 is not a port; expected 1-65535`},
		{name: "port too big", opts: Options{LoginPort: 65536}, wantErr: `option "login_port": 65536 is not a port; expected 1-65535`},
		{name: "negative timeout", opts: Options{ConnectTimeout: -3}, wantErr: `option "connect_timeout": expected a positive number of seconds`},
		{name: "cert without key", opts: Options{TLS: true, TLSCert: "/c"}, wantErr: `options "tls_cert" and "tls_key" go together: give both or neither`},
		{name: "key without cert", opts: Options{TLS: true, TLSKey: "/k"}, wantErr: `options "tls_cert" and "tls_key" go together: give both or neither`},
		{name: "ca without tls", opts: Options{TLSCACert: "/ca"}, wantErr: `options "tls_ca_cert", "tls_cert", "tls_key" and "tls_server_name" need "tls: true"`},
		{name: "server name without tls", opts: Options{TLSServerName: "x"}, wantErr: `options "tls_ca_cert", "tls_cert", "tls_key" and "tls_server_name" need "tls: true"`},
		{name: "password with newline", opts: Options{LoginPassword: "pw\r\nFLUSHALL"}, wantErr: `option "login_password": the value contains a line break`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.wantErr, err.Error())
			assert.NotContains(t, err.Error(), "FLUSHALL")
		})
	}
}

func TestAddressAndDefaults(t *testing.T) {
	assert.Equal(t, "127.0.0.1:6379", (&Options{}).Address())
	assert.Equal(t, "[::1]:7000", (&Options{LoginHost: "::1", LoginPort: 7000}).Address())
	assert.Equal(t, "unix:/run/v.sock", (&Options{LoginHost: "h", LoginUnixSocket: "/run/v.sock"}).Address())
	assert.Equal(t, 30*time.Second, (&Options{}).Timeout())
	assert.Equal(t, 12*time.Second, (&Options{ConnectTimeout: 2}).Timeout())
}

func TestOpenTLSFileErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(&Options{TLS: true, TLSCACert: filepath.Join(dir, "missing.pem")})
	require.Error(t, err)
	assert.Equal(t, `failed to read tls_ca_cert "`+filepath.Join(dir, "missing.pem")+`": no such file or directory`, err.Error())
	assert.False(t, errors.Is(err, ErrConnect))
}

func ping(t *testing.T, o *Options) error {
	t.Helper()
	c, err := Open(o)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.Do(ctx, c.B().Ping().Build()).ToString()
	require.NoError(t, err)
	assert.Equal(t, "PONG", s)
	return nil
}

func TestOpenRealServer(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "valkey.sock")
	srv := testserver.StartWith(t, testserver.Options{Dir: dir, Extra: []string{
		"unixsocket " + sock, "unixsocketperm 700",
	}})
	const pw = "Acl-Pass-4c1d"
	assert.Equal(t, "OK", srv.CLI("ACL", "SETUSER", "ops", "on", ">"+pw, "+@all", "~*"))

	t.Run("plain tcp", func(t *testing.T) {
		require.NoError(t, ping(t, &Options{LoginPort: srv.Port}))
	})
	t.Run("unix socket", func(t *testing.T) {
		require.NoError(t, ping(t, &Options{LoginUnixSocket: sock, LoginPort: 1}))
	})
	t.Run("acl user with password", func(t *testing.T) {
		require.NoError(t, ping(t, &Options{LoginPort: srv.Port, LoginUser: "ops", LoginPassword: pw}))
	})
	t.Run("acl user over unix socket", func(t *testing.T) {
		require.NoError(t, ping(t, &Options{LoginUnixSocket: sock, LoginUser: "ops", LoginPassword: pw}))
	})
	t.Run("wrong password", func(t *testing.T) {
		const wrong = "Wrong-Pass-77aa"
		err := ping(t, &Options{LoginPort: srv.Port, LoginUser: "ops", LoginPassword: wrong})
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrConnect)
		assert.Equal(t, "cannot connect to "+srv.Addr+": authentication failed (wrong user name or password, or the user is disabled)", err.Error())
		assert.NotContains(t, err.Error(), wrong)
		assert.NotContains(t, err.Error(), pw)
	})
	t.Run("disabled user", func(t *testing.T) {
		assert.Equal(t, "OK", srv.CLI("ACL", "SETUSER", "off-user", "off", ">"+pw, "+@all"))
		err := ping(t, &Options{LoginPort: srv.Port, LoginUser: "off-user", LoginPassword: pw})
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrConnect)
		assert.NotContains(t, err.Error(), pw)
	})
}

func TestOpenRequirePass(t *testing.T) {
	const pw = "Req-Pass-913f"
	srv := testserver.Start(t, "requirepass "+pw)
	t.Run("no password", func(t *testing.T) {
		err := ping(t, &Options{LoginPort: srv.Port})
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrConnect)
		assert.Equal(t, "cannot connect to "+srv.Addr+": the server requires authentication: set login_user and login_password", err.Error())
	})
	t.Run("password for default user", func(t *testing.T) {
		require.NoError(t, ping(t, &Options{LoginPort: srv.Port, LoginPassword: pw}))
	})
	t.Run("wrong password", func(t *testing.T) {
		err := ping(t, &Options{LoginPort: srv.Port, LoginPassword: "nope-" + pw})
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrConnect)
		assert.NotContains(t, err.Error(), pw)
	})
}

func TestOpenRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	err = ping(t, &Options{LoginPort: port, ConnectTimeout: 1})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrConnect)
	assert.Contains(t, err.Error(), "cannot connect to 127.0.0.1:"+strconv.Itoa(port)+": ")
	assert.Contains(t, err.Error(), "connection refused")

	sock := filepath.Join(t.TempDir(), "none.sock")
	err = ping(t, &Options{LoginUnixSocket: sock, ConnectTimeout: 1})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrConnect)
	assert.Contains(t, err.Error(), "cannot connect to unix:"+sock+": ")
}

func TestParseInfo(t *testing.T) {
	got := ParseInfo("# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\n\r\nconfig_file:/etc/valkey/valkey.conf\r\nexecutable:/usr/bin/valkey-server\r\n")
	assert.Equal(t, map[string]string{
		"redis_version": "7.2.4", "server_name": "valkey",
		"config_file": "/etc/valkey/valkey.conf", "executable": "/usr/bin/valkey-server",
	}, got)
}
