package main

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"time"

	"inert/appliance"
	"inert/boot"
)

// espMountBase is where ESP candidates are mounted read-only while the
// worker looks at them; /run is tmpfs, so nothing outlives the boot.
const espMountBase = "/run/inert-esp"

// runWorker runs the boot plan and reports to PID 1 on fd 3. It returns
// only when the plan failed or every background duty (lease renewal) ended.
func runWorker() int {
	out := os.NewFile(3, "events")
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	emit := func(ev appliance.Event) {
		if ev.Time.IsZero() {
			ev.Time = time.Now().UTC()
		}
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(ev)
	}
	b, err := os.ReadFile(appliance.ManifestPath)
	if err != nil {
		emit(appliance.Event{Step: "manifest", State: appliance.StateFail, Action: appliance.ActionHalt,
			Status: "Boot stopped: the appliance manifest is missing.", Message: err.Error()})
		return 1
	}
	m, err := appliance.ParseManifest(b)
	if err != nil {
		emit(appliance.Event{Step: "manifest", State: appliance.StateFail, Action: appliance.ActionHalt,
			Status: "Boot stopped: the appliance manifest is invalid.", Message: err.Error()})
		return 1
	}
	w := appliance.NewWorker(m, boot.DefaultEnv(espMountBase, nil), "/", emit)
	out2 := w.Run(context.Background())
	if out2.Action != appliance.ActionNone {
		return 1
	}
	w.Wait()
	return 0
}
