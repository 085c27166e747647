package tls

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/safefs"
	"github.com/valkeyops/secure/internal/testserver"
)

const nobody = testserver.Nobody

// TestDestDirAttacks: on 0.1.0 stat, chown, chmod and write followed a
// link in dest_dir, which made a root-only file root:valkey 0644. Each
// attack is now refused before any change, and the target is untouched.
func TestDestDirAttacks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("planting links as another user needs root")
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, l *lab, target string) (dest string)
		want  string // %s: l.dest
	}{
		{
			name: "dest_dir owned by the server's user, with a planted key link",
			setup: func(t *testing.T, l *lab, target string) string {
				require.NoError(t, os.Chown(l.dest, nobody, nobody))
				testserver.PlantLink(t, target, filepath.Join(l.dest, KeyName))
				return l.dest
			},
			want: `refusing dest_dir "%s": "%s" is owned by uid 65534, not by root; make it owned by root and writable only by root; nothing was changed`,
		},
		{
			name: "dest_dir writable by the server's group",
			setup: func(t *testing.T, l *lab, target string) string {
				require.NoError(t, os.Chown(l.dest, 0, nobody))
				require.NoError(t, os.Chmod(l.dest, 0o775))
				return l.dest
			},
			want: `refusing dest_dir "%s": "%s" is writable by group 65534 (mode 0775), not only by root; make it owned by root and writable only by root; nothing was changed`,
		},
		{
			name: "a link planted before dest_dir was locked down",
			setup: func(t *testing.T, l *lab, target string) string {
				testserver.PlantLink(t, target, filepath.Join(l.dest, CertName))
				return l.dest
			},
			want: `%s/server.crt is a symbolic link; refusing to write through it (remove it); nothing was changed`,
		},
		{
			name: "dest_dir is a link the server's user made",
			setup: func(t *testing.T, l *lab, target string) string {
				link := l.dest + "-link"
				testserver.PlantLink(t, filepath.Dir(target), link)
				return link
			},
			want: `refusing dest_dir "%s-link": "%s-link" is a symbolic link made by uid 65534; links are followed only when root made them; make it owned by root and writable only by root; nothing was changed`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			target := testserver.RootOnly(t)
			dest := tc.setup(t, l, target)
			before := l.state(t)
			_, doc, code := mod.Printed(t, l.args(map[string]any{"dest_dir": dest, "group": "nogroup"}))
			assert.Equal(t, 1, code)
			assert.Equal(t, replaceAll(tc.want, l.dest), doc["msg"])
			assert.Equal(t, false, doc["changed"])
			testserver.AssertRootOnlyUntouched(t, target)
			assert.Equal(t, before, l.state(t))
		})
	}
}

func replaceAll(format, dest string) string {
	out := ""
	for i := 0; i < len(format); i++ {
		if i+1 < len(format) && format[i] == '%' && format[i+1] == 's' {
			out += dest
			i++
			continue
		}
		out += string(format[i])
	}
	return out
}

// TestDestDirRace: the race variant swapped a file for a link between the
// module's check and its write. Every write is now a new file renamed over
// the name inside dest_dir's descriptor: a link swapped in at that moment is
// replaced, never followed.
func TestDestDirRace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("planting links as another user needs root")
	}
	l := newLab(t)
	target := testserver.RootOnly(t)
	safefs.TestHookBeforeRename = func(d *safefs.Dir, tmp string) error {
		if d.Path == l.dest && strings.HasPrefix(tmp, "."+KeyName+".") {
			name := filepath.Join(l.dest, KeyName)
			_ = os.Remove(name)
			testserver.PlantLink(t, target, name)
		}
		return nil
	}
	t.Cleanup(func() { safefs.TestHookBeforeRename = nil })
	_, f := mod.CallOK(t, l.args(nil))
	assert.Len(t, f.MaterialChanged, 3)
	testserver.AssertRootOnlyUntouched(t, target)
	fi, err := os.Lstat(filepath.Join(l.dest, KeyName))
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "the key is a file, not the planted link")
	assert.Equal(t, "0600", mode(t, filepath.Join(l.dest, KeyName)))
}

// TestMaterialPathsBounded: cert_path /dev/zero read until memory ran out
// on 0.1.0, a FIFO hung the task; both are one sentence now.
func TestMaterialPathsBounded(t *testing.T) {
	l := newLab(t)
	fifo := filepath.Join(t.TempDir(), "key.pem")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"cert": nil, "cert_path": "/dev/zero"}, `failed to read cert_path "/dev/zero": not a regular file (it is a character device); nothing was changed`},
		{map[string]any{"key": nil, "key_path": fifo}, `failed to read key_path "` + fifo + `": not a regular file (it is a FIFO); nothing was changed`},
	} {
		a := l.args(tc.args)
		if _, ok := a["cert_path"]; ok {
			a["key_path"], a["ca_path"] = writeTemp(t, l.leaf.KeyPEM), writeTemp(t, l.ca.PEM)
			delete(a, "key")
			delete(a, "ca")
		} else {
			a["cert_path"], a["ca_path"] = writeTemp(t, l.leaf.CertPEM), writeTemp(t, l.ca.PEM)
			delete(a, "cert")
			delete(a, "ca")
		}
		delete(a, "dest_dir")
		_, doc, code := mod.Printed(t, a)
		assert.Equal(t, 1, code)
		assert.Equal(t, tc.want, doc["msg"])
	}
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.pem")
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}
