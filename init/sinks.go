package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"inert/appliance"
	"inert/boot"
)

// sink is one destination of events. Writes go through a bounded queue
// drained by its own goroutine, so a slow or stuck reader (a host that does
// not read the virtio port, a wedged console) can never block PID 1: when the
// queue is full the line is dropped and counted.
type sink struct {
	name    string
	queue   chan []byte
	mu      sync.Mutex
	dropped int
}

func newSink(name string, write func([]byte)) *sink {
	s := &sink{name: name, queue: make(chan []byte, 1024)}
	go func() {
		for line := range s.queue {
			write(line)
		}
	}()
	return s
}

func (s *sink) send(line []byte) {
	select {
	case s.queue <- line:
	default:
		s.mu.Lock()
		s.dropped++
		s.mu.Unlock()
	}
}

// eventsPortPath finds the virtio-serial port named org.inert.events.
func eventsPortPath() string {
	if dev, ok := boot.VirtioPort("/sys", "org.inert.events"); ok {
		return "/dev/" + dev
	}
	return ""
}

// humanLine renders an event for people (kmsg, serial in debug mode).
func humanLine(ev appliance.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "inert: [%d] %s %s", ev.Index, ev.Step, ev.State)
	if ev.Duration > 0 {
		fmt.Fprintf(&b, " (%s)", time.Duration(ev.Duration).Round(time.Millisecond))
	}
	if ev.Message != "" {
		b.WriteString(": ")
		b.WriteString(ev.Message)
	}
	if ev.Status != "" && ev.Status != ev.Message {
		b.WriteString(" | ")
		b.WriteString(ev.Status)
	}
	return appliance.OneLine(b.String())
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"step":"pid1","state":"info","message":"unencodable event"}`)
	}
	return append(b, '\n')
}
