package e2e

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// roundRobin is a TCP proxy on loopback spreading connections over several
// webhook replicas, as a Service does: TLS passes through untouched, so
// every replica must serve a certificate the API server trusts.
type roundRobin struct {
	l        net.Listener
	backends []string
	next     atomic.Uint64
	wg       sync.WaitGroup
}

func newRoundRobin(ctx context.Context, backends []string) (*roundRobin, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &roundRobin{l: l, backends: backends}
	go func() { <-ctx.Done(); l.Close() }()
	go p.serve()
	return p, nil
}

func (p *roundRobin) addr() string { return p.l.Addr().String() }

func (p *roundRobin) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c)
		}()
	}
}

// pipe connects c to the next backend that answers.
func (p *roundRobin) pipe(c net.Conn) {
	defer c.Close()
	var b net.Conn
	for range p.backends {
		addr := p.backends[p.next.Add(1)%uint64(len(p.backends))]
		var err error
		if b, err = net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			break
		}
	}
	if b == nil {
		return
	}
	defer b.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
}
