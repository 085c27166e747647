package sentinel

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

// TestSentinelUserPlantsConfigLink: Sentinel runs as its own user, which
// owns the directory of sentinel.conf (Sentinel rewrites the file there).
// That user replaces the file with a link to a root-only file that looks
// like a Sentinel config: the module, running as root, refuses to read it,
// so nothing of that file reaches the result.
func TestSentinelUserPlantsConfigLink(t *testing.T) {
	testserver.NeedRoot(t)
	primary := testserver.Start(t)
	s := startSentinelAsNobody(t)
	args := task(s, map[string]any{"monitors": []any{monitor("grp", primary, nil)}})
	mod.CallOK(t, args)

	secretDir := t.TempDir() // root's, 0700
	target := filepath.Join(secretDir, "root-only.conf")
	require.NoError(t, os.WriteFile(target, []byte("sentinel auth-user grp root-only-LEAKED\nsentinel current-epoch 4242\n"), 0o600))
	require.NoError(t, os.Remove(s.ConfPath))
	require.NoError(t, os.Symlink(target, s.ConfPath))
	require.NoError(t, os.Lchown(s.ConfPath, testserver.Nobody, testserver.Nobody))

	out, doc, code := mod.Printed(t, args)
	assert.Equal(t, 1, code)
	assert.Equal(t, false, doc["changed"])
	assert.Contains(t, doc["msg"], "is a symbolic link made by uid 65534; links are followed only when root made them")
	assert.NotContains(t, out, "LEAKED")
	assert.NotContains(t, out, "4242")
}

// The same layout without a planted link is read normally: the file
// Sentinel's own user wrote in its own directory.
func TestSentinelOwnDirectoryIsFine(t *testing.T) {
	testserver.NeedRoot(t)
	primary := testserver.Start(t)
	s := startSentinelAsNobody(t)
	args := task(s, map[string]any{"monitors": []any{monitor("grp", primary, map[string]any{"auth_user": "dn", "auth_pass": authPass})}})
	res, _ := mod.CallOK(t, args)
	assert.True(t, res.Changed)
	res, f := mod.CallOK(t, args)
	assert.False(t, res.Changed, "second run: auth-pass read from the file Sentinel's user owns")
	assert.True(t, f.Monitors[0].AuthPassSet)
}

// startSentinelAsNobody runs a Sentinel as the attacker's user, in a
// directory that user owns (as Sentinel's own user owns its config dir).
func startSentinelAsNobody(t *testing.T) *testserver.Server {
	t.Helper()
	n := testserver.Nobody
	return testserver.StartWith(t, testserver.Options{Dir: testserver.OwnedDir(t, n, n), ConfName: "sentinel.conf",
		Sentinel: true, Credential: &syscall.Credential{Uid: uint32(n), Gid: uint32(n)}})
}
