package upstream

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/miekg/dns"
)

// Probes of a down server back off from probeBase to probeMax: a restarted
// CoreDNS is found within a quarter second, a dead one costs a dial every
// few seconds.
const (
	probeBase = 250 * time.Millisecond
	probeMax  = 5 * time.Second
)

// maybeProbe starts a probe of a down server when one is due.
func (p *pool) maybeProbe(now int64) {
	if !p.health.down() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.probing || now < p.nextProbeAt {
		return
	}
	p.probing = true
	p.c.wg.Add(1) // under mu with closed false: Close has not begun waiting
	go p.probe()
}

// probe asks the down server one question on a connection of its own; any
// reply brings the server back.
func (p *pool) probe() {
	defer p.c.wg.Done()
	err := p.probeOnce(p.c.ctx)
	now := p.c.nowNS()
	p.mu.Lock()
	p.probing = false
	if err != nil {
		p.probeFails++
		p.nextProbeAt = now + int64(backoff(p.probeFails, probeBase, probeMax))
	} else {
		p.probeFails, p.dialFails, p.nextDialAt = 0, 0, 0
	}
	p.mu.Unlock()
	if err != nil {
		p.log.Debug().Err(err).Msg("probe failed")
		return
	}
	p.success()
}

// probeOnce dials and asks ". NS": every server answers it somehow (CoreDNS
// from its cache or upstream, an authoritative server with REFUSED), and
// any reply proves the server reads and answers.
func (p *pool) probeOnce(ctx context.Context) error {
	cfg := &p.c.cfg
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	nc, err := cfg.Dial(dctx, "tcp", p.addr)
	cancel()
	if err != nil {
		return fmt.Errorf("probing %s: dialing: %w", p.addr, err)
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	_ = nc.SetDeadline(time.Now().Add(cfg.Timeout))

	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeNS)
	m.Id = uint16(rand.Uint32())
	wire, err := packQuery(m, make([]byte, 2, 64))
	if err != nil {
		return err
	}
	if _, err := nc.Write(wire); err != nil {
		return fmt.Errorf("probing %s: writing: %w", p.addr, err)
	}
	for { // skip strays, as the reader does
		var prefix [2]byte
		if _, err := io.ReadFull(nc, prefix[:]); err != nil {
			return fmt.Errorf("probing %s: reading: %w", p.addr, err)
		}
		reply := make([]byte, binary.BigEndian.Uint16(prefix[:]))
		if _, err := io.ReadFull(nc, reply); err != nil {
			return fmt.Errorf("probing %s: reading: %w", p.addr, err)
		}
		if len(reply) >= headerLen && binary.BigEndian.Uint16(reply) == m.Id && replyMatches(wire[2:], reply) {
			return nil
		}
	}
}
