package upstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// script is the scripted behaviour of a fake upstream. The zero value
// answers every query at once, concurrently, in whatever order it finishes.
type script struct {
	serial       bool                        // one query at a time per connection, in order (CoreDNS)
	nagle        bool                        // keep Nagle's algorithm on (no TCP_NODELAY), as Knot and Unbound do
	delay        func(n int64) time.Duration // before answering the n-th query the server received
	drop         func(n int64) bool          // never answer the n-th query
	reverseBatch int                         // collect this many queries (or 20 ms), answer in reverse
	closeAfter   int                         // close the connection after this many answers
	resetAfter   int                         // reset (RST) after reading this many queries; faultConns only
	idleClose    time.Duration               // close a connection idle this long
	wrongIDFirst bool                        // send a reply with another ID before each answer
	wrongQFirst  bool                        // send a reply for another name, same ID, before each answer
	garbage      bool                        // send a frame of random bytes before each answer
	shortFrame   int                         // after this many answers, send a 5-byte frame; faultConns only
	split        bool                        // write the length prefix in two writes, 2 ms apart
	mixCase      bool                        // echo the question name in mixed case (0x20)
	keepalive    uint16                      // edns-tcp-keepalive TIMEOUT to put in replies
	blackhole    bool                        // read everything, answer nothing
	rcode        int                         // rcode to answer with
	truncate     bool                        // set TC
	corrupt      bool                        // cut the answer record short (header and question intact)
	faultConns   int                         // resetAfter/shortFrame apply to the first faultConns connections (0: all)
	answer       func(q *dns.Msg) *dns.Msg   // overrides the reply
	onQuery      func(q *dns.Msg)            // sees every query received
}

// fakeServer is an in-process upstream on loopback TCP with scripted faults.
type fakeServer struct {
	t    testing.TB
	s    script
	ln   net.Listener
	addr string

	queries   atomic.Int64 // queries received
	answers   atomic.Int64 // answers sent
	accepted  atomic.Int64
	clientEOF atomic.Int64 // connections the client closed first (with a FIN or a reset)
	clientRST atomic.Int64 // of which with a reset
	slow      sync.Map     // lower-case names whose answer was delayed ≥ 50 ms

	mu       sync.Mutex // guards the fields below
	conns    map[net.Conn]bool
	maxConns int

	done chan struct{}
	wg   sync.WaitGroup
}

func startFake(t testing.TB, s script) *fakeServer {
	t.Helper()
	return startFakeAt(t, "127.0.0.1:0", s)
}

func startFakeAt(t testing.TB, addr string, s script) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	fs := &fakeServer{t: t, s: s, ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]bool{}, done: make(chan struct{})}
	fs.wg.Add(1)
	go fs.accept()
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fakeServer) Close() {
	select {
	case <-fs.done:
		return
	default:
	}
	close(fs.done)
	fs.ln.Close()
	fs.mu.Lock()
	for c := range fs.conns {
		c.Close()
	}
	fs.mu.Unlock()
	fs.wg.Wait()
}

// MaxConns is the most connections the server held at once.
func (fs *fakeServer) MaxConns() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.maxConns
}

func (fs *fakeServer) accept() {
	defer fs.wg.Done()
	for {
		c, err := fs.ln.Accept()
		if err != nil {
			return
		}
		seq := fs.accepted.Add(1)
		if tc, ok := c.(*net.TCPConn); ok && fs.s.nagle {
			_ = tc.SetNoDelay(false)
		}
		fs.mu.Lock()
		fs.conns[c] = true
		fs.maxConns = max(fs.maxConns, len(fs.conns))
		fs.mu.Unlock()
		fs.wg.Add(1)
		go fs.serve(c, seq)
	}
}

// fconn is the server side of one connection.
type fconn struct {
	fs      *fakeServer
	c       net.Conn
	faulty  bool
	wmu     sync.Mutex // serialises writes
	answers int        // guarded by wmu
	closed  bool       // guarded by wmu
}

func (fs *fakeServer) serve(c net.Conn, seq int64) {
	defer fs.wg.Done()
	fc := &fconn{fs: fs, c: c, faulty: fs.s.faultConns == 0 || seq <= int64(fs.s.faultConns)}
	var inner sync.WaitGroup
	defer func() {
		inner.Wait()
		c.Close()
		fs.mu.Lock()
		delete(fs.conns, c)
		fs.mu.Unlock()
	}()
	var batch []*dns.Msg
	flush := func() {
		for i := len(batch) - 1; i >= 0; i-- {
			fc.reply(batch[i])
		}
		batch = batch[:0]
	}
	read := 0
	for {
		var wait time.Duration
		switch {
		case len(batch) > 0:
			wait = 20 * time.Millisecond
		case fs.s.idleClose > 0:
			wait = fs.s.idleClose
		}
		q, err := readMsgWithin(c, wait)
		if ne, ok := err.(net.Error); ok && ne.Timeout() && len(batch) > 0 {
			flush()
			continue
		}
		if err != nil {
			if err == io.EOF {
				fs.clientEOF.Add(1)
			} else if errors.Is(err, syscall.ECONNRESET) {
				fs.clientEOF.Add(1)
				fs.clientRST.Add(1)
			} else if ne, ok := err.(net.Error); !errors.Is(err, net.ErrClosed) && (!ok || !ne.Timeout()) {
				fs.t.Logf("fake: conn %d: %v", seq, err)
			}
			return
		}
		n := fs.queries.Add(1)
		read++
		if fs.s.onQuery != nil {
			fs.s.onQuery(q)
		}
		if fs.s.delay != nil && fs.s.delay(n) >= 50*time.Millisecond {
			fs.slow.Store(strings.ToLower(q.Question[0].Name), true)
		}
		if fc.faulty && fs.s.resetAfter > 0 && read >= fs.s.resetAfter {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // close sends RST
			}
			return
		}
		switch {
		case fs.s.blackhole || fs.s.drop != nil && fs.s.drop(n):
		case fs.s.reverseBatch > 0:
			batch = append(batch, q)
			if len(batch) == fs.s.reverseBatch {
				flush()
			}
		case fs.s.serial:
			if !fc.wait(fs.s.delay, n) {
				return
			}
			if !fc.reply(q) {
				return
			}
		default:
			inner.Add(1)
			go func() {
				defer inner.Done()
				if fc.wait(fs.s.delay, n) {
					fc.reply(q)
				}
			}()
		}
	}
}

func (fc *fconn) wait(delay func(int64) time.Duration, n int64) bool {
	if delay == nil {
		return true
	}
	select {
	case <-time.After(delay(n)):
		return true
	case <-fc.fs.done:
		return false
	}
}

// reply writes the scripted frames for q; false once the connection is done.
func (fc *fconn) reply(q *dns.Msg) bool {
	s := &fc.fs.s
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	if fc.closed {
		return false
	}
	if s.wrongIDFirst {
		r := answerFor(q, s)
		r.Id = q.Id + 1 + uint16(rand.N(1000))
		fc.write(pack(r))
	}
	if s.wrongQFirst {
		other := q.Copy()
		other.Question[0].Name = "other." + q.Question[0].Name
		fc.write(pack(answerFor(other, s)))
	}
	if s.garbage {
		g := make([]byte, 12+rand.N(40))
		for i := range g {
			g[i] = byte(rand.Uint32())
		}
		fc.write(g)
	}
	if fc.faulty && s.shortFrame > 0 && fc.answers >= s.shortFrame {
		fc.write([]byte{1, 2, 3, 4, 5})
		fc.closed = true
		fc.c.Close()
		return false
	}
	r := answerFor(q, s)
	if s.answer != nil {
		r = s.answer(q)
	}
	b := pack(r)
	if s.corrupt {
		b = b[:len(b)-3]
	}
	if !fc.write(b) {
		return false
	}
	fc.answers++
	fc.fs.answers.Add(1)
	if s.closeAfter > 0 && fc.answers >= s.closeAfter {
		fc.closed = true
		fc.c.Close()
		return false
	}
	return true
}

func (fc *fconn) write(msg []byte) bool {
	frame := binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
	frame = append(frame, msg...)
	if fc.fs.s.split {
		if _, err := fc.c.Write(frame[:1]); err != nil {
			return false
		}
		time.Sleep(2 * time.Millisecond) // the scripted gap between the two writes, not a wait
		frame = frame[1:]
	}
	_, err := fc.c.Write(frame)
	return err == nil
}

// readMsgWithin reads one framed message; wait > 0 bounds the wait for its
// first byte only, so a deadline never cuts a frame in two.
func readMsgWithin(c net.Conn, wait time.Duration) (*dns.Msg, error) {
	var first [1]byte
	var deadline time.Time // zero: none, clearing an expired one
	if wait > 0 {
		deadline = time.Now().Add(wait)
	}
	_ = c.SetReadDeadline(deadline)
	if _, err := io.ReadFull(c, first[:]); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Time{})
	return readMsg(io.MultiReader(bytes.NewReader(first[:]), c))
}

func readMsg(r io.Reader) (*dns.Msg, error) {
	var prefix [2]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(prefix[:]))
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf); err != nil {
		return nil, err
	}
	return m, nil
}

func pack(m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// answerFor answers q with one A record whose address is derived from the
// name, so a test can tell a right answer from another query's.
func answerFor(q *dns.Msg, s *script) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(q)
	r.Rcode = s.rcode
	r.Truncated = s.truncate
	if s.mixCase {
		r.Question[0].Name = mixCase(q.Question[0].Name)
	}
	if s.rcode == dns.RcodeSuccess && q.Question[0].Qtype == dns.TypeA {
		r.Answer = append(r.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30},
			A:   ipFor(q.Question[0].Name).AsSlice(),
		})
	}
	if s.keepalive > 0 {
		r.SetEdns0(1232, false)
		o := r.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE, Timeout: s.keepalive})
	}
	return r
}

func mixCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		if i%2 == 0 && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// ipFor maps a name (any case) to an address in 10.0.0.0/8.
func ipFor(name string) netip.Addr {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(name)))
	v := h.Sum32()
	return netip.AddrFrom4([4]byte{10, byte(v >> 16), byte(v >> 8), byte(v)})
}
