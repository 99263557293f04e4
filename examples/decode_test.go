// Package examples_test checks the Kubernetes manifests in examples/, the ones users copy: each decodes
// strictly into k8s.io/api types (an unknown or misspelt field is an error, as `kubectl apply
// --validate=strict` would make it), and each pod that runs podns keeps the invariants podns needs to
// work and to be safe (see check_test.go).
package examples_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// errUnknownKind marks a document whose apiVersion and kind this test cannot check.
var errUnknownKind = errors.New("unknown apiVersion/kind")

// object is one decoded document of an example file.
type object struct {
	file string // path of the YAML file relative to examples/
	doc  int    // index of the document in the file, from 0
	kind string // "apps/v1 Deployment"
	name string
	pod  *corev1.PodSpec // the pod template or pod spec; nil for kinds without one
	obj  any             // the decoded object (a pointer to its k8s.io/api type)
}

func (o object) String() string { return fmt.Sprintf("%s#%d (%s %s)", o.file, o.doc, o.kind, o.name) }

// newObject returns an empty typed object for apiVersion and kind, and how to reach its pod spec.
func newObject(apiVersion, kind string) (any, func() *corev1.PodSpec, error) {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		o := new(appsv1.Deployment)
		return o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }, nil
	case "apps/v1 StatefulSet":
		o := new(appsv1.StatefulSet)
		return o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }, nil
	case "apps/v1 DaemonSet":
		o := new(appsv1.DaemonSet)
		return o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }, nil
	case "batch/v1 Job":
		o := new(batchv1.Job)
		return o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }, nil
	case "v1 Pod":
		o := new(corev1.Pod)
		return o, func() *corev1.PodSpec { return &o.Spec }, nil
	}
	var o any
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		o = new(corev1.Namespace)
	case "v1 ServiceAccount":
		o = new(corev1.ServiceAccount)
	case "v1 Service":
		o = new(corev1.Service)
	case "rbac.authorization.k8s.io/v1 Role":
		o = new(rbacv1.Role)
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		o = new(rbacv1.RoleBinding)
	case "policy/v1 PodDisruptionBudget":
		o = new(policyv1.PodDisruptionBudget)
	case "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration":
		o = new(admissionregistrationv1.MutatingWebhookConfiguration)
	case "cert-manager.io/v1 Issuer":
		o = new(certManagerIssuer)
	case "cert-manager.io/v1 Certificate":
		o = new(certManagerCertificate)
	}
	if o != nil {
		return o, func() *corev1.PodSpec { return nil }, nil
	}
	return nil, nil, fmt.Errorf("%w: %s %s", errUnknownKind, apiVersion, kind)
}

// docSeparator is YAML's document separator: "---" alone on its line.
var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments returns the YAML documents of a file that hold more than comments and blank lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range docSeparator.Split(string(data), -1) {
		if isBlank([]byte(d)) {
			continue
		}
		docs = append(docs, []byte(d))
	}
	return docs
}

func isBlank(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' {
			return false
		}
	}
	return true
}

// decodeDocument decodes one document strictly: unknown fields and duplicate keys are errors.
func decodeDocument(file string, i int, doc []byte) (object, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return object{}, fmt.Errorf("%s#%d: reading apiVersion and kind: %w", file, i, err)
	}
	obj, podOf, err := newObject(meta.APIVersion, meta.Kind)
	if err != nil {
		return object{}, fmt.Errorf("%s#%d: %w", file, i, err)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return object{}, fmt.Errorf("%s#%d: decoding %s %s strictly: %w", file, i, meta.APIVersion, meta.Kind, err)
	}
	return object{file: file, doc: i, kind: meta.APIVersion + " " + meta.Kind, name: meta.Metadata.Name, pod: podOf(), obj: obj}, nil
}

// exampleDirs are the directories of examples, relative to examples/.
var exampleDirs = []string{".", "webhook"}

// loadExamples decodes every document of every *.yaml and *.yml file in dir and its exampleDirs.
func loadExamples(dir string) ([]object, error) {
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml", "webhook/*.yaml", "webhook/*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", pattern, err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	var objs []object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading example: %w", err)
		}
		for i, doc := range splitDocuments(data) {
			rel, err := filepath.Rel(dir, f)
			if err != nil {
				return nil, err
			}
			o, err := decodeDocument(filepath.ToSlash(rel), i, doc)
			if err != nil {
				return nil, err
			}
			objs = append(objs, o)
		}
	}
	return objs, nil
}

// cert-manager's Issuer and Certificate (cert-manager.io/v1), with the fields the examples use; a
// misspelt or unknown one fails the strict decoding as cert-manager's CRD schema would refuse it.
type certManagerIssuer struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
	} `json:"spec"`
}

type certManagerCertificate struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		SecretName  string   `json:"secretName"`
		DNSNames    []string `json:"dnsNames"`
		Duration    string   `json:"duration,omitempty"`
		RenewBefore string   `json:"renewBefore,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		IssuerRef struct {
			Kind  string `json:"kind,omitempty"`
			Name  string `json:"name"`
			Group string `json:"group,omitempty"`
		} `json:"issuerRef"`
	} `json:"spec"`
}
