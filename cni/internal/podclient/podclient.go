// Package podclient reads one pod from the API server: what berth-ipam and
// berth-coordinator do when they are called without Multus, so the
// assignment did not arrive in their stdin.
package podclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Getter reads a pod.
type Getter interface {
	GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
}

// Kubeconfig is a Getter that builds a client from a kubeconfig file for
// each call: a CNI plugin process makes one call in its life.
type Kubeconfig struct {
	Path    string
	Timeout time.Duration
}

// GetPod performs one GET of the pod, bounded by the timeout. It uses
// client-go's transport (TLS, credentials, exec plugins) but not its typed
// clientset, whose scheme registration would cost every plugin call
// milliseconds of start-up, with or without a GET.
func (k Kubeconfig) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", k.Path)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", k.Path, err)
	}
	cfg.Timeout = k.Timeout
	cfg.UserAgent = "berth-cni"
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("building a client from kubeconfig %s: %w", k.Path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, k.Timeout)
	defer cancel()
	u := strings.TrimSuffix(cfg.Host, "/") + cfg.APIPath + "/api/v1/namespaces/" + url.PathEscape(namespace) + "/pods/" + url.PathEscape(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("reading pod %s/%s: %w", namespace, name, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", cfg.UserAgent)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading pod %s/%s: %w", namespace, name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("reading pod %s/%s: %w", namespace, name, err)
	}
	if resp.StatusCode != http.StatusOK {
		var st struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &st)
		if st.Message == "" {
			st.Message = strings.TrimSpace(string(body))
		}
		return nil, fmt.Errorf("reading pod %s/%s: %s: %s", namespace, name, resp.Status, st.Message)
	}
	pod := &corev1.Pod{}
	if err := json.Unmarshal(body, pod); err != nil {
		return nil, fmt.Errorf("reading pod %s/%s: decoding: %w", namespace, name, err)
	}
	return pod, nil
}
