// Command startlat measures how long a DNS server takes from being started to answering its first
// query: the bench's "start to answering" figure, taken the same way for podns and for its peers.
//
// It runs the server command several times. Each time it takes the time, starts the command, and asks
// the server one A question over UDP every millisecond until a NOERROR reply with an answer arrives;
// then it stops the server (SIGTERM, then SIGKILL) and waits for it before the next trial. The question
// is a name the upstream serves, so the figure includes reaching the upstream, as a pod's first lookup
// does. It prints one line: "median_ms min_ms max_ms trials".
//
// Usage:
//
//	startlat -addr 127.77.0.5:15305 -name graylog.apps.svc.cluster.local -n 5 -- podns
//
// Only the standard library is used: the query and the reply check are a few bytes of RFC 1035 §4.1.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// pollEvery is how long one query waits for its reply before the next is sent: the figure's
// resolution, well under the 100 ms target it is compared with.
const pollEvery = time.Millisecond

// stopGrace is how long a server gets to exit after SIGTERM before it is killed.
const stopGrace = 5 * time.Second

// errNoAnswer means the server did not answer within the trial's time limit.
var errNoAnswer = errors.New("no answer")

func main() {
	addr := flag.String("addr", "", "server address ip:port (UDP)")
	name := flag.String("name", "", "name to ask (type A); the upstream must have records for it")
	trials := flag.Int("n", 5, "number of trials")
	limit := flag.Duration("limit", 10*time.Second, "give up on a trial after this long")
	flag.Parse()
	if *addr == "" || *name == "" || flag.NArg() == 0 || *trials < 1 {
		fmt.Fprintln(os.Stderr, "usage: startlat -addr ip:port -name fqdn [-n trials] -- command [args...]")
		os.Exit(2)
	}
	var got []time.Duration
	for i := range *trials {
		d, err := trial(*addr, *name, *limit, flag.Args())
		if err != nil {
			fmt.Fprintf(os.Stderr, "startlat: trial %d: %v\n", i+1, err)
			os.Exit(1)
		}
		got = append(got, d)
	}
	slices.Sort(got)
	fmt.Printf("%.1f %.1f %.1f %d\n", ms(got[len(got)/2]), ms(got[0]), ms(got[len(got)-1]), len(got))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// trial starts the command once and returns the time to its first answer. The server is always
// stopped and reaped before trial returns, so the next trial can bind the same address.
func trial(addr, name string, limit time.Duration, argv []string) (time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return 0, fmt.Errorf("dialing %s: %w", addr, err)
	}
	defer conn.Close()
	id := uint16(rand.Uint32())
	query, err := buildQuery(id, name)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	d, werr := waitAnswer(conn, query, id, start, limit)
	if serr := stop(cmd); werr == nil && serr != nil {
		werr = serr
	}
	return d, werr
}

// waitAnswer sends the query every pollEvery until an answer arrives. Before the server has bound its
// socket the kernel answers with ICMP port unreachable, which a connected UDP socket reports as
// ECONNREFUSED on the next read: that is expected and only means "not yet".
func waitAnswer(conn net.Conn, query []byte, id uint16, start time.Time, limit time.Duration) (time.Duration, error) {
	buf := make([]byte, 65535)
	for time.Since(start) < limit {
		if _, err := conn.Write(query); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			return 0, fmt.Errorf("sending query: %w", err)
		}
		deadline := time.Now().Add(pollEvery)
		for {
			conn.SetReadDeadline(deadline)
			n, err := conn.Read(buf)
			if err != nil {
				break // timeout or ECONNREFUSED: send again
			}
			if answered(buf[:n], id) {
				return time.Since(start), nil
			}
		}
	}
	return 0, fmt.Errorf("%w within %s", errNoAnswer, limit)
}

// stop sends SIGTERM, then SIGKILL after stopGrace, and reaps the process.
func stop(cmd *exec.Cmd) error {
	cmd.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not exit within %s of SIGTERM", cmd.Path, stopGrace)
	}
}

// buildQuery returns a recursive query for name, type A, class IN (RFC 1035 §4.1.1-4.1.2).
func buildQuery(id uint16, name string) ([]byte, error) {
	q := make([]byte, 12, 12+len(name)+6)
	binary.BigEndian.PutUint16(q[0:], id)
	q[2] = 0x01                          // RD: a stub asks for recursion
	binary.BigEndian.PutUint16(q[4:], 1) // QDCOUNT
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if len(label) == 0 || len(label) > 63 {
			return nil, fmt.Errorf("name %q: bad label %q", name, label)
		}
		q = append(q, byte(len(label)))
		q = append(q, label...)
	}
	q = append(q, 0, 0, 1, 0, 1) // root label, QTYPE A, QCLASS IN
	return q, nil
}

// answered reports whether msg is a reply to our query with RCODE NOERROR and at least one answer
// record (RFC 1035 §4.1.1: QR is the top bit of byte 2, RCODE the low 4 bits of byte 3).
func answered(msg []byte, id uint16) bool {
	if len(msg) < 12 || binary.BigEndian.Uint16(msg) != id {
		return false
	}
	qr, rcode := msg[2]&0x80 != 0, msg[3]&0x0f
	return qr && rcode == 0 && binary.BigEndian.Uint16(msg[6:]) > 0
}
