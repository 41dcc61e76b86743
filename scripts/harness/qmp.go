package harness

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

var (
	// ErrQMP means QEMU answered a QMP command with an error.
	ErrQMP = errors.New("harness: qmp command failed")
	// ErrQMPClosed means the QMP connection is gone (QEMU exited).
	ErrQMPClosed = errors.New("harness: qmp connection closed")
)

// qmpClient speaks QMP on one connection, one command at a time. QEMU's
// asynchronous events are kept (AsyncEvents) but do not answer commands.
type qmpClient struct {
	mu     sync.Mutex
	conn   net.Conn
	reader *bufio.Reader

	eventsMu sync.Mutex
	events   []json.RawMessage
}

type qmpReply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	QMP   json.RawMessage `json:"QMP"`
}

// newQMPClient reads the greeting and negotiates capabilities.
func newQMPClient(conn net.Conn) (*qmpClient, error) {
	c := &qmpClient{conn: conn, reader: bufio.NewReaderSize(conn, 64<<10)}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	greeting, err := c.readReply()
	if err != nil {
		return nil, fmt.Errorf("harness: qmp greeting: %w", err)
	}
	if greeting.QMP == nil {
		return nil, fmt.Errorf("harness: qmp greeting missing")
	}
	_ = conn.SetReadDeadline(time.Time{})
	if _, err := c.command("qmp_capabilities", nil, 30*time.Second); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *qmpClient) readReply() (qmpReply, error) {
	line, err := c.reader.ReadBytes('\n')
	if err != nil {
		return qmpReply{}, fmt.Errorf("%w: %v", ErrQMPClosed, err)
	}
	var r qmpReply
	if err := json.Unmarshal(line, &r); err != nil {
		return qmpReply{}, fmt.Errorf("harness: qmp reply %q: %w", truncate(line, 200), err)
	}
	if r.Event != "" {
		c.eventsMu.Lock()
		c.events = append(c.events, append(json.RawMessage(nil), line...))
		c.eventsMu.Unlock()
	}
	return r, nil
}

// command sends one command and returns its "return" value.
func (c *qmpClient) command(name string, args any, timeout time.Duration) (json.RawMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	req := map[string]any{"execute": name}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("harness: qmp %s: %w", name, err)
	}
	_ = c.conn.SetDeadline(time.Now().Add(timeout))
	defer c.conn.SetDeadline(time.Time{})
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrQMPClosed, name, err)
	}
	for {
		r, err := c.readReply()
		if err != nil {
			return nil, fmt.Errorf("harness: qmp %s: %w", name, err)
		}
		if r.Event != "" {
			continue
		}
		if r.Error != nil {
			return nil, fmt.Errorf("%w: %s: %s: %s", ErrQMP, name, r.Error.Class, r.Error.Desc)
		}
		return r.Return, nil
	}
}

// asyncEvents returns the QMP events seen so far.
func (c *qmpClient) asyncEvents() []json.RawMessage {
	c.eventsMu.Lock()
	defer c.eventsMu.Unlock()
	return append([]json.RawMessage(nil), c.events...)
}

func (c *qmpClient) close() error { return c.conn.Close() }

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
