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
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The answer is sent only once inside has returned, so once the thread is home: a caller
		// that looks at the process's namespace right after Do sees the machine's.
		errc <- inside(name, fn)
	}()
	return <-errc
}

// inside joins the namespace on the calling goroutine's locked thread, runs fn, and goes back; only a
// thread that made it back is unlocked.
func inside(name string, fn func() error) error {
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return fmt.Errorf("opening this thread's network namespace: %w", err)
	}
	defer home.Close()
	target, err := os.Open(filepath.Join("/run/netns", name))
	if err != nil {
		return fmt.Errorf("opening network namespace %s: %w", name, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("joining network namespace %s: %w", name, err)
	}
	defer func() {
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return fn()
}
