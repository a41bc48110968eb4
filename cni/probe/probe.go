// Package probe asks the segment of a pod interface two questions before
// berth-coordinator lets ADD succeed: does the gateway answer (ARP for IPv4,
// NDP neighbor solicitation for IPv6), and does anyone else already use the
// pod's address (an RFC 5227 ARP probe for IPv4; the kernel's duplicate
// address detection plus a neighbor solicitation for IPv6). Every function
// works on an interface of the calling thread's network namespace: callers
// run it inside ns.Do.
package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// ErrGatewayUnreachable is wrapped by the error of Gateway when nobody
// answered for the gateway in time.
var ErrGatewayUnreachable = errors.New("gateway unreachable")

// ConflictError says that another host uses the address.
type ConflictError struct {
	Addr   netip.Addr
	IfName string
	// MAC of the other holder, when it said; nil when only the kernel's
	// duplicate address detection saw it.
	MAC net.HardwareAddr
	// Reason says how the holder showed itself, when MAC is nil.
	Reason string
}

const dadReason = "the kernel's IPv6 duplicate address detection failed"

func (e *ConflictError) Error() string {
	if e.MAC != nil {
		return fmt.Sprintf("address %s is already used on the segment of %s by %s", e.Addr, e.IfName, e.MAC)
	}
	return fmt.Sprintf("address %s is already used on the segment of %s: %s", e.Addr, e.IfName, e.Reason)
}

// resend is how often a request is repeated while waiting: a lost frame
// must not cost the whole timeout.
const resend = 200 * time.Millisecond

// Gateway checks that gw answers on ifName within timeout.
func Gateway(ctx context.Context, ifName string, gw netip.Addr, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ifi, err := net.InterfaceByName(ifName)
	if err != nil {
		return fmt.Errorf("finding interface %s: %w", ifName, err)
	}
	if gw.Is4() {
		err = arpGateway(ctx, ifi, gw)
	} else {
		err = ndpGateway(ctx, ifi, gw)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		proto := "ARP"
		if !gw.Is4() {
			proto = "NDP neighbor solicitation"
		}
		return fmt.Errorf("%w: gateway %s did not answer %s on %s within %s", ErrGatewayUnreachable, gw, proto, ifName, timeout)
	}
	return err
}

// Conflict checks, listening for window, that no other host on the segment
// of ifName uses addr. A *ConflictError says who does.
func Conflict(ctx context.Context, ifName string, addr netip.Addr, window time.Duration) error {
	ifi, err := net.InterfaceByName(ifName)
	if err != nil {
		return fmt.Errorf("finding interface %s: %w", ifName, err)
	}
	if addr.Is4() {
		ctx, cancel := context.WithTimeout(ctx, window)
		defer cancel()
		return arpConflict(ctx, ifi, addr)
	}
	return ndpConflict(ctx, ifi, addr, window)
}

// Announce sends one gratuitous ARP for addr, so that neighbours holding an
// old MAC for it (a pod that had the address before) learn the new one.
func Announce(ifName string, addr netip.Addr) error {
	if !addr.Is4() {
		return nil
	}
	ifi, err := net.InterfaceByName(ifName)
	if err != nil {
		return fmt.Errorf("finding interface %s: %w", ifName, err)
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return fmt.Errorf("opening an ARP socket on %s: %w", ifName, err)
	}
	defer c.Close()
	p, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, addr, ethernet.Broadcast, addr)
	if err != nil {
		return fmt.Errorf("building the gratuitous ARP for %s: %w", addr, err)
	}
	if err := c.WriteTo(p, ethernet.Broadcast); err != nil {
		return fmt.Errorf("sending the gratuitous ARP for %s on %s: %w", addr, ifName, err)
	}
	return nil
}

func arpGateway(ctx context.Context, ifi *net.Interface, gw netip.Addr) error {
	c, err := arp.Dial(ifi)
	if err != nil {
		return fmt.Errorf("opening an ARP socket on %s: %w", ifi.Name, err)
	}
	defer c.Close()
	return readUntil(ctx, c.SetReadDeadline, func() error { return c.Request(gw) }, func() (bool, error) {
		p, _, err := c.Read()
		if err != nil {
			return false, err
		}
		return p.Operation == arp.OperationReply && p.SenderIP == gw, nil
	})
}

func arpConflict(ctx context.Context, ifi *net.Interface, addr netip.Addr) error {
	c, err := arp.Dial(ifi)
	if err != nil {
		return fmt.Errorf("opening an ARP socket on %s: %w", ifi.Name, err)
	}
	defer c.Close()
	// An RFC 5227 probe: sender address 0.0.0.0, so that nobody's cache
	// learns the address from it while it may still be someone else's.
	probe, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, netip.IPv4Unspecified(), net.HardwareAddr{0, 0, 0, 0, 0, 0}, addr)
	if err != nil {
		return fmt.Errorf("building the ARP probe for %s: %w", addr, err)
	}
	var holder net.HardwareAddr
	err = readUntil(ctx, c.SetReadDeadline, func() error { return c.WriteTo(probe, ethernet.Broadcast) }, func() (bool, error) {
		p, _, err := c.Read()
		if err != nil {
			return false, err
		}
		// The packet socket also sees what this interface sends.
		if p.SenderIP == addr && !bytes.Equal(p.SenderHardwareAddr, ifi.HardwareAddr) {
			holder = p.SenderHardwareAddr
			return true, nil
		}
		return false, nil
	})
	switch {
	case holder != nil:
		return &ConflictError{Addr: addr, IfName: ifi.Name, MAC: holder}
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return nil
	default:
		return err
	}
}

func ndpGateway(ctx context.Context, ifi *net.Interface, gw netip.Addr) error {
	conn, err := listenNDP(ctx, ifi)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = solicit(ctx, conn, ifi, gw)
	return err
}

// ndpConflict first waits for the kernel's duplicate address detection of
// addr to end, then asks the segment with a neighbor solicitation from the
// link-local address: the kernel's check does not say who the other holder
// is, and it does not run where accept_dad is 0.
func ndpConflict(ctx context.Context, ifi *net.Interface, addr netip.Addr, window time.Duration) error {
	dadFailed, err := waitDAD(ctx, ifi, addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	conn, err := listenNDP(ctx, ifi)
	if err != nil {
		if dadFailed {
			return &ConflictError{Addr: addr, IfName: ifi.Name, Reason: dadReason}
		}
		return err
	}
	defer conn.Close()
	holder, err := solicit(ctx, conn, ifi, addr)
	switch {
	case err == nil:
		return &ConflictError{Addr: addr, IfName: ifi.Name, MAC: holder, Reason: "it answered a neighbor solicitation"}
	case dadFailed:
		return &ConflictError{Addr: addr, IfName: ifi.Name, Reason: dadReason}
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return nil
	default:
		return err
	}
}

// dadWait bounds the wait for the kernel's duplicate address detection: one
// probe a second after a random delay of up to a second, by default.
const dadWait = 5 * time.Second

// waitDAD waits until addr is no longer tentative and reports whether the
// kernel saw it duplicated.
func waitDAD(ctx context.Context, ifi *net.Interface, addr netip.Addr) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, dadWait)
	defer cancel()
	link, err := netlink.LinkByIndex(ifi.Index)
	if err != nil {
		return false, fmt.Errorf("finding interface %s: %w", ifi.Name, err)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V6)
		if err != nil {
			return false, fmt.Errorf("listing the addresses of %s: %w", ifi.Name, err)
		}
		found := false
		for _, a := range addrs {
			if got, ok := netip.AddrFromSlice(a.IP); !ok || got != addr {
				continue
			}
			found = true
			if a.Flags&unix.IFA_F_DADFAILED != 0 {
				return true, nil
			}
			if a.Flags&unix.IFA_F_TENTATIVE == 0 {
				return false, nil
			}
		}
		if !found {
			return false, fmt.Errorf("interface %s does not have address %s", ifi.Name, addr)
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("address %s on %s still in duplicate address detection after %s", addr, ifi.Name, dadWait)
		case <-tick.C:
		}
	}
}

// listenNDP opens an NDP socket on the link-local address, retrying while
// that address is still tentative (it cannot be bound before).
func listenNDP(ctx context.Context, ifi *net.Interface) (*ndp.Conn, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, _, err := ndp.Listen(ifi, ndp.LinkLocal)
		if err == nil {
			var f ipv6.ICMPFilter
			f.SetAll(true)
			f.Accept(ipv6.ICMPTypeNeighborAdvertisement)
			if err := conn.SetICMPFilter(&f); err != nil {
				conn.Close()
				return nil, fmt.Errorf("filtering ICMPv6 on %s: %w", ifi.Name, err)
			}
			return conn, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("opening an NDP socket on the link-local address of %s: %w", ifi.Name, err)
		case <-tick.C:
		}
	}
}

// solicit sends neighbor solicitations for target until a neighbor
// advertisement for it arrives from another MAC. A nil error means one did;
// the MAC is the advertised one (nil if the advertisement carried none).
func solicit(ctx context.Context, conn *ndp.Conn, ifi *net.Interface, target netip.Addr) (net.HardwareAddr, error) {
	group, err := ndp.SolicitedNodeMulticast(target)
	if err != nil {
		return nil, fmt.Errorf("solicited-node group of %s: %w", target, err)
	}
	ns := &ndp.NeighborSolicitation{
		TargetAddress: target,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr}},
	}
	var holder net.HardwareAddr
	err = readUntil(ctx, conn.SetReadDeadline, func() error { return conn.WriteTo(ns, nil, group) }, func() (bool, error) {
		msg, _, _, err := conn.ReadFrom()
		if err != nil {
			return false, err
		}
		na, ok := msg.(*ndp.NeighborAdvertisement)
		if !ok || na.TargetAddress != target {
			return false, nil
		}
		for _, o := range na.Options {
			if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Target {
				if bytes.Equal(lla.Addr, ifi.HardwareAddr) {
					return false, nil
				}
				holder = lla.Addr
			}
		}
		return true, nil
	})
	return holder, err
}

// readUntil sends, then reads until match says yes, resending every resend
// interval, until ctx ends. It returns os.ErrDeadlineExceeded when nothing
// matched in time.
func readUntil(ctx context.Context, setDeadline func(time.Time) error, send func() error, match func() (bool, error)) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		return errors.New("probe without a deadline")
	}
	for {
		if err := send(); err != nil {
			return fmt.Errorf("sending: %w", err)
		}
		next := time.Now().Add(resend)
		if next.After(deadline) {
			next = deadline
		}
		if err := setDeadline(next); err != nil {
			return fmt.Errorf("setting a read deadline: %w", err)
		}
		for {
			ok, err := match()
			if err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					return fmt.Errorf("reading: %w", err)
				}
				break
			}
			if ok {
				return nil
			}
		}
		if !time.Now().Before(deadline) {
			return os.ErrDeadlineExceeded
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}
