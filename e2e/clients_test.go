//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// e2eLookupTimeout bounds one client process. Under loss, each lost query costs a 5 s timeout (10 s
// when the retry is lost too); a process resolves at most a few dozen names.
const e2eLookupTimeout = 3 * time.Minute

// e2eClient is a resolver that no one on the team wrote: testdata/clients/lookup.c linked against one C
// library, or Go's own resolver (testdata/clients/golookup.go).
type e2eClient struct {
	name string // "glibc", "musl" or "go"
	bin  string // path of the compiled program
}

// buildClients compiles testdata/clients/lookup.c with gcc (glibc, dynamic, as Debian-based images
// run it) and with musl-gcc -static (as Alpine-based images run it), and golookup.go with
// CGO_ENABLED=0 (as most Go binaries in pods are built: the pure Go resolver).
func (w *e2eWorld) buildClients() []e2eClient {
	w.t.Helper()
	src := filepath.Join(w.testdata, "clients", "lookup.c")
	clients := []e2eClient{
		{name: "glibc", bin: filepath.Join(w.dir, "lookup-glibc")},
		{name: "musl", bin: filepath.Join(w.dir, "lookup-musl")},
		{name: "go", bin: filepath.Join(w.dir, "lookup-go")},
	}
	w.must("gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", clients[0].bin, src)
	w.must("musl-gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-static", "-o", clients[1].bin, src)
	ctx, cancel := context.WithTimeout(w.ctx, e2eBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", clients[2].bin,
		filepath.Join(w.testdata, "clients", "golookup.go"))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("building the Go client: %v: %s", err, out)
	}
	return clients
}

// e2eLookup is what one getaddrinfo call returned.
type e2eLookup struct {
	name    string
	elapsed time.Duration
	result  string // sorted addresses, comma-separated, or "error:EAI_..."
}

// lookup resolves names one after another with a client inside a pod. The environment is reduced to
// PATH so that no RES_OPTIONS or LOCALDOMAIN changes what the pod's resolv.conf says.
func (w *e2eWorld) lookup(pod *e2ePod, client e2eClient, names []string) ([]e2eLookup, error) {
	out, err := w.outputWithin(e2eLookupTimeout, pod.netns, append([]string{client.bin}, names...)...)
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", client.name, pod.netns, err)
	}
	var results []e2eLookup
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		fields := strings.Split(line, "\t")
		if len(fields) != 3 {
			return nil, fmt.Errorf("%s: malformed line %q", client.name, line)
		}
		ms, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: malformed time in %q: %w", client.name, line, err)
		}
		results = append(results, e2eLookup{
			name:    fields[0],
			elapsed: time.Duration(ms * float64(time.Millisecond)),
			result:  fields[2],
		})
	}
	if len(results) != len(names) {
		return nil, fmt.Errorf("%s: %d results for %d names", client.name, len(results), len(names))
	}
	return results, nil
}

// e2eDig is the part of a dig reply the suite compares.
type e2eDig struct {
	status  string   // NOERROR, NXDOMAIN, ...
	owners  []string // owner names of the answer records, in order
	records []string // "TYPE rdata" of the answer records of the asked type, sorted
}

// dig asks one question with dig using the pod's resolv.conf, search list included (+search), and
// dig's own defaults otherwise (EDNS, UDP first, TCP on truncation).
func (w *e2eWorld) dig(pod *e2ePod, name, qtype string) (e2eDig, error) {
	out, err := w.output(pod.netns, "dig", "+search", "+noall", "+comments", "+answer", name, qtype)
	if err != nil {
		return e2eDig{}, fmt.Errorf("dig in %s: %w", pod.netns, err)
	}
	var reply e2eDig
	for _, line := range strings.Split(out, "\n") {
		if _, header, ok := strings.Cut(line, "->>HEADER<<-"); ok {
			for _, part := range strings.Split(header, ",") {
				if status, ok := strings.CutPrefix(strings.TrimSpace(part), "status: "); ok {
					reply.status = status
				}
			}
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 5 || strings.HasPrefix(line, ";") {
			continue
		}
		reply.owners = append(reply.owners, fields[0])
		if fields[3] == qtype {
			reply.records = append(reply.records, fields[3]+" "+strings.Join(fields[4:], " "))
		}
	}
	if reply.status == "" {
		return e2eDig{}, fmt.Errorf("dig %s %s: no header in %q", name, qtype, out)
	}
	slices.Sort(reply.records)
	return reply, nil
}
