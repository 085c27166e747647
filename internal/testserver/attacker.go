package testserver

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Nobody is the unprivileged user that plays the attacker in trust tests:
// any local user, or the server's own user (valkey on a real install).
const Nobody = 65534

// RootOnlyContent is what RootOnly writes.
const RootOnlyContent = "root:$6$hash:19000::::::\n"

// NeedRoot skips a test that must act as another user.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("acting as another user needs root")
	}
}

// RootOnly makes a root-only file (0600) alone in a root-owned directory:
// what an attacker wants root to write to, chmod or expose (it stands for
// /etc/shadow or another service's key).
func RootOnly(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(p, []byte(RootOnlyContent), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// AssertRootOnlyUntouched fails the test unless p still has its content,
// mode 0600 and (when the test runs as root) owner root:root, and nothing
// was created next to it.
func AssertRootOnlyUntouched(t testing.TB, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil || string(b) != RootOnlyContent {
		t.Errorf("%s changed: %q, %v", p, b, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != 0o600 || (os.Geteuid() == 0 && (st.Uid != 0 || st.Gid != 0)) {
		t.Errorf("%s is now %d:%d %v, want 0:0 -rw-------", p, st.Uid, st.Gid, fi.Mode())
	}
	if entries, _ := os.ReadDir(filepath.Dir(p)); len(entries) != 1 {
		t.Errorf("something was created next to %s: %d entries", p, len(entries))
	}
}

// PlantLink makes link -> target owned by Nobody, as that user would.
func PlantLink(t testing.TB, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, Nobody, Nobody); err != nil {
		t.Fatal(err)
	}
}

// FreePort is a 127.0.0.1 port free at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
