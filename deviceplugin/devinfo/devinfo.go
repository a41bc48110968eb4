// Package devinfo writes the Device Plugin Device Information files of the
// Network Plumbing Working Group's Device Information Specification (v1.1.0)
// for the VFs of one resource. Multus copies the file of a pod's allocated
// VF into the CNI call and into the pod's network-status annotation
// ("device-info"), where a DPDK application finds the PCI address of the VF
// behind each network; the SR-IOV CNI reads it too.
//
// A file is /var/run/k8s.cni.cncf.io/devinfo/dp/<resource>-<deviceID>-device.json,
// the resource name with "/" turned into "-", the device ID the PCI address
// the kubelet allocated.
package devinfo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-io/berth/deviceplugin/sysfs"
)

// DefaultDir is where Multus looks for the files of device plugins.
const DefaultDir = "/var/run/k8s.cni.cncf.io/devinfo/dp"

// SpecVersion is the version of the specification the files follow.
const SpecVersion = "1.1.0"

// Info is the Device Information Format of a PCI device.
type Info struct {
	Type    string `json:"type"`
	Version string `json:"version"`
	PCI     *PCI   `json:"pci,omitempty"`
}

// PCI holds what the specification defines for a PCI device.
type PCI struct {
	PCIAddress   string `json:"pci-address"`
	PFPCIAddress string `json:"pf-pci-address,omitempty"`
	RDMADevice   string `json:"rdma-device,omitempty"`
}

// ForVF is the information of one VF.
func ForVF(vf sysfs.VF) Info {
	return Info{Type: "pci", Version: SpecVersion, PCI: &PCI{PCIAddress: vf.Address, PFPCIAddress: vf.PFAddress, RDMADevice: vf.RDMAName}}
}

// Path is the file of one device of a resource (prefix/name) in dir.
func Path(dir, resource, deviceID string) string {
	return filepath.Join(dir, strings.ReplaceAll(resource, "/", "-")+"-"+deviceID+"-device.json")
}

// Files keeps the files of one resource in step with its VFs. It is not
// safe for concurrent use: the device plugin's manager calls it from its
// one loop.
type Files struct {
	dir, resource string
	written       map[string][]byte // device ID -> content on disk
}

// New returns the Files of resource in dir; nothing is written yet.
func New(dir, resource string) *Files {
	return &Files{dir: dir, resource: resource, written: map[string][]byte{}}
}

// Sync writes the file of every VF whose information is new or changed and
// removes the files of VFs no longer in vfs. It goes on past a failure and
// returns every failure joined.
func (f *Files) Sync(vfs []sysfs.VF) error {
	var errs []error
	keep := make(map[string]bool, len(vfs))
	for _, vf := range vfs {
		keep[vf.Address] = true
		data, err := json.Marshal(ForVF(vf))
		if err != nil {
			errs = append(errs, fmt.Errorf("device information of VF %s: %w", vf.Address, err))
			continue
		}
		if old, ok := f.written[vf.Address]; ok && string(old) == string(data) {
			continue
		}
		if err := f.write(vf.Address, data); err != nil {
			errs = append(errs, err)
			continue
		}
		f.written[vf.Address] = data
	}
	for id := range f.written {
		if keep[id] {
			continue
		}
		if err := f.remove(id); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(f.written, id)
	}
	return errors.Join(errs...)
}

// Clear removes every file Sync wrote: the specification makes the device
// plugin responsible for its files when it stops serving a resource.
func (f *Files) Clear() error {
	var errs []error
	for id := range f.written {
		if err := f.remove(id); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(f.written, id)
	}
	return errors.Join(errs...)
}

// write replaces the file by rename, so a reader never sees half of it.
func (f *Files) write(id string, data []byte) error {
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return fmt.Errorf("writing device information of %s VF %s: %w", f.resource, id, err)
	}
	path := Path(f.dir, f.resource, id)
	tmp, err := os.CreateTemp(f.dir, ".berth-devinfo-*")
	if err != nil {
		return fmt.Errorf("writing device information of %s VF %s: %w", f.resource, id, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing device information of %s VF %s: %w", f.resource, id, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing device information of %s VF %s: %w", f.resource, id, err)
	}
	return nil
}

func (f *Files) remove(id string) error {
	if err := os.Remove(Path(f.dir, f.resource, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing device information of %s VF %s: %w", f.resource, id, err)
	}
	return nil
}
