package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/podns/podns/internal/inject"
)

// The AdmissionReview of admission.k8s.io/v1, with only the fields the webhook reads or writes: own
// types, so that the podns binary, which every pod's sidecar runs, does not carry k8s.io/api's.

// reviewAPIVersion is the only AdmissionReview version the webhook speaks (examples/webhook's
// admissionReviewVersions).
const reviewAPIVersion = "admission.k8s.io/v1"

// Review is an AdmissionReview: a Request from the API server, answered with a Response.
type Review struct {
	Kind       string    `json:"kind,omitempty"`
	APIVersion string    `json:"apiVersion,omitempty"`
	Request    *Request  `json:"request,omitempty"`
	Response   *Response `json:"response,omitempty"`
}

// Request is what the API server asks about one object.
type Request struct {
	UID         string   `json:"uid"`
	Resource    Resource `json:"resource"`
	SubResource string   `json:"subResource,omitempty"`
	Namespace   string   `json:"namespace,omitempty"`
	Operation   string   `json:"operation"` // CREATE, UPDATE, DELETE, CONNECT
	// Object is the object as created, in JSON; the API server always sends JSON to webhooks of
	// admission.k8s.io/v1.
	Object json.RawMessage `json:"object,omitempty"`
}

// Resource is the resource of a request: "pods" in group "" version "v1".
type Resource struct {
	Group    string `json:"group"`
	Version  string `json:"version"`
	Resource string `json:"resource"`
}

// Response is the answer to a Request.
type Response struct {
	UID       string   `json:"uid"`
	Allowed   bool     `json:"allowed"`
	Patch     []byte   `json:"patch,omitempty"` // JSON, base64 in the review
	PatchType *string  `json:"patchType,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
}

// patchTypeJSONPatch is the only patch type of admission.k8s.io/v1 (RFC 6902).
const patchTypeJSONPatch = "JSONPatch"

// podFields are what admit reads of a pod.
type podFields struct {
	Metadata struct {
		Name         string            `json:"name,omitempty"`
		GenerateName string            `json:"generateName,omitempty"`
		Annotations  map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
	Spec inject.PodSpec `json:"spec"`
}

// ErrReview marks a request body that is not an AdmissionReview v1 request.
var ErrReview = errors.New("malformed AdmissionReview")

// DecodeReview reads an AdmissionReview v1 request: JSON, apiVersion admission.k8s.io/v1, kind
// AdmissionReview, a request with a uid. Anything else is an ErrReview.
func DecodeReview(body []byte) (*Review, error) {
	var rev Review
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&rev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReview, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrReview)
	}
	if rev.APIVersion != reviewAPIVersion || rev.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("%w: apiVersion %q kind %q, want %s AdmissionReview", ErrReview, rev.APIVersion, rev.Kind, reviewAPIVersion)
	}
	if rev.Request == nil {
		return nil, fmt.Errorf("%w: no request", ErrReview)
	}
	if rev.Request.UID == "" {
		return nil, fmt.Errorf("%w: request without a uid", ErrReview)
	}
	return &rev, nil
}

// serveMutate answers one AdmissionReview. A malformed one gets HTTP 400 (the API server then applies
// the failurePolicy, Ignore); every well-formed one is allowed.
func (s *Server) serveMutate(w http.ResponseWriter, r *http.Request) {
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		s.badRequest(w, r, http.StatusUnsupportedMediaType, fmt.Errorf("content type %q, want application/json", r.Header.Get("Content-Type")))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.badRequest(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("reading the body: %w", err))
		return
	}
	rev, err := DecodeReview(body)
	if err != nil {
		s.badRequest(w, r, http.StatusBadRequest, err)
		return
	}
	resp := s.admit(rev.Request)
	out, err := json.Marshal(Review{Kind: rev.Kind, APIVersion: rev.APIVersion, Response: resp})
	if err != nil { // a response is plain data: this would be a bug
		s.badRequest(w, r, http.StatusInternalServerError, fmt.Errorf("encoding the response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

func (s *Server) badRequest(w http.ResponseWriter, r *http.Request, code int, err error) {
	s.metrics.inc(&s.metrics.badRequests)
	s.log.Warn().Err(err).Int("status", code).Str("remote", r.RemoteAddr).Msg("rejected an admission request")
	http.Error(w, err.Error(), code)
}

// Results of an admission, the label of podns_webhook_admissions_total.
const (
	resultInjected = "injected"
	resultAlready  = "already"
	resultOptedOut = "opted_out"
	resultRefused  = "refused"
	resultNotReady = "not_ready"
	resultIgnored  = "ignored" // not a Pod CREATE: the configuration sent what podns does not mutate
	resultError    = "error"   // the pod could not be read or patched
)

// admit decides one request: always allowed, with a patch when podns is added.
func (s *Server) admit(req *Request) *Response {
	resp := &Response{UID: req.UID, Allowed: true}
	log := s.log.With().Str("uid", req.UID).Str("namespace", req.Namespace).Logger()
	result, reason := "", ""
	defer func() {
		s.metrics.admitted(result, reason)
		ev := log.Debug()
		if result == resultInjected || len(resp.Warnings) > 0 {
			ev = log.Info()
		}
		ev.Str("result", result).Strs("warnings", resp.Warnings).Msg("admission")
	}()
	warn := func(format string, args ...any) {
		resp.Warnings = append(resp.Warnings, "podns: "+fmt.Sprintf(format, args...))
	}

	if req.Resource.Resource != "pods" || req.SubResource != "" || req.Operation != "CREATE" {
		result = resultIgnored
		return resp
	}
	var pod podFields
	if err := decodePod(req.Object, &pod); err != nil {
		result, reason = resultError, "undecodable"
		warn("not injected: the pod could not be read: %v", err)
		return resp
	}
	log = log.With().Str("pod", podName(&pod)).Logger()
	if inject.OptedOut(pod.Metadata.Annotations) {
		result = resultOptedOut
		return resp
	}
	in := s.injector.Load()
	if in == nil {
		result = resultNotReady
		warn("not injected: the webhook does not know the cluster DNS address yet")
		return resp
	}
	ops, err := in.Patch(&pod.Spec)
	var ref *inject.Refusal
	switch {
	case errors.As(err, &ref):
		result, reason = resultRefused, ref.Reason
		warn("not injected: %s", ref.Detail)
		return resp
	case err != nil:
		result, reason = resultError, "patch"
		warn("not injected: %v", err)
		return resp
	case len(ops) == 0:
		result = resultAlready
		return resp
	}
	patch, err := json.Marshal(inject.WithPrefix(ops, "/spec"))
	if err != nil {
		result, reason = resultError, "patch"
		warn("not injected: encoding the patch: %v", err)
		return resp
	}
	pt := patchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &pt
	result = resultInjected
	return resp
}

// podName: at CREATE a pod of a controller has only its generateName.
func podName(p *podFields) string {
	if p.Metadata.Name != "" {
		return p.Metadata.Name
	}
	return p.Metadata.GenerateName + "*"
}

// decodePod decodes a request's object; a missing or null one is no pod.
func decodePod(raw json.RawMessage, p *podFields) error {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return errors.New("the request has no object")
	}
	return json.Unmarshal(raw, p)
}
