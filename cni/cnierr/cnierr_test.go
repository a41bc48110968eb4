package cnierr

import (
	"fmt"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestWrap(t *testing.T) {
	s := Subject{Namespace: "default", Name: "web-0", ContainerID: "0123456789abcdef", IfName: "net1"}
	for _, tc := range []struct {
		name string
		err  error
		code uint
		msg  string
	}{
		{"plain", fmt.Errorf("boom"), SetupFailed, "pod default/web-0 interface net1: boom"},
		{"coded", fmt.Errorf("checking: %w", Errorf(GatewayUnreachable, "gateway %s did not answer", "10.6.0.1")), GatewayUnreachable,
			"pod default/web-0 interface net1: checking: gateway 10.6.0.1 did not answer"},
		{"already an error object", types.NewError(PodMismatch, "pod default/web-0 interface net1: uid", ""), PodMismatch,
			"pod default/web-0 interface net1: uid"},
		{"unknown pod", fmt.Errorf("x"), SetupFailed, "container 0123456789ab interface net1: x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subject := s
			if tc.name == "unknown pod" {
				subject.Namespace, subject.Name = "", ""
			}
			got := Wrap(SetupFailed, subject, tc.err)
			if got.Code != tc.code || got.Msg != tc.msg {
				t.Errorf("got %d %q, want %d %q", got.Code, got.Msg, tc.code, tc.msg)
			}
		})
	}
	if Wrap(SetupFailed, s, nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
}
