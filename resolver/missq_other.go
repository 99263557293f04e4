//go:build !linux || podnsportable

package resolver

import (
	"net"
	"sync"
)

// wakeup is the dispatcher's wake-up where there is no eventfd: a channel holding at most one signal.
type wakeup struct {
	ch     chan struct{}
	closed chan struct{}
	once   *sync.Once // a socket may be closed twice (Shutdown, then closeListeners again)
}

func newWakeup() (wakeup, error) {
	return wakeup{ch: make(chan struct{}, 1), closed: make(chan struct{}), once: new(sync.Once)}, nil
}

func (w *wakeup) signal() {
	select {
	case w.ch <- struct{}{}:
	default: // one is pending already
	}
}

// wait blocks until a signal, taking every signal sent since the last wait.
func (w *wakeup) wait() error {
	select {
	case <-w.ch:
		return nil
	case <-w.closed:
		return net.ErrClosed
	}
}

func (w *wakeup) close() { w.once.Do(func() { close(w.closed) }) }
