package upstream

// line is a pool's calls waiting for a connection, first in line first (pool.wait). Joining at either
// end and leaving from the front cost the same however long the line is, so that a long line (every
// connection busy under a flood of new names) costs no more per answer than a short one. A call that
// leaves from elsewhere (its deadline, a hedge's answer) only voids its place, which the front then
// skips. Guarded by the pool's mu.
type line struct {
	places []place // places[head:] is the line, void places among them
	head   int
	n      int // calls in line
}

// place is a call's place in a line: void once the call's ticket is no longer the one it joined with
// (it left, or was taken out; a call is recycled, and may be in another pool's line by then).
type place struct {
	cl     *call
	ticket uint64
}

// join puts cl in line, first when front is set (a call woken from the line that must wait again).
func (l *line) join(cl *call, ticket uint64, front bool) {
	cl.ticket.Store(ticket)
	l.n++
	if !front {
		l.places = append(l.places, place{cl, ticket})
		return
	}
	if l.head > 0 {
		l.head--
		l.places[l.head] = place{cl, ticket}
		return
	}
	l.places = append(l.places, place{})
	copy(l.places[1:], l.places)
	l.places[0] = place{cl, ticket}
}

// take takes the first call out of line; nil when the line is empty.
func (l *line) take() *call {
	for l.head < len(l.places) {
		p := l.places[l.head]
		l.places[l.head] = place{}
		l.head++
		if p.cl.ticket.CompareAndSwap(p.ticket, 0) {
			l.n--
			l.compact()
			return p.cl
		}
	}
	l.compact()
	return nil
}

// leave takes cl out of line; false when it is not in it (take took it first).
func (l *line) leave(cl *call) bool {
	t := cl.ticket.Load()
	if t == 0 || !cl.ticket.CompareAndSwap(t, 0) {
		return false
	}
	l.n--
	return true
}

// drain takes every call out of line.
func (l *line) drain() []*call {
	var out []*call
	for cl := l.take(); cl != nil; cl = l.take() {
		out = append(out, cl)
	}
	l.places, l.head, l.n = nil, 0, 0
	return out
}

// compact moves the line to the front of its slice once more than half of it is spent.
func (l *line) compact() {
	if l.head == len(l.places) {
		l.places, l.head = l.places[:0], 0
		return
	}
	if l.head >= 32 && l.head > len(l.places)/2 {
		n := copy(l.places, l.places[l.head:])
		clear(l.places[n:])
		l.places, l.head = l.places[:n], 0
	}
}
