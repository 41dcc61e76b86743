package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrVMExited means the VM stopped before the awaited event arrived.
var ErrVMExited = errors.New("harness: VM exited before the awaited event")

// maxEventLine bounds one line from the guest; longer lines are cut there.
const maxEventLine = 1 << 20

// eventLog keeps every line read from the events port, in order, so any
// number of waiters can scan it from the start.
type eventLog struct {
	mu     sync.Mutex
	lines  [][]byte
	closed bool
	notify chan struct{} // closed and replaced on every change
	sink   io.Writer     // copy of every line (WorkDir/events.jsonl), may be nil
}

func newEventLog(sink io.Writer) *eventLog {
	return &eventLog{notify: make(chan struct{}), sink: sink}
}

// consume reads lines from r until it ends, then marks the log closed.
func (l *eventLog) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	for sc.Scan() {
		line := bytes.TrimRight(sc.Bytes(), "\r")
		if len(line) == 0 {
			continue
		}
		l.add(append([]byte(nil), line...))
	}
	l.close()
}

func (l *eventLog) add(line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if l.sink != nil {
		_, _ = l.sink.Write(append(append([]byte(nil), line...), '\n'))
	}
	close(l.notify)
	l.notify = make(chan struct{})
}

func (l *eventLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.notify)
		l.notify = make(chan struct{})
	}
}

// from returns the lines from index i on, whether the log is closed, and a
// channel that is closed on the next change.
func (l *eventLog) from(i int) ([][]byte, bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i > len(l.lines) {
		i = len(l.lines)
	}
	return l.lines[i:], l.closed, l.notify
}

// wait scans every line from the first until match returns true.
func (l *eventLog) wait(ctx context.Context, match func([]byte) bool) error {
	next := 0
	for {
		lines, closed, changed := l.from(next)
		for _, line := range lines {
			next++
			if match(line) {
				return nil
			}
		}
		if closed {
			return ErrVMExited
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("harness: awaiting event: %w", ctx.Err())
		case <-changed:
		}
	}
}

// stream delivers every line, from the first, on the returned channel, which
// is closed when the log is closed and drained, or ctx ends.
func (l *eventLog) stream(ctx context.Context) <-chan []byte {
	out := make(chan []byte)
	go func() {
		defer close(out)
		next := 0
		for {
			lines, closed, changed := l.from(next)
			for _, line := range lines {
				select {
				case out <- line:
					next++
				case <-ctx.Done():
					return
				}
			}
			if closed && len(lines) == 0 {
				return
			}
			if len(lines) > 0 {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
		}
	}()
	return out
}

// lastWithField returns the string value of field in the last JSON line
// that has it as a non-empty string.
func (l *eventLog) lastWithField(field string) (string, bool) {
	lines, _, _ := l.from(0)
	for i := len(lines) - 1; i >= 0; i-- {
		var m map[string]json.RawMessage
		if json.Unmarshal(lines[i], &m) != nil {
			continue
		}
		var s string
		if raw, ok := m[field]; ok && json.Unmarshal(raw, &s) == nil && s != "" {
			return s, true
		}
	}
	return "", false
}
