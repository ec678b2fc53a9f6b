package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func digestOf(s string) (d [32]byte) {
	copy(d[:], s)
	return d
}

func TestOpenIsExclusiveAndPrivate(t *testing.T) {
	s, path := openTemp(t)
	_ = s
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Errorf("ledger file mode: got %o, want 600", mode)
	}
	start := time.Now()
	_, err = Open(path, Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("second Open took %v; it must fail at once", took)
	}
}

func TestOpenTightensAnExistingFilesMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, _ := os.Stat(path)
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Errorf("mode after reopening: got %o, want 600", mode)
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	s, _ := openTemp(t)
	c := s.Campaign("spring")
	tests := []struct {
		name string
		rec  Record
	}{
		{name: "numeric IDs", rec: Record{Kind: "users", Digest: digestOf("a"), To: []string{"u1", "u2"}, State: Sent, IDs: []string{"1029457500870543736", "1029457500870543737"}}},
		{name: "shared ID", rec: Record{Kind: "group_members", Scope: "g1", Digest: digestOf("b"), To: []string{"m1", "m2", "m3"}, State: Sent, IDs: []string{"77", "77", "77"}}},
		{name: "string IDs", rec: Record{Kind: "users", Digest: digestOf("c"), To: []string{"u1", "u2"}, State: Sent, IDs: []string{"x-1", "007"}}},
		{name: "legacy success", rec: Record{Kind: "legacy_users", Digest: digestOf("d"), To: []string{"u1", "u2"}, State: Sent, IDs: []string{"success", "success"}}},
		{name: "failed", rec: Record{Kind: "rooms", Digest: digestOf("e"), To: []string{"r1"}, State: Failed, Error: "permanent: status 400: message_send_error: message is too large", Attempts: 1}},
		{name: "unicode recipient", rec: Record{Kind: "users", Digest: digestOf("f"), To: []string{"用户一", "ユーザー"}, State: Uncertain, Error: "ambiguous: status 500", Attempts: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.rec
			want := r
			if err := c.Begin(&r); err != nil {
				t.Fatalf("Begin: %v", err)
			}
			if r.Seq == 0 || r.State != InFlight {
				t.Fatalf("after Begin: seq %d state %v, want a sequence and in_flight", r.Seq, r.State)
			}
			r.State, r.IDs, r.Error, r.Attempts = want.State, want.IDs, want.Error, want.Attempts
			if err := c.Finish(&r); err != nil {
				t.Fatalf("Finish: %v", err)
			}
			var got *Record
			err := c.Records(func(x Record) error {
				if x.Seq == r.Seq {
					got = &x
				}
				return nil
			})
			if err != nil || got == nil {
				t.Fatalf("Records: %v, found %v", err, got != nil)
			}
			if got.Kind != want.Kind || got.Scope != want.Scope || got.Digest != want.Digest || got.State != want.State ||
				got.Error != want.Error || got.Attempts != want.Attempts || !slices.Equal(got.To, want.To) || !slices.Equal(got.IDs, want.IDs) {
				t.Errorf("read back %+v\nwant %+v", *got, want)
			}
			if got.Time.IsZero() {
				t.Error("record has no time")
			}
		})
	}
}

func TestResumeMarksInFlightUncertain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Campaign("c")
	sent := Record{Kind: "users", Digest: digestOf("m"), To: []string{"a", "b"}}
	flying := Record{Kind: "users", Digest: digestOf("m"), To: []string{"c", "d"}}
	for _, r := range []*Record{&sent, &flying} {
		if err := c.Begin(r); err != nil {
			t.Fatal(err)
		}
	}
	sent.State, sent.IDs = Sent, []string{"1", "2"}
	if err := c.Finish(&sent); err != nil {
		t.Fatal(err)
	}
	s.Close() // as if the process died with "flying" on the wire

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c = s.Campaign("c")
	d, err := c.Resume()
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	want := map[string]State{"a": Sent, "b": Sent, "c": Uncertain, "d": Uncertain, "e": Pending}
	for to, st := range want {
		if got := d.State("users", "", digestOf("m"), to); got != st {
			t.Errorf("state of %s: got %v, want %v", to, got, st)
		}
	}
	if d.Count(Sent) != 2 || d.Count(Uncertain) != 2 {
		t.Errorf("counts: sent %d uncertain %d, want 2 and 2", d.Count(Sent), d.Count(Uncertain))
	}
	// the change is durable: the record itself now says uncertain
	err = c.Records(func(r Record) error {
		if r.Seq == flying.Seq && (r.State != Uncertain || r.Error != InterruptedError) {
			t.Errorf("in-flight record after Resume: state %v error %q, want uncertain with %q", r.State, r.Error, InterruptedError)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLatestRecordWins(t *testing.T) {
	s, _ := openTemp(t)
	c := s.Campaign("c")
	dg := digestOf("m")
	write := func(st State, to ...string) {
		t.Helper()
		r := Record{Kind: "users", Digest: dg, To: to}
		if err := c.Begin(&r); err != nil {
			t.Fatal(err)
		}
		r.State = st
		if st == Sent {
			for range to {
				r.IDs = append(r.IDs, "42")
			}
		}
		if err := c.Finish(&r); err != nil {
			t.Fatal(err)
		}
	}
	write(Failed, "a", "b")
	write(Pending, "c")
	write(Sent, "a", "c")
	d, err := c.Load()
	if err != nil {
		t.Fatal(err)
	}
	for to, want := range map[string]State{"a": Sent, "b": Failed, "c": Sent} {
		if got := d.State("users", "", dg, to); got != want {
			t.Errorf("%s: got %v, want %v", to, got, want)
		}
	}
	if d.Len() != 3 || d.Count(Sent) != 2 || d.Count(Failed) != 1 || d.Count(Pending) != 0 {
		t.Errorf("len %d sent %d failed %d pending %d, want 3, 2, 1, 0", d.Len(), d.Count(Sent), d.Count(Failed), d.Count(Pending))
	}
	var rows []string
	err = c.EachDelivery(func(x Delivery) error {
		rows = append(rows, fmt.Sprintf("%s=%v:%s", x.To, x.State, x.MessageID))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"b=failed:", "a=sent:42", "c=sent:42"}; !slices.Equal(rows, want) {
		t.Errorf("EachDelivery: got %v, want %v", rows, want)
	}
}

func TestCampaignsAreSeparate(t *testing.T) {
	s, _ := openTemp(t)
	for _, name := range []string{"b", "a"} {
		r := Record{Kind: "users", Digest: digestOf("m"), To: []string{"u"}, Message: []byte(`{"type":"txt"}`)}
		if err := s.Campaign(name).Begin(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Campaign("a").SetPlanned(12); err != nil {
		t.Fatal(err)
	}
	names, err := s.Campaigns()
	if err != nil || !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("Campaigns: got %v, %v; want [a b]", names, err)
	}
	if n, _ := s.Campaign("a").Planned(); n != 12 {
		t.Errorf("a planned: got %d, want 12", n)
	}
	if n, _ := s.Campaign("b").Planned(); n != 0 {
		t.Errorf("b planned: got %d, want 0", n)
	}
	if msg, _ := s.Campaign("a").Message(digestOf("m")); string(msg) != `{"type":"txt"}` {
		t.Errorf("message: got %q", msg)
	}
	if msg, _ := s.Campaign("c").Message(digestOf("m")); msg != nil {
		t.Errorf("message of an unknown campaign: got %q, want nil", msg)
	}
}

// TestConcurrentWritersShareCommits holds the commit loop with one write
// while eight more wait: once it lets go, the eight are one commit, and
// each is durable.
func TestConcurrentWritersShareCommits(t *testing.T) {
	s, _ := openTemp(t)
	c := s.Campaign("c")
	release := make(chan struct{})
	var once sync.Once
	let := func() { once.Do(func() { close(release) }) }
	t.Cleanup(let) // before the store closes, so that it can
	held := make(chan error, 1)
	go func() {
		held <- s.write(func(*bolt.Tx) error { <-release; return nil })
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				let()
				t.Fatalf("no %s in a minute", what)
			}
		}
	}
	waitFor("commit holding the loop", func() bool { return s.commits.Load() == 1 })
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := Record{Kind: "users", Digest: digestOf("m"), To: []string{fmt.Sprintf("w%d", w)}}
			errs <- c.Begin(&r)
		}()
	}
	waitFor("eight writes waiting", func() bool { return s.queued.Load() == writers+1 })
	let()
	wg.Wait()
	close(errs)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := s.commits.Load() - 1; got != 1 {
		t.Errorf("the %d waiting writes took %d commits, want 1", writers, got)
	}
	d, err := c.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Count(Uncertain); got != writers {
		t.Errorf("in flight (read as uncertain): got %d, want %d", got, writers)
	}
}

func TestCorruptRecordIsAnError(t *testing.T) {
	r := Record{Kind: "users", Digest: digestOf("m"), To: []string{"a", "b"}, State: Sent, IDs: []string{"1", "2"}}
	b := r.encode()
	for _, cut := range []int{1, 5, len(b) / 2, len(b) - 1} {
		if _, err := decodeRecord(1, b[:cut], true); !errors.Is(err, ErrCorrupt) {
			t.Errorf("record cut to %d bytes: got %v, want ErrCorrupt", cut, err)
		}
	}
}

// TestRecentReadsTheLatestCallsOfEveryCampaign writes calls of two
// campaigns at times long ago and just now: Recent gives back those at or
// after its time, in flight or answered, and no older one.
func TestRecentReadsTheLatestCallsOfEveryCampaign(t *testing.T) {
	s, _ := openTemp(t)
	now := time.Now()
	write := func(campaign, to string, at time.Time, finish bool) {
		r := &Record{Campaign: campaign, Kind: "users", To: []string{to}, Time: at}
		if err := s.Begin(r); err != nil {
			t.Fatal(err)
		}
		if finish {
			r.State = Sent
			if err := s.Finish(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("a", "old", now.Add(-time.Hour), true)
	write("a", "older-than-since", now.Add(-2*time.Minute), true)
	write("a", "recent", now.Add(-10*time.Second), true)
	write("b", "in-flight", now.Add(-time.Second), false)
	rr := &Record{Campaign: "b", Kind: "rooms", To: []string{"r1", "r2"}, Time: now.Add(-time.Second)}
	if err := s.Begin(rr); err != nil {
		t.Fatal(err)
	}
	var got []string
	rooms := func(kind string) bool { return kind == "rooms" }
	if err := s.Recent(now.Add(-time.Minute), rooms, func(c Call) error {
		got = append(got, fmt.Sprintf("%s/%s %d %v", c.Campaign, c.Kind, c.Recipients, c.To))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	// recipients read for the kinds asked for only
	if want := []string{"a/users 1 []", "b/rooms 2 [r1 r2]", "b/users 1 []"}; !slices.Equal(got, want) {
		t.Errorf("Recent: %q, want %q", got, want)
	}
}
