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
	"time"
)

// shutdownGrace is how long Close lets calls in flight finish before it
// closes their connections.
const shutdownGrace = 5 * time.Second

// Running is a Server listening on a loopback address.
type Running struct {
	*Server
	URL string // http://127.0.0.1:PORT, with no trailing slash

	srv    *http.Server
	cancel context.CancelFunc // cancels the requests' base context
	served chan error         // the result of srv.Serve

	mu       sync.Mutex // guards closing and the calls to wg.Add
	closing  bool
	handlers sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Listen starts serving a new Server configured by cfg on addr, which must
// be a loopback address (127.0.0.0/8, ::1 or localhost); "127.0.0.1:0" picks
// a free port. Any other address is refused with an error wrapping
// ErrNotLoopback, before anything is opened.
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

	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{
		Server: New(cfg),
		URL:    "http://" + ln.Addr().String(),
		cancel: cancel,
		served: make(chan error, 1),
	}
	r.srv = &http.Server{
		Handler:           http.HandlerFunc(r.serve),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() { r.served <- r.srv.Serve(ln) }()
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
		writeControlError(w, errUnavailable("The emulator is shutting down"))
		return
	}
	r.handlers.Add(1)
	r.mu.Unlock()
	defer r.handlers.Done()
	r.Server.ServeHTTP(w, req)
}

// Close stops listening, cuts short the latency faults being waited out
// (those calls answer 503 and deliver nothing), lets the other calls in
// flight finish for up to a few seconds, and waits for every handler to
// return. It is safe to call more than once.
func (r *Running) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		err := r.srv.Shutdown(ctx)
		if err != nil {
			err = errors.Join(err, r.srv.Close())
		}
		if serr := <-r.served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
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
