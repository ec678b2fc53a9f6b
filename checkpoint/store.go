package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	boltErrors "go.etcd.io/bbolt/errors"
)

var (
	bucketCampaigns = []byte("campaigns")
	bucketUploads   = []byte("uploads")
	bucketBatches   = []byte("batches")
	bucketMessages  = []byte("messages")
	bucketInfo      = []byte("info")
	keyPlanned      = []byte("planned")
	keyComplete     = []byte("complete")
	bucketHosts     = []byte("hosts")
	bucketFormat    = []byte("imcast")
	keyFormat       = []byte("format")
)

// format is the ledger's layout version, recorded in every ledger file so
// that a file from another version of imcast is refused, not misread.
const format = 1

// Options tune Open.
type Options struct {
	// LockTimeout is how long Open waits for another process to let go of
	// the file; 0 means 100 ms.
	LockTimeout time.Duration
	// MustExist refuses a path with no file (ErrNoLedger), instead of
	// creating an empty ledger there: what a command that only reads
	// wants, so that a mistyped --state is an error, not an empty answer.
	MustExist bool
}

// Store is an open ledger file. It is safe for concurrent use.
type Store struct {
	db      *bolt.DB
	path    string
	created bool // Open made the file

	ops     chan op
	wg      sync.WaitGroup
	closing sync.Once
	// writes waiting for their commit, and commits made: what a test of
	// the group commit watches
	queued, commits atomic.Int64
}

// op is a write waiting for the next group commit.
type op struct {
	fn   func(tx *bolt.Tx) error
	done chan error
}

// Open opens or creates the ledger at path, with mode 0600. It fails with
// ErrLocked if another process has it open.
func Open(path string, opts Options) (*Store, error) {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = 100 * time.Millisecond
	}
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist)
	if opts.MustExist && created {
		return nil, fmt.Errorf("open ledger %s: %w", path, ErrNoLedger)
	}
	if err := checkFile(path, timeout); errors.Is(err, ErrLocked) {
		return nil, lockedError(path)
	} else if err != nil {
		return nil, openError(path, err)
	}
	db, err := openBolt(path, timeout)
	var de *DamagedError
	switch {
	case errors.As(err, &de):
		return nil, err
	case errors.Is(err, boltErrors.ErrTimeout):
		return nil, lockedError(path)
	case errors.Is(err, boltErrors.ErrInvalid), errors.Is(err, boltErrors.ErrChecksum):
		return nil, &DamagedError{Path: path, Reason: "its header is not a ledger's", Err: err}
	case errors.Is(err, boltErrors.ErrVersionMismatch):
		return nil, &DamagedError{Path: path, Reason: "it was written in another file format", Err: err}
	case err != nil:
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	// bbolt keeps the mode of a file that already exists: tighten it.
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	s := &Store{db: db, path: path, created: created, ops: make(chan op)}
	if err := s.update(s.prepare); err != nil {
		db.Close()
		return nil, openError(path, err)
	}
	writeHolder(path)
	s.wg.Add(1)
	go s.commitLoop()
	return s, nil
}

// holderPath is the note beside a ledger naming the process that holds
// it, so that another one refused the lock can say which.
func holderPath(path string) string { return path + ".holder" }

// writeHolder notes this process as the ledger's holder; a note left by
// a process that was killed is overwritten by the next, and read only
// while the lock is held.
func writeHolder(path string) {
	host, _ := os.Hostname()
	note := fmt.Sprintf("pid %d on %s, since %s", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	_ = os.WriteFile(holderPath(path), []byte(note), 0o600)
}

// lockedError is ErrLocked for the ledger at path, naming its holder
// when the note says.
func lockedError(path string) error {
	if note, err := os.ReadFile(holderPath(path)); err == nil && len(note) > 0 && len(note) < 200 {
		return fmt.Errorf("open ledger %s: %w (%s)", path, ErrLocked, note)
	}
	return fmt.Errorf("open ledger %s: %w", path, ErrLocked)
}

// openError words a failure to open the ledger; a *DamagedError names the
// file already.
func openError(path string, err error) error {
	var de *DamagedError
	if errors.As(err, &de) {
		return err
	}
	return fmt.Errorf("open ledger %s: %w", path, err)
}

// openBolt opens the file with bbolt, which reads its header and
// freelist as it does: a page overwritten with garbage makes it panic or
// fault, and that is a damaged ledger, not a crash.
func openBolt(path string, timeout time.Duration) (db *bolt.DB, err error) {
	var file *os.File // kept to let go of its lock if bbolt panics
	open := func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if p := recover(); p != nil {
			if file != nil {
				file.Close()
			}
			db, err = nil, &DamagedError{Path: path, Reason: "its pages do not read as a ledger's", Err: fmt.Errorf("%v", p)}
		}
	}()
	return bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, OpenFile: open})
}

// prepare checks that the file is an imcast ledger of this format, and
// makes the buckets of a new one.
func (s *Store) prepare(tx *bolt.Tx) error {
	fb := tx.Bucket(bucketFormat)
	switch {
	case fb != nil:
		mark := fb.Get(keyFormat)
		v, n := binary.Uvarint(mark)
		if n <= 0 || n != len(mark) {
			return &DamagedError{Path: s.path, Reason: "its format mark is damaged"}
		}
		if v != format {
			return &DamagedError{Path: s.path, Reason: fmt.Sprintf("it was written by another version of imcast (ledger format %d; this one reads %d)", v, format)}
		}
	case tx.Bucket(bucketCampaigns) == nil && hasBuckets(tx):
		return &DamagedError{Path: s.path, Reason: "it is a bbolt file, but not an imcast ledger"}
	}
	for _, name := range [][]byte{bucketCampaigns, bucketUploads, bucketFormat} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketFormat).Put(keyFormat, binary.AppendUvarint(nil, format))
}

// view runs fn in a read transaction; update in a write transaction. A
// record that does not decode, or a page that makes bbolt panic or fault
// (an overwritten file), comes back as a *DamagedError naming the file.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	return s.guard(func() error { return s.db.View(fn) })
}

func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	return s.guard(func() error { return s.db.Update(fn) })
}

func (s *Store) guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if p := recover(); p != nil {
			err = &DamagedError{Path: s.path, Reason: "reading it failed", Err: fmt.Errorf("%v", p)}
		}
	}()
	err = fn()
	var de *DamagedError
	if errors.Is(err, ErrCorrupt) && !errors.As(err, &de) {
		err = &DamagedError{Path: s.path, Reason: "a record does not decode", Err: err}
	}
	return err
}

// Path is the ledger file's path.
func (s *Store) Path() string { return s.path }

// Close waits for pending writes and closes the file. Writes after Close
// panic.
func (s *Store) Close() error {
	s.closing.Do(func() { close(s.ops) })
	s.wg.Wait()
	os.Remove(holderPath(s.path))
	return s.db.Close()
}

// CloseUnused closes the ledger as Close does, and removes its file if
// this Open created it and nothing was recorded in it since: a run
// refused before it began (a mistyped campaign file, an invalid
// campaign, missing credentials) leaves no empty ledger behind. The file
// goes while the lock is still held, so no other process can have it.
func (s *Store) CloseUnused() error {
	s.closing.Do(func() { close(s.ops) })
	s.wg.Wait()
	if s.created {
		empty := true
		_ = s.view(func(tx *bolt.Tx) error {
			for _, name := range [][]byte{bucketCampaigns, bucketUploads} {
				if k, _ := tx.Bucket(name).Cursor().First(); k != nil {
					empty = false
				}
			}
			return nil
		})
		if empty {
			os.Remove(s.path)
		}
	}
	return s.Close()
}

// commitLoop is the group commit: it takes the first waiting write, every
// other write already waiting, and commits them in one transaction, so one
// fsync serves them all. A failing transaction is retried one write at a
// time, so one bad write fails alone.
//
// bbolt's DB.Batch does much the same, but it waits up to MaxBatchDelay
// (10 ms) for more writes before it commits. Every call of a run waits for
// a ledger write before it leaves, so a write here commits as soon as the
// commit before it is done. (Like DB.Batch's, a write's function runs a
// second time, alone, when its group fails.)
func (s *Store) commitLoop() {
	defer s.wg.Done()
	for first := range s.ops {
		batch := []op{first}
	drain:
		for len(batch) < 4096 {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		s.commits.Add(1)
		err := s.update(func(tx *bolt.Tx) error {
			for _, o := range batch {
				if err := o.fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil || len(batch) == 1 {
			for _, o := range batch {
				o.done <- err
			}
			continue
		}
		for _, o := range batch {
			o.done <- s.update(o.fn)
		}
	}
}

// write runs fn in the next group commit and returns once it is durable.
func (s *Store) write(fn func(tx *bolt.Tx) error) error {
	s.queued.Add(1)
	defer s.queued.Add(-1)
	done := make(chan error, 1)
	s.ops <- op{fn: fn, done: done}
	return <-done
}

// Campaign returns the ledger of one campaign; it is created by its first
// write.
func (s *Store) Campaign(name string) *Campaign {
	return &Campaign{s: s, name: []byte(name)}
}

// Campaigns lists the campaigns the ledger holds, in name order.
func (s *Store) Campaigns() ([]string, error) {
	var names []string
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCampaigns).ForEachBucket(func(k []byte) error {
			names = append(names, string(k))
			return nil
		})
	})
	return names, err
}

// Campaign is one campaign's part of the ledger.
type Campaign struct {
	s    *Store
	name []byte
}

// Name is the campaign's name.
func (c *Campaign) Name() string { return string(c.name) }

// bucket returns the campaign's sub-bucket name: nil if there is none,
// but a write creates it (and the campaign's) the first time.
func (c *Campaign) bucket(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	root := tx.Bucket(bucketCampaigns)
	cb := root.Bucket(c.name)
	if cb != nil {
		if b := cb.Bucket(name); b != nil || !tx.Writable() {
			return b, nil
		}
	} else if !tx.Writable() {
		return nil, nil
	}
	cb, err := root.CreateBucketIfNotExists(c.name)
	if err != nil {
		return nil, err
	}
	return cb.CreateBucketIfNotExists(name)
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// Begin durably records r as in flight, gives it a sequence number, and
// stores r.Message under r.Digest if the campaign has no copy yet. Call it
// before the request is written.
func (c *Campaign) Begin(r *Record) error {
	r.State = InFlight
	r.Campaign = c.Name()
	return c.put(r, func(tx *bolt.Tx, b *bolt.Bucket) error {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		r.Seq = seq
		if len(r.Message) == 0 {
			return nil
		}
		mb, err := c.bucket(tx, bucketMessages)
		if err != nil || mb.Get(r.Digest[:]) != nil {
			return err
		}
		return mb.Put(r.Digest[:], r.Message)
	})
}

// Finish durably records r's outcome (its State, IDs, Error) over the
// record Begin wrote. Call it once the answer is in. Each of parts is a
// share of the recipients Begin wrote that had another outcome (those a
// 200 answer left out): it is written as a new record in the same
// transaction, so that no crash or failed write leaves any recipient of
// the batch in flight once r says the call is answered.
func (c *Campaign) Finish(r *Record, parts ...*Record) error {
	if r.Seq == 0 {
		return errors.New("finish: record was never begun")
	}
	if len(parts) == 0 {
		return c.put(r, nil)
	}
	for _, p := range parts {
		p.Campaign = c.Name()
		if p.Time.IsZero() {
			p.Time = time.Now()
		}
	}
	return c.put(r, func(tx *bolt.Tx, b *bolt.Bucket) error {
		for _, p := range parts {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			p.Seq = seq
			if err := b.Put(seqKey(p.Seq), p.encode()); err != nil {
				return err
			}
		}
		return nil
	})
}

// Begin is Campaign.Begin for the campaign r names.
func (s *Store) Begin(r *Record) error { return s.Campaign(r.Campaign).Begin(r) }

// Finish is Campaign.Finish for the campaign r names; parts belong to it
// too.
func (s *Store) Finish(r *Record, parts ...*Record) error {
	return s.Campaign(r.Campaign).Finish(r, parts...)
}

// put writes r under its sequence number, stamped now if it has no time,
// after running before in the same transaction.
func (c *Campaign) put(r *Record, before func(tx *bolt.Tx, b *bolt.Bucket) error) error {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	return c.s.write(func(tx *bolt.Tx) error {
		b, err := c.bucket(tx, bucketBatches)
		if err != nil {
			return err
		}
		if before != nil {
			if err := before(tx, b); err != nil {
				return err
			}
		}
		return b.Put(seqKey(r.Seq), r.encode())
	})
}

// SetPlanned records how many deliveries the campaign's latest plan holds,
// so that status can count those not yet attempted.
func (c *Campaign) SetPlanned(n int64) error {
	return c.s.write(func(tx *bolt.Tx) error {
		b, err := c.bucket(tx, bucketInfo)
		if err != nil {
			return err
		}
		return b.Put(keyPlanned, binary.AppendUvarint(nil, uint64(n)))
	})
}

// Planned returns what SetPlanned recorded, 0 if nothing.
func (c *Campaign) Planned() (int64, error) {
	v, err := c.get(bucketInfo, keyPlanned)
	n, _ := binary.Uvarint(v)
	return int64(n), err
}

// SetComplete records that every delivery of the campaign's files, as
// what (a description of them that the ledger does not read) describes
// them, is sent; nil says no longer. A run that sends clears it first, so
// that while it is set no run of the campaign has been begun since, and
// none has left a batch in flight.
func (c *Campaign) SetComplete(what []byte) error {
	return c.s.write(func(tx *bolt.Tx) error {
		b, err := c.bucket(tx, bucketInfo)
		if err != nil {
			return err
		}
		if what == nil {
			return b.Delete(keyComplete)
		}
		return b.Put(keyComplete, what)
	})
}

// Complete returns what SetComplete recorded, nil if nothing.
func (c *Campaign) Complete() ([]byte, error) {
	return c.get(bucketInfo, keyComplete)
}

// AddHost records via, the API base (host and app) a run of the campaign
// sends through, before its first call: a recall then knows which hosts
// may hold the campaign's messages.
func (c *Campaign) AddHost(via string) error {
	return c.s.write(func(tx *bolt.Tx) error {
		b, err := c.bucket(tx, bucketHosts)
		if err != nil {
			return err
		}
		return b.Put([]byte(via), nil)
	})
}

// Hosts returns what AddHost recorded, sorted; none for a ledger from
// before hosts were recorded.
func (c *Campaign) Hosts() ([]string, error) {
	var hosts []string
	err := c.s.view(func(tx *bolt.Tx) error {
		b, err := c.bucket(tx, bucketHosts)
		if err != nil || b == nil {
			return err
		}
		return b.ForEach(func(k, _ []byte) error {
			hosts = append(hosts, string(k))
			return nil
		})
	})
	return hosts, err
}

// Message returns the message JSON stored for digest, nil if none.
func (c *Campaign) Message(digest [32]byte) ([]byte, error) {
	return c.get(bucketMessages, digest[:])
}

// get returns a copy of the value at key in one of the campaign's buckets,
// nil if there is none.
func (c *Campaign) get(bucket, key []byte) ([]byte, error) {
	var v []byte
	err := c.s.view(func(tx *bolt.Tx) error {
		b, err := c.bucket(tx, bucket)
		if err != nil || b == nil {
			return err
		}
		if got := b.Get(key); got != nil {
			v = append([]byte(nil), got...)
		}
		return nil
	})
	return v, err
}

// Records calls fn with every record of the campaign in sequence order,
// fully decoded.
func (c *Campaign) Records(fn func(Record) error) error {
	return c.records(true, fn)
}

// reread reads r again in full, by its sequence number.
func (c *Campaign) reread(r *Record) error {
	return c.s.view(func(tx *bolt.Tx) error {
		b, err := c.bucket(tx, bucketBatches)
		if err != nil {
			return err
		}
		if b == nil {
			return fmt.Errorf("record %d: gone", r.Seq)
		}
		again, err := decodeRecord(r.Seq, b.Get(seqKey(r.Seq)), true)
		if err != nil {
			return err
		}
		again.Campaign = r.Campaign
		*r = again
		return nil
	})
}

func (c *Campaign) records(full bool, fn func(Record) error) error {
	return c.s.view(func(tx *bolt.Tx) error {
		b, err := c.bucket(tx, bucketBatches)
		if err != nil || b == nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			r, err := decodeRecord(binary.BigEndian.Uint64(k), v, full)
			if err != nil {
				return err
			}
			r.Campaign = c.Name()
			return fn(r)
		})
	})
}

// longestCall bounds how long a call lasts from its ledger write to its
// answer (a stalled call is given up sooner): Recent reads back no further
// than this before since.
const longestCall = 10 * time.Minute

// Recent calls fn with every batch of every campaign whose time (the
// moment it was begun, or answered) is at or after since: the calls of a
// run that stopped a moment ago, which the server's windows still count.
// Their recipients are read only for the kinds toOf names.
// It reads each campaign from its latest record back, no further than
// longestCall before since. Call it before Resume, which rewrites the time
// of records left in flight.
func (s *Store) Recent(since time.Time, toOf func(kind string) bool, fn func(Call) error) error {
	return s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCampaigns).ForEachBucket(func(name []byte) error {
			b := tx.Bucket(bucketCampaigns).Bucket(name).Bucket(bucketBatches)
			if b == nil {
				return nil
			}
			cur := b.Cursor()
			for k, v := cur.Last(); k != nil; k, v = cur.Prev() {
				c, err := decodeCall(binary.BigEndian.Uint64(k), v, toOf)
				if err != nil {
					return err
				}
				if c.Time.Before(since.Add(-longestCall)) {
					return nil // begun before this: answered long ago
				}
				if !c.Time.Before(since) {
					c.Campaign = string(name)
					if err := fn(c); err != nil {
						return err
					}
				}
			}
			return nil
		})
	})
}

// hasBuckets reports whether tx's file holds anything.
func hasBuckets(tx *bolt.Tx) bool {
	k, _ := tx.Cursor().First()
	return k != nil
}

// Existing returns the ledger of campaign name, or an error naming the
// campaigns the ledger holds if it holds no such one (or name is empty).
func (s *Store) Existing(name string) (*Campaign, error) {
	names, err := s.Campaigns()
	if err != nil {
		return nil, err
	}
	held := "no campaign"
	if len(names) > 0 {
		held = strings.Join(names, ", ")
	}
	if name == "" {
		return nil, fmt.Errorf("name the campaign with --campaign NAME: the ledger %s holds %s", s.path, held)
	}
	if !slices.Contains(names, name) {
		return nil, fmt.Errorf("the ledger %s holds no campaign %q (it holds %s)", s.path, name, held)
	}
	return s.Campaign(name), nil
}
