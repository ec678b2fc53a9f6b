package checkpoint

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// sentLedger writes a ledger with one campaign that sent a batch, and
// closes it.
func sentLedger(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Campaign("spring")
	for i := range 50 {
		r := Record{Kind: "users", Digest: digestOf("m"), To: []string{strings.Repeat("u", 100) + string(rune('a'+i%26)) + string(rune('a'+i/26))}}
		if err := c.Begin(&r); err != nil {
			t.Fatal(err)
		}
		r.State, r.IDs = Sent, []string{"1029457500870543736"}
		if err := c.Finish(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// rewriteMetas sets the version of both bbolt meta pages and fixes their
// checksums, as a file of another bbolt format would have them.
func rewriteMetas(t *testing.T, path string, version uint32) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps := int(binary.NativeEndian.Uint32(b[pageHeaderSize+8:]))
	for _, off := range []int{0, ps} {
		m := b[off+pageHeaderSize : off+pageHeaderSize+metaSize]
		binary.NativeEndian.PutUint32(m[4:], version)
		h := fnv.New64a()
		h.Write(m[:56])
		binary.NativeEndian.PutUint64(m[56:], h.Sum64())
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedLedgersAreRefused(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		reason string
		atOpen bool // refused by Open, before any read
	}{
		{name: "truncated", atOpen: true, reason: "cut short", damage: func(t *testing.T, path string) {
			st, _ := os.Stat(path)
			if err := os.Truncate(path, st.Size()/3); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "empty", atOpen: true, reason: "empty", damage: func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a FIFO", atOpen: true, reason: "not a regular file", damage: func(t *testing.T, path string) {
			os.Remove(path)
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "not a ledger", atOpen: true, reason: "not a ledger", damage: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(strings.Repeat("campaign,kind\n", 2000)), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "another bbolt format", atOpen: true, reason: "another file format", damage: func(t *testing.T, path string) {
			rewriteMetas(t, path, 3)
		}},
		{name: "a damaged format mark", atOpen: true, reason: "its format mark is damaged", damage: func(t *testing.T, path string) {
			updateBolt(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketFormat).Put(keyFormat, []byte{0xff}) })
		}},
		{name: "another imcast format", atOpen: true, reason: "another version of imcast", damage: func(t *testing.T, path string) {
			updateBolt(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketFormat).Put(keyFormat, binary.AppendUvarint(nil, 99)) })
		}},
		{name: "foreign bbolt file", atOpen: true, reason: "not an imcast ledger", damage: func(t *testing.T, path string) {
			os.Remove(path)
			updateBolt(t, path, func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("keys")); return err })
		}},
		{name: "unknown state", reason: "does not decode", damage: func(t *testing.T, path string) {
			updateBolt(t, path, func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketCampaigns).Bucket([]byte("spring")).Bucket(bucketBatches)
				k, v := b.Cursor().First()
				v = append([]byte(nil), v...)
				v[1] = 9
				return b.Put(k, v)
			})
		}},
		{name: "a bit flipped in a recipient", reason: "does not decode", damage: func(t *testing.T, path string) {
			updateBolt(t, path, func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketCampaigns).Bucket([]byte("spring")).Bucket(bucketBatches)
				k, v := b.Cursor().Last()
				v = append([]byte(nil), v...)
				v[len(v)/2] ^= 0x04 // inside the recipient: another, valid, ID
				return b.Put(k, v)
			})
		}},
		{name: "overwritten pages", reason: "", damage: func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ps := int(binary.NativeEndian.Uint32(b[pageHeaderSize+8:]))
			for i := 2 * ps; i < len(b); i++ {
				b[i] = byte(i*7919 + i>>8)
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "overwritten data pages", reason: "", damage: func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m0, _ := readMeta(b)
			m1, _ := readMeta(b[m0.pageSize:])
			ps := int(m0.pageSize)
			for i := 2 * ps; i < len(b); i++ {
				if pg := uint64(i / ps); pg != m0.freelist && pg != m1.freelist {
					b[i] = byte(i*7919 + i>>8)
				}
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := sentLedger(t)
			tt.damage(t, path)
			s, err := Open(path, Options{})
			if err == nil {
				if tt.atOpen {
					t.Fatalf("Open: no error, want the damage found before bbolt maps the file")
				}
				_, err = s.Campaign("spring").Load()
				if err == nil {
					_, err = s.Campaigns()
				}
			}
			var de *DamagedError
			if !errors.As(err, &de) || !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want a DamagedError naming %s", err, path)
			}
			if s != nil {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				s = nil
			}
			if !strings.Contains(de.Reason, tt.reason) {
				t.Errorf("reason %q, want it to say %q", de.Reason, tt.reason)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []Record{
		{Seq: 7, Kind: "users", Digest: digestOf("a"), To: []string{"u1", "u2"}, State: Sent, IDs: []string{"1029457500870543736", "1029457500870543737"}},
		{Seq: 7, Kind: "group_members", Scope: "g1", To: []string{"m1", "m2"}, State: Sent, IDs: []string{"77", "77"}},
		{Kind: "users", To: []string{"u1"}, State: Sent, IDs: []string{"x-1"}},
		{Kind: "rooms", To: []string{"r1"}, State: Failed, Error: "permanent: status 400", Attempts: 3},
		{Kind: "users", To: []string{"用户"}, State: Uncertain},
	} {
		f.Add(r.encode())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, full := range []bool{false, true} {
			r, err := decodeRecord(7, b, full)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error %v does not wrap ErrCorrupt", err)
				}
				continue
			}
			if r.State > Uncertain || r.Kind == "" || (full && r.IDs != nil && len(r.IDs) != len(r.To)) {
				t.Fatalf("decoded an invalid record: %+v", r)
			}
			if full {
				again, err := decodeRecord(7, r.encode(), true)
				if err != nil || again.State != r.State || len(again.To) != len(r.To) {
					t.Fatalf("re-encoded record decodes as %+v, %v; want %+v", again, err, r)
				}
			}
		}
	})
}

// TestVersion1RecordsStillRead checks that records written before they
// carried a checksum still decode.
func TestVersion1RecordsStillRead(t *testing.T) {
	r := Record{Seq: 3, Kind: "users", Digest: digestOf("a"), To: []string{"u1", "u2"}, State: Sent, IDs: []string{"11", "12"}}
	b := r.encode()
	v1 := append([]byte(nil), b[:len(b)-4]...)
	v1[0] = recordVersion1
	got, err := decodeRecord(3, v1, true)
	if err != nil || got.State != Sent || len(got.To) != 2 || got.IDs[1] != "12" {
		t.Fatalf("version 1 record: got %+v, %v", got, err)
	}
	if _, err := decodeRecord(4, b, true); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a record read under another key: got %v, want ErrCorrupt", err)
	}
}

// updateBolt opens the bbolt file at path as bbolt itself would, and
// changes it with fn in one transaction.
func updateBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}
