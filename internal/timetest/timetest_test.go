package timetest

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	c := NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Errorf("got %v, want %v", got, start)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), start.Add(90*time.Second); !got.Equal(want) {
		t.Errorf("after Advance got %v, want %v", got, want)
	}
}

// poll runs Poll on its own goroutine, as a test would, and returns what it failed with ("" if not).
func poll(timeout time.Duration, try func() error) string {
	tb := &FatalTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Poll(tb, timeout, try)
	}()
	<-done
	return tb.Msg
}

func TestPoll(t *testing.T) {
	t.Run("returns once try succeeds", func(t *testing.T) {
		tries := 0
		msg := poll(time.Minute, func() error {
			tries++
			if tries < 5 {
				return errors.New("not yet")
			}
			return nil
		})
		if msg != "" || tries != 5 {
			t.Errorf("got failure %q after %d tries, want none after 5", msg, tries)
		}
	})
	t.Run("fails with the last error at the timeout", func(t *testing.T) {
		tries := 0
		start := time.Now()
		msg := poll(30*time.Millisecond, func() error {
			tries++
			return fmt.Errorf("try %d", tries)
		})
		if want := fmt.Sprintf("after 30ms: try %d", tries); msg != want {
			t.Errorf("got failure %q, want %q", msg, want)
		}
		if took := time.Since(start); took < 30*time.Millisecond {
			t.Errorf("gave up after %v, want ≥ 30ms", took)
		}
	})
}
