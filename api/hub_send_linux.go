package api

import (
	"syscall"
	"unsafe"
)

// sendNow sends p on the non-blocking socket fd with one send(2) that never waits, and never enters the
// scheduler's syscall state: on a non-blocking socket the call does not block, so the goroutine keeps its P
// (a write(2) through syscall.Write hands the P off when it runs long, and with thousands of writes a delta the
// runtime's monitor then wakes every 20 µs to take Ps back and start threads). send(2) rather than write(2):
// the socket's own call, without the file layer's checks; MSG_NOSIGNAL: a closed peer is an error, not a
// SIGPIPE.
func sendNow(fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
		syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
