package upstream

import "testing"

// TestLine: a line serves calls in the order they joined, a call woken that waits again first; a call
// that left (its deadline) is skipped, and one taken cannot leave; a place left behind by a call that
// was recycled and joined again does not serve it twice or out of turn.
func TestLine(t *testing.T) {
	var l line
	var tickets uint64
	join := func(cl *call, front bool) { tickets++; l.join(cl, tickets, front) }
	a, b, c, d := new(call), new(call), new(call), new(call)
	join(a, false)
	join(b, false)
	join(c, false)
	if !l.leave(b) {
		t.Fatal("b could not leave the line it is in")
	}
	if l.leave(b) {
		t.Error("b left twice")
	}
	if got := l.take(); got != a {
		t.Fatalf("first taken: got %p, want a %p", got, a)
	}
	if l.leave(a) {
		t.Error("a left after it was taken")
	}
	join(a, true)  // woken, must wait again: first
	join(b, false) // recycled and back in line: its old place is void
	join(d, false)
	for i, want := range []*call{a, c, b, d} {
		if got := l.take(); got != want {
			t.Fatalf("take %d: got %p, want %p", i, got, want)
		}
	}
	if got := l.take(); got != nil || l.n != 0 {
		t.Errorf("empty line: took %p, %d in line; want nil, 0", got, l.n)
	}
}

// TestLineLong: taking from a long line does not copy what is left behind each time (the slice line did,
// a copy of thousands per answer under a flood): the spent front is dropped once it passes half the
// slice, so the copies cost at most as much as the joins did.
func TestLineLong(t *testing.T) {
	var l line
	calls := make([]*call, 10000)
	for i := range calls {
		calls[i] = new(call)
		l.join(calls[i], uint64(i+1), false)
	}
	left := 0
	for i := 1; i < len(calls); i += 3 {
		if l.leave(calls[i]) {
			left++
		}
	}
	taken := 0
	for cl := l.take(); cl != nil; cl = l.take() {
		taken++
		if l.head >= 32 && l.head > len(l.places)/2 {
			t.Fatalf("after %d taken: the spent front is %d of %d places, want it compacted past half", taken, l.head, len(l.places))
		}
	}
	if want := len(calls) - left; taken != want {
		t.Errorf("took %d, want %d", taken, want)
	}
}

// TestLineRecycledCall: a line keeps the void place of a call that left, and that call is recycled
// (finish clears its state) while the line is drained under another goroutine (a pool's shutdown):
// the race detector must see no plain write to what the line reads (CI found one in
// TestSilentUpstream, when the ticket was part of callState).
func TestLineRecycledCall(t *testing.T) {
	var l line
	cl := new(call)
	l.join(cl, 7, false)
	if !l.leave(cl) {
		t.Fatal("leave: the call was not in line")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		cl.clearState()
	}()
	if got := l.drain(); len(got) != 0 {
		t.Errorf("drain took %d calls from a line of void places, want 0", len(got))
	}
	<-done
}
