package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread that has joined the namespace. Sockets fn creates belong to the
// namespace. The thread is never handed back to the Go scheduler: the goroutine exits still locked to
// it, so the runtime retires the thread instead of letting other goroutines run in the namespace.
func Do(name string, fn func() error) error {
	path := filepath.Join("/run/netns", name)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: see above.
		f, err := os.Open(path)
		if err != nil {
			errc <- fmt.Errorf("opening network namespace %s: %w", name, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("joining network namespace %s: %w", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
