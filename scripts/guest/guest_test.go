//go:build linux

package guest

import (
	"testing"

	"inert/boot"
)

func TestCmdlineValue(t *testing.T) {
	line := "console=ttyS0 harness.nonce=abc  harness.hold=1 harness.nonce2=x\n"
	cases := map[string]string{"harness.nonce": "abc", "harness.hold": "1", "console": "ttyS0"}
	for key, want := range cases {
		if got, ok := boot.ParseCmdline(line).Value(key); !ok || got != want {
			t.Errorf("%s = %q, %v; want %q", key, got, ok, want)
		}
	}
	if got, ok := boot.ParseCmdline(line).Value("harness"); ok {
		t.Errorf("bare prefix matched %q", got)
	}
}
