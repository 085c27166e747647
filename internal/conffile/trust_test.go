package conffile

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/safefs"
	"github.com/valkeyops/secure/internal/testserver"
)

// loadAsync runs Load in a goroutine: a test asserting "no hang" waits for
// it to return, with a generous deadline only as a safety net.
func loadAsync(t *testing.T, path string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { _, err := Load(path); done <- err }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("Load(%q) did not return", path)
		return nil
	}
}

// TestLoadRefusesWhatIsNotAFile: `include /dev/zero` read until memory ran
// out on 0.1.0, and a FIFO as the config or an include hung the module for
// ever (holding the directory lock). Each is now one sentence at once.
func TestLoadRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.conf")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	big := filepath.Join(dir, "big.conf")
	require.NoError(t, os.WriteFile(big, []byte("# "+strings.Repeat("x", MaxFileSize)+"\n"), 0o600))
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o640))
		return p
	}
	tests := []struct {
		name, path, want string
	}{
		{"include /dev/zero", write("zero.conf", "port 6379\ninclude /dev/zero\n"),
			`failed to read include "/dev/zero" at "` + dir + `/zero.conf:2": open /dev/zero: not a regular file (it is a character device)`},
		{"include a FIFO", write("fifoinc.conf", "include "+fifo+"\n"),
			`failed to read include "` + fifo + `" at "` + dir + `/fifoinc.conf:1": open ` + fifo + `: not a regular file (it is a FIFO)`},
		{"the config is a FIFO", fifo,
			`failed to read config "` + fifo + `": open ` + fifo + `: not a regular file (it is a FIFO)`},
		{"the config is a device", "/dev/zero",
			`failed to read config "/dev/zero": open /dev/zero: not a regular file (it is a character device)`},
		{"the config is too large", big,
			`failed to read config "` + big + `": read ` + big + `: file too large (more than 8 MiB)`},
		{"an include is too large", write("biginc.conf", "include "+big+"\n"),
			`failed to read include "` + big + `" at "` + dir + `/biginc.conf:1": read ` + big + `: file too large (more than 8 MiB)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.EqualError(t, loadAsync(t, tc.path), tc.want)
		})
	}
}

// TestWriteAtomicRefusesPlantedLink: the server's user (nobody here) plants
// valkey.conf -> a root-only file in the directory it owns; 0.1.0 wrote the
// target. Now the write is refused and the target is untouched.
func TestWriteAtomicRefusesPlantedLink(t *testing.T) {
	testserver.NeedRoot(t)
	shadow := testserver.RootOnly(t)
	dir := filepath.Join(t.TempDir(), "etc")
	require.NoError(t, os.Mkdir(dir, 0o750))
	require.NoError(t, os.Chown(dir, testserver.Nobody, testserver.Nobody))
	link := filepath.Join(dir, "valkey.conf")
	testserver.PlantLink(t, shadow, link)

	for _, backup := range []bool{false, true} {
		_, err := WriteAtomic(link, []byte("maxmemory 1gb\n"), WriteOptions{Backup: backup, Trust: trustNobody})
		assert.EqualError(t, err, `failed to write "`+link+`": "`+link+`" is a symbolic link made by uid 65534; links are followed only when root made them`)
	}
	testserver.AssertRootOnlyUntouched(t, shadow)
}

const lockChildEnv = "VALKEYOPS_TEST_LOCK_CHILD"

// TestLockChildHelperProcess is the task of TestLockDiesWithTheTask: it
// takes the lock, starts a child that hangs (as a stuck include reader or
// a hook would), prints the child's pid and waits to be killed.
func TestLockChildHelperProcess(t *testing.T) {
	path := os.Getenv(lockChildEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	if _, err := Lock(path, 5*time.Second); err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		return
	}
	child := exec.Command("sleep", "600") // the test kills it when done
	if err := child.Start(); err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		return
	}
	os.Stdout.WriteString(strconv.Itoa(child.Process.Pid) + "\n")
	select {}
}

// TestLockDiesWithTheTask: when the task is killed (Ansible gives up), the
// lock goes with it even though a child it started lives on: the lock's
// descriptor is close-on-exec, so no child holds it.
func TestLockDiesWithTheTask(t *testing.T) {
	path := filepath.Join(t.TempDir(), "valkey.conf")
	task := exec.Command(os.Args[0], "-test.run=^TestLockChildHelperProcess$")
	task.Env = append(os.Environ(), lockChildEnv+"="+path)
	out, err := task.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, task.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err, "helper said %q", line)
	orphan, _ := os.FindProcess(pid)
	t.Cleanup(func() { _ = orphan.Kill() }) // the orphan this test started (through its task)

	require.NoError(t, task.Process.Kill())
	_ = task.Wait() // the event: the task is gone
	go func() { _, _ = io.Copy(io.Discard, out) }()

	require.NoError(t, orphan.Signal(syscall.Signal(0)), "the orphan must still be alive for the test to mean anything")
	unlock, err := Lock(path, 0) // no wait: the lock must be free now
	require.NoError(t, err)
	unlock()
}

var trustNobody = safefs.Trust{UIDs: []int{65534}, Who: "the server's user nobody"}
