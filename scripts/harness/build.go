package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrBuild means `go build` of a guest program failed.
var ErrBuild = errors.New("harness: go build failed")

// ModuleRoot returns the directory of the inert module (where go.mod is),
// found from the working directory upwards.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module inert")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("harness: go.mod of module inert not found above the working directory")
		}
		dir = parent
	}
}

// BuildStatic builds the Go package pkg (an import path or a ./ path
// relative to the module root) into out as a static binary: CGO_ENABLED=0,
// -trimpath, stripped.
func BuildStatic(ctx context.Context, pkg, out string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	return goCommand(ctx, root, "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
}

// BuildTest compiles the tests of pkg into out (`go test -c`), static.
func BuildTest(ctx context.Context, pkg, out string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	return goCommand(ctx, root, "test", "-c", "-trimpath", "-o", out, pkg)
}

func goCommand(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, goBinary(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: go %s: %v\n%s", ErrBuild, strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

// goBinary prefers the go on PATH, then CI's /usr/local/go/bin/go.
func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
		return "/usr/local/go/bin/go"
	}
	return "go"
}
