package checkpoint

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
	"time"
)

// State is where a delivery stands.
type State uint8

// The states of a delivery. Pending deliveries are not in the ledger at
// all, or were refused without delivery and wait to be sent again.
const (
	Pending   State = iota // not sent yet
	InFlight               // its request may be on the wire
	Sent                   // the server answered with a message ID
	Failed                 // the server refused it for good (400, 404)
	Uncertain              // the server may or may not have delivered it
)

var stateNames = [...]string{"pending", "in_flight", "sent", "failed", "uncertain"}

// String names the state as status and report print it.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// ParseState reads a state name.
func ParseState(name string) (State, error) {
	for i, n := range stateNames {
		if n == name {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("unknown state %q (want pending, in_flight, sent, failed or uncertain)", name)
}

// Record is one batch of deliveries: one message, its kind and scope, and
// the recipients of one call, with the call's outcome.
type Record struct {
	Seq      uint64 // set by Begin
	Campaign string // the campaign it belongs to: not encoded, its bucket names it
	Kind     string
	Scope    string
	Digest   [32]byte // the message's
	To       []string
	State    State
	IDs      []string // with Sent: the message ID of each recipient, "" where the answer gave none
	Error    string   // with Failed, Uncertain and Pending after a refusal
	Attempts int      // calls made for this batch so far
	Time     time.Time
	// Via is the API base (host and app) the batch was sent through;
	// "" in the records of ledgers from before it was recorded. Only
	// that host holds its messages: a recall asks there.
	Via string
	// Message is the message's JSON, stored once per digest by Begin for
	// reports; it is not part of the record.
	Message []byte
}

// Record encodings: version 1 as the first ledgers wrote it; version 2
// ends with a CRC-32C of the record's key and value, because bbolt checks
// only its meta pages, and a bit flipped in a record (a recipient, a
// state) would read as another delivery, which a run would then send;
// version 3 has Via after the IDs, before the checksum.
const (
	recordVersion1 = 1
	recordVersion2 = 2
	recordVersion  = 3
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// recordSum is the checksum of a version 2 record: its sequence key, then
// its value up to the checksum.
func recordSum(seq uint64, b []byte) uint32 {
	return crc32.Update(crc32.Checksum(seqKey(seq), crcTable), crcTable, b)
}

// ID encodings.
const (
	idsNone    = 0
	idsNumeric = 1 // every ID a decimal number that fits 64 bits
	idsStrings = 2
	idsShared  = 3 // one ID for all recipients (directed kinds, legacy "success")
)

func (r *Record) encode() []byte {
	n := 64 + len(r.Kind) + len(r.Scope) + len(r.Error) + len(r.Via)
	for _, t := range r.To {
		n += len(t) + 2
	}
	for _, id := range r.IDs {
		n += len(id) + 2
	}
	b := make([]byte, 0, n)
	b = append(b, recordVersion, byte(r.State))
	b = binary.AppendUvarint(b, uint64(r.Attempts))
	b = binary.AppendVarint(b, r.Time.UnixNano())
	b = appendString(b, r.Kind)
	b = appendString(b, r.Scope)
	b = append(b, r.Digest[:]...)
	b = appendString(b, r.Error)
	b = binary.AppendUvarint(b, uint64(len(r.To)))
	for _, t := range r.To {
		b = appendString(b, t)
	}
	switch mode := idsMode(r.IDs); mode {
	case idsNone:
		b = append(b, idsNone)
	case idsShared:
		b = append(b, idsShared)
		b = appendString(b, r.IDs[0])
	case idsNumeric:
		b = append(b, idsNumeric)
		for _, id := range r.IDs {
			v, _ := strconv.ParseUint(id, 10, 64)
			b = binary.AppendUvarint(b, v)
		}
	default:
		b = append(b, idsStrings)
		for _, id := range r.IDs {
			b = appendString(b, id)
		}
	}
	b = appendString(b, r.Via)
	return binary.BigEndian.AppendUint32(b, recordSum(r.Seq, b))
}

func idsMode(ids []string) int {
	if len(ids) == 0 {
		return idsNone
	}
	shared, numeric := len(ids) > 1, true
	for _, id := range ids {
		if id != ids[0] {
			shared = false
		}
		if v, err := strconv.ParseUint(id, 10, 64); err != nil || strconv.FormatUint(v, 10) != id {
			numeric = false
		}
	}
	switch {
	case shared:
		return idsShared
	case numeric:
		return idsNumeric
	}
	return idsStrings
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads a record, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = ErrCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = ErrCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = ErrCorrupt
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// string copies: the bytes belong to bbolt and die with the transaction.
func (d *decoder) string() string { return string(d.bytes(d.uvarint())) }

func (d *decoder) byte() byte {
	v := d.bytes(1)
	if v == nil {
		return 0
	}
	return v[0]
}

// decodeRecord reads a record; with full false it leaves out the IDs, the
// error and Via, which resuming does not need.
func decodeRecord(seq uint64, b []byte, full bool) (Record, error) {
	r, d, n, err := decodeHead(seq, b, full)
	if err != nil {
		return Record{}, err
	}
	r.To = make([]string, n)
	for i := range r.To {
		r.To[i] = d.string()
	}
	if full {
		switch d.byte() {
		case idsNone:
		case idsShared:
			id := d.string()
			r.IDs = make([]string, n)
			for i := range r.IDs {
				r.IDs[i] = id
			}
		case idsNumeric:
			r.IDs = make([]string, n)
			for i := range r.IDs {
				r.IDs[i] = strconv.FormatUint(d.uvarint(), 10)
			}
		case idsStrings:
			r.IDs = make([]string, n)
			for i := range r.IDs {
				r.IDs[i] = d.string()
			}
		default:
			d.err = ErrCorrupt
		}
		if b[0] >= recordVersion {
			r.Via = d.string()
		}
	}
	if d.err != nil {
		return Record{}, fmt.Errorf("record %d: %w", seq, d.err)
	}
	return r, nil
}

// decodeHead checks a record and reads it up to its recipients (the error
// too, with withError): the record so far, the decoder left at the first
// recipient, and how many there are.
func decodeHead(seq uint64, b []byte, withError bool) (Record, *decoder, uint64, error) {
	if len(b) == 0 {
		return Record{}, nil, 0, fmt.Errorf("record %d: empty: %w", seq, ErrCorrupt)
	}
	switch b[0] {
	case recordVersion1:
	case recordVersion2, recordVersion:
		n := len(b) - 4
		if n < 1 || binary.BigEndian.Uint32(b[n:]) != recordSum(seq, b[:n]) {
			return Record{}, nil, 0, fmt.Errorf("record %d: checksum: %w", seq, ErrCorrupt)
		}
		b = b[:n]
	default:
		return Record{}, nil, 0, fmt.Errorf("record %d: version %d: %w", seq, b[0], ErrCorrupt)
	}
	d := &decoder{b: b}
	d.byte() // the version
	r := Record{Seq: seq}
	r.State = State(d.byte())
	if r.State > Uncertain && d.err == nil {
		return Record{}, nil, 0, fmt.Errorf("record %d: state %d: %w", seq, r.State, ErrCorrupt)
	}
	r.Attempts = int(d.uvarint())
	r.Time = time.Unix(0, d.varint())
	r.Kind = d.string()
	if r.Kind == "" && d.err == nil {
		return Record{}, nil, 0, fmt.Errorf("record %d: no kind: %w", seq, ErrCorrupt)
	}
	r.Scope = d.string()
	copy(r.Digest[:], d.bytes(32))
	if withError {
		r.Error = d.string()
	} else {
		d.bytes(d.uvarint())
	}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		return Record{}, nil, 0, fmt.Errorf("record %d: %w", seq, cmp.Or(d.err, ErrCorrupt))
	}
	return r, d, n, nil
}

// Call is a batch as Recent reads it back: the call it was.
type Call struct {
	Campaign, Kind, Scope string
	Recipients            int
	To                    []string // only of the kinds Recent is asked to read them for
	Time                  time.Time
}

// decodeCall reads a record as a Call, its recipients only if toOf says
// so for its kind: the rest are skipped, not copied.
func decodeCall(seq uint64, b []byte, toOf func(kind string) bool) (Call, error) {
	r, d, n, err := decodeHead(seq, b, false)
	if err != nil {
		return Call{}, err
	}
	c := Call{Kind: r.Kind, Scope: r.Scope, Recipients: int(n), Time: r.Time}
	keep := toOf != nil && toOf(r.Kind)
	for range n {
		if keep {
			c.To = append(c.To, d.string())
		} else {
			d.bytes(d.uvarint())
		}
	}
	if d.err != nil {
		return Call{}, fmt.Errorf("record %d: %w", seq, d.err)
	}
	return c, nil
}
