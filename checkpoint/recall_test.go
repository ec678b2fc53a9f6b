package checkpoint

import (
	"encoding/binary"
	"testing"

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
