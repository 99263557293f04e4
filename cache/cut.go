package cache

import (
	"errors"
	"time"
)

// ErrNotCut: SetCut was given an entry that is not a fresh NXDOMAIN for the question's own name, or a
// key AppendCutKey did not make.
var ErrNotCut = errors.New("cache: not a fresh NXDOMAIN under a cut key")

// AppendCutKey appends the key of an NXDOMAIN cut at qname (wire format, any case) in qclass: view
// ViewCut, no type (RFC 8020 §2: an NXDOMAIN denies the name for every type, and every name below it).
// It does not allocate when dst has the capacity.
func AppendCutKey(dst, qname []byte, qclass uint16) []byte {
	return AppendKey(dst, qname, 0, qclass, false, false, ViewCut)
}

// SetCut stores e, an NXDOMAIN entry Set or StoreWire returned, as the cut under key (AppendCutKey):
// it lives exactly as long as e, that is the negative TTL of RFC 2308 §5 capped by NegMaxTTL, is
// charged against MaxBytes like any entry, and is never served stale: a cut past its TTL says nothing.
// The entry's buffer is shared with e, and charged again, so the bound errs high. An NXDOMAIN behind a
// CNAME denies the chain's last name, not the question's (RFC 6604 §2): it is no cut.
func (c *Cache) SetCut(key []byte, e *Entry) error {
	now := c.cfg.now()
	if len(key) <= keyName || key[keyView] != ViewCut || e == nil || e.kind != NXDomain || e.Answers() > 0 || e.TTL(now) <= 0 {
		return ErrNotCut
	}
	s := c.shardFor(key)
	n := &node{Entry: Entry{
		buf: e.buf, msgLen: e.msgLen, qnameLen: e.qnameLen, kind: e.kind,
		stored: e.stored, lifetime: e.lifetime, // staleOK stays false
	}}
	n.charge = allocSize(len(key)) + n.Size()
	if n.charge > s.budget {
		s.rejected.Add(1)
		return ErrTooBig
	}
	n.key = string(key)
	s.mu.Lock()
	s.insert(n, now, c.cfg.staleFor)
	s.mu.Unlock()
	s.stored.Add(1)
	return nil
}

// Cut reports whether a fresh cut is stored under key, how long it stays fresh, and how long it was
// fresh for when stored (so that a caller can tell one in its last tenth, as Get's Prefetch does). It
// does not allocate, and counts neither a hit nor a miss: the resolver asks it of every search
// candidate.
func (c *Cache) Cut(key []byte) (ttl, lifetime time.Duration, ok bool) {
	left, lifetime, ok := c.CutLeft(key)
	if !ok || left <= 0 {
		return 0, 0, false
	}
	return left, lifetime, true
}

// CutLeft is Cut for a refresh deciding whether to renew a cut: it also reports a cut past its TTL
// that is still stored, with left ≤ 0 (how long ago it expired). Such a cut says nothing about the
// names under it; a refresh that comes due when it expires renews it rather than walk the candidates it
// covered. A fresh cut is touched, as Cut touches it.
func (c *Cache) CutLeft(key []byte) (left, lifetime time.Duration, ok bool) {
	n := c.peek(key)
	if n == nil {
		return 0, 0, false
	}
	left = n.lifetime - c.cfg.now().Sub(n.stored)
	if left > 0 {
		n.touch()
	}
	return left, n.lifetime, true
}
