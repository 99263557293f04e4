package webhook

import (
	"testing"

	"github.com/rs/zerolog"

	"github.com/podns/podns/internal/inject"
)

func newTestInjector() (*inject.Injector, error) { return inject.New(testOpts) }

// FuzzDecodeReview: any body either decodes to a request that the webhook answers (allowed, with the
// request's uid) or is an ErrReview; never a panic. Seeds are in testdata/fuzz/FuzzDecodeReview.
func FuzzDecodeReview(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":{"spec":{"containers":[{"name":"a","image":"b"}]}}}}`))
	f.Add([]byte(`{}`))
	s := &Server{log: zerolog.Nop()}
	in, err := newTestInjector()
	if err != nil {
		f.Fatal(err)
	}
	s.injector.Store(in)
	f.Fuzz(func(t *testing.T, body []byte) {
		rev, err := DecodeReview(body)
		if err != nil {
			return
		}
		resp := s.admit(rev.Request)
		if !resp.Allowed || resp.UID != rev.Request.UID {
			t.Errorf("got allowed %v uid %q, want allowed with uid %q", resp.Allowed, resp.UID, rev.Request.UID)
		}
	})
}
