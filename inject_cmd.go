package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/podns/podns/internal/inject"
)

const injectUsage = `usage: podns inject --image IMAGE --upstreams IP[,IP...] [flags] < manifests.yaml > injected.yaml

Adds podns, as examples/native-sidecar.yaml shows it, to every pod spec of the Kubernetes manifests on
stdin (Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs,
CronJobs, PodTemplates, also inside a List). Documents without a pod to change are written back as they
are. A pod podns cannot serve (hostNetwork, its own nameservers, its own DNS server) is left unchanged
with a warning; with --strict the whole input is written back unchanged and the exit status is 1.

Flags:
`

// runInject is `podns inject`: manifests on stdin, injected manifests on stdout, warnings on stderr.
// It returns the exit code: 0 done, 1 refused under --strict or unreadable input, 2 bad flags.
func runInject(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("podns inject", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, injectUsage)
		fs.PrintDefaults()
	}
	image := fs.String("image", "", "the podns image to run (required)")
	upstreams := fs.String("upstreams", "", "the cluster DNS service IP, comma list of ip or ip:port (required): kubectl -n kube-system get service kube-dns -o jsonpath='{.spec.clusterIP}'")
	domain := fs.String("cluster-domain", "", "the cluster domain (default: the example's, cluster.local)")
	res := map[string]*string{}
	for _, r := range []string{"cpu-request", "memory-request", "cpu-limit", "memory-limit"} {
		res[r] = fs.String(r, "", "podns's "+strings.Replace(r, "-", " ", 1)+" (default: the example's, sized in examples/README.md)")
	}
	strict := fs.Bool("strict", false, "refuse the whole input, unchanged, with exit status 1, when a pod cannot get podns")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "podns inject: unexpected arguments %q (manifests are read from stdin)\n", fs.Args())
		return 2
	}
	opts := inject.Options{Image: *image, ClusterDomain: *domain}
	for _, u := range strings.Split(*upstreams, ",") {
		if u = strings.TrimSpace(u); u != "" {
			opts.Upstreams = append(opts.Upstreams, u)
		}
	}
	in, err := injector(opts, res)
	if err != nil {
		fmt.Fprintf(stderr, "podns inject: %v\n", err)
		return 2
	}
	input, err := io.ReadAll(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "podns inject: reading stdin: %v\n", err)
		return 1
	}
	out, reports, err := in.Manifests(input)
	if err != nil {
		fmt.Fprintf(stderr, "podns inject: %v\n", err)
		return 1
	}
	refused := 0
	for _, r := range reports {
		if r.Result == inject.Refused {
			refused++
			fmt.Fprintf(stderr, "podns inject: not injected: %s\n", r)
		}
	}
	if refused > 0 && *strict {
		fmt.Fprintf(stderr, "podns inject: --strict: %d pod(s) refused; input written back unchanged\n", refused)
		stdout.Write(input)
		return 1
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "podns inject: writing stdout: %v\n", err)
		return 1
	}
	return 0
}

// injector builds the injector, with the resource flags set over the example's resources.
func injector(opts inject.Options, flags map[string]*string) (*inject.Injector, error) {
	in, err := inject.New(opts)
	if err != nil {
		return nil, err
	}
	r := in.Resources()
	set := false
	for name, v := range flags {
		if *v == "" {
			continue
		}
		if err := inject.CheckQuantity(*v); err != nil {
			return nil, fmt.Errorf("--%s %q: %v", name, *v, err)
		}
		what, kind, _ := strings.Cut(name, "-")
		list := &r.Requests
		if kind == "limit" {
			list = &r.Limits
		}
		if *list == nil {
			*list = map[string]string{}
		}
		(*list)[what] = *v
		set = true
	}
	if !set {
		return in, nil
	}
	opts.Resources = &r
	return inject.New(opts)
}
