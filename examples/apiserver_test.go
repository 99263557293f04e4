package examples_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/podns/podns/internal/kubetest"
)

// TestExamplesAPIServer hands every example to a real kube-apiserver (1.37.2): each document is
// created with dryRun=All and fieldValidation=Strict, so the server's own validation and admission
// judge it, and each pod template is created as a Pod in a namespace where PodSecurity "restricted"
// is enforced. TestExamples's strict decoding catches unknown fields; this catches what only the
// server checks (value ranges, immutable combinations, defaulting, admission).
func TestExamplesAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	docs := loadRawExamples(t)
	objs := loadTestExamples(t)
	cluster := kubetest.Start(t, kubetest.Options{})
	kc, ctx := cluster.Client, t.Context()
	const ns, restricted = "examples", "restricted"
	if err := kc.CreateNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	if err := kc.CreateNamespace(ctx, restricted, map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	}); err != nil {
		t.Fatal(err)
	}

	for _, d := range docs {
		t.Run("dry run/"+d.name, func(t *testing.T) {
			if d.obj.GetNamespace() == "" {
				d.obj.SetNamespace(ns)
			}
			if err := kc.DryRunCreate(ctx, d.obj); err != nil {
				t.Errorf("got %v, want the object accepted", err)
			}
		})
	}
	pods := 0
	for _, o := range objs {
		if o.pod == nil {
			continue
		}
		pods++
		t.Run("restricted pod/"+o.String(), func(t *testing.T) {
			// A template that names its own ServiceAccount (the webhook's) needs it to exist: the
			// ServiceAccount admission plugin refuses a pod whose account is missing.
			if sa := o.pod.ServiceAccountName; sa != "" && sa != "default" {
				acct := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: restricted, Name: sa}}
				if err := kc.Create(ctx, acct); err != nil && kubetest.Reason(err) != metav1.StatusReasonAlreadyExists {
					t.Fatalf("creating ServiceAccount %s: %v", sa, err)
				}
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: restricted, Name: fmt.Sprintf("example-%d", pods)},
				Spec:       *o.pod.DeepCopy(),
			}
			if err := kc.Create(ctx, pod); err != nil {
				t.Fatalf("got %v, want the pod admitted under PodSecurity restricted", err)
			}
			if pod.UID == "" {
				t.Errorf("got no uid, want the stored pod")
			}
		})
	}
	// The control: the same namespace refuses a pod template that allows privilege escalation (which
	// baseline permits and restricted does not), so an admitted pod above was judged by the restricted
	// policy, not let through by a namespace without it.
	t.Run("restricted pod/control", func(t *testing.T) {
		for _, o := range objs {
			if o.pod == nil {
				continue
			}
			spec := o.pod.DeepCopy()
			escalate := true
			if spec.Containers[0].SecurityContext == nil {
				spec.Containers[0].SecurityContext = &corev1.SecurityContext{}
			}
			spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = &escalate
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: restricted, Name: "escalating"}, Spec: *spec}
			err := kc.DryRunCreate(ctx, pod)
			if kubetest.Reason(err) != metav1.StatusReasonForbidden || !strings.Contains(err.Error(), `PodSecurity "restricted`) {
				t.Errorf("%s allowing privilege escalation: got %v, want Forbidden by PodSecurity restricted", o, err)
			}
			return
		}
	})
	if len(docs) < 2 || pods < 2 {
		t.Errorf("got %d documents and %d pod templates, want at least 2 of each", len(docs), pods)
	}
}

// rawExample is one YAML document of an example file, as the server receives it.
type rawExample struct {
	name string
	obj  *unstructured.Unstructured
}

// loadRawExamples reads every document of the *.yaml files here, unconverted.
func loadRawExamples(t *testing.T) []rawExample {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out []rawExample
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocuments(data) {
			js, err := yaml.YAMLToJSON(doc)
			if err != nil {
				t.Fatalf("%s#%d: %v", f, i, err)
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(js); err != nil {
				t.Fatalf("%s#%d: %v", f, i, err)
			}
			out = append(out, rawExample{name: fmt.Sprintf("%s#%d (%s %s)", f, i, u.GetKind(), u.GetName()), obj: u})
		}
	}
	return out
}
