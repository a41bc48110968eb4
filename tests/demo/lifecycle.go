package main

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/api/assignment"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// lifecycle shows the addresses following the pods: a StatefulSet pod
// deleted comes back with the same addresses; a Deployment scaled to zero
// gives its addresses back to the pool.
func (d *demo) lifecycle(ctx context.Context) error {
	step("deleting pod db-0: the StatefulSet recreates it and it gets its addresses back (sticky)")
	before, err := d.podAddresses(ctx, "db-0", "")
	if err != nil {
		return err
	}
	old := &corev1.Pod{}
	if err := d.cp.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "db-0"}, old); err != nil {
		return err
	}
	// No kubelet confirms the deletion here: delete at once.
	if err := d.cp.Client.Delete(ctx, old, client.GracePeriodSeconds(0)); err != nil {
		return fmt.Errorf("deleting pod db-0: %w", err)
	}
	after, err := d.podAddresses(ctx, "db-0", old.UID)
	if err != nil {
		return err
	}
	fmt.Printf("db-0 before: %v\ndb-0 after:  %v (new pod UID)\n", before, after)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		return fmt.Errorf("db-0 came back with %v, had %v", after, before)
	}

	step("scaling Deployment web to 0: its addresses return to the pools")
	dep := &appsv1.Deployment{}
	if err := d.cp.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web"}, dep); err != nil {
		return err
	}
	dep.Spec.Replicas = ptr.To[int32](0)
	if err := d.cp.Client.Update(ctx, dep); err != nil {
		return fmt.Errorf("scaling web to 0: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		var list berthv1.IPAllocationList
		if err := d.cp.Client.List(wctx, &list); err != nil {
			return err
		}
		if len(list.Items) == 4 { // db-0 and db-1, two families each
			break
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("waiting for web's addresses to be released (%d allocations left): %w", len(list.Items), wctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	// The pool controller writes counts at most once a second.
	time.Sleep(1500 * time.Millisecond)
	step("kubectl get ipallocations,ippools")
	return d.kubectl(ctx, "get", "ipallocations,ippools")
}

// podAddresses waits for pod name (a new one when notUID is set) to carry
// an assignment and returns its addresses.
func (d *demo) podAddresses(ctx context.Context, name string, notUID types.UID) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		p := &corev1.Pod{}
		err := d.cp.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, p)
		if err == nil && p.DeletionTimestamp == nil && (notUID == "" || p.UID != notUID) {
			if a, perr := assignment.Parse(p.Annotations[assignment.Annotation]); perr == nil {
				var out []string
				for _, itf := range a.Interfaces {
					for _, addr := range itf.Addresses {
						out = append(out, itf.Interface+" "+addr.Address)
					}
				}
				return out, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for pod %s with an assignment: %w", name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
