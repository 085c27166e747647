// Package locktest lets a test play the other run: hold the directory lock
// a module takes (conffile.Lock), see the module block on it, change the
// state, release. It is test support only; nothing in the binary imports it.
package locktest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/valkeyops/secure/internal/conffile"
)

// giveUp bounds the wait for a waiter that never comes (a module that does
// not lock fails the test instead of hanging it). It is a guard, not a
// synchronisation: the waiter is seen in /proc/locks, never assumed after a
// delay.
const giveUp = 60 * time.Second

// Hold takes the lock of path's directory, as another run would, and
// returns its release (also run at the end of the test).
func Hold(t testing.TB, path string) (release func()) {
	t.Helper()
	unlock, err := conffile.Lock(path, 0)
	if err != nil {
		t.Fatalf("failed to take the lock of %s: %v", filepath.Dir(path), err)
	}
	t.Cleanup(unlock)
	return unlock
}

// WaitBlocked returns once some process (or goroutine) waits for the lock
// of path's directory: /proc/locks lists a blocked flock ("->") on that
// directory's inode. done, when it fires first, fails the test (the run
// ended without waiting for the lock).
func WaitBlocked(t testing.TB, path string, done <-chan struct{}) {
	t.Helper()
	want, err := procLocksID(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(giveUp)
	for {
		if Waiters(t, want) > 0 {
			return
		}
		select {
		case <-done:
			t.Fatalf("the run ended without waiting for the lock of %s", filepath.Dir(path))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing waited for the lock of %s within %s", filepath.Dir(path), giveUp)
		}
		runtimeYield()
	}
}

// Waiters counts the blocked flocks on the file /proc/locks names id
// ("MAJ:MIN:INODE", as procLocksID returns it).
func Waiters(t testing.TB, id string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Fatalf("failed to read /proc/locks: %v", err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		// "7: -> FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
		if len(f) >= 7 && f[1] == "->" && f[2] == "FLOCK" && f[6] == id {
			n++
		}
	}
	return n
}

// procLocksID is how /proc/locks names dir: major and minor device numbers
// in hex, the inode in decimal.
func procLocksID(dir string) (string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return "", fmt.Errorf("failed to stat %s: %w", dir, err)
	}
	dev := uint64(st.Dev) //nolint:unconvert // Dev is not uint64 on every platform
	return fmt.Sprintf("%02x:%02x:%d", unix.Major(dev), unix.Minor(dev), st.Ino), nil
}

// ID is procLocksID for tests that count waiters themselves.
func ID(t testing.TB, dir string) string {
	t.Helper()
	id, err := procLocksID(dir)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// runtimeYield gives the waiting run a moment of CPU between two reads of
// /proc/locks (a poll of the kernel's state, not a timing assumption).
func runtimeYield() { time.Sleep(time.Millisecond) }

// Race plays the other run around task: it holds the lock of path's
// directory, starts task, waits until task is blocked on the lock, runs
// other (the other run's changes, made under the lock), releases the lock
// and returns when task has finished.
func Race(t testing.TB, path string, task func(), other func()) {
	t.Helper()
	release := Hold(t, path)
	done := make(chan struct{})
	go func() {
		defer close(done)
		task()
	}()
	WaitBlocked(t, path, done)
	other()
	release()
	<-done
}
