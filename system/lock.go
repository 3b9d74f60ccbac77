package system

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the file under --data that a process holding the data directory keeps locked (flock), so
// that two embedded NATS servers never write the same JetStream store. The kernel drops the lock when the
// process dies, even by SIGKILL.
const LockFile = "citybrain.lock"

// ErrDataDirInUse is returned by LockDataDir when another process holds the directory.
var ErrDataDirInUse = errors.New("the data directory is in use by another citybrain process")

// LockDataDir takes the exclusive lock of dir and returns the function that releases it. The lock file
// holds the pid of its holder, for the error message of the next one.
func LockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		holder := strings.TrimSpace(string(b[:n]))
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if holder != "" {
				return nil, fmt.Errorf("cannot use %s (held by pid %s): %w", dir, holder, ErrDataDirInUse)
			}
			return nil, fmt.Errorf("cannot use %s: %w", dir, ErrDataDirInUse)
		}
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
