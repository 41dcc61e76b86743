package harness

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestAwaitHTTP(t *testing.T) {
	healthInterval = 10 * time.Millisecond
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != HealthPath {
			http.NotFound(w, r)
			return
		}
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	running := make(chan struct{})

	if err := AwaitHTTP(t.Context(), srv.URL+HealthPath, 10*time.Second, running); err != nil {
		t.Fatalf("ready service: %v", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("probe called %d times, want 3 (two 503s, then 200)", n)
	}
	err := AwaitHTTP(t.Context(), srv.URL+"/wrong", 100*time.Millisecond, running)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("never ready: err = %v, want deadline exceeded", err)
	}
	exited := make(chan struct{})
	close(exited)
	if err := AwaitHTTP(t.Context(), srv.URL+"/wrong", 10*time.Second, exited); !errors.Is(err, ErrVMExited) {
		t.Errorf("VM gone: err = %v, want ErrVMExited", err)
	}
}
