//go:build !linux

package api

import "syscall"

// sendNow writes p to the non-blocking socket fd once (see the Linux version).
func sendNow(fd uintptr, p []byte) (int, error) {
	return syscall.Write(int(fd), p)
}
