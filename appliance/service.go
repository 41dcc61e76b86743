package appliance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"inert/boot"
)

// ErrHooks marks operator "on" hooks that cannot be merged (not an object,
// or a hook list that is neither an object nor an array).
var ErrHooks = errors.New("operator hooks cannot be merged")

// ServiceInputs are the facts the service environment is composed from.
type ServiceInputs struct {
	Mode string
	// ConfigPath is where the operator config was written ("{}" when there is
	// none or it was rejected); OperatorConfig are its bytes.
	ConfigPath     string
	OperatorConfig []byte
	// ReadFile reads the measured base config (tests pass a fake).
	ReadFile func(string) ([]byte, error)
	// WriteFile writes the merged hooks file 0600 (tmp file + rename).
	WriteFile func(path string, b []byte) error
}

// Launch composes what PID 1 starts: argv, environment, directory, stdio and
// the exit policy. For a ConfigEnv it builds the path list of CONTRACTS §1.15:
// operator config first, measured base config last (rightmost wins), and when
// the operator config has "on" hooks, a merged hooks file appended after both.
func (m *Manifest) Launch(in ServiceInputs) (*LaunchSpec, error) {
	s := m.Service
	env := map[string]string{"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
	for k, v := range s.Env {
		env[k] = v
	}
	if c := s.ConfigEnv; c != nil {
		list := []string{in.ConfigPath}
		if c.Base != "" {
			list = append(list, c.Base)
		}
		if c.MergeOnHooks {
			merged, err := mergedHooks(in.OperatorConfig, c.Base, in.ReadFile)
			if err != nil {
				return nil, err
			}
			if merged != nil {
				if err := in.WriteFile(c.MergedPath, merged); err != nil {
					return nil, fmt.Errorf("writing %s: %w", c.MergedPath, err)
				}
				list = append(list, c.MergedPath)
			}
		}
		env[c.Var] = strings.Join(list, ",")
	}
	stdio := s.Stdio
	if ms, ok := m.Modes[in.Mode]; ok && ms.ServiceStdio != "" {
		stdio = ms.ServiceStdio
	}
	if stdio == "" {
		stdio = "null"
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	envList := make([]string, 0, len(keys))
	for _, k := range keys {
		envList = append(envList, k+"="+env[k])
	}
	return &LaunchSpec{
		Name: s.DisplayName, Argv: append([]string(nil), s.Argv...), Env: envList, Dir: s.Dir,
		Stdio: stdio, ExitStatus: m.Status.ServiceExited, OnExit: s.OnExit,
	}, nil
}

// mergedHooks returns {"on": ...} with, for every event name, the operator's
// hooks first and the base config's last; nil when the operator config has no
// "on" key. A single hook object counts as a list of one.
func mergedHooks(operator []byte, basePath string, readFile func(string) ([]byte, error)) ([]byte, error) {
	opOn, ok, err := onHooks(operator)
	if err != nil || !ok {
		return nil, err
	}
	baseOn := map[string][]json.RawMessage{}
	if basePath != "" {
		b, err := readFile(basePath)
		if err != nil {
			return nil, fmt.Errorf("reading base config %s: %w", basePath, err)
		}
		if on, ok, err := onHooks(b); err != nil {
			return nil, fmt.Errorf("base config %s: %w", basePath, err)
		} else if ok {
			baseOn = on
		}
	}
	merged := map[string][]json.RawMessage{}
	for event, hooks := range opOn {
		merged[event] = append(merged[event], hooks...)
	}
	for event, hooks := range baseOn {
		merged[event] = append(merged[event], hooks...)
	}
	// encoding/json sorts map keys, so the file is the same for the same inputs.
	return json.Marshal(map[string]any{"on": merged})
}

// onHooks reads the top-level "on" object of a config as event -> hook list.
func onHooks(config []byte) (map[string][]json.RawMessage, bool, error) {
	var top map[string]json.RawMessage
	if len(bytes.TrimSpace(config)) == 0 {
		return nil, false, nil
	}
	if err := json.Unmarshal(config, &top); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrHooks, err)
	}
	raw, ok := top["on"]
	if !ok {
		return nil, false, nil
	}
	var events map[string]json.RawMessage
	if err := json.Unmarshal(raw, &events); err != nil {
		return nil, false, fmt.Errorf("%w: \"on\" is not an object", ErrHooks)
	}
	out := make(map[string][]json.RawMessage, len(events))
	for name, v := range events {
		v = bytes.TrimSpace(v)
		switch {
		case len(v) > 0 && v[0] == '[':
			var list []json.RawMessage
			if err := json.Unmarshal(v, &list); err != nil {
				return nil, false, fmt.Errorf("%w: on.%s: %v", ErrHooks, name, err)
			}
			out[name] = list
		case len(v) > 0 && v[0] == '{':
			out[name] = []json.RawMessage{v}
		default:
			return nil, false, fmt.Errorf("%w: on.%s is neither a hook nor a list of hooks", ErrHooks, name)
		}
	}
	return out, true, nil
}

// WriteFile0600 writes b to path through a tmp file and rename, mode 0600,
// making the directory first.
func WriteFile0600(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return boot.WriteFileAtomic(path, b, 0o600)
}
