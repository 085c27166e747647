package conffile_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/conffile/locktest"
)

// TestLocksReentrant: a task's lock set takes a directory once, whatever the
// spelling (a link to it included); another holder is refused until Release.
func TestLocksReentrant(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(dir, link))
	var set conffile.Locks
	require.NoError(t, set.Lock(filepath.Join(dir, "valkey.conf"), time.Second))
	require.NoError(t, set.Lock(filepath.Join(dir, "server.crt"), 0), "same directory: no second lock")
	require.NoError(t, set.Lock(filepath.Join(link, "x"), 0), "same directory through a link")

	_, err := conffile.Lock(filepath.Join(dir, "other"), 0)
	assert.True(t, errors.Is(err, conffile.ErrLocked), "another holder is refused: %v", err)

	set.Release()
	unlock, err := conffile.Lock(filepath.Join(dir, "other"), 0)
	require.NoError(t, err, "free after Release")
	unlock()
	set.Release() // again: nothing to do
}

// TestLockWaitsInTheKernel: a waiter is a blocked flock, visible in
// /proc/locks, and gets the lock when the holder releases it.
func TestLockWaitsInTheKernel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "valkey.conf")
	var err error
	locktest.Race(t, path, func() {
		var unlock func()
		unlock, err = conffile.Lock(path, time.Minute)
		if err == nil {
			unlock()
		}
	}, func() {})
	require.NoError(t, err)
	assert.Zero(t, locktest.Waiters(t, locktest.ID(t, filepath.Dir(path))))
}
