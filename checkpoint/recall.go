package checkpoint

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketRecalls is a campaign's sub-bucket of recall marks, by the host
// a message was sent through and its ID (markKey).
var bucketRecalls = []byte("recalls")

// RecallState is where the recall of one sent message stands.
type RecallState uint8

// The states of a recall. A message with no mark was never asked to be
// recalled.
const (
	RecallNone     RecallState = iota
	RecallInFlight             // a recall call naming it may be on the wire
	Recalled                   // the server recalled it
	NotRecalled                // the server would not (Reason says why), or it cannot be
)

var recallNames = [...]string{"", "recall_in_flight", "recalled", "not_recalled"}

// String names the state as status and report print it.
func (s RecallState) String() string {
	if int(s) < len(recallNames) {
		return recallNames[s]
	}
	return fmt.Sprintf("recall(%d)", int(s))
}

// RecallMark is the recall of one message: every delivery its ID names
// (the members of a directed message share one).
type RecallMark struct {
	MsgID string
	// Host is the API base the message was sent through (Delivery.Via),
	// "" for a delivery of a ledger from before it was recorded: with
	// MsgID it keys the mark, because two hosts may give one ID.
	Host   string
	State  RecallState
	Reason string // with NotRecalled: the server's reason, or why none was asked
	Time   time.Time
	// Via is the API base (host and app) the recall was asked at, for the
	// marks of a call: a message in flight there, or not found there, is
	// not so at another; "" for marks no server gave.
	Via string
	// Doubt is the API base of an earlier recall of the message, at a host
	// that may hold it, that never got its answer: a recall asked at
	// another host since (a mistyped --host) keeps it, so that a not
	// found at Doubt still reads as recalled there.
	Doubt string
}

// recallVersion is the first byte of a mark's encoding, which ends with a
// CRC-32C of its key and value as records do. Version 1 had no Via,
// version 2 no Doubt.
const recallVersion = 3

func (m RecallMark) encode(key []byte) []byte {
	b := []byte{recallVersion, byte(m.State)}
	b = binary.AppendVarint(b, m.Time.UnixNano())
	b = appendString(b, m.Reason)
	b = appendString(b, m.Via)
	b = appendString(b, m.Doubt)
	return binary.BigEndian.AppendUint32(b, markSum(string(key), b))
}

func markSum(id string, b []byte) uint32 {
	return crc32Update(crc32Sum([]byte(id)), b)
}

// markKey is the key of the mark of message id sent through host.
func markKey(host, id string) string {
	if host == "" {
		return id
	}
	return host + "\x00" + id
}

func decodeMark(key string, b []byte) (RecallMark, error) {
	n := len(b) - 4
	if n < 2 || b[0] < 1 || b[0] > recallVersion || binary.BigEndian.Uint32(b[n:]) != markSum(key, b[:n]) {
		return RecallMark{}, fmt.Errorf("recall mark %q: %w", key, ErrCorrupt)
	}
	d := &decoder{b: b[1:n]}
	m := RecallMark{MsgID: key, State: RecallState(d.byte())}
	if host, id, ok := strings.Cut(key, "\x00"); ok {
		m.Host, m.MsgID = host, id
	}
	m.Time = time.Unix(0, d.varint())
	m.Reason = d.string()
	if b[0] >= 2 {
		m.Via = d.string()
	}
	if b[0] >= 3 {
		m.Doubt = d.string()
	}
	if d.err != nil || m.State == RecallNone || m.State > NotRecalled {
		return RecallMark{}, fmt.Errorf("recall mark %q: %w", key, ErrCorrupt)
	}
	return m, nil
}

// Recalls returns the campaign's recall marks by message ID, prefixed by
// the host the message was sent through and a NUL when the mark has one
// (markKey).
func (c *Campaign) Recalls() (map[string]RecallMark, error) {
	marks := map[string]RecallMark{}
	err := c.s.view(func(tx *bolt.Tx) error {
		b, err := c.bucket(tx, bucketRecalls)
		if err != nil || b == nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			m, err := decodeMark(string(k), v)
			if err != nil {
				return err
			}
			marks[string(k)] = m
			return nil
		})
	})
	return marks, err
}

// LastRecall returns the time of the latest recall mark of any campaign,
// zero if none: the calls of every campaign's recall count in one quota.
func (s *Store) LastRecall() (time.Time, error) {
	names, err := s.Campaigns()
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	for _, name := range names {
		marks, err := s.Campaign(name).Recalls()
		if err != nil {
			return time.Time{}, err
		}
		for _, m := range marks {
			if m.Time.After(last) {
				last = m.Time
			}
		}
	}
	return last, nil
}

// MarkRecalls durably records marks (each stamped now if it has no time),
// over any mark of the same message, in one transaction. A mark of state
// RecallNone removes the message's mark: a call that never reached the
// server leaves the message as if never asked.
func (c *Campaign) MarkRecalls(marks ...RecallMark) error {
	now := time.Now()
	return c.s.write(func(tx *bolt.Tx) error {
		b, err := c.bucket(tx, bucketRecalls)
		if err != nil {
			return err
		}
		for _, m := range marks {
			if m.MsgID == "" {
				return fmt.Errorf("recall mark without a message ID")
			}
			key := []byte(markKey(m.Host, m.MsgID))
			if m.State == RecallNone {
				if err := b.Delete(key); err != nil {
					return err
				}
				continue
			}
			if m.Time.IsZero() {
				m.Time = now
			}
			if err := b.Put(key, m.encode(key)); err != nil {
				return err
			}
		}
		return nil
	})
}

func crc32Sum(b []byte) uint32                { return crc32.Checksum(b, crcTable) }
func crc32Update(sum uint32, b []byte) uint32 { return crc32.Update(sum, crcTable, b) }
