package inject

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/podns/podns/examples"
)

var testOpts = Options{Image: "registry.test/podns:v9", Upstreams: []string{"10.96.0.10"}}

func newTestInjector(t *testing.T, opts Options) *Injector {
	t.Helper()
	in, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return in
}

// container is in.Container() decoded as the API server would.
func container(t *testing.T, in *Injector) corev1.Container {
	t.Helper()
	var c corev1.Container
	if err := json.Unmarshal(in.Container(), &c); err != nil {
		t.Fatalf("decoding the container %s: %v", in.Container(), err)
	}
	return c
}

// patch is in.Patch of a typed pod spec, read from its JSON as the webhook reads a pod.
func patch(t *testing.T, in *Injector, spec *corev1.PodSpec) ([]Op, error) {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var own PodSpec
	if err := json.Unmarshal(b, &own); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return in.Patch(&own)
}

// exampleSpec is the native sidecar example's pod spec, decoded independently of the injector.
func exampleSpec(t *testing.T) corev1.PodSpec {
	t.Helper()
	var d appsv1.Deployment
	if err := sigsyaml.UnmarshalStrict(examples.NativeSidecar, &d); err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec
}

// TestContainerIsTheExample: the injected container is the example's, with only the image, the
// upstream and the pod-level settings the example's container relies on changed.
func TestContainerIsTheExample(t *testing.T) {
	ex := exampleSpec(t)
	want := *ex.InitContainers[0].DeepCopy()
	want.Image = testOpts.Image
	for i := range want.Env {
		if want.Env[i].Name == "PODNS_UPSTREAMS" {
			want.Env[i].Value = "10.96.0.10"
		}
	}
	want.SecurityContext.SeccompProfile = ex.SecurityContext.SeccompProfile
	got := container(t, newTestInjector(t, testOpts))
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		t.Errorf("container:\ngot  %s\nwant %s", gj, wj)
	}
	if got.Name != ContainerName || got.RestartPolicy == nil || *got.RestartPolicy != corev1.ContainerRestartPolicyAlways || got.StartupProbe == nil {
		t.Errorf("got name %q restartPolicy %v startupProbe %v, want a native sidecar named podns", got.Name, got.RestartPolicy, got.StartupProbe)
	}
}

func TestOptions(t *testing.T) {
	res := &Resources{
		Requests: map[string]string{"cpu": "50m", "memory": "32Mi"},
		Limits:   map[string]string{"memory": "64Mi"},
	}
	wantRes := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
	in := newTestInjector(t, Options{Image: "p:1", Upstreams: []string{"10.0.0.10", "10.0.0.11:1053"}, ClusterDomain: "corp.local", Resources: res})
	c := container(t, in)
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if got, want := env["PODNS_UPSTREAMS"], "10.0.0.10,10.0.0.11:1053"; got != want {
		t.Errorf("PODNS_UPSTREAMS: got %v, want %v", got, want)
	}
	if got, want := env["PODNS_CLUSTER_DOMAIN"], "corp.local"; got != want {
		t.Errorf("PODNS_CLUSTER_DOMAIN: got %v, want %v", got, want)
	}
	if !reflect.DeepEqual(c.Resources, wantRes) {
		t.Errorf("resources: got %v, want %v", c.Resources, wantRes)
	}
	if got := in.Resources(); !reflect.DeepEqual(got, *res) {
		t.Errorf("Resources(): got %v, want %v", got, *res)
	}

	bad := []struct {
		name string
		opts Options
		want string
	}{
		{"no image", Options{Upstreams: []string{"10.0.0.10"}}, "no image"},
		{"no upstream", Options{Image: "p"}, "no upstream"},
		{"loopback upstream", Options{Image: "p", Upstreams: []string{"127.0.0.1"}}, "loopback"},
		{"upstream by name", Options{Image: "p", Upstreams: []string{"kube-dns.kube-system"}}, "not an IP"},
		{"request above limit", Options{Image: "p", Upstreams: []string{"10.0.0.10"}, Resources: &Resources{
			Requests: map[string]string{"memory": "1Gi"},
			Limits:   map[string]string{"memory": "40Mi"},
		}}, "above its limit"},
		{"cpu request above limit", Options{Image: "p", Upstreams: []string{"10.0.0.10"}, Resources: &Resources{
			Requests: map[string]string{"cpu": "1.5"},
			Limits:   map[string]string{"cpu": "1200m"},
		}}, "above its limit"},
		{"not a quantity", Options{Image: "p", Upstreams: []string{"10.0.0.10"}, Resources: &Resources{
			Limits: map[string]string{"memory": "lots"},
		}}, `limits.memory "lots"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an ErrOptions containing %q", err, tt.want)
			}
		})
	}
}

// kind is a workload kind and where its pod spec is, in Go and in JSON.
type kind struct {
	name string
	wrap func(corev1.PodSpec) any
	spec func(obj []byte) (corev1.PodSpec, error)
	path string // JSON pointer of the pod spec
}

func decodeInto[T any](get func(*T) corev1.PodSpec) func([]byte) (corev1.PodSpec, error) {
	return func(b []byte) (corev1.PodSpec, error) {
		var o T
		err := json.Unmarshal(b, &o)
		return get(&o), err
	}
}

var kinds = []kind{
	{"Pod", func(s corev1.PodSpec) any { return corev1.Pod{Spec: s} },
		decodeInto(func(o *corev1.Pod) corev1.PodSpec { return o.Spec }), "/spec"},
	{"Deployment", func(s corev1.PodSpec) any {
		return appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: s}}}
	},
		decodeInto(func(o *appsv1.Deployment) corev1.PodSpec { return o.Spec.Template.Spec }), "/spec/template/spec"},
	{"StatefulSet", func(s corev1.PodSpec) any {
		return appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Template: corev1.PodTemplateSpec{Spec: s}}}
	},
		decodeInto(func(o *appsv1.StatefulSet) corev1.PodSpec { return o.Spec.Template.Spec }), "/spec/template/spec"},
	{"DaemonSet", func(s corev1.PodSpec) any {
		return appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: s}}}
	},
		decodeInto(func(o *appsv1.DaemonSet) corev1.PodSpec { return o.Spec.Template.Spec }), "/spec/template/spec"},
	{"ReplicaSet", func(s corev1.PodSpec) any {
		return appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: s}}}
	},
		decodeInto(func(o *appsv1.ReplicaSet) corev1.PodSpec { return o.Spec.Template.Spec }), "/spec/template/spec"},
	{"Job", func(s corev1.PodSpec) any {
		return batchv1.Job{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: s}}}
	},
		decodeInto(func(o *batchv1.Job) corev1.PodSpec { return o.Spec.Template.Spec }), "/spec/template/spec"},
	{"CronJob", func(s corev1.PodSpec) any {
		return batchv1.CronJob{Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: s}}}}}
	}, decodeInto(func(o *batchv1.CronJob) corev1.PodSpec { return o.Spec.JobTemplate.Spec.Template.Spec }), "/spec/jobTemplate/spec/template/spec"},
}

var app = corev1.Container{Name: "app", Image: "nginx:1.27", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}

// TestPatchEveryKind applies the patch to each kind of pod spec, in several shapes, and checks the
// pod that results; a second patch of the result must be empty.
func TestPatchEveryKind(t *testing.T) {
	in := newTestInjector(t, testOpts)
	ex := exampleSpec(t)
	seven := "7"
	shapes := []struct {
		name       string
		spec       corev1.PodSpec
		wantInits  []string // names of the init containers after the patch
		wantOpts   []string // dnsConfig option names after the patch
		wantSysctl []corev1.Sysctl
	}{
		{"bare", corev1.PodSpec{Containers: []corev1.Container{app}},
			[]string{"podns"}, []string{"edns0", "timeout", "attempts"}, []corev1.Sysctl{ex.SecurityContext.Sysctls[0]}},
		{"init containers and ClusterFirst options", corev1.PodSpec{
			DNSPolicy:      corev1.DNSClusterFirst,
			DNSConfig:      &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &seven}, {Name: "timeout", Value: &seven}}},
			InitContainers: []corev1.Container{{Name: "migrate", Image: "m"}},
			Containers:     []corev1.Container{app},
		}, []string{"podns", "migrate"}, []string{"edns0", "timeout", "attempts", "ndots"}, []corev1.Sysctl{ex.SecurityContext.Sysctls[0]}},
		{"security context without sysctls", corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: new(bool)},
			Containers:      []corev1.Container{app},
		}, []string{"podns"}, []string{"edns0", "timeout", "attempts"}, []corev1.Sysctl{ex.SecurityContext.Sysctls[0]}},
		{"other sysctls", corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "net.ipv4.tcp_syncookies", Value: "1"}}},
			Containers:      []corev1.Container{app},
		}, []string{"podns"}, []string{"edns0", "timeout", "attempts"}, []corev1.Sysctl{{Name: "net.ipv4.tcp_syncookies", Value: "1"}, ex.SecurityContext.Sysctls[0]}},
		{"sysctl already lower", corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: UnprivilegedPortSysctl, Value: "0"}}},
			Containers:      []corev1.Container{app},
		}, []string{"podns"}, []string{"edns0", "timeout", "attempts"}, []corev1.Sysctl{{Name: UnprivilegedPortSysctl, Value: "0"}}},
	}
	for _, k := range kinds {
		for _, sh := range shapes {
			t.Run(k.name+"/"+sh.name, func(t *testing.T) {
				obj, err := json.Marshal(k.wrap(sh.spec))
				if err != nil {
					t.Fatal(err)
				}
				ops, err := patch(t, in, &sh.spec)
				if err != nil {
					t.Fatalf("Patch: %v", err)
				}
				patched, err := ApplyJSON(obj, WithPrefix(ops, k.path))
				if err != nil {
					t.Fatalf("ApplyJSON: %v", err)
				}
				got, err := k.spec(patched)
				if err != nil {
					t.Fatalf("decoding the patched %s: %v", k.name, err)
				}
				var inits []string
				for _, c := range got.InitContainers {
					inits = append(inits, c.Name)
				}
				if !slices.Equal(inits, sh.wantInits) {
					t.Errorf("init containers: got %v, want %v", inits, sh.wantInits)
				}
				if !reflect.DeepEqual(got.InitContainers[0], container(t, in)) {
					t.Errorf("init container 0: got %+v, want the injector's container", got.InitContainers[0])
				}
				if !reflect.DeepEqual(got.Containers, sh.spec.Containers) {
					t.Errorf("containers: got %+v, want them unchanged %+v", got.Containers, sh.spec.Containers)
				}
				if got.DNSPolicy != corev1.DNSNone {
					t.Errorf("dnsPolicy: got %v, want None", got.DNSPolicy)
				}
				if got, want := got.DNSConfig.Nameservers, ex.DNSConfig.Nameservers; !slices.Equal(got, want) {
					t.Errorf("nameservers: got %v, want %v", got, want)
				}
				var opts []string
				for _, o := range got.DNSConfig.Options {
					opts = append(opts, o.Name)
				}
				if !slices.Equal(opts, sh.wantOpts) {
					t.Errorf("dnsConfig options: got %v, want %v", opts, sh.wantOpts)
				}
				if !reflect.DeepEqual(got.DNSConfig.Options[:3], ex.DNSConfig.Options) {
					t.Errorf("dnsConfig options: got %v, want the example's %v first", got.DNSConfig.Options, ex.DNSConfig.Options)
				}
				if !slices.Equal(got.SecurityContext.Sysctls, sh.wantSysctl) {
					t.Errorf("sysctls: got %v, want %v", got.SecurityContext.Sysctls, sh.wantSysctl)
				}
				if sh.spec.SecurityContext != nil && sh.spec.SecurityContext.RunAsNonRoot != nil && got.SecurityContext.RunAsNonRoot == nil {
					t.Errorf("pod securityContext: runAsNonRoot lost")
				}
				again, err := patch(t, in, &got)
				if err != nil || len(again) != 0 {
					t.Errorf("second patch: got %v, %v, want no operations", again, err)
				}
			})
		}
	}
}

func TestRefusals(t *testing.T) {
	in := newTestInjector(t, testOpts)
	tests := []struct {
		name   string
		spec   corev1.PodSpec
		reason string
	}{
		{"hostNetwork", corev1.PodSpec{HostNetwork: true, DNSPolicy: corev1.DNSClusterFirstWithHostNet}, "host-network"},
		{"dnsPolicy None with nameservers", corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}}}, "own-nameservers"},
		{"ClusterFirst with extra nameservers", corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.53"}}}, "own-nameservers"},
		{"dnsPolicy Default", corev1.PodSpec{DNSPolicy: corev1.DNSDefault}, "dns-policy-default"},
		{"search domains", corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{Searches: []string{"corp.example"}}}, "searches"},
		{"coredns sidecar", corev1.PodSpec{Containers: []corev1.Container{app, {Name: "dns", Image: "registry.k8s.io/coredns/coredns:v1.12.0"}}}, "dns-sidecar"},
		{"dnsmasq init sidecar", corev1.PodSpec{InitContainers: []corev1.Container{{Name: "dns", Image: "quay.io/x/dnsmasq@sha256:00"}}}, "dns-sidecar"},
		{"a container on port 53", corev1.PodSpec{Containers: []corev1.Container{{Name: "resolver", Image: "corp/resolver", Ports: []corev1.ContainerPort{{ContainerPort: 53, Protocol: corev1.ProtocolUDP}}}}}, "dns-sidecar"},
		{"sysctl above 53", corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: UnprivilegedPortSysctl, Value: "1024"}}}}, "sysctl"},
		{"podns without its DNS", corev1.PodSpec{Containers: []corev1.Container{{Name: "podns", Image: "ghcr.io/podns/podns:v0.1.0"}}}, "partial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := patch(t, in, &tt.spec)
			var r *Refusal
			if !errors.As(err, &r) {
				t.Fatalf("got ops %v, error %v, want a refusal %q", ops, err, tt.reason)
			}
			if r.Reason != tt.reason || len(ops) != 0 {
				t.Errorf("got reason %q (%s) and %d ops, want %q and none", r.Reason, r.Detail, len(ops), tt.reason)
			}
		})
	}
}

// TestAlreadyInjected: the example itself, and a pod injected with other options, get no patch.
func TestAlreadyInjected(t *testing.T) {
	in := newTestInjector(t, testOpts)
	ex := exampleSpec(t)
	if ops, err := patch(t, in, &ex); err != nil || len(ops) != 0 {
		t.Errorf("the native sidecar example: got %v, %v, want no operations", ops, err)
	}
}

func TestOptedOut(t *testing.T) {
	for _, tt := range []struct {
		ann  map[string]string
		want bool
	}{{nil, false}, {map[string]string{Annotation: "true"}, false}, {map[string]string{Annotation: "false"}, true}} {
		if got := OptedOut(tt.ann); got != tt.want {
			t.Errorf("OptedOut(%v): got %v, want %v", tt.ann, got, tt.want)
		}
	}
}

func TestApplyJSONErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		doc  string
		op   Op
	}{
		{"missing parent", `{}`, Op{Op: "add", Path: "/spec/x", Value: 1}},
		{"index out of range", `{"a":[1]}`, Op{Op: "add", Path: "/a/3", Value: 1}},
		{"below a scalar", `{"a":1}`, Op{Op: "add", Path: "/a/b", Value: 1}},
		{"not add", `{}`, Op{Op: "remove", Path: "/a"}},
		{"relative path", `{}`, Op{Op: "add", Path: "a", Value: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ApplyJSON([]byte(tt.doc), []Op{tt.op}); !errors.Is(err, ErrPatch) {
				t.Errorf("got %v, want ErrPatch", err)
			}
		})
	}
}
