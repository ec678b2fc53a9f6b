// Package redistest starts a Redis server for tests: Debian's redis-server
// on a loopback port in a temporary folder when it is installed (CI always
// installs it), else github.com/alicebob/miniredis in process, which
// speaks the protocol and runs Lua (or when IMCAST_TEST_REDIS=miniredis, to
// try on a host that has redis-server what a host without it runs). Tests
// say which one they used.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Server is a running Redis server.
type Server struct {
	Addr string // host:port on 127.0.0.1
	Real bool   // redis-server, not miniredis
	cmd  *exec.Cmd
	mini *miniredis.Miniredis
	conf string // redis-server's configuration file
	t    testing.TB
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Kill stops the server at once: SIGKILL for redis-server.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
	if s.mini != nil {
		s.mini.Close()
	}
}

// Restart kills the server and starts an empty one at the same address,
// as a Redis without persistence comes back.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if s.mini != nil {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr(s.Addr); err != nil {
			s.t.Fatal(err)
		}
		s.t.Cleanup(m.Close)
		s.mini = m
		return
	}
	s.start()
}

// Start starts a server stopped when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil || os.Getenv("IMCAST_TEST_REDIS") == "miniredis" {
		m := miniredis.RunT(t)
		t.Logf("redis: miniredis in process at %s (no redis-server installed, or IMCAST_TEST_REDIS=miniredis)", m.Addr())
		return &Server{Addr: m.Addr(), mini: m, t: t}
	}
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf("bind 127.0.0.1\nport %d\ndir %s\nsave \"\"\nappendonly no\nprotected-mode yes\n", port, dir)
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Real: true, conf: filepath.Join(dir, "redis.conf"), t: t}
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	s.start()
	t.Logf("redis: redis-server at %s", s.Addr)
	return s
}

// start runs redis-server on s's configuration and waits until it is
// ready.
func (s *Server) start() {
	t := s.t
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, s.conf)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd = cmd
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Ready to accept connections") {
				close(ready)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("redis-server not ready in 20 s")
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
