// Package proctest runs the daemons tests need (etcd, kube-apiserver, CoreDNS, Knot, podns itself) as
// child processes: each one's output goes to a log file in a directory of the test's, whose tail a
// failing test shows, and each is stopped by t.Cleanup, SIGTERM first and SIGKILL after a grace.
package proctest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/podns/podns/internal/timetest"
)

const (
	// stopGrace is how long a daemon gets to exit after SIGTERM before SIGKILL. Every daemon the tests
	// run (etcd, kube-apiserver, Knot, CoreDNS, podns with PODNS_DRAIN=0s) stops in well under a
	// second; only one that hangs waits this long.
	stopGrace = 10 * time.Second
	// logTail is how much of a daemon's log a failing test shows.
	logTail = 4 << 10
)

// Options says where and how a process runs. The zero value runs it on the machine's network, in a
// new temporary directory of the test's, with PATH and HOME alone in its environment.
type Options struct {
	// Dir holds the log, <Dir>/<name>.log, and is the working directory. Empty means t.TempDir().
	Dir string
	// Netns, when set, runs the program inside that network namespace (`ip netns exec`, root only).
	// ip execs the program in place, so the process stopped is the daemon itself.
	Netns string
	// Env is the whole environment of the process. Nil means PATH and HOME=Dir alone: nothing of the
	// machine's (KUBECONFIG, proxies) changes what runs.
	Env []string
}

// Proc is a running daemon.
type Proc struct {
	Name string
	Log  string        // path of its combined stdout and stderr
	cmd  *exec.Cmd     // never nil after Start
	done chan struct{} // closed once the process has exited and cmd.ProcessState is set
}

// Start runs argv (the program, then its arguments) and registers its stop with t.Cleanup; a failing
// test gets the tail of its log.
func Start(t testing.TB, name string, opts Options, argv ...string) *Proc {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Env == nil {
		opts.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + opts.Dir}
	}
	if opts.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", opts.Netns}, argv...)
	}
	logPath := filepath.Join(opts.Dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("creating %s: %v", logPath, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = opts.Env
	cmd.Dir = opts.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", name, p.Tail())
		}
	})
	return p
}

// Stop sends SIGTERM, then SIGKILL after stopGrace, and returns once the process has exited.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitState is how the process exited; nil while it runs.
func (p *Proc) ExitState() *os.ProcessState {
	if !p.Exited() {
		return nil
	}
	return p.cmd.ProcessState
}

// WaitReady polls ready (timetest.Poll) until it returns nil, and fails t if timeout passes first or
// at once if the process exits: a daemon that exited will never be ready.
func (p *Proc) WaitReady(t testing.TB, timeout time.Duration, ready func() error) {
	t.Helper()
	timetest.Poll(t, timeout, func() error {
		err := ready()
		if err != nil && p.Exited() {
			t.Fatalf("%s exited (%v) before it was ready: %v", p.Name, p.cmd.ProcessState, err)
		}
		if err != nil {
			return fmt.Errorf("%s not ready: %w", p.Name, err)
		}
		return nil
	})
}

// Tail returns the end of the log.
func (p *Proc) Tail() string {
	data, err := os.ReadFile(p.Log)
	if err != nil {
		return err.Error()
	}
	if len(data) > logTail {
		data = data[len(data)-logTail:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return strings.TrimRight(string(data), "\n")
}
