package kubetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Object is what the client creates and deletes: a typed object of k8s.io/api (a pointer) or an
// *unstructured.Unstructured. Typed objects of the kinds Client names need no TypeMeta; any other
// object must carry its apiVersion and kind.
type Object interface {
	GetObjectKind() schema.ObjectKind
	GetNamespace() string
	GetName() string
}

// Client speaks the API server's REST protocol for the few calls tests make: create (always with
// fieldValidation=Strict, so a misspelt field is an error as with `kubectl apply --validate=strict`),
// get, delete. It finds each kind's resource path through the server's discovery documents.
type Client struct {
	base  string // the API server's URL
	token string
	http  *http.Client

	mu        sync.Mutex                           // guards the field below
	resources map[schema.GroupVersionKind]resource // from discovery, filled on first use per group version
}

// resource is where a kind lives in the REST API.
type resource struct {
	plural     string
	namespaced bool
}

// APIError is a call the API server refused, with the Status it returned.
type APIError struct {
	Method, Path string
	Status       metav1.Status
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status.Code, e.Status.Reason, e.Status.Message)
}

// Reason returns the Status reason of an API error ("NotFound", "Invalid", "Forbidden"...), or "" for
// any other error.
func Reason(err error) metav1.StatusReason {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status.Reason
	}
	return ""
}

// Create creates obj and decodes the server's copy back into it (so a Service gets its ClusterIP).
func (c *Client) Create(ctx context.Context, obj Object) error {
	return c.create(ctx, obj, false)
}

// DryRunCreate asks the server to create obj with dryRun=All: every validation and admission step
// runs, nothing is stored. obj receives the object as it would have been stored.
func (c *Client) DryRunCreate(ctx context.Context, obj Object) error {
	return c.create(ctx, obj, true)
}

func (c *Client) create(ctx context.Context, obj Object, dryRun bool) error {
	gvk, err := kindOf(obj)
	if err != nil {
		return err
	}
	collection, err := c.path(ctx, gvk, obj.GetNamespace(), "")
	if err != nil {
		return err
	}
	q := url.Values{"fieldValidation": {"Strict"}}
	if dryRun {
		q.Set("dryRun", "All")
	}
	// The server needs apiVersion and kind in the body; its reply sets them anyway.
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	body, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encoding %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	return c.do(ctx, http.MethodPost, collection+"?"+q.Encode(), body, obj)
}

// Get reads obj (by its kind, namespace and name) from the server into obj.
func (c *Client) Get(ctx context.Context, obj Object) error {
	gvk, err := kindOf(obj)
	if err != nil {
		return err
	}
	p, err := c.path(ctx, gvk, obj.GetNamespace(), obj.GetName())
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodGet, p, nil, obj)
}

// Delete deletes obj. It returns once the server accepted the deletion: an object without
// finalizers is gone then; a Namespace stays Terminating, as no controller manager runs.
func (c *Client) Delete(ctx context.Context, obj Object) error {
	gvk, err := kindOf(obj)
	if err != nil {
		return err
	}
	p, err := c.path(ctx, gvk, obj.GetNamespace(), obj.GetName())
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, p, nil, nil)
}

// CreateNamespace creates a Namespace with labels and its default ServiceAccount, which the
// ServiceAccount admission plugin requires of every Pod and which only the controller manager would
// create otherwise.
func (c *Client) CreateNamespace(ctx context.Context, name string, labels map[string]string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := c.Create(ctx, ns); err != nil {
		return err
	}
	return c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "default"}})
}

// kindOf returns the group, version and kind of obj: its TypeMeta when set, else that of the typed
// kinds tests create most.
func kindOf(obj Object) (schema.GroupVersionKind, error) {
	if gvk := obj.GetObjectKind().GroupVersionKind(); gvk.Kind != "" {
		return gvk, nil
	}
	v1 := func(kind string) schema.GroupVersionKind { return schema.GroupVersionKind{Version: "v1", Kind: kind} }
	switch obj.(type) {
	case *corev1.Namespace:
		return v1("Namespace"), nil
	case *corev1.ServiceAccount:
		return v1("ServiceAccount"), nil
	case *corev1.Service:
		return v1("Service"), nil
	case *corev1.Pod:
		return v1("Pod"), nil
	case *corev1.ConfigMap:
		return v1("ConfigMap"), nil
	case *discoveryv1.EndpointSlice:
		return discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"), nil
	}
	return schema.GroupVersionKind{}, fmt.Errorf("%T %s: no apiVersion and kind", obj, obj.GetName())
}

// path returns the REST path of a kind's collection in namespace, or of the object name in it.
func (c *Client) path(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string) (string, error) {
	res, err := c.resource(ctx, gvk)
	if err != nil {
		return "", err
	}
	p := "/apis/" + gvk.Group + "/" + gvk.Version
	if gvk.Group == "" {
		p = "/api/" + gvk.Version
	}
	if res.namespaced {
		if namespace == "" {
			return "", fmt.Errorf("%s %s: no namespace", gvk.Kind, name)
		}
		p += "/namespaces/" + url.PathEscape(namespace)
	}
	p += "/" + res.plural
	if name != "" {
		p = path.Join(p, url.PathEscape(name))
	}
	return p, nil
}

// resource looks a kind up in its group version's discovery document.
func (c *Client) resource(ctx context.Context, gvk schema.GroupVersionKind) (resource, error) {
	c.mu.Lock()
	res, ok := c.resources[gvk]
	c.mu.Unlock()
	if ok {
		return res, nil
	}
	gv := "/apis/" + gvk.Group + "/" + gvk.Version
	if gvk.Group == "" {
		gv = "/api/" + gvk.Version
	}
	var list metav1.APIResourceList
	if err := c.do(ctx, http.MethodGet, gv, nil, &list); err != nil {
		return resource{}, fmt.Errorf("discovering %s: %w", gvk.GroupVersion(), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.resources == nil {
		c.resources = make(map[schema.GroupVersionKind]resource)
	}
	for _, r := range list.APIResources {
		if r.Kind == "" || path.Dir(r.Name) != "." { // subresources: "pods/status"
			continue
		}
		c.resources[gvk.GroupVersion().WithKind(r.Kind)] = resource{plural: r.Name, namespaced: r.Namespaced}
	}
	res, ok = c.resources[gvk]
	if !ok {
		return resource{}, fmt.Errorf("kind %s is not served by %s", gvk.Kind, gvk.GroupVersion())
	}
	return res, nil
}

// do makes one call; a non-2xx reply becomes an *APIError, a 2xx body is decoded into out when
// out is not nil.
func (c *Client) do(ctx context.Context, method, p string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+p, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, p, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the reply: %w", method, p, err)
	}
	if resp.StatusCode/100 != 2 {
		apiErr := &APIError{Method: method, Path: p}
		if json.Unmarshal(data, &apiErr.Status) != nil || apiErr.Status.Code == 0 {
			apiErr.Status = metav1.Status{Code: int32(resp.StatusCode), Message: string(bytes.TrimSpace(data))}
		}
		return apiErr
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decoding the reply: %w", method, p, err)
	}
	return nil
}
