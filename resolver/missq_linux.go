//go:build linux && !podnsportable

package resolver

import (
	"encoding/binary"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// wakeup is the dispatcher's wake-up on Linux: an eventfd, written raw by the readers (the write never
// blocks, so the reader keeps its P) and read through Go's network poller by the dispatcher, which
// wakes on a thread of its own.
type wakeup struct {
	fd int      // non-blocking
	f  *os.File // the same fd, for the poller
}

func newWakeup() (wakeup, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return wakeup{}, err
	}
	return wakeup{fd: fd, f: os.NewFile(uintptr(fd), "eventfd")}, nil
}

// signal adds 1 to the eventfd (only 2^64-2 unread wake-ups would block it).
func (w *wakeup) signal() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(w.fd), uintptr(unsafe.Pointer(&one[0])), 8)
}

// wait blocks until a signal, taking every signal sent since the last wait.
func (w *wakeup) wait() error {
	var drain [8]byte
	_, err := w.f.Read(drain[:])
	return err
}

func (w *wakeup) close() { w.f.Close() }
