package config

import (
	"github.com/valkeyops/secure/internal/ansible/ansibletest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

const nobody = testserver.Nobody

// printedAsync is printed with the "no hang" guarantee made visible: the
// test waits for the module to return (a generous deadline is only a
// safety net).
func printedAsync(t *testing.T, args map[string]any) (string, map[string]any, int) {
	t.Helper()
	type res struct {
		out  string
		doc  map[string]any
		code int
	}
	done := make(chan res, 1)
	ansibletest.WithJournal(t, args)
	go func() {
		out, doc, code := mod.Printed(t, args)
		done <- res{out, doc, code}
	}()
	select {
	case r := <-done:
		return r.out, r.doc, r.code
	case <-time.After(2 * time.Minute):
		t.Fatal("the module did not return")
		return "", nil, 0
	}
}

// TestServerUserPlantsConfigLink: the server runs as its own user, which
// owns its config directory and replaces valkey.conf with a link to a
// root-only file (or a dangling link to where root would create one).
// 0.1.0 appended directive lines to the target (or created it). Now the
// task fails before any change, runtime included.
func TestServerUserPlantsConfigLink(t *testing.T) {
	testserver.NeedRoot(t)
	for _, dangling := range []bool{false, true} {
		t.Run("dangling="+strconv.FormatBool(dangling), func(t *testing.T) {
			srv := testserver.StartAs(t, nobody, nobody, "maxmemory 10mb")
			target := testserver.RootOnly(t)
			if dangling {
				target = filepath.Join(filepath.Dir(target), "sudoers-new")
			}
			require.NoError(t, os.Remove(srv.ConfPath))
			require.NoError(t, os.Symlink(target, srv.ConfPath))
			require.NoError(t, os.Lchown(srv.ConfPath, nobody, nobody))

			_, doc, code := printedAsync(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "20mb"}}))
			assert.Equal(t, 1, code)
			assert.Equal(t, `refusing to write config_file "`+srv.ConfPath+`": "`+srv.ConfPath+
				`" is a symbolic link made by uid 65534; links are followed only when root made them; nothing was changed`, doc["msg"])
			assert.Equal(t, false, doc["changed"])
			assert.Equal(t, "10485760", srv.ConfigGet("maxmemory"), "the runtime is not changed either")
			if dangling {
				_, err := os.Lstat(target)
				assert.ErrorIs(t, err, os.ErrNotExist, "the dangling link's target was created")
			} else {
				testserver.AssertRootOnlyUntouched(t, target)
			}
		})
	}
}

// TestServerOwnDirectoryIsFine: the same layout without a planted link (the
// server's user owns its directory and its file, as with CONFIG REWRITE)
// is managed normally; the file keeps its owner.
func TestServerOwnDirectoryIsFine(t *testing.T) {
	testserver.NeedRoot(t)
	srv := testserver.StartAs(t, nobody, nobody, "maxmemory 10mb")
	_, doc, code := printedAsync(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "20mb"}}))
	require.Equal(t, 0, code, "%v", doc["msg"])
	assert.Equal(t, []string{"20mb"}, fileArgs(t, srv.ConfPath, "maxmemory"))
	fi, err := os.Stat(srv.ConfPath)
	require.NoError(t, err)
	assert.Equal(t, uint32(nobody), fi.Sys().(*syscall.Stat_t).Uid)
}

// TestConfigDirWritableByOthers: a config directory every local user can
// write is not root's to write in.
func TestConfigDirWritableByOthers(t *testing.T) {
	testserver.NeedRoot(t)
	srv := testserver.Start(t, "maxmemory 10mb")
	dir := filepath.Dir(srv.ConfPath)
	require.NoError(t, os.Chmod(dir, 0o777))
	before := srv.ReadConf()
	_, doc, code := printedAsync(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "20mb"}}))
	assert.Equal(t, 1, code)
	assert.Equal(t, `refusing to write config_file "`+srv.ConfPath+`": "`+dir+`" is writable by every user (mode 0777); nothing was changed`, doc["msg"])
	assert.Equal(t, "10485760", srv.ConfigGet("maxmemory"))
	assert.Equal(t, before, srv.ReadConf())
}

// TestSquatterOnThePort: the server is down and a process of a local user
// answers on its port, naming a root-only file as its config file. 0.1.0
// sent it the admin password (HELLO AUTH) and edited the named file.
func TestSquatterOnThePort(t *testing.T) {
	target := testserver.RootOnly(t)
	reply := "$" + strconv.Itoa(len("config_file:"+target+"\r\n")) + "\r\nconfig_file:" + target + "\r\n\r\n"
	sq := testserver.StartSquatter(t, reply)
	exe, _ := os.Executable()
	const pw = "admin-pw-never-sent-3e7a"
	out, doc, code := printedAsync(t, map[string]any{
		"login_port": sq.Port, "login_user": "admin", "login_password": pw,
		"settings": map[string]any{"maxmemory": "20mb"},
	})
	assert.Equal(t, 1, code)
	assert.Equal(t, "cannot connect to 127.0.0.1:"+strconv.Itoa(sq.Port)+": refusing the server: the process (pid "+strconv.Itoa(os.Getpid())+
		", "+exe+") is not a Valkey server; nothing was sent to it; nothing was changed", doc["msg"])
	assert.NotContains(t, out, pw)
	sq.Wait()
	assert.Empty(t, sq.Received(), "the squatter was sent something")
	if os.Geteuid() == 0 {
		testserver.AssertRootOnlyUntouched(t, target)
	}
}

// TestRelativeConfigFile: 0.1.0 wrote a relative config_file into the
// module's working directory.
func TestRelativeConfigFile(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	_, doc, code := printedAsync(t, map[string]any{"config_file": "valkey.conf", "persist": "file", "settings": map[string]any{"maxmemory": "20mb"}})
	assert.Equal(t, 1, code)
	assert.Equal(t, `option "config_file": "valkey.conf" is not an absolute path; nothing was changed`, doc["msg"])
	entries, err := os.ReadDir(cwd)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

// TestFIFOConfig: a FIFO as the config file or as an include hung the
// module for ever on 0.1.0 (and the orphan kept the directory lock). Now
// the task returns at once with one sentence.
func TestFIFOConfig(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "valkey.conf")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	_, doc, code := printedAsync(t, map[string]any{"config_file": fifo, "persist": "file", "settings": map[string]any{"maxmemory": "20mb"}})
	assert.Equal(t, 1, code)
	assert.Equal(t, `refusing to write config_file "`+fifo+`": open `+fifo+`: not a regular file (it is a FIFO); nothing was changed`, doc["msg"])

	srv := testserver.Start(t, "maxmemory 10mb")
	line := strconv.Itoa(strings.Count(string(srv.ReadConf()), "\n") + 1)
	f, err := os.OpenFile(srv.ConfPath, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("include " + fifo + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, doc, code = printedAsync(t, task(srv, map[string]any{"settings": map[string]any{"maxmemory": "20mb"}}))
	assert.Equal(t, 1, code)
	assert.Equal(t, `failed to read `+srv.ConfPath+`: failed to read include "`+fifo+`" at "`+srv.ConfPath+`:`+line+`": open `+fifo+
		`: not a regular file (it is a FIFO); nothing was changed`, doc["msg"])
	assert.Equal(t, "10485760", srv.ConfigGet("maxmemory"))
}
