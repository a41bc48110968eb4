// Package coordinator is what the rest of Berth asks about the Coordinator
// singleton: its name, and whether pods that need berth-coordinator may be
// admitted. The detection lives in coordinator/detect, the status controller
// in coordinator/controller.
package coordinator

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// Name is the name of the only Coordinator (a CEL rule refuses others).
const Name = "default"

// ErrNotReady matches, with errors.Is, every NotReadyError.
var ErrNotReady = errors.New("the Coordinator is not ready")

// NotReadyError says why pods needing berth-coordinator cannot be admitted
// yet; its text is meant for the admission denial.
type NotReadyError struct {
	// Reason is the Coordinator's status.reason, or why there is none.
	Reason string
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("Coordinator %q is not ready, so the cluster's pod and service CIDRs berth-coordinator routes are unknown: %s", Name, e.Reason)
}

// Unwrap makes errors.Is(err, ErrNotReady) hold.
func (e *NotReadyError) Unwrap() error { return ErrNotReady }

// Ready returns nil when c has synced the cluster CIDRs, else a
// *NotReadyError with the reason from its status. A nil c (no Coordinator
// object) is not ready either.
func Ready(c *berthv1.Coordinator) error {
	switch {
	case c == nil:
		// berth-controller's leader creates it (unless run with
		// --create-coordinator=false): missing means it has not yet, or
		// it was just deleted.
		return &NotReadyError{Reason: fmt.Sprintf("there is no Coordinator %q: berth-controller creates one unless run with --create-coordinator=false; else create it (see examples/coordinator.yaml)", Name)}
	case c.Status.Phase == berthv1.CoordinatorSynced:
		return nil
	case c.Status.Phase == "":
		return &NotReadyError{Reason: "its controller has not examined the cluster yet"}
	case c.Status.Reason == "":
		return &NotReadyError{Reason: string(c.Status.Phase)}
	}
	return &NotReadyError{Reason: c.Status.Reason}
}

// Get reads the Coordinator; it returns nil and no error when there is none.
func Get(ctx context.Context, r client.Reader) (*berthv1.Coordinator, error) {
	c := &berthv1.Coordinator{}
	err := r.Get(ctx, client.ObjectKey{Name: Name}, c)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading Coordinator %q: %w", Name, err)
	}
	return c, nil
}

// CheckReady reads the Coordinator and says whether it is ready: nil, a
// *NotReadyError, or the error reading it.
func CheckReady(ctx context.Context, r client.Reader) error {
	c, err := Get(ctx, r)
	if err != nil {
		return err
	}
	return Ready(c)
}
