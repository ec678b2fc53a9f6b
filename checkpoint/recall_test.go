package checkpoint

import (
	"encoding/binary"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestRecallMarks: a mark keeps its state, reason and host across a
// reopen; a mark of state RecallNone removes the message's mark; marks
// written by a ledger of version 1 (no host) or 2 (no doubt) still read.
// The hosts a campaign was sent through read back sorted.
func TestRecallMarks(t *testing.T) {
	s, path := openTemp(t)
	c := s.Campaign("c")
	if err := c.MarkRecalls(
		RecallMark{MsgID: "1", State: RecallInFlight, Via: "https://a1.example/o/a"},
		RecallMark{MsgID: "2", State: NotRecalled, Reason: "not_found msg", Via: "https://a1.example/o/a", Doubt: "https://a2.example/o/a"},
		RecallMark{MsgID: "3", State: RecallInFlight, Via: "https://a1.example/o/a"},
	); err != nil {
		t.Fatal(err)
	}
	if err := c.MarkRecalls(RecallMark{MsgID: "3", State: RecallNone}); err != nil {
		t.Fatal(err)
	}
	// a version 1 mark: state, time, reason, no host
	v1 := RecallMark{MsgID: "4", State: Recalled}
	b := []byte{1, byte(v1.State)}
	b = binary.AppendVarint(b, 0)
	b = appendString(b, "")
	b = binary.BigEndian.AppendUint32(b, markSum(v1.MsgID, b))
	// a version 2 mark: state, time, reason, host, no doubt
	b2 := []byte{2, byte(NotRecalled)}
	b2 = binary.AppendVarint(b2, 0)
	b2 = appendString(b2, "exceed recall time limit")
	b2 = appendString(b2, "https://a1.example/o/a")
	b2 = binary.BigEndian.AppendUint32(b2, markSum("5", b2))
	if err := s.update(func(tx *bolt.Tx) error {
		bk, err := c.bucket(tx, bucketRecalls)
		if err != nil {
			return err
		}
		if err := bk.Put([]byte("5"), b2); err != nil {
			return err
		}
		return bk.Put([]byte("4"), b)
	}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"https://b.example/o/a", "https://a.example/o/a", "https://b.example/o/a"} {
		if err := c.AddHost(h); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err := Open(path, Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	marks, err := s.Campaign("c").Recalls()
	if err != nil {
		t.Fatal(err)
	}
	if m := marks["1"]; m.State != RecallInFlight || m.Via != "https://a1.example/o/a" {
		t.Errorf("mark 1: %+v, want in flight via the host", m)
	}
	if m := marks["2"]; m.State != NotRecalled || m.Reason != "not_found msg" || m.Via != "https://a1.example/o/a" || m.Doubt != "https://a2.example/o/a" {
		t.Errorf("mark 2: %+v, want not recalled, its reason, host and doubt", m)
	}
	if m := marks["5"]; m.State != NotRecalled || m.Reason != "exceed recall time limit" || m.Via != "https://a1.example/o/a" || m.Doubt != "" {
		t.Errorf("a version 2 mark: %+v, want not recalled, its reason and host, no doubt", m)
	}
	hosts, err := s.Campaign("c").Hosts()
	if err != nil || len(hosts) != 2 || hosts[0] != "https://a.example/o/a" || hosts[1] != "https://b.example/o/a" {
		t.Errorf("hosts: %q, %v; want the two, sorted", hosts, err)
	}
	if hosts, err := s.Campaign("other").Hosts(); err != nil || len(hosts) != 0 {
		t.Errorf("hosts of a campaign never sent: %q, %v", hosts, err)
	}
	if _, ok := marks["3"]; ok {
		t.Errorf("mark 3 was removed, but reads %+v", marks["3"])
	}
	if m := marks["4"]; m.State != Recalled || m.Via != "" {
		t.Errorf("a version 1 mark: %+v, want recalled, no host", m)
	}
}

// TestDeliveriesKnowTheirHost: a delivery reads back with the host its
// batch went through, and the recall mark of its message at that host:
// two hosts that gave one ID have a mark each. A record written before
// hosts were (version 2) reads with none, and an in-flight record made
// uncertain by a resume keeps its host.
func TestDeliveriesKnowTheirHost(t *testing.T) {
	s, _ := openTemp(t)
	c := s.Campaign("c")
	for _, r := range []*Record{
		{Kind: "users", Digest: digestOf("m"), To: []string{"u1"}, Via: "https://a.example/o/a"},
		{Kind: "users", Digest: digestOf("m"), To: []string{"u2"}, Via: "https://b.example/o/a"},
	} {
		if err := c.Begin(r); err != nil {
			t.Fatal(err)
		}
		r.State, r.IDs = Sent, []string{"7"}
		if err := c.Finish(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Begin(&Record{Kind: "users", Digest: digestOf("m"), To: []string{"u3"}, Via: "https://a.example/o/a"}); err != nil {
		t.Fatal(err)
	}
	// a version 2 record: the layout of version 3 without the host
	old := Record{Seq: 99, Kind: "users", Digest: digestOf("m"), To: []string{"u4"}, State: Sent, IDs: []string{"8"}}
	b := old.encode()
	b = append([]byte(nil), b[:len(b)-5]...) // the empty host and the checksum
	b[0] = recordVersion2
	b = binary.BigEndian.AppendUint32(b, recordSum(old.Seq, b))
	if err := s.update(func(tx *bolt.Tx) error {
		bk, err := c.bucket(tx, bucketBatches)
		if err != nil {
			return err
		}
		return bk.Put(seqKey(old.Seq), b)
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.MarkRecalls(RecallMark{MsgID: "7", Host: "https://a.example/o/a", State: Recalled}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	got := map[string]Delivery{}
	if err := c.EachDelivery(func(d Delivery) error { got[d.To] = d; return nil }); err != nil {
		t.Fatal(err)
	}
	if d := got["u1"]; d.Via != "https://a.example/o/a" || d.Recall.State != Recalled {
		t.Errorf("u1: via %q, recall %v; want a, recalled", d.Via, d.Recall.State)
	}
	if d := got["u2"]; d.Via != "https://b.example/o/a" || d.Recall.State != RecallNone {
		t.Errorf("u2: via %q, recall %v; want b and no recall: the mark of ID 7 at a is not b's", d.Via, d.Recall.State)
	}
	if d := got["u3"]; d.State != Uncertain || d.Via != "https://a.example/o/a" {
		t.Errorf("u3 after the resume: %v via %q; want uncertain via a", d.State, d.Via)
	}
	if d := got["u4"]; d.State != Sent || d.Via != "" || d.MessageID != "8" {
		t.Errorf("u4, a version 2 record: %+v; want sent, ID 8, no host", d)
	}
}

// TestCopiedBefore: a delivery sent after a call of it was uncertain may
// have two copies; one the operator resolved as failed in between, or
// sent after a refusal, has one.
func TestCopiedBefore(t *testing.T) {
	s, _ := openTemp(t)
	c := s.Campaign("c")
	write := func(to string, state State) {
		t.Helper()
		r := &Record{Kind: "users", Digest: digestOf("m"), To: []string{to}}
		if err := c.Begin(r); err != nil {
			t.Fatal(err)
		}
		r.State = state
		if state == Sent {
			r.IDs = []string{"1"}
		}
		if err := c.Finish(r); err != nil {
			t.Fatal(err)
		}
	}
	write("twice", Uncertain)
	write("twice", Sent)
	write("resolved", Uncertain)
	if _, err := c.Resolve(Failed, func(d Delivery) bool { return d.To == "resolved" }, time.Now()); err != nil {
		t.Fatal(err)
	}
	write("resolved", Sent)
	write("refused", Pending)
	write("refused", Sent)
	want := map[string]bool{"twice": true, "resolved": false, "refused": false}
	if err := c.EachDelivery(func(d Delivery) error {
		if d.CopiedBefore != want[d.To] {
			t.Errorf("%s: copied before %v, want %v", d.To, d.CopiedBefore, want[d.To])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
