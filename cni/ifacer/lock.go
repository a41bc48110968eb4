package ifacer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DefaultLockPath is the file whose lock serializes berth-ifacer's ADDs on
// a node.
const DefaultLockPath = "/run/berth/ifacer.lock"

// lockNode takes the node-wide lock at path and returns its release.
//
// A burst of pods of one Network on a node runs as many ADDs at once, each
// wanting the same bond or VLAN. Serialized, the first makes the interfaces
// and the others find them made; unserialized, one ADD could set a member
// down while another enslaves it. Creation still treats EEXIST as a race
// with whoever does not take this lock (an administrator, another tool).
// The wait is not bounded here: the holder makes a few netlink calls, and
// the runtime's timeout bounds the whole ADD.
func lockNode(path string) (release func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the directory of lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	// Closing the file releases the lock; so does the process ending.
	return func() { _ = f.Close() }, nil
}
