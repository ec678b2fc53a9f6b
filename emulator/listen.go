package emulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// shutdownGrace is how long Close lets calls in flight finish before it
// closes their connections.
const shutdownGrace = 5 * time.Second

// Running is a Server listening on a loopback address, with its trap.
type Running struct {
	*Server
	URL string // http://127.0.0.1:PORT, with no trailing slash
	// TrapURL is http://127.0.0.1:PORT of the trap, a second listener
	// where the redirect faults point. It records every request (see
	// TrapRequests) and answers each 200 as if it had delivered.
	TrapURL string

	srv        *http.Server
	trap       *http.Server
	cancel     context.CancelFunc // cancels the requests' base context
	served     chan error         // the result of srv.Serve
	trapServed chan error         // the result of trap.Serve

	mu       sync.Mutex // guards closing and the calls to wg.Add
	closing  bool
	handlers sync.WaitGroup
	inflight atomic.Int64 // handlers running, for tests

	closeOnce sync.Once
	closeErr  error
}

// Listen starts serving a new Server configured by cfg on addr, which must
// be a loopback address (127.0.0.0/8, ::1 or localhost); "127.0.0.1:0" picks
// a free port. Any other address is refused with an error wrapping
// ErrNotLoopback, before anything is opened. It also starts the trap on a
// free port of 127.0.0.1.
func Listen(addr string, cfg Config) (*Running, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("emulator address: %w", err)
	}
	if !isLoopback(host) {
		return nil, fmt.Errorf("emulator address %q: %w", addr, ErrNotLoopback)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err != nil || !ap.Addr().Unmap().IsLoopback() {
		_ = ln.Close()
		return nil, fmt.Errorf("emulator address %q resolved to %s: %w", addr, ln.Addr(), ErrNotLoopback)
	}
	trapLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("emulator trap: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{
		Server:     New(cfg),
		URL:        "http://" + ln.Addr().String(),
		TrapURL:    "http://" + trapLn.Addr().String(),
		cancel:     cancel,
		served:     make(chan error, 1),
		trapServed: make(chan error, 1),
	}
	r.Server.trapURL = r.TrapURL
	r.srv = &http.Server{
		Handler:           http.HandlerFunc(r.serve),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	r.trap = &http.Server{
		Handler:           http.HandlerFunc(r.Server.serveTrap),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() { r.served <- r.srv.Serve(ln) }()
	go func() { r.trapServed <- r.trap.Serve(trapLn) }()
	return r, nil
}

// isLoopback reports whether host names a loopback address, without a
// lookup: "localhost" or a literal loopback IP.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// serve counts the handlers in flight, so that Close can wait for them.
func (r *Running) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		if v := r.Server.Faults().retryAfter(); v != "" {
			w.Header().Set("Retry-After", v)
		}
		writeControlError(w, errUnavailable("The emulator is shutting down"))
		return
	}
	r.handlers.Add(1)
	r.inflight.Add(1)
	r.mu.Unlock()
	defer r.handlers.Done()
	defer r.inflight.Add(-1)
	r.Server.ServeHTTP(w, req)
}

// Close stops listening, cuts short the latency being waited out and the
// stalled calls (their connections are reset with no answer; what they
// delivered at their arrival stands), lets the other calls in flight
// finish for up to a few seconds, closes the trap, and waits for every
// handler to return. It is safe to call more than once.
func (r *Running) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		var err error
		for _, srv := range []*http.Server{r.srv, r.trap} {
			if serr := srv.Shutdown(ctx); serr != nil {
				err = errors.Join(err, serr, srv.Close())
			}
		}
		for _, served := range []chan error{r.served, r.trapServed} {
			if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
				err = errors.Join(err, serr)
			}
		}
		r.mu.Lock()
		r.closing = true
		r.mu.Unlock()
		r.handlers.Wait()
		if err != nil {
			r.closeErr = fmt.Errorf("close emulator: %w", err)
		}
	})
	return r.closeErr
}
