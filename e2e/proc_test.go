package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	// e2eStopGrace is how long a daemon gets to exit after SIGTERM before SIGKILL. Knot, CoreDNS and
	// podns (started with PODNS_DRAIN=0s) all stop in milliseconds.
	e2eStopGrace = 5 * time.Second
	// e2eLogTail is how much of a daemon's log a failing test prints.
	e2eLogTail = 4 << 10
)

// e2eProc is a daemon the suite started inside a namespace. Its output goes to a log file that a
// failing test prints.
type e2eProc struct {
	name string
	log  string        // path of the combined stdout and stderr
	cmd  *exec.Cmd     // never nil after start
	done chan struct{} // closed when the process has exited
}

// start runs a program in a namespace with exactly the given environment and registers its stop with
// t.Cleanup. `ip netns exec` execs the program in place, so the PID is the daemon's own.
func (w *e2eWorld) start(name, netns string, env []string, args ...string) *e2eProc {
	w.t.Helper()
	logPath := filepath.Join(w.dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		w.t.Fatalf("creating %s: %v", logPath, err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", netns}, args...)...)
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		w.t.Fatalf("starting %s: %v", name, err)
	}
	p := &e2eProc{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	w.t.Cleanup(func() {
		p.stop()
		if w.t.Failed() {
			w.t.Logf("%s log (tail):\n%s", name, p.tail())
		}
	})
	return p
}

// stop sends SIGTERM, then SIGKILL after e2eStopGrace, and waits for the exit.
func (p *e2eProc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(e2eStopGrace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *e2eProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the end of the daemon's log.
func (p *e2eProc) tail() string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	if len(data) > e2eLogTail {
		data = data[len(data)-e2eLogTail:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return strings.TrimRight(string(data), "\n")
}

// waitFor polls ready every 50 ms until it returns nil, the daemon exits, or timeout passes.
func (w *e2eWorld) waitFor(p *e2eProc, timeout time.Duration, ready func() error) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return
		}
		if p.exited() {
			w.t.Fatalf("%s exited before it was ready (%s)", p.name, p.cmd.ProcessState)
		}
		if time.Now().After(deadline) || w.ctx.Err() != nil {
			w.t.Fatalf("%s not ready after %v: %v", p.name, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
