// Package e2e tests berth-ipam and berth-coordinator as a node runs them:
// the built binaries, chained with the reference plugins by libcni, in
// network namespaces the tests create (a simulated underlay of nodes and a
// gateway on a bridge). It holds tests only; run them as root.
package e2e
