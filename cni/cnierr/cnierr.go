// Package cnierr holds the error codes Berth's CNI plugins return in their
// CNI error objects, beyond the spec's well-known ones, and the constructor
// that keeps every message naming the pod and the interface.
package cnierr

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
)

// Plugin-specific codes (the CNI spec leaves 100 and above to plugins).
const (
	// NoAssignment: the pod has no assignment for the interface.
	NoAssignment uint = 100
	// PodMismatch: the pod read from the API server is not the one the
	// runtime is setting up (its UID differs from K8S_POD_UID).
	PodMismatch uint = 101
	// GatewayUnreachable: the gateway did not answer ARP or NDP in time.
	GatewayUnreachable uint = 102
	// AddressConflict: another host on the segment uses the address.
	AddressConflict uint = 103
	// CheckFailed: CHECK found the interface not as ADD left it.
	CheckFailed uint = 104
	// SetupFailed: a netlink or sysctl step failed; the message says which.
	SetupFailed uint = 105
)

// Subject says whose interface an error is about: "pod ns/name interface
// net1 (container abc123)".
type Subject struct {
	Namespace, Name, ContainerID, IfName string
}

func (s Subject) String() string {
	pod := "pod " + s.Namespace + "/" + s.Name
	if s.Namespace == "" && s.Name == "" {
		pod = "container " + short(s.ContainerID)
	}
	return pod + " interface " + s.IfName
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Coded is an error that carries the CNI code it should be reported with.
type Coded struct {
	Code uint
	Err  error
}

func (c *Coded) Error() string { return c.Err.Error() }
func (c *Coded) Unwrap() error { return c.Err }

// Errorf returns a Coded error.
func Errorf(code uint, format string, args ...any) error {
	return &Coded{Code: code, Err: fmt.Errorf(format, args...)}
}

// Wrap turns any error into a CNI error object for subject s: the code of a
// Coded or *types.Error inside err, else def. A *types.Error itself is
// returned as it is: it already names its subject.
func Wrap(def uint, s Subject, err error) *types.Error {
	if err == nil {
		return nil
	}
	if te, ok := err.(*types.Error); ok {
		return te
	}
	var c *Coded
	if errors.As(err, &c) {
		def = c.Code
	}
	var te *types.Error
	if errors.As(err, &te) {
		return &types.Error{Code: te.Code, Msg: fmt.Sprintf("%s: %s", s, err.Error()), Details: te.Details}
	}
	return types.NewError(def, fmt.Sprintf("%s: %v", s, err), "")
}
