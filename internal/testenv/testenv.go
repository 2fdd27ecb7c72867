// Package testenv holds what Ferry's test packages share about their
// environment: whether they run in CI, and how to build the ferry binary.
// Only tests import it.
package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// InCI reports whether the CI environment variable is set (to anything but
// "", "0" or "false"). Under CI a missing tool or privilege is a failure,
// never a skip: CI installs every tool and runs as root.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "false" && v != "0"
}

// ModuleRoot returns the directory holding go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if p := strings.TrimSpace(string(out)); p != "" && p != os.DevNull {
			return filepath.Dir(p), nil
		}
	}
	return "", fmt.Errorf("cannot find the module root: %v", err)
}

// BuildFerry builds ./cmd/ferry into dir and returns the binary's path;
// extra arguments (such as -race) go to go build.
func BuildFerry(ctx context.Context, dir string, extra ...string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "ferry")
	args := append(append([]string{"build", "-o", bin}, extra...), "./cmd/ferry")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}
