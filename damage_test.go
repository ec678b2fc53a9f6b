package main

import (
	endian "encoding/binary"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imcast/emulator"
)

// TestDamagedLedgerStopsEveryCommand damages a ledger a run wrote, in the
// ways a disk, a copy or an upgrade do: every command that reads it exits
// 1 naming the file, without a crash, and run makes no request.
func TestDamagedLedgerStopsEveryCommand(t *testing.T) {
	damages := map[string]func(b []byte) []byte{
		"truncated": func(b []byte) []byte { return b[:len(b)/3] },
		"overwritten": func(b []byte) []byte {
			for i := 8192; i < len(b); i++ {
				b[i] = byte(i*31 + i>>9)
			}
			return b
		},
		"another format": func(b []byte) []byte {
			// both bbolt meta pages say version 3, with good checksums
			ps := int(endian.NativeEndian.Uint32(b[16+8:]))
			for _, off := range []int{0, ps} {
				m := b[off+16 : off+16+64]
				endian.NativeEndian.PutUint32(m[4:], 3)
				h := fnv.New64a()
				h.Write(m[:56])
				endian.NativeEndian.PutUint64(m[56:], h.Sum64())
			}
			return b
		},
	}
	dir := t.TempDir()
	campaign := filepath.Join(dir, "c.csv")
	if err := os.WriteFile(campaign, []byte("to,msg\nu1,hi\nu2,hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startFake(t, emulator.Config{})
	t.Setenv("EASEMOB_TOKEN", "t0ken-value")
	good := filepath.Join(dir, "good.db")
	if code, _, stderr := runCLI(t, "run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", good, "--quiet", campaign); code != exitOK {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	clean, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			state := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".db")
			if err := os.WriteFile(state, damage(append([]byte(nil), clean...)), 0o600); err != nil {
				t.Fatal(err)
			}
			before := srv.Stats().Requests
			for _, args := range [][]string{
				{"run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", state, "--quiet", "--campaign", "c", campaign},
				{"status", "--state", state},
				{"report", "--state", state},
			} {
				code, _, stderr := runCLI(t, args...)
				if code != exitFatal || !strings.Contains(stderr, state) || !strings.Contains(stderr, "damaged") || strings.Contains(stderr, "goroutine") {
					t.Errorf("%s: exit %d, stderr %q; want %d naming the damaged file", args[0], code, stderr, exitFatal)
				}
			}
			if n := srv.Stats().Requests - before; n != 0 {
				t.Errorf("%d requests made from a damaged ledger, want 0", n)
			}
		})
	}
}
