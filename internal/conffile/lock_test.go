package conffile_test

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/conffile/locktest"
)

func TestLockGoroutines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "valkey.conf") // need not exist

	unlock1, err := conffile.Lock(path, time.Second)
	if err != nil {
		t.Fatalf("first Lock: %v", err)
	}

	tests := []struct {
		name    string
		timeout time.Duration
	}{
		{name: "no wait", timeout: 0},
		{name: "short wait", timeout: 150 * time.Millisecond},
	}
	for _, tc := range tests {
		start := time.Now()
		_, err := conffile.Lock(path, tc.timeout)
		if !errors.Is(err, conffile.ErrLocked) || !strings.Contains(err.Error(), "another valkeyops run holds the lock on "+dir) {
			t.Errorf("%s: second Lock error = %v, want conffile.ErrLocked naming %q", tc.name, err, dir)
		}
		if waited := time.Since(start); waited < tc.timeout {
			t.Errorf("%s: gave up after %v, before the timeout %v", tc.name, waited, tc.timeout)
		}
	}

	// A waiter blocked on the lock gets it once the holder releases it. The
	// waiter reports after it has released the lock again, so the checks
	// below never race its unlock.
	got := make(chan time.Time, 1)
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		unlock2, err := conffile.Lock(filepath.Join(dir, "other-file-same-dir"), 60*time.Second)
		if err != nil {
			errc <- err
			return
		}
		at := time.Now()
		unlock2()
		got <- at
	}()
	locktest.WaitBlocked(t, path, done) // the waiter is blocked on the lock (/proc/locks)
	released := time.Now()
	unlock1()
	unlock1() // idempotent
	select {
	case at := <-got:
		if at.Before(released) {
			t.Errorf("waiter got the lock before it was released")
		}
	case err := <-errc:
		t.Fatalf("waiter: %v", err)
	}

	// Different directories do not contend.
	u1, err := conffile.Lock(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer u1()
	u2, err := conffile.Lock(filepath.Join(t.TempDir(), "x.conf"), 0)
	if err != nil {
		t.Errorf("lock on another directory: %v", err)
	} else {
		u2()
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("Lock left files behind: %v", left)
	}
}

func TestLockMissingDir(t *testing.T) {
	if _, err := conffile.Lock(filepath.Join(t.TempDir(), "nope", "valkey.conf"), 0); err == nil {
		t.Fatal("Lock in a missing directory succeeded")
	}
}

const lockHelperEnv = "CONFFILE_LOCK_HELPER_PATH"

// TestLockHelperProcess is not a test: it is the child process of
// TestLockProcesses. It takes the lock, prints "locked", and holds the lock
// until its stdin is closed.
func TestLockHelperProcess(t *testing.T) {
	path := os.Getenv(lockHelperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	unlock, err := conffile.Lock(path, 5*time.Second)
	if err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		return
	}
	os.Stdout.WriteString("locked\n")
	_, _ = io.Copy(io.Discard, os.Stdin)
	unlock()
}

func TestLockProcesses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "valkey.conf")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	if _, err := conffile.Lock(path, 100*time.Millisecond); !errors.Is(err, conffile.ErrLocked) {
		t.Fatalf("Lock while another process holds it: %v, want conffile.ErrLocked", err)
	}
	// Block on the lock the child holds, then have the child release it.
	type result struct {
		unlock func()
		err    error
	}
	res := make(chan result, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		unlock, err := conffile.Lock(path, 60*time.Second)
		res <- result{unlock, err}
	}()
	locktest.WaitBlocked(t, path, done)
	_ = stdin.Close()
	r := <-res
	unlock, err := r.unlock, r.err
	if err != nil {
		t.Fatalf("Lock after the other process released it: %v", err)
	}
	unlock()
}
