// Package timetest is what tests need of time: Clock, a clock that moves only when a test advances it,
// and Poll (with WaitFor, its form for a plain condition), the one way a test waits for something to
// happen. A test never sleeps to let something happen: it waits for a condition that shows it did.
package timetest

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Clock is a fake clock for a Config.Now: its time moves only by Advance. Safe for concurrent use.
type Clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock d forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Timeout is how long WaitFor waits. The conditions tests wait on come true within milliseconds, a few
// seconds at most (a janitor round at its 2 s rest tick); only a failing test waits this long, so it
// is set far above what a busy 2-core machine under -race needs.
const Timeout = 10 * time.Second

const (
	// firstInterval and maxInterval bound the time between two checks: the interval doubles from the
	// first to the largest, so a condition that holds soon is seen soon, and one that takes seconds (a
	// daemon starting) is not checked thousands of times.
	firstInterval = time.Millisecond
	maxInterval   = 50 * time.Millisecond
)

var errNotYet = errors.New("condition not met")

// WaitFor waits until cond returns true, and fails t if it has not within Timeout.
func WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	Poll(t, Timeout, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// Poll calls try until it returns nil, and fails t with try's last error if that has not happened
// within timeout. try runs on the test's goroutine and may itself fail t, to stop early when waiting
// longer cannot help (a daemon that exited will never be ready).
func Poll(t testing.TB, timeout time.Duration, try func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for interval := firstInterval; ; interval = min(2*interval, maxInterval) {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}

// FatalTB is a testing.TB whose Fatalf records its message in Msg and ends the goroutine, as
// testing.T's does: for the tests of helpers that fail the test they are given (Poll, and
// proctest's WaitReady). Run what it is given on a goroutine of its own.
type FatalTB struct {
	testing.TB
	Msg string
}

// Helper does nothing.
func (f *FatalTB) Helper() {}

// Fatalf records the message and ends the calling goroutine.
func (f *FatalTB) Fatalf(format string, args ...any) {
	f.Msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
