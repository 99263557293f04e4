//go:build linux

package netns

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDo needs root: it creates a namespace, listens on its loopback from inside, and dials the
// listener from inside.
func TestDo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
	}
	name := "podns-netns-test-" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}

	var l net.Listener
	if err := Do(name, func() (err error) {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := l.Addr().String()

	inside, err := Dialer(name)(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatalf("dialing %s inside the namespace: got %v, want a connection", addr, err)
	}
	inside.Close()
	// Inside Do the thread is in the namespace; after it, every thread is back (the check covers
	// the main thread, whose namespace /proc/self/ns/net shows, when Do happened to run on it).
	home, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		var inside string
		if err := Do(name, func() (err error) {
			inside, err = os.Readlink("/proc/thread-self/ns/net")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if inside == home {
			t.Fatalf("thread namespace inside Do: got %s, want another than the machine's", inside)
		}
	}
	// The thread Do ran on is home by the time Do returns, not some moment later: read right after
	// each Do, its namespace must be the machine's.
	for range 5000 {
		var tid int
		if err := Do(name, func() error {
			tid = unix.Gettid()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		ns, err := os.Readlink("/proc/self/task/" + strconv.Itoa(tid) + "/ns/net")
		if err == nil && ns != home {
			t.Fatalf("thread %d's namespace right after Do: got %s, want %s", tid, ns, home)
		}
	}
	if self, err := os.Readlink("/proc/self/ns/net"); err != nil || self != home {
		t.Errorf("process namespace after Do: got %s (%v), want %s", self, err, home)
	}
	port, err := FreePort(name)
	if err != nil || port == 0 {
		t.Errorf("FreePort: got %d, %v, want a port", port, err)
	}
}
