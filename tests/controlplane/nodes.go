package controlplane

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CreateNode registers a Node object that the scheduler will place pods on,
// standing in for a kubelet: Ready, with capacity for many pods plus extra
// (for example an SR-IOV resource), and without the not-ready taint that
// admission adds to new nodes.
func (cp *ControlPlane) CreateNode(ctx context.Context, name string, labels map[string]string, extra corev1.ResourceList) (*corev1.Node, error) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	for k, v := range labels {
		node.Labels[k] = v
	}
	if err := cp.Client.Create(ctx, node); err != nil {
		return nil, fmt.Errorf("creating node %s: %w", name, err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	for k, v := range extra {
		capacity[k] = v
	}
	// Controllers (ttl, taint managers) touch new nodes too: retry on conflict.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(node), node); err != nil {
			return err
		}
		node.Status.Capacity = capacity
		node.Status.Allocatable = capacity
		node.Status.Conditions = []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}}
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}}
		return cp.Client.Status().Update(ctx, node)
	})
	if err != nil {
		return nil, fmt.Errorf("setting status of node %s: %w", name, err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(node), node); err != nil {
			return err
		}
		node.Spec.Taints = nil
		return cp.Client.Update(ctx, node)
	})
	if err != nil {
		return nil, fmt.Errorf("removing taints of node %s: %w", name, err)
	}
	return node, nil
}
