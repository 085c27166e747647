package acl

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/ansible/ansibletest"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/testserver"
)

// mod runs valkey_acl in tests as the binary does (ansibletest.Module).
var mod = ansibletest.Module[Fields]{Name: "valkey_acl", Main: Main}

// startACL starts a server with an (empty) aclfile; extra are config lines.
func startACL(t *testing.T, extra ...string) (*testserver.Server, string) {
	t.Helper()
	dir := t.TempDir()
	aclfile := filepath.Join(dir, "users.acl")
	require.NoError(t, os.WriteFile(aclfile, nil, 0o640))
	srv := testserver.StartWith(t, testserver.Options{Dir: dir, Extra: append([]string{"aclfile " + aclfile}, extra...)})
	return srv, aclfile
}

// task builds the module arguments for srv. The change journal goes to a
// temp file (the default, /var/log/valkeyops/changes.jsonl, is never
// written by tests).
func task(srv *testserver.Server, args map[string]any) map[string]any {
	return ansibletest.Args(map[string]any{"login_port": srv.Port, "journal_path": filepath.Join(srv.Dir, "changes.jsonl")}, args)
}

// aclList is the server's ACL LIST, as the default user (or srv.Password).
func aclList(t *testing.T, srv *testserver.Server, user, password string) string {
	t.Helper()
	c := login(t, srv, user, password)
	lines, err := c.Do(context.Background(), c.B().AclList().Build()).AsStrSlice()
	require.NoError(t, err)
	return strings.Join(lines, "\n")
}

// login opens a connection as user (empty: default).
func login(t *testing.T, srv *testserver.Server, user, password string) valkey.Client {
	t.Helper()
	c, err := conn.Open(&conn.Options{LoginPort: srv.Port, LoginUser: user, LoginPassword: ansible.Secret(password)})
	require.NoError(t, err, "login as %q", user)
	t.Cleanup(c.Close)
	return c
}

// canLogin reports whether user can authenticate with password.
func canLogin(srv *testserver.Server, user, password string) bool {
	c, err := conn.Open(&conn.Options{LoginPort: srv.Port, LoginUser: user, LoginPassword: ansible.Secret(password)})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// allowed runs one command and reports whether the ACL let it run (any
// answer but NOPERM counts as allowed).
func allowed(t *testing.T, c valkey.Client, args ...string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.Do(ctx, c.B().Arbitrary(args[0]).Args(args[1:]...).Build()).Error()
	if err != nil && strings.HasPrefix(err.Error(), "NOPERM") {
		return false
	}
	return true
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// cmdSleep is the poll interval of a wait for an event (never the wait itself).
func cmdSleep() { time.Sleep(25 * time.Millisecond) }
