package main

import (
	"testing"
)

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
