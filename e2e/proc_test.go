//go:build linux

package e2e

import (
	"time"

	"github.com/podns/podns/internal/proctest"
)

// start runs a program in a namespace with exactly the given environment, its log in the world's
// directory, and registers its stop with t.Cleanup (internal/proctest).
func (w *e2eWorld) start(name, netns string, env []string, args ...string) *proctest.Proc {
	w.t.Helper()
	return proctest.Start(w.t, name, proctest.Options{Dir: w.dir, Netns: netns, Env: env}, args...)
}

// waitFor waits until ready returns nil, and fails the test if the daemon exits, the world's ctx ends
// (the test's deadline is near) or timeout passes first.
func (w *e2eWorld) waitFor(p *proctest.Proc, timeout time.Duration, ready func() error) {
	w.t.Helper()
	p.WaitReady(w.t, timeout, func() error {
		if err := w.ctx.Err(); err != nil {
			w.t.Fatalf("%s not ready: %v", p.Name, err)
		}
		return ready()
	})
}
