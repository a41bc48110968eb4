package controlplane

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Binaries are the programs a control plane runs.
type Binaries struct {
	Etcd, APIServer, ControllerManager, Scheduler, Kubectl string
}

// CacheDir is where `make bins` puts what it builds: $BERTH_CACHE, else
// $XDG_CACHE_HOME/berth, else ~/.cache/berth. The Makefile uses the same rule.
func CacheDir() string {
	if d := os.Getenv("BERTH_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "berth")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "berth-cache")
	}
	return filepath.Join(home, ".cache", "berth")
}

// RepoRoot finds the root of the Berth checkout from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding repository root: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/berth-io/berth\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding repository root: no go.mod of github.com/berth-io/berth above the working directory")
		}
		dir = parent
	}
}

// ToolVersion reads the version of module from tools/go.mod, the one place
// the versions of built tools are pinned, or from tools/helm/go.mod for helm.
func ToolVersion(module string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	gomod := filepath.Join(root, "tools", "go.mod")
	if strings.HasPrefix(module, "helm.sh/") {
		gomod = filepath.Join(root, "tools", "helm", "go.mod")
	}
	f, err := os.Open(gomod)
	if err != nil {
		return "", fmt.Errorf("reading tool versions: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == module && strings.HasPrefix(fields[1], "v") {
			return fields[1], nil
		}
		if len(fields) >= 3 && fields[0] == "require" && fields[1] == module {
			return fields[2], nil
		}
	}
	if err := s.Err(); err != nil {
		return "", fmt.Errorf("reading %s: %w", gomod, err)
	}
	return "", fmt.Errorf("%s does not require %s", gomod, module)
}

// K8sBinDir is the cache directory of the pinned Kubernetes binaries, or
// $BERTH_K8S_BIN_DIR when set.
func K8sBinDir() (string, error) {
	if d := os.Getenv("BERTH_K8S_BIN_DIR"); d != "" {
		return d, nil
	}
	v, err := ToolVersion("k8s.io/kubernetes")
	if err != nil {
		return "", err
	}
	return filepath.Join(CacheDir(), "k8s-"+v), nil
}

// CNIBinDir is the cache directory of the reference CNI plugins built from
// the pinned containernetworking/plugins module.
func CNIBinDir() (string, error) {
	v, err := ToolVersion("github.com/containernetworking/plugins")
	if err != nil {
		return "", err
	}
	return filepath.Join(CacheDir(), "cni-"+v), nil
}

// FindBinaries locates etcd (Debian's etcd-server) and the Kubernetes
// binaries, with an error saying how to get what is missing.
func FindBinaries() (Binaries, error) {
	dir, err := K8sBinDir()
	if err != nil {
		return Binaries{}, err
	}
	b := Binaries{
		APIServer:         filepath.Join(dir, "kube-apiserver"),
		ControllerManager: filepath.Join(dir, "kube-controller-manager"),
		Scheduler:         filepath.Join(dir, "kube-scheduler"),
		Kubectl:           filepath.Join(dir, "kubectl"),
	}
	var missing []string
	for _, p := range []string{b.APIServer, b.ControllerManager, b.Scheduler, b.Kubectl} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if b.Etcd, err = exec.LookPath("etcd"); err != nil {
		missing = append(missing, "etcd (Debian package etcd-server)")
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("control plane binaries missing: %s; run `make bins` (and `make deps` for etcd)", strings.Join(missing, ", "))
	}
	return b, nil
}

// ControllerGen is the path of the pinned controller-gen that `make bins`
// builds.
func ControllerGen() (string, error) {
	v, err := ToolVersion("sigs.k8s.io/controller-tools")
	if err != nil {
		return "", err
	}
	return filepath.Join(CacheDir(), "controller-gen-"+v, "controller-gen"), nil
}

// Helm is the path of the pinned helm that `make bins` builds, with an error
// saying how to get it when it is missing.
func Helm() (string, error) {
	v, err := ToolVersion("helm.sh/helm/v3")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(CacheDir(), "helm-"+v, "helm")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("helm %s missing: run `make bins`", v)
	}
	return bin, nil
}
