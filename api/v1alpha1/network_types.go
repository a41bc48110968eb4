package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CNIType is the main CNI plugin a Network uses.
// +kubebuilder:validation:Enum=macvlan;ipvlan;sriov;ovs;bridge;host-device;custom
type CNIType string

const (
	CNITypeMacvlan    CNIType = "macvlan"
	CNITypeIPvlan     CNIType = "ipvlan"
	CNITypeSRIOV      CNIType = "sriov"
	CNITypeOVS        CNIType = "ovs"
	CNITypeBridge     CNIType = "bridge"
	CNITypeHostDevice CNIType = "host-device"
	CNITypeCustom     CNIType = "custom"
)

// NetworkSpec describes an underlay network. Exactly the block named by
// cniType is set; the controller turns it into a Multus
// NetworkAttachmentDefinition of the same name.
//
// +kubebuilder:validation:XValidation:rule="self.cniType != 'macvlan' || has(self.macvlan)",message="spec.macvlan is required when spec.cniType is macvlan",fieldPath=".macvlan"
// +kubebuilder:validation:XValidation:rule="self.cniType != 'ipvlan' || has(self.ipvlan)",message="spec.ipvlan is required when spec.cniType is ipvlan",fieldPath=".ipvlan"
// +kubebuilder:validation:XValidation:rule="self.cniType != 'sriov' || has(self.sriov)",message="spec.sriov is required when spec.cniType is sriov",fieldPath=".sriov"
// +kubebuilder:validation:XValidation:rule="self.cniType != 'ovs' || has(self.ovs)",message="spec.ovs is required when spec.cniType is ovs",fieldPath=".ovs"
// +kubebuilder:validation:XValidation:rule="self.cniType != 'bridge' || has(self.bridge)",message="spec.bridge is required when spec.cniType is bridge",fieldPath=".bridge"
// +kubebuilder:validation:XValidation:rule="self.cniType != 'host-device' || has(self.hostDevice)",message="spec.hostDevice is required when spec.cniType is host-device",fieldPath=".hostDevice"
// +kubebuilder:validation:XValidation:rule="self.cniType != 'custom' || has(self.custom)",message="spec.custom is required when spec.cniType is custom",fieldPath=".custom"
// +kubebuilder:validation:XValidation:rule="[has(self.macvlan), has(self.ipvlan), has(self.sriov), has(self.ovs), has(self.bridge), has(self.hostDevice), has(self.custom)].filter(x, x).size() <= 1",message="only the block named by spec.cniType may be set"
type NetworkSpec struct {
	// CNIType is the main plugin: macvlan, ipvlan, sriov, ovs, bridge,
	// host-device or custom.
	// +required
	CNIType CNIType `json:"cniType"`

	// +optional
	Macvlan *MacvlanConfig `json:"macvlan,omitempty"`
	// +optional
	IPvlan *IPvlanConfig `json:"ipvlan,omitempty"`
	// +optional
	SRIOV *SRIOVConfig `json:"sriov,omitempty"`
	// +optional
	OVS *OVSConfig `json:"ovs,omitempty"`
	// +optional
	Bridge *BridgeConfig `json:"bridge,omitempty"`
	// +optional
	HostDevice *HostDeviceConfig `json:"hostDevice,omitempty"`
	// +optional
	Custom *CustomConfig `json:"custom,omitempty"`

	// IPPools are the default pools of the network per family, used when a
	// policy names none.
	// +optional
	IPPools *PoolSelection `json:"ippools,omitempty"`

	// Coordinator overrides the cluster's Coordinator defaults for this
	// network; nil takes them unchanged.
	// +optional
	Coordinator *NetworkCoordinator `json:"coordinator,omitempty"`
}

// PoolSelection names candidate pools per IP family, tried in order.
type PoolSelection struct {
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=200
	IPv4 []string `json:"ipv4,omitempty"`
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=200
	IPv6 []string `json:"ipv6,omitempty"`
}

// MasterConfig names the parent interface(s) on the node. Several masters are
// bonded into Bond.Name, as Spiderpool does.
type MasterConfig struct {
	// Master is the parent interface, or the interfaces to bond.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=15
	// +kubebuilder:validation:items:Pattern=`^[^\s/:]+$`
	Master []string `json:"master"`
	// VLANID, when not 0, makes the plugin use the sub-interface
	// <master>.<vlanID>, created on the node if missing.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4094
	VLANID int32 `json:"vlanID,omitempty"`
	// Bond is required with more than one master.
	// +optional
	Bond *Bond `json:"bond,omitempty"`
}

// Bond describes the bond made of several master interfaces.
type Bond struct {
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	Name string `json:"name"`
	// Mode is the bonding mode number (0-6).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=6
	Mode int32 `json:"mode,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Options string `json:"options,omitempty"`
}

// MacvlanConfig configures the macvlan plugin.
//
// +kubebuilder:validation:XValidation:rule="self.master.size() <= 1 || has(self.bond)",message="bond is required when more than one master is given",fieldPath=".bond"
type MacvlanConfig struct {
	MasterConfig `json:",inline"`
	// +optional
	// +kubebuilder:default=bridge
	// +kubebuilder:validation:Enum=bridge;private;vepa;passthru
	Mode string `json:"mode,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	MTU int32 `json:"mtu,omitempty"`
}

// IPvlanConfig configures the ipvlan plugin.
//
// +kubebuilder:validation:XValidation:rule="self.master.size() <= 1 || has(self.bond)",message="bond is required when more than one master is given",fieldPath=".bond"
type IPvlanConfig struct {
	MasterConfig `json:",inline"`
	// +optional
	// +kubebuilder:default=l2
	// +kubebuilder:validation:Enum=l2;l3;l3s
	Mode string `json:"mode,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	MTU int32 `json:"mtu,omitempty"`
}

// SRIOVConfig configures the SR-IOV CNI; the VF comes from the device plugin
// resource ResourceName.
type SRIOVConfig struct {
	// ResourceName is the device plugin resource, e.g. berth.io/sriov_netdevice.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	ResourceName string `json:"resourceName"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4094
	VLANID int32 `json:"vlanID,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=7
	VLANQoS int32 `json:"vlanQoS,omitempty"`
	// +optional
	// +kubebuilder:validation:Enum=on;off
	SpoofChk string `json:"spoofchk,omitempty"`
	// +optional
	// +kubebuilder:validation:Enum=on;off
	Trust string `json:"trust,omitempty"`
	// MinTxRate and MaxTxRate are in Mbps; 0 means no limit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MinTxRate int32 `json:"minTxRate,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxTxRate int32 `json:"maxTxRate,omitempty"`
	// +optional
	// +kubebuilder:validation:Enum=auto;enable;disable
	LinkState string `json:"linkState,omitempty"`
}

// OVSConfig configures the OVS CNI.
type OVSConfig struct {
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	Bridge string `json:"bridge"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4094
	VLAN int32 `json:"vlan,omitempty"`
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Trunk []Trunk `json:"trunk,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=253
	DeviceID string `json:"deviceID,omitempty"`
}

// Trunk is one VLAN or a range of VLANs allowed on an OVS trunk port.
type Trunk struct {
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4094
	ID *int32 `json:"id,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4094
	MinID *int32 `json:"minID,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4094
	MaxID *int32 `json:"maxID,omitempty"`
}

// BridgeConfig configures the Linux bridge plugin.
type BridgeConfig struct {
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	Bridge string `json:"bridge"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4094
	VLAN int32 `json:"vlan,omitempty"`
	// +optional
	IsGateway bool `json:"isGateway,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	MTU int32 `json:"mtu,omitempty"`
}

// HostDeviceConfig moves a host device into the pod.
// +kubebuilder:validation:XValidation:rule="has(self.device) != has(self.pciAddress)",message="exactly one of spec.hostDevice.device and spec.hostDevice.pciAddress must be set"
type HostDeviceConfig struct {
	// +optional
	// +kubebuilder:validation:MaxLength=15
	Device string `json:"device,omitempty"`
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`
	PCIAddress string `json:"pciAddress,omitempty"`
}

// CustomConfig carries a CNI configuration written by the user; Berth adds
// berth-ipam and the coordinator unless told not to.
type CustomConfig struct {
	// Config is the CNI plugin configuration (one plugin or a conflist) as JSON.
	// +required
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=65536
	Config string `json:"config"`
}

// NetworkCoordinator is the per-network part of the coordinator settings.
type NetworkCoordinator struct {
	// Disabled leaves berth-coordinator out of the chain.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// +optional
	CoordinatorSettings `json:",inline"`
}

// NetworkPhase tells whether the NetworkAttachmentDefinition is in place.
// +kubebuilder:validation:Enum=Ready;Failed
type NetworkPhase string

const (
	NetworkReady  NetworkPhase = "Ready"
	NetworkFailed NetworkPhase = "Failed"
)

// NetworkStatus reports the generated NetworkAttachmentDefinition.
type NetworkStatus struct {
	// +optional
	Phase NetworkPhase `json:"phase,omitempty"`
	// NADName is the generated NetworkAttachmentDefinition.
	// +optional
	NADName string `json:"nadName,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Network is an underlay network pods attach to. Berth generates and guards
// the Multus NetworkAttachmentDefinition of the same name and namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=bnet,categories=berth
// +kubebuilder:printcolumn:name="TYPE",type=string,JSONPath=`.spec.cniType`
// +kubebuilder:printcolumn:name="NAD",type=string,JSONPath=`.status.nadName`
// +kubebuilder:printcolumn:name="PHASE",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type Network struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec NetworkSpec `json:"spec"`
	// +optional
	Status NetworkStatus `json:"status,omitempty"`
}

// NetworkList is a list of Networks.
//
// +kubebuilder:object:root=true
type NetworkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Network `json:"items"`
}
