package netns

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
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
	port, err := FreePort(name)
	if err != nil || port == 0 {
		t.Errorf("FreePort: got %d, %v, want a port", port, err)
	}
}
