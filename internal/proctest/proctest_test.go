package proctest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/podns/podns/internal/timetest"
)

// logSays is a WaitReady condition: the log holds want.
func logSays(p *Proc, want string) func() error {
	return func() error {
		data, err := os.ReadFile(p.Log)
		if err != nil {
			return err
		}
		if !strings.Contains(string(data), want) {
			return fmt.Errorf("log %q, want %q in it", data, want)
		}
		return nil
	}
}

// TestStartStop: the output goes to the log, the environment is PATH and HOME alone, and Stop ends
// the process with SIGTERM, not after the grace.
func TestStartStop(t *testing.T) {
	t.Setenv("PROCTEST_LEAK", "machine")
	dir := t.TempDir()
	p := Start(t, "sh", Options{Dir: dir}, "sh", "-c", `echo "home=$HOME leak=$PROCTEST_LEAK"; exec sleep 60`)
	p.WaitReady(t, 10*time.Second, logSays(p, "home="+dir+" leak=\n"))
	if st := p.ExitState(); st != nil {
		t.Fatalf("got exit state %v while the process runs, want nil", st)
	}
	start := time.Now()
	p.Stop()
	if !p.Exited() {
		t.Fatalf("got the process running after Stop, want it exited")
	}
	if took := time.Since(start); took >= stopGrace {
		t.Errorf("Stop took %v, want well under the %v grace (SIGTERM)", took, stopGrace)
	}
	if got, want := p.Tail(), "home="+dir+" leak="; got != want {
		t.Errorf("Tail got %q, want %q", got, want)
	}
}

// TestCleanupStops: a process still running when its test ends is stopped by the test's cleanup.
func TestCleanupStops(t *testing.T) {
	var p *Proc
	t.Run("starts", func(t *testing.T) {
		p = Start(t, "sleep", Options{}, "sleep", "60")
	})
	if !p.Exited() {
		t.Errorf("got the process running after its test ended, want it stopped")
		p.Stop()
	}
}

// TestWaitReadyExited: a process that exits fails the wait at once, not at its timeout.
func TestWaitReadyExited(t *testing.T) {
	p := Start(t, "sh", Options{}, "sh", "-c", "exit 3")
	tb := &timetest.FatalTB{TB: t}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.WaitReady(tb, time.Minute, func() error { return errors.New("never ready") })
	}()
	<-done
	if want := "sh exited (exit status 3) before it was ready: never ready"; tb.Msg != want {
		t.Errorf("got failure %q, want %q", tb.Msg, want)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("gave up after %v, want at once", took)
	}
	if st := p.ExitState(); st == nil || st.ExitCode() != 3 {
		t.Errorf("got exit state %v, want exit status 3", st)
	}
}
