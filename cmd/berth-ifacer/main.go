// Command berth-ifacer is the CNI plugin chained first in a macvlan or
// ipvlan Network that makes its master (a bond, a VLAN sub-interface) exist
// on the node.
package main

import (
	"runtime"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/berth-io/berth/cni/ifacer"
)

// Netlink requests go to the network namespace of the calling thread: the
// main goroutine stays on the thread it started on, in the node's.
func init() { runtime.LockOSThread() }

func main() {
	p := &ifacer.Plugin{}
	skel.PluginMainFuncs(p.Funcs(), ifacer.Versions(), ifacer.About)
}
