package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread that has joined the namespace; sockets fn creates belong to the namespace.
// The thread goes back to the machine's namespace before the Go scheduler may use it again. That
// matters beyond this goroutine: a thread that exits locked is retired, except the main thread,
// which the runtime keeps; left in the namespace, it would make the whole process appear to be
// inside it (/proc/PID/ns/net is the main thread's), and `ip netns pids` would list the test binary.
// If the way back fails, the thread stays locked and is retired (or, the main thread, parked).
func Do(name string, fn func() error) error {
	path := filepath.Join("/run/netns", name)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("opening this thread's network namespace: %w", err)
			return
		}
		defer home.Close()
		target, err := os.Open(path)
		if err != nil {
			errc <- fmt.Errorf("opening network namespace %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("joining network namespace %s: %w", name, err)
			return
		}
		defer func() {
			if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
		}()
		errc <- fn()
	}()
	return <-errc
}
