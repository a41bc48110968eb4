// Command berth-coordinator is the CNI plugin chained after a pod
// interface's main plugin that sets up its routes, rules and checks.
package main

import (
	"runtime"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/berth-io/berth/cni/coordinator"
)

// Namespace switches are per OS thread: the main goroutine must stay on
// the thread it started on while it enters and leaves the pod's netns.
func init() { runtime.LockOSThread() }

func main() {
	p := &coordinator.Plugin{}
	skel.PluginMainFuncs(p.Funcs(), coordinator.Versions(), coordinator.About)
}
