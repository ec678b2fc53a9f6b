package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// batchOf600 is a sent batch of 600 users with realistic IDs.
func batchOf600(w, i int) Record {
	r := Record{Kind: "users", Digest: digestOf("spring sale"), To: make([]string, 600), IDs: make([]string, 600)}
	for j := range r.To {
		r.To[j] = fmt.Sprintf("user%03d%05d%03d", w, i, j)
		r.IDs[j] = strconv.FormatUint(1029457500870543736+uint64(w*1e9+i*1000+j), 10)
	}
	return r
}

// fill records batches batches of 600 from 8 workers, each durably in
// flight and then durably sent, as a run does.
func fill(b *testing.B, c *Campaign, batches int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)); i <= batches; i = int(next.Add(1)) {
				r := batchOf600(w, i)
				ids := r.IDs
				r.IDs = nil
				if err := c.Begin(&r); err != nil {
					b.Error(err)
					return
				}
				r.State, r.IDs = Sent, ids
				if err := c.Finish(&r); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkLedger records batches of 600 deliveries from 8 workers, each
// batch durably in flight and then durably sent, as a run does.
func BenchmarkLedger(b *testing.B) {
	path := filepath.Join(b.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	c := s.Campaign("bench")
	fill(b, c, b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N*600)/b.Elapsed().Seconds(), "deliveries/s")
	s.Close()
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(st.Size())/float64(b.N*600), "bytes/delivery")
}

// BenchmarkResume loads a ledger of IMCAST_RESUME_DELIVERIES deliveries
// (default 1 million; 10 million for the figure in the notes), the time a
// resumed run spends before its first send.
func BenchmarkResume(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("IMCAST_RESUME_DELIVERIES"); v != "" {
		if n, _ = strconv.Atoi(v); n <= 0 {
			b.Fatalf("IMCAST_RESUME_DELIVERIES=%q", v)
		}
	}
	path := filepath.Join(b.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	c := s.Campaign("bench")
	batches := n / 600
	fill(b, c, batches)
	s.Close()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		s, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		d, err := s.Campaign("bench").Resume()
		if err != nil {
			b.Fatal(err)
		}
		if d.Len() != batches*600 {
			b.Fatalf("resumed %d deliveries, want %d", d.Len(), batches*600)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/resume")
		s.Close()
	}
}
