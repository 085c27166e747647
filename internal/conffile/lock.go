package conffile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ErrLocked is returned (wrapped) by Lock when the timeout passes while
// another process holds the lock.
var ErrLocked = errors.New("lock is held by another process")

// Lock takes an exclusive flock on the directory containing path. This needs
// no write permission, leaves no file behind, and the directory inode
// survives the renames done by WriteAtomic. A held lock is waited for in the
// kernel (a blocking flock, so the waiter shows in /proc/locks as "->", the
// event tests synchronise on) until timeout; a timeout <= 0 tries once. The
// lock is the open file description's: it dies with the process that took
// it. The returned unlock releases the lock and may be called more than
// once.
func Lock(path string, timeout time.Duration) (unlock func(), err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("failed to resolve %q: %w", path, err)
	}
	dir := filepath.Dir(abs)
	d, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open directory %q for locking: %w", dir, err)
	}
	err = flock(d, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) && timeout > 0 {
		err = waitLock(d, timeout)
	}
	switch {
	case errors.Is(err, errGaveUp): // the waiter closes d
		return nil, fmt.Errorf("failed to lock %q: another valkeyops run holds the lock on %s (waited %s): %w", path, dir, timeout, ErrLocked)
	case errors.Is(err, syscall.EWOULDBLOCK):
		_ = d.Close()
		return nil, fmt.Errorf("failed to lock %q: another valkeyops run holds the lock on %s (waited %s): %w", path, dir, max(timeout, 0), ErrLocked)
	case err != nil:
		_ = d.Close()
		return nil, fmt.Errorf("failed to lock directory %q: %w", dir, err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
			_ = d.Close()
		})
	}, nil
}

// flock calls flock(2) again when a signal interrupts it.
func flock(d *os.File, how int) error {
	for {
		err := syscall.Flock(int(d.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// errGaveUp: the wait timed out; the descriptor now belongs to the waiting
// goroutine, which closes it.
var errGaveUp = errors.New("gave up waiting")

// waitLock blocks in flock until the lock is granted or timeout passes
// (errGaveUp). A flock cannot be cancelled: on timeout the waiting
// goroutine is left to finish, and releases the lock and closes the
// descriptor itself when flock returns.
func waitLock(d *os.File, timeout time.Duration) error {
	var mu sync.Mutex
	gaveUp := false
	done := make(chan error, 1)
	go func() {
		err := flock(d, syscall.LOCK_EX)
		mu.Lock()
		defer mu.Unlock()
		if gaveUp {
			if err == nil {
				_ = syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
			}
			_ = d.Close()
			return
		}
		done <- err
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
	}
	mu.Lock()
	defer mu.Unlock()
	select {
	case err := <-done: // granted as the timer fired
		return err
	default:
		gaveUp = true
		return errGaveUp
	}
}

// Locks is the set of directory locks one task holds. Taking a lock the set
// already holds (the same directory, by device and inode) is a no-op, so a
// task that writes two files in one directory (valkey_tls: its material and
// valkey.conf) takes that directory once and cannot deadlock on itself.
// Release frees every lock. The zero value is an empty set.
type Locks struct {
	mu   sync.Mutex
	held []heldLock
}

type heldLock struct {
	dev, ino uint64
	unlock   func()
}

// Lock takes the lock on path's directory unless the set holds it already.
func (l *Locks) Lock(path string, timeout time.Duration) error {
	id, err := dirID(path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.held {
		if h.dev == id.dev && h.ino == id.ino {
			return nil
		}
	}
	unlock, err := Lock(path, timeout)
	if err != nil {
		return err
	}
	l.held = append(l.held, heldLock{dev: id.dev, ino: id.ino, unlock: unlock})
	return nil
}

// Release frees every lock of the set (in reverse order); the set can be
// used again. Safe on a nil set.
func (l *Locks) Release() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.held) - 1; i >= 0; i-- {
		l.held[i].unlock()
	}
	l.held = nil
}

type fileID struct{ dev, ino uint64 }

// dirID identifies path's directory by device and inode (two spellings of
// one directory, through a link or "..", are one lock).
func dirID(path string) (fileID, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fileID{}, fmt.Errorf("failed to resolve %q: %w", path, err)
	}
	var st syscall.Stat_t
	dir := filepath.Dir(abs)
	if err := syscall.Stat(dir, &st); err != nil {
		return fileID{}, fmt.Errorf("failed to open directory %q for locking: %w", dir, &os.PathError{Op: "stat", Path: dir, Err: err})
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino}, nil //nolint:unconvert // Dev is not uint64 on every platform
}
