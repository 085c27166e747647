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

// lockPollInterval is how often Lock retries a held lock.
const lockPollInterval = 50 * time.Millisecond

// Lock takes an exclusive flock on the directory containing path. This needs
// no write permission, leaves no file behind, and the directory inode
// survives the renames done by WriteAtomic. It polls until timeout (a
// timeout <= 0 tries once). The returned unlock releases the lock and may be
// called more than once.
func Lock(path string, timeout time.Duration) (unlock func(), err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("failed to resolve %q: %w", path, err)
	}
	dir := filepath.Dir(abs)
	d, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open directory %q for locking: %w", dir, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = d.Close()
			return nil, fmt.Errorf("failed to lock directory %q: %w", dir, err)
		}
		if !time.Now().Before(deadline) {
			_ = d.Close()
			return nil, fmt.Errorf("failed to lock %q: another valkeyops run holds the lock on %s (waited %s): %w", path, dir, timeout, ErrLocked)
		}
		time.Sleep(min(lockPollInterval, time.Until(deadline)))
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
			_ = d.Close()
		})
	}, nil
}
