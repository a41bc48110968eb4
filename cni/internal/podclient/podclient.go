// Package podclient reads one pod from the API server: what berth-ipam and
// berth-coordinator do when they are called without Multus, so the
// assignment did not arrive in their stdin.
package podclient

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
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

// GetPod performs one GET of the pod, bounded by the timeout.
func (k Kubeconfig) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", k.Path)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", k.Path, err)
	}
	cfg.Timeout = k.Timeout
	cfg.UserAgent = "berth-cni"
	c, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building a client from kubeconfig %s: %w", k.Path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, k.Timeout)
	defer cancel()
	pod, err := c.Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading pod %s/%s: %w", namespace, name, err)
	}
	return pod, nil
}
