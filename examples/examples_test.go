package examples_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// loadTestImage reads the repository's Dockerfile.
func loadTestImage(t *testing.T) imageFacts {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatalf("opening the Dockerfile: %v", err)
	}
	defer f.Close()
	img, err := parseDockerfile(f)
	if err != nil {
		t.Fatalf("parsing the Dockerfile: %v", err)
	}
	return img
}

func loadTestExamples(t *testing.T) []object {
	t.Helper()
	objs, err := loadExamples(".")
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestExamples: every example decodes strictly and every pod in it keeps podns's invariants; both
// forms, native and classic sidecar, are there.
func TestExamples(t *testing.T) {
	img := loadTestImage(t)
	objs := loadTestExamples(t)
	forms := map[bool]int{}
	for _, o := range objs {
		t.Run(o.String(), func(t *testing.T) {
			if o.pod == nil || isWebhook(o) { // the webhook's own pod: TestWebhookExamples
				return
			}
			for _, v := range checkPod(o.pod, img) {
				t.Error(v)
			}
			if _, _, native, err := podnsContainer(o.pod); err == nil {
				forms[native]++
			}
		})
	}
	if got := len(objs); got < 2 {
		t.Errorf("decoded %d objects, want at least 2 (native and classic sidecar)", got)
	}
	if forms[true] == 0 || forms[false] == 0 {
		t.Errorf("got %d native and %d classic sidecar examples, want at least one of each", forms[true], forms[false])
	}
}

// TestDockerfileFacts pins what the examples are checked against, so a Dockerfile that the parser
// misreads cannot make every check pass vacuously.
func TestDockerfileFacts(t *testing.T) {
	img := loadTestImage(t)
	if got, want := strings.Join(img.entrypoint, " "), "/podns"; got != want {
		t.Errorf("ENTRYPOINT: got %v, want %v", got, want)
	}
	if got, want := img.uid, int64(65532); got != want {
		t.Errorf("USER uid: got %v, want %v", got, want)
	}
	if !img.files["/podns"] {
		t.Errorf("COPY destinations: got %v, want /podns among them", img.files)
	}
}

// TestParseDockerfile covers the parser on small Dockerfiles.
func TestParseDockerfile(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		wantErr bool
		wantUID int64
		wantEP  string
	}{
		{"final stage wins", "FROM a AS b\nUSER 1\nENTRYPOINT [\"/x\"]\nFROM scratch\nCOPY --from=b /o /p\nUSER 7:8\nENTRYPOINT [\"/p\"]\n", false, 7, "/p"},
		{"continuation lines", "FROM scratch\nCOPY --from=b \\\n  /o /p\nUSER 7\nENTRYPOINT [\"/p\", \\\n \"serve\"]\n", false, 7, "/p serve"},
		{"named user", "FROM scratch\nUSER nonroot\nENTRYPOINT [\"/p\"]\n", true, 0, ""},
		{"shell-form entrypoint", "FROM scratch\nUSER 7\nENTRYPOINT /p\n", true, 0, ""},
		{"no entrypoint in final stage", "FROM a\nENTRYPOINT [\"/x\"]\nFROM scratch\nUSER 7\n", true, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := parseDockerfile(strings.NewReader(tt.text))
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if img.uid != tt.wantUID {
				t.Errorf("uid: got %v, want %v", img.uid, tt.wantUID)
			}
			if got := strings.Join(img.entrypoint, " "); got != tt.wantEP {
				t.Errorf("entrypoint: got %v, want %v", got, tt.wantEP)
			}
		})
	}
}

// TestDecodeStrict: the decoder refuses what `kubectl apply --validate=strict` refuses, and kinds this
// test cannot check.
func TestDecodeStrict(t *testing.T) {
	const pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: i\n"
	tests := []struct {
		name    string
		doc     string
		wantErr string // substring; empty means success
	}{
		{"valid pod", pod, ""},
		{"unknown field", pod + "  dnsPolicyy: None\n", "unknown field"},
		{"duplicate key", pod + "  dnsPolicy: None\n  dnsPolicy: Default\n", "already set"},
		{"malformed quantity", pod + "      resources:\n        limits:\n          memory: lots\n", "quantit"},
		{"unknown kind", "apiVersion: v1\nkind: Nope\n", "unknown apiVersion/kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeDocument("t.yaml", 0, []byte(tt.doc))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestSplitDocuments: separators, comment-only documents and a leading separator.
func TestSplitDocuments(t *testing.T) {
	docs := splitDocuments([]byte("# header\n---\na: 1\n---   \n# only a comment\n---\nb: 2\n"))
	if got, want := len(docs), 2; got != want {
		t.Fatalf("documents: got %v, want %v", got, want)
	}
	if got, want := strings.TrimSpace(string(docs[1])), "b: 2"; got != want {
		t.Errorf("second document: got %v, want %v", got, want)
	}
}

// TestCheckCatches breaks one invariant at a time in a copy of the native example and expects the
// checks to name it: checks that always pass would make TestExamples worthless.
func TestCheckCatches(t *testing.T) {
	img := loadTestImage(t)
	base := nativeExample(t)
	podnsOf := func(p *corev1.PodSpec) *corev1.Container { c, _, _, _ := podnsContainer(p); return c }
	setEnv := func(c *corev1.Container, name, value string) {
		for i := range c.Env {
			if c.Env[i].Name == name {
				c.Env[i] = corev1.EnvVar{Name: name, Value: value}
				return
			}
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
	}
	tests := []struct {
		name   string
		break_ func(p *corev1.PodSpec)
		want   string
	}{
		{"dnsPolicy ClusterFirst", func(p *corev1.PodSpec) { p.DNSPolicy = corev1.DNSClusterFirst }, "dnsPolicy"},
		{"second nameserver", func(p *corev1.PodSpec) { p.DNSConfig.Nameservers = append(p.DNSConfig.Nameservers, "10.96.0.10") }, "nameservers"},
		{"search list", func(p *corev1.PodSpec) { p.DNSConfig.Searches = []string{"svc.cluster.local"} }, "searches"},
		{"misspelt option", func(p *corev1.PodSpec) { p.DNSConfig.Options[0].Name = "edns" }, "not a resolv.conf option"},
		{"hostNetwork", func(p *corev1.PodSpec) { p.HostNetwork = true }, "hostNetwork"},
		{"namespace literal", func(p *corev1.PodSpec) { setEnv(podnsOf(p), "PODNS_NAMESPACE", "apps") }, "PODNS_NAMESPACE"},
		{"no upstream", func(p *corev1.PodSpec) { setEnv(podnsOf(p), "PODNS_UPSTREAMS", "") }, "PODNS_UPSTREAMS"},
		{"loopback upstream", func(p *corev1.PodSpec) { setEnv(podnsOf(p), "PODNS_UPSTREAMS", "127.0.0.1") }, "loopback"},
		{"upstream by name", func(p *corev1.PodSpec) { setEnv(podnsOf(p), "PODNS_UPSTREAMS", "kube-dns.kube-system") }, "not an IP"},
		{"listen elsewhere", func(p *corev1.PodSpec) { setEnv(podnsOf(p), "PODNS_LISTEN", "127.0.0.1:5353") }, "PODNS_LISTEN"},
		{"drain past grace", func(p *corev1.PodSpec) { setEnv(podnsOf(p), "PODNS_DRAIN", "40s") }, "terminationGracePeriodSeconds"},
		{"no sysctl", func(p *corev1.PodSpec) { p.SecurityContext.Sysctls = nil }, "ip_unprivileged_port_start"},
		{"root user", func(p *corev1.PodSpec) { podnsOf(p).SecurityContext.RunAsUser = new(int64) }, "runAsUser 0"},
		{"other user", func(p *corev1.PodSpec) { u := int64(1000); podnsOf(p).SecurityContext.RunAsUser = &u }, "Dockerfile's USER"},
		{"writable root", func(p *corev1.PodSpec) { podnsOf(p).SecurityContext.ReadOnlyRootFilesystem = nil }, "readOnlyRootFilesystem"},
		{"escalation", func(p *corev1.PodSpec) { v := true; podnsOf(p).SecurityContext.AllowPrivilegeEscalation = &v }, "allowPrivilegeEscalation"},
		{"capabilities kept", func(p *corev1.PodSpec) { podnsOf(p).SecurityContext.Capabilities.Drop = nil }, "drop ALL"},
		{"capability added", func(p *corev1.PodSpec) {
			podnsOf(p).SecurityContext.Capabilities.Add = []corev1.Capability{"NET_BIND_SERVICE"}
		}, "adds capabilities"},
		{"runAsNonRoot off", func(p *corev1.PodSpec) {
			v := false
			podnsOf(p).SecurityContext.RunAsNonRoot = &v
		}, "runAsNonRoot"},
		{"no memory limit", func(p *corev1.PodSpec) { delete(podnsOf(p).Resources.Limits, corev1.ResourceMemory) }, "no memory limit"},
		{"request above limit", func(p *corev1.PodSpec) {
			podnsOf(p).Resources.Requests[corev1.ResourceMemory] = resource.MustParse("1Gi")
		}, "above its limit"},
		{"not restartable", func(p *corev1.PodSpec) { podnsOf(p).RestartPolicy = nil }, "restartPolicy: Always"},
		{"no startup probe", func(p *corev1.PodSpec) { podnsOf(p).StartupProbe = nil }, "startupProbe"},
		{"probe through a shell", func(p *corev1.PodSpec) {
			podnsOf(p).StartupProbe.Exec.Command = []string{"sh", "-c", "/podns probe"}
		}, "no shell"},
		{"probe on a wrong path", func(p *corev1.PodSpec) { podnsOf(p).LivenessProbe.HTTPGet.Path = "/health" }, "GET /health"},
		{"probe on a wrong port", func(p *corev1.PodSpec) { podnsOf(p).LivenessProbe.HTTPGet.Port = intstr.FromInt32(8080) }, "podns serves HTTP on 9153"},
		{"http only on loopback", func(p *corev1.PodSpec) { setEnv(podnsOf(p), "PODNS_HTTP_ADDR", "127.0.0.1:9153") }, "pod IP"},
		{"tcp probe", func(p *corev1.PodSpec) {
			podnsOf(p).LivenessProbe.ProbeHandler = corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(53)}}
		}, "only exec"},
		{"podns not first", func(p *corev1.PodSpec) {
			p.InitContainers = append([]corev1.Container{{Name: "migrate", Image: "m"}}, p.InitContainers...)
		}, "want the first"},
		{"args", func(p *corev1.PodSpec) { podnsOf(p).Args = []string{"--listen=:53"} }, "no arguments"},
		{"no podns", func(p *corev1.PodSpec) { podnsOf(p).Image = "coredns/coredns:1.12" }, "exactly one podns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base.DeepCopy()
			tt.break_(p)
			v := checkPod(p, img)
			t.Logf("violations: %q", v)
			if !containsSubstring(v, tt.want) {
				t.Errorf("got violations %q, want one containing %q", v, tt.want)
			}
		})
	}
	if v := checkPod(base, img); len(v) != 0 {
		t.Errorf("unbroken example: got violations %q, want none", v)
	}
}

func nativeExample(t *testing.T) *corev1.PodSpec {
	t.Helper()
	for _, o := range loadTestExamples(t) {
		if o.pod == nil || isWebhook(o) {
			continue
		}
		if _, _, native, err := podnsContainer(o.pod); err == nil && native {
			return o.pod
		}
	}
	t.Fatal("no native sidecar example")
	return nil
}

// isWebhook reports whether o is one of the webhook's manifests (examples/webhook), whose pod runs
// `podns webhook`, not a podns sidecar.
func isWebhook(o object) bool { return strings.HasPrefix(o.file, "webhook/") }

func containsSubstring(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
