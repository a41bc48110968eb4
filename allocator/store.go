package allocator

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// Store persists reservations. Today it is one IPAllocation per address and
// Create is the lock; a store leasing blocks of addresses per replica could
// replace it without the webhook noticing. Errors keep their API status, so
// apierrors.IsAlreadyExists and IsNotFound work on them.
type Store interface {
	// Create stores obj; AlreadyExists means another holder has the address.
	// On success obj is what the API server stored (UID, resourceVersion).
	Create(ctx context.Context, obj *berthv1.IPAllocation) error
	// Update writes obj if its resourceVersion is still current.
	Update(ctx context.Context, obj *berthv1.IPAllocation) error
	// Delete removes the IPAllocation name if its UID is uid (any UID when
	// uid is empty). Already gone is success.
	Delete(ctx context.Context, name string, uid types.UID) error
	// Get reads an IPAllocation from the API server, not from a cache.
	Get(ctx context.Context, name string) (*berthv1.IPAllocation, error)
}

// APIStore is the Store of IPAllocation objects in the API server.
type APIStore struct {
	// Writer writes (a client whose writes go to the API server, as
	// controller-runtime's always do); Reader reads uncached.
	Writer client.Writer
	Reader client.Reader
}

var _ Store = &APIStore{}

func (s *APIStore) Create(ctx context.Context, obj *berthv1.IPAllocation) error {
	return s.Writer.Create(ctx, obj)
}

func (s *APIStore) Update(ctx context.Context, obj *berthv1.IPAllocation) error {
	return s.Writer.Update(ctx, obj)
}

func (s *APIStore) Delete(ctx context.Context, name string, uid types.UID) error {
	obj := &berthv1.IPAllocation{}
	obj.Name = name
	var opts []client.DeleteOption
	if uid != "" {
		opts = append(opts, client.Preconditions{UID: &uid})
	}
	err := s.Writer.Delete(ctx, obj, opts...)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if apierrors.IsConflict(err) && uid != "" {
		// The precondition failed: the name now locks a later reservation,
		// which is not ours to delete. What we meant to delete is gone.
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting ipallocation %q: %w", name, err)
	}
	return nil
}

func (s *APIStore) Get(ctx context.Context, name string) (*berthv1.IPAllocation, error) {
	obj := &berthv1.IPAllocation{}
	if err := s.Reader.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
		return nil, err
	}
	return obj, nil
}
