// Package install puts Berth's CNI plugins on a node: it copies the
// binaries into the runtime's plugin directory so that no runtime ever runs
// a half-written file, and keeps a kubeconfig for the plugins' fallback GET
// of the pod (used only when they are called without Multus) current as
// the service account token rotates.
package install

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Plugins are the binaries the installer copies.
func Plugins() []string { return []string{"berth-ipam", "berth-coordinator", "berth-ifacer"} }

// Copy copies each named file from srcDir into dstDir: written to a
// temporary file in dstDir and renamed over the old one, so a runtime sees
// either the old plugin or the new one, and a plugin still running keeps
// its file. Files already identical are left alone.
func Copy(srcDir, dstDir string, names []string) error {
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dstDir, err)
	}
	for _, name := range names {
		src := filepath.Join(srcDir, name)
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("reading plugin %s: %w", src, err)
		}
		dst := filepath.Join(dstDir, name)
		if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := writeAtomic(dst, data, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, bytes.NewReader(data)); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("setting the mode of %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("installing %s: %w", path, err)
	}
	return nil
}

// Credentials are what the kubeconfig carries: the API server's address
// and CA, and the token of the installer's service account.
type Credentials struct {
	Server    string
	CAFile    string
	TokenFile string
}

// WriteKubeconfig writes a self-contained kubeconfig (CA and token inline,
// since the plugins run on the host, outside the pod's mounts) when its
// content changed, and reports whether it did.
func WriteKubeconfig(path string, c Credentials) (bool, error) {
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		return false, fmt.Errorf("reading the CA %s: %w", c.CAFile, err)
	}
	token, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return false, fmt.Errorf("reading the token %s: %w", c.TokenFile, err)
	}
	if c.Server == "" {
		return false, fmt.Errorf("no API server address (KUBERNETES_SERVICE_HOST and _PORT unset)")
	}
	data := []byte(fmt.Sprintf(`# Written by berth-cni-install for berth-ipam and berth-coordinator; rewritten as the token rotates.
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: berth-cni
  user:
    token: %s
contexts:
- name: berth-cni
  context:
    cluster: local
    user: berth-cni
current-context: berth-cni
`, c.Server, base64.StdEncoding.EncodeToString(ca), bytes.TrimSpace(token)))
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	if err := writeAtomic(path, data, 0o600); err != nil {
		return false, err
	}
	return true, nil
}
