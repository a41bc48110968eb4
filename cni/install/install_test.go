package install

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestCopy(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "bin")
	for _, name := range Plugins() {
		if err := os.WriteFile(filepath.Join(src, name), []byte("v1 "+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Copy(src, dst, Plugins()); err != nil {
		t.Fatal(err)
	}
	for _, name := range Plugins() {
		fi, err := os.Stat(filepath.Join(dst, name))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}
	// An unchanged plugin keeps its inode: a running plugin is not
	// disturbed by a restart of the installer.
	before, _ := os.Stat(filepath.Join(dst, "berth-ipam"))
	if err := Copy(src, dst, Plugins()); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(filepath.Join(dst, "berth-ipam"))
	if !os.SameFile(before, after) {
		t.Error("an identical plugin was rewritten")
	}
	if err := os.WriteFile(filepath.Join(src, "berth-ipam"), []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Copy(src, dst, Plugins()); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dst, "berth-ipam")); string(data) != "v2" {
		t.Errorf("plugin not updated: %q", data)
	}
	if left, _ := filepath.Glob(filepath.Join(dst, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if err := Copy(src, dst, []string{"missing"}); err == nil {
		t.Error("copying a missing plugin succeeded")
	}
}

func TestWriteKubeconfig(t *testing.T) {
	dir := t.TempDir()
	sa := Credentials{Server: "https://10.96.0.1:443", CAFile: filepath.Join(dir, "ca.crt"), TokenFile: filepath.Join(dir, "token")}
	if err := os.WriteFile(sa.CAFile, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sa.TokenFile, []byte("token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "net.d", "berth.d", "berth.kubeconfig")
	for i, want := range []bool{true, false} {
		changed, err := WriteKubeconfig(path, sa)
		if err != nil || changed != want {
			t.Fatalf("write %d: changed %v, %v", i, changed, err)
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != sa.Server || cfg.BearerToken != "token-1" || len(cfg.CAData) == 0 {
		t.Errorf("kubeconfig gives %s %q CA %d bytes", cfg.Host, cfg.BearerToken, len(cfg.CAData))
	}
	if err := os.WriteFile(sa.TokenFile, []byte("token-2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := WriteKubeconfig(path, sa); err != nil || !changed {
		t.Fatalf("after rotation: changed %v, %v", changed, err)
	}
	if cfg, _ := clientcmd.BuildConfigFromFlags("", path); cfg.BearerToken != "token-2" {
		t.Errorf("token after rotation %q", cfg.BearerToken)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600: it holds a token", fi.Mode())
	}
	if _, err := WriteKubeconfig(path, Credentials{CAFile: sa.CAFile, TokenFile: sa.TokenFile}); err == nil {
		t.Error("a kubeconfig without a server was written")
	}
}
