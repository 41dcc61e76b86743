package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestQEMUAwaitHealthy(t *testing.T) {
	qemuProbeInterval = 10 * time.Millisecond
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != qemuHealthPath {
			http.NotFound(w, r)
			return
		}
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	running := make(chan struct{})

	if err := qemuAwaitHealthy(t.Context(), srv.URL+qemuHealthPath, 10*time.Second, running); err != nil {
		t.Fatalf("ready service: %v", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("probe called %d times, want 3 (two 503s, then 200)", n)
	}
	err := qemuAwaitHealthy(t.Context(), srv.URL+"/wrong", 100*time.Millisecond, running)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("never ready: err = %v, want deadline exceeded", err)
	}
	exited := make(chan struct{})
	close(exited)
	if err := qemuAwaitHealthy(t.Context(), srv.URL+"/wrong", 10*time.Second, exited); !errors.Is(err, errQEMUExited) {
		t.Errorf("VM gone: err = %v, want errQEMUExited", err)
	}
}

func TestQEMUFlags(t *testing.T) {
	if err := runQEMU(nil); err == nil {
		t.Error("no --image accepted")
	}
	if err := runQEMU([]string{"--image", "/nonexistent/inert.img"}); err == nil {
		t.Error("missing image file accepted")
	}
	if err := runQEMU([]string{"--bogus"}); err == nil {
		t.Error("unknown flag accepted")
	}
}
