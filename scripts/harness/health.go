package harness

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// HealthPath is the service's readiness probe (CONTRACTS.md §4), the same
// for the demo and HyperBEAM.
const HealthPath = "/~measurement@1.0/info"

// healthInterval is how often the probe is retried.
var healthInterval = time.Second

// AwaitHTTP polls url until it answers 200, vmDone closes (ErrVMExited), or
// limit passes. The guest's HTTP answer through the port forward is the one
// signal it gives the host, so polling it is the condition wait.
func AwaitHTTP(ctx context.Context, url string, limit time.Duration, vmDone <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(healthInterval)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the service did not answer %s within %s: %w", url, limit, ctx.Err())
		case <-vmDone:
			return ErrVMExited
		case <-tick.C:
		}
	}
}

// AwaitHealthy waits for the service's health probe through the VM's
// forwarded port.
func (vm *VM) AwaitHealthy(ctx context.Context, limit time.Duration) error {
	return AwaitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", vm.HostPort(), HealthPath), limit, vm.Done())
}
