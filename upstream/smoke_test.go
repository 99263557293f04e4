package upstream

import (
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	fs := startFake(t, script{})
	c := newTestClient(t, Config{Servers: []string{fs.addr}})
	res := runQueries(t, c, 200, 8, time.Second)
	requireAllAnswered(t, res)
	t.Logf("p50 %v p99 %v stats %+v", percentile(res, .5), percentile(res, .99), c.Stats())
}
