package inject

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// podSpecOf decodes one manifest document strictly and returns its pod spec (nil for other kinds).
func podSpecOf(t *testing.T, doc string) *corev1.PodSpec {
	t.Helper()
	var meta struct{ Kind string }
	if err := sigsyaml.Unmarshal([]byte(doc), &meta); err != nil {
		t.Fatalf("reading kind: %v\n%s", err, doc)
	}
	var obj any
	var spec func() *corev1.PodSpec
	switch meta.Kind {
	case "Pod":
		o := new(corev1.Pod)
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec }
	case "Deployment":
		o := new(appsv1.Deployment)
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }
	case "StatefulSet":
		o := new(appsv1.StatefulSet)
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }
	case "DaemonSet":
		o := new(appsv1.DaemonSet)
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }
	case "ReplicaSet":
		o := new(appsv1.ReplicaSet)
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }
	case "Job":
		o := new(batchv1.Job)
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }
	case "CronJob":
		o := new(batchv1.CronJob)
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec.JobTemplate.Spec.Template.Spec }
	case "ReplicationController":
		o := new(corev1.ReplicationController)
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }
	case "PodTemplate":
		o := new(corev1.PodTemplate)
		obj, spec = o, func() *corev1.PodSpec { return &o.Template.Spec }
	default:
		return nil
	}
	if err := sigsyaml.UnmarshalStrict([]byte(doc), obj); err != nil {
		t.Fatalf("decoding the %s strictly: %v\n%s", meta.Kind, err, doc)
	}
	return spec()
}

func docs(s string) []string {
	var out []string
	for _, c := range splitStream(s) {
		if strings.TrimSpace(c.body) != "" {
			out = append(out, c.body)
		}
	}
	return out
}

// commentLines returns the comments of a YAML text ("# ..." to the end of the line).
func commentLines(s string) []string {
	return regexp.MustCompile(`#.*`).FindAllString(s, -1)
}

func checkInjected(t *testing.T, in *Injector, spec *corev1.PodSpec, what string) {
	t.Helper()
	if len(spec.InitContainers) == 0 || !reflect.DeepEqual(spec.InitContainers[0], container(t, in)) {
		t.Errorf("%s: init container 0 is not the injected podns: %+v", what, spec.InitContainers)
	}
	if spec.DNSPolicy != corev1.DNSNone || spec.DNSConfig == nil || !slices.Equal(spec.DNSConfig.Nameservers, []string{"127.0.0.1"}) {
		t.Errorf("%s: got dnsPolicy %q dnsConfig %+v, want None with 127.0.0.1", what, spec.DNSPolicy, spec.DNSConfig)
	}
	if spec.SecurityContext == nil || !slices.Contains(spec.SecurityContext.Sysctls, corev1.Sysctl{Name: UnprivilegedPortSysctl, Value: "53"}) {
		t.Errorf("%s: no sysctl %s=53", what, UnprivilegedPortSysctl)
	}
}

// TestManifestsEveryKind: each workload kind gets podns; the Service is written back byte for byte;
// every comment survives; a second run changes nothing.
func TestManifestsEveryKind(t *testing.T) {
	in := newTestInjector(t, testOpts)
	input := readTestdata(t, "workloads.yaml")
	out, reports, err := in.Manifests(input)
	if err != nil {
		t.Fatalf("Manifests: %v", err)
	}
	var got []string
	for _, r := range reports {
		got = append(got, r.String())
	}
	want := []string{
		"document 0, Pod pod: injected", "document 1, Deployment deploy: injected",
		"document 2, StatefulSet sts: injected", "document 3, DaemonSet ds: injected",
		"document 4, ReplicaSet rs: injected", "document 5, Job job: injected", "document 6, CronJob cron: injected",
	}
	if !slices.Equal(got, want) {
		t.Errorf("reports:\ngot  %q\nwant %q", got, want)
	}
	outDocs, inDocs := docs(string(out)), docs(string(input))
	if len(outDocs) != len(inDocs) {
		t.Fatalf("documents: got %d, want %d\n%s", len(outDocs), len(inDocs), out)
	}
	for i, d := range outDocs {
		spec := podSpecOf(t, d)
		if spec == nil {
			if d != inDocs[i] {
				t.Errorf("document %d (no pod): got\n%s\nwant it byte for byte\n%s", i, d, inDocs[i])
			}
			continue
		}
		checkInjected(t, in, spec, fmt.Sprintf("document %d", i))
		before := podSpecOf(t, inDocs[i])
		if !reflect.DeepEqual(spec.Containers, before.Containers) || spec.RestartPolicy != before.RestartPolicy {
			t.Errorf("document %d: containers or restartPolicy changed: got %+v, want %+v", i, spec.Containers, before.Containers)
		}
		if len(spec.InitContainers) != len(before.InitContainers)+1 {
			t.Errorf("document %d: got %d init containers, want %d", i, len(spec.InitContainers), len(before.InitContainers)+1)
		}
	}
	for _, c := range commentLines(string(input)) {
		// The comment on the line of the value podns replaces goes with the value.
		if lost := c == "# the default"; strings.Contains(string(out), c) == lost {
			t.Errorf("comment %q: got kept %v, want %v", c, !lost, lost)
		}
	}
	if ds := podSpecOf(t, outDocs[3]); !slices.Contains(ds.SecurityContext.Sysctls, corev1.Sysctl{Name: "net.ipv4.tcp_syncookies", Value: "1"}) {
		t.Errorf("DaemonSet: its own sysctl lost: %v", ds.SecurityContext.Sysctls)
	}
	if sts := podSpecOf(t, outDocs[2]); sts.SecurityContext.FSGroup == nil || *sts.SecurityContext.FSGroup != 2000 {
		t.Errorf("StatefulSet: fsGroup lost: %+v", sts.SecurityContext)
	}
	if rs := podSpecOf(t, outDocs[4]); !slices.ContainsFunc(rs.DNSConfig.Options, func(o corev1.PodDNSConfigOption) bool { return o.Name == "ndots" }) {
		t.Errorf("ReplicaSet: its own dnsConfig option lost: %v", rs.DNSConfig.Options)
	}
	if !strings.Contains(string(out), `args: ["--port", "8080"]`) {
		t.Errorf("the flow-style sequence was not kept:\n%s", outDocs[1])
	}

	again, reports2, err := in.Manifests(out)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if !bytes.Equal(again, out) {
		t.Errorf("second run changed the output:\ngot\n%s\nwant\n%s", again, out)
	}
	for _, r := range reports2 {
		if r.Result != Already {
			t.Errorf("second run: got %v, want %v", r, Already)
		}
	}
}

func TestManifestsList(t *testing.T) {
	in := newTestInjector(t, testOpts)
	input := readTestdata(t, "list.yaml")
	out, reports, err := in.Manifests(input)
	if err != nil {
		t.Fatalf("Manifests: %v", err)
	}
	var got []string
	for _, r := range reports {
		got = append(got, r.String())
	}
	want := []string{"document 0, List items[0]: Deployment web: injected", "document 0, List items[2]: Pod tool: injected"}
	if !slices.Equal(got, want) {
		t.Errorf("reports: got %q, want %q", got, want)
	}
	var list corev1.List
	if err := sigsyaml.UnmarshalStrict(out, &list); err != nil {
		t.Fatalf("decoding the List: %v", err)
	}
	if len(list.Items) != 3 {
		t.Fatalf("items: got %d, want 3", len(list.Items))
	}
	for _, i := range []int{0, 2} {
		checkInjected(t, in, podSpecOf(t, string(list.Items[i].Raw)), fmt.Sprintf("item %d", i))
	}
	if !strings.Contains(string(out), "# the web tier") {
		t.Errorf("comment lost:\n%s", out)
	}
	if again, _, _ := in.Manifests(out); !bytes.Equal(again, out) {
		t.Errorf("second run changed the List:\n%s", again)
	}
}

// TestManifestsRefused: refused and opted-out pods are written back byte for byte, with a report each.
func TestManifestsRefused(t *testing.T) {
	in := newTestInjector(t, testOpts)
	input := readTestdata(t, "refused.yaml")
	out, reports, err := in.Manifests(input)
	if err != nil {
		t.Fatalf("Manifests: %v", err)
	}
	if !bytes.Equal(out, input) {
		t.Errorf("got\n%s\nwant the input unchanged", out)
	}
	want := []struct {
		result Result
		reason string
	}{{Refused, "host-network"}, {Refused, "own-nameservers"}, {Refused, "dns-sidecar"}, {OptOut, ""}}
	if len(reports) != len(want) {
		t.Fatalf("reports: got %v, want %d", reports, len(want))
	}
	for i, w := range want {
		r := reports[i]
		reason := ""
		if r.Refusal != nil {
			reason = r.Refusal.Reason
		}
		if r.Result != w.result || reason != w.reason {
			t.Errorf("report %d: got %v (%q), want %v (%q)", i, r.Result, reason, w.result, w.reason)
		}
	}
}

// TestManifestsStream: separators, comment-only documents and documents without a final newline.
func TestManifestsStream(t *testing.T) {
	in := newTestInjector(t, testOpts)
	const pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: i\n"
	tests := []struct {
		name     string
		input    string
		injected int
	}{
		{"one pod", pod, 1},
		{"leading separator", "---\n" + pod, 1},
		{"separator with a comment", "# a\n--- # second\n" + pod + "--- # third\n" + pod, 2},
		{"comment-only documents", "# nothing\n---\n# still nothing\n---\n" + pod + "---\n", 1},
		{"no final newline", strings.TrimSuffix(pod, "\n"), 1},
		{"document end marker", pod + "...\n---\n" + pod, 2},
		{"empty input", "", 0},
		{"not a pod", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", 0},
		{"pod without spec", "apiVersion: v1\nkind: Pod\nmetadata: {name: c}\n", 0},
		{"flow-style securityContext", strings.Replace(pod, "spec:\n", "spec:\n  securityContext: {}\n  initContainers: []\n", 1), 1},
		{"ReplicationController", "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: rc}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i}]\n", 1},
		{"CRLF line ends", strings.ReplaceAll(pod+"---\n"+pod, "\n", "\r\n"), 2},
		{"PodTemplate", "apiVersion: v1\nkind: PodTemplate\nmetadata: {name: t}\ntemplate:\n  spec:\n    containers: [{name: c, image: i}]\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, reports, err := in.Manifests([]byte(tt.input))
			if err != nil {
				t.Fatalf("Manifests: %v", err)
			}
			n := 0
			for _, r := range reports {
				if r.Result == Injected {
					n++
				}
			}
			if n != tt.injected {
				t.Errorf("injected: got %d, want %d (%v)", n, tt.injected, reports)
			}
			for _, c := range commentLines(tt.input) {
				if !strings.Contains(string(out), c) {
					t.Errorf("comment %q lost:\n%s", c, out)
				}
			}
			for i, d := range docs(string(out)) {
				if isComments(d) {
					continue
				}
				if s := podSpecOf(t, d); s != nil && tt.injected > 0 {
					checkInjected(t, in, s, fmt.Sprintf("document %d", i))
				}
			}
			again, _, err := in.Manifests(out)
			if err != nil || !bytes.Equal(again, out) {
				t.Errorf("second run: got %v\n%s\nwant\n%s", err, again, out)
			}
		})
	}
}

func isComments(s string) bool {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && l != "..." {
			return false
		}
	}
	return true
}

func TestManifestsErrors(t *testing.T) {
	in := newTestInjector(t, testOpts)
	for _, tt := range []struct{ name, input string }{
		{"not YAML", "kind: Pod\n  spec: : :\n\t- x"},
		{"spec that is not a pod spec", "apiVersion: v1\nkind: Pod\nspec:\n  containers: 7\n"},
		// A bare document after "..." is a second document without a separator line: injecting the
		// first and writing it alone would drop the second.
		{"document after an end marker", "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{name: c, image: i}]\n...\napiVersion: v1\nkind: Pod\nspec: {}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := in.Manifests([]byte(tt.input)); !errors.Is(err, ErrManifest) {
				t.Errorf("got %v, want ErrManifest", err)
			}
		})
	}
}
