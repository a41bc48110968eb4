package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/coordinator"
	"github.com/berth-io/berth/network/show"
)

// networks shows the Network resource at work: the Coordinator finds no
// cluster CIDRs in a bare control plane and says why; given the
// kubeadm-config ConfigMap kubeadm would have written for this cluster, it
// syncs; every Network of examples/ gets its NetworkAttachmentDefinition,
// printed as Multus will read it.
func (d *demo) networks(ctx context.Context) error {
	step("berth-controller's Network and Coordinator controllers: generating NetworkAttachmentDefinitions")
	coord, err := d.waitCoordinator(ctx, func(c *berthv1.Coordinator) bool { return c.Status.Phase != "" })
	if err != nil {
		return err
	}
	fmt.Printf("Coordinator %q: %s\n  %s\n", coord.Name, coord.Status.Phase, coord.Status.Reason)
	if coordinator.Ready(coord) != nil {
		fmt.Println("Pods on networks that need berth-coordinator would be denied now with:")
		fmt.Printf("  %v\n", coordinator.Ready(coord))
	}

	step("creating kube-system/kubeadm-config as kubeadm would for this cluster")
	kubeadm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubeadm-config"},
		Data: map[string]string{"ClusterConfiguration": fmt.Sprintf(
			"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  dnsDomain: cluster.local\n  podSubnet: %s\n  serviceSubnet: %s\n",
			d.cp.ClusterCIDR, d.cp.ServiceCIDR)},
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = d.cp.Client.Create(cctx, kubeadm)
	cancel()
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ConfigMap kube-system/kubeadm-config: %w", err)
	}
	coord, err = d.waitCoordinator(ctx, func(c *berthv1.Coordinator) bool { return c.Status.Phase == berthv1.CoordinatorSynced })
	if err != nil {
		return err
	}
	fmt.Printf("Coordinator %q: %s, pod CIDRs %v, service CIDRs %v\n  %s\n",
		coord.Name, coord.Status.Phase, coord.Status.PodCIDRs, coord.Status.ServiceCIDRs, coord.Status.Reason)

	if err := d.waitNetworksReady(ctx); err != nil {
		return err
	}
	step("kubectl get ippools,networks,attachmentpolicies,coordinators,network-attachment-definitions")
	if err := d.kubectl(ctx, "get", "ippools,networks.berth.io,attachmentpolicies,coordinators,network-attachment-definitions", "-A"); err != nil {
		return err
	}
	step("the generated NetworkAttachmentDefinitions")
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return show.NADs(sctx, d.cp.Client, os.Stdout)
}

func (d *demo) waitCoordinator(ctx context.Context, ok func(*berthv1.Coordinator) bool) (*berthv1.Coordinator, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c := &berthv1.Coordinator{}
	for {
		err := d.cp.Client.Get(ctx, client.ObjectKey{Name: coordinator.Name}, c)
		if err == nil && ok(c) {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for Coordinator %q (last status %+v, error %v): %w", coordinator.Name, c.Status, err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitNetworksReady waits until every Network has been reconciled since its
// last change, whatever the outcome (a Failed one is shown with its reason).
func (d *demo) waitNetworksReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		var list berthv1.NetworkList
		err := d.cp.Client.List(ctx, &list)
		pending := err != nil
		for i := range list.Items {
			nw := &list.Items[i]
			if nw.Status.Phase == "" || nw.Status.ObservedGeneration != nw.Generation {
				pending = true
			}
		}
		if !pending {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("waiting for the Networks to be reconciled: %w", ctx.Err()), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
