// Command berth-ipam is the CNI IPAM plugin that returns the addresses Berth
// reserved for a pod interface at admission.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/berth-io/berth/cni/ipam"
)

func main() {
	p := &ipam.Plugin{}
	skel.PluginMainFuncs(p.Funcs(), ipam.Versions(), ipam.About)
}
