package job

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// sharedWindows keeps the quota windows of an app in Redis, so that every
// imcast process pacing against the app, on any host, books from the same
// windows: the quota belongs to the app, not to the process. Each window
// is a sorted set of the events a limit gave out, one member per event
// (see members), scored by its time in microseconds, and each endpoint
// has a "next" key, the earliest time of its next booking (even spacing).
// Time is the Redis server's (TIME inside the scripts), so hosts with
// skewed clocks agree; the scripts answer with the server's time, which
// the client maps onto its own clock.
type sharedWindows struct {
	rdb    redis.UniversalClient
	prefix string // of every key: the app's
	epoch  string // of the windows this process joined (see epochCheck)
	// born is when the windows were made (the epoch set): they know
	// nothing of the calls made before, and no call is booked into a
	// window that reaches back before it
	born time.Time
	// offset is the server's clock less ours, in µs, as the last call
	// found it
	offset atomic.Int64
	// seq is the highest booking number this process was given: a Redis
	// that gives a lower one was restored from an older snapshot, its
	// windows without the calls made since
	seq atomic.Int64
	// failed is the first error from Redis: the run stops at it, and
	// every call after it fails at once instead of waiting on a Redis
	// that is gone
	failed atomic.Pointer[error]
}

// run runs a script, or fails at once after an earlier failure.
func (s *sharedWindows) run(ctx context.Context, script *redis.Script, keys []string, args ...any) ([]int64, error) {
	if err := s.failed.Load(); err != nil {
		return nil, *err
	}
	keys = append([]string{s.prefix + "epoch"}, keys...)
	args = append([]any{s.epoch}, args...)
	res, err := script.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		err = fmt.Errorf("shared quota (redis): %w", err)
		s.failed.CompareAndSwap(nil, &err)
		return nil, err
	}
	return res, nil
}

// newSharedWindows keeps the windows of the app named by app in rdb, and
// joins them: it reads the app's epoch, setting it first (and the time
// the windows were born) if there is none. A Redis that may evict keys is
// refused: it could drop a window and keep the epoch, and the runs would
// pace against a window emptied under them.
func newSharedWindows(ctx context.Context, rdb redis.UniversalClient, app string) (*sharedWindows, error) {
	if err := checkEviction(ctx, rdb); err != nil {
		return nil, err
	}
	var b [8]byte
	rand.Read(b[:])
	s := &sharedWindows{rdb: rdb, prefix: "imcast:" + app + ":"}
	res, err := joinScript.Run(ctx, rdb, []string{s.prefix + "epoch", s.prefix + "born"}, hex.EncodeToString(b[:])).Slice()
	if err != nil || len(res) != 2 {
		return nil, fmt.Errorf("shared quota (redis): joining the app's windows: %v", err)
	}
	s.epoch, _ = res[0].(string)
	born, _ := res[1].(int64)
	s.born = time.UnixMicro(born)
	return s, nil
}

// joinScript reads the app's epoch (KEYS[1]), setting it to ARGV[1] if
// there is none, and then the windows' birth (KEYS[2]) to the server's
// now: the windows know nothing of the calls made before it. Returns
// {epoch, born µs}.
var joinScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  local tm = redis.call('TIME')
  redis.call('SET', KEYS[2], tonumber(tm[1]) * 1000000 + tonumber(tm[2]))
end
return {redis.call('GET', KEYS[1]), tonumber(redis.call('GET', KEYS[2]) or '0')}
`)

// checkEviction refuses a Redis that may evict keys: one with a memory
// limit and a policy other than noeviction (INFO memory says; a server
// that does not say is taken at its word).
func checkEviction(ctx context.Context, rdb redis.UniversalClient) error {
	// plain INFO, not INFO memory: a real server's default sections hold
	// memory's, and miniredis (the fallback on hosts without redis-server)
	// refuses a section it does not keep
	info, err := rdb.Info(ctx).Result()
	if err != nil {
		return fmt.Errorf("shared quota (redis): %w", err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	policy, limit := fields["maxmemory_policy"], fields["maxmemory"]
	if policy != "" && policy != "noeviction" && limit != "" && limit != "0" {
		return fmt.Errorf("shared quota (redis): the server may evict keys (maxmemory-policy %s with maxmemory %s bytes): a window evicted would let the runs exceed the quota; give it maxmemory-policy noeviction, or no maxmemory", policy, limit)
	}
	return nil
}

// sharedLimit is one limit a call takes from: its window's key suffix,
// the most it holds, its window (the margin is added by the scripts), and
// what this call takes.
type sharedLimit struct {
	name   string
	global bool // of the app, not of one endpoint (a chat room's)
	limit  int
	base   time.Duration
	amount int
	// spaced: the endpoint's calls are spaced evenly by this limit (a
	// chat room's is not: its calls are the endpoint's)
	spaced bool
	// split: the limit counts the call's recipients, and the call may
	// carry fewer of them than asked, the part that fits (see pacer.book)
	split bool
	// from is the first of the call's recipients the limit counts (a
	// chat room's counts its room's): a call split to carry fewer takes
	// nothing from the limits of the recipients it leaves out
	from int
}

// epochCheck begins every script: KEYS[1] is the app's epoch key and
// ARGV[1] the epoch this process found there when it joined. A Redis that
// restarted, or was flushed, has lost the windows the process booked in:
// its epoch key is gone (or another's), and the script refuses, so the
// run stops instead of pacing against empty windows. Both are taken off,
// and the script goes on with its own KEYS and ARGV.
const epochCheck = `
local epochKey = table.remove(KEYS, 1)
local epoch = table.remove(ARGV, 1)
if redis.call('GET', epochKey) ~= epoch then
  return redis.error_reply('the Redis server lost the shared quota windows (restarted or flushed) since this run joined them')
end
`

// widestMargin follows epochCheck in the book and stamp scripts: KEYS[1]
// is the app's margin key and ARGV[1] this run's margin in force, in µs.
// Every window is counted over its base widened by the widest margin any
// run of the app used in the last marginMemory: a run's margin covers the
// time its own calls take from their stamp to the server, and a window
// that holds another run's call must cover that run's time as well. Both
// are taken off; margin and now (the server's clock, µs) are set.
const widestMargin = `
local marginKey = table.remove(KEYS, 1)
local margin = tonumber(table.remove(ARGV, 1))
local widest = tonumber(redis.call('GET', marginKey) or '0')
if margin >= widest then
  redis.call('SET', marginKey, margin, 'PX', ` + marginMemoryMs + `)
else
  margin = widest
end
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
`

// marginMemoryMs is how long, in ms, a run's margin widens every run's
// windows after its last call.
const marginMemoryMs = "10000"

// members are the helpers of every script. A booking of n events holds n
// members of each window it takes from, "SEQ:1" to "SEQ:n" while booked,
// "sSEQ:1" to "sSEQ:n" once stamped, so that what a window holds between
// two times is a ZCOUNT, whatever its calls carry, and no script reads
// the events of a whole window.
const members = `
local function stamped(member) return string.sub(member, 1, 1) == 's' end
local function seqOf(member) return tonumber(string.match(member, '^s?(%d+):')) end
-- each calls ZADD (score given) or ZREM on key with prefix .. 1 to n
local function each(cmd, key, score, prefix, n)
  local args = {}
  for i = 1, n do
    if score then args[#args + 1] = score end
    args[#args + 1] = prefix .. i
    if #args >= 512 then redis.call(cmd, key, unpack(args)); args = {} end
  end
  if #args > 0 then redis.call(cmd, key, unpack(args)) end
end
`

// bookScript reserves a slot: the earliest time, no earlier than the
// server's now, the endpoint's next, and ARGV[1], at which every window
// holds the call. Events booked later than that time count too, so a
// booking never overfills a window that a booking ahead of it ends. Where
// the recipients' window has room for part of the call only, and it may
// be split, the call carries that part: room left unused in a sliding
// window is lost. The endpoint's next moves on by the call's even spacing
// under the spaced limits.
//
// KEYS: the endpoint's next key, the app's sequence key, the windows'
// birth (no booking reaches back before it), then the windows.
// ARGV: earliest µs, the call's recipients, then per window its limit,
// base µs, amount, flags (1 spaced, 2 split) and first recipient counted.
// Returns {at, now, seq, n}: µs of the server's clock, the booking's
// number, which names it in the windows, and the recipients it carries.
var bookScript = redis.NewScript(epochCheck + widestMargin + members + `
local at = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[1]))
local carry = tonumber(ARGV[2])
local seq = redis.call('INCR', KEYS[2])
local born = tonumber(redis.call('GET', KEYS[3]) or '0')
local w = {}
for i = 1, #KEYS - 3 do
  local k = 2 + 5*(i-1)
  local flags = tonumber(ARGV[k + 4])
  w[i] = {key = KEYS[i + 3], limit = tonumber(ARGV[k + 1]), span = tonumber(ARGV[k + 2]) + margin,
    amount = tonumber(ARGV[k + 3]), spaced = flags % 2 == 1, split = flags >= 2, from = tonumber(ARGV[k + 5])}
  -- the calls made before the windows were born are unknown
  at = math.max(at, born + w[i].span)
end
local function take(x) if x.split then return carry end return x.amount end
for round = 1, 8 do
  local moved = false
  for _, x in ipairs(w) do
    if x.from < carry then
      redis.call('ZREMRANGEBYSCORE', x.key, '-inf', '(' .. (now - 2*x.span))
      local from = '(' .. (at - x.span)
      local used = redis.call('ZCOUNT', x.key, from, '+inf')
      if used + take(x) > x.limit then
        if x.split and used < x.limit then
          carry = x.limit - used
        else
          -- the time the events in the way leave; split, the call goes
          -- once any of its recipients fit
          local need = used + (x.split and 1 or take(x)) - x.limit
          local ev = redis.call('ZRANGEBYSCORE', x.key, from, '+inf', 'WITHSCORES', 'LIMIT', need - 1, 1)
          if #ev == 2 and tonumber(ev[2]) + x.span > at then
            at = tonumber(ev[2]) + x.span
            moved = true
          end
        end
      end
    end
  end
  if not moved then break end
end
local keep, spacing = 0, 0
for _, x in ipairs(w) do
  if x.from < carry then
    each('ZADD', x.key, at, seq .. ':', take(x))
    redis.call('PEXPIREAT', x.key, math.floor((at + 2*x.span) / 1000) + 1000)
    keep = math.max(keep, x.span)
    if x.spaced then spacing = math.max(spacing, math.floor(take(x) * x.span / x.limit)) end
  end
end
local nxt = at + spacing
redis.call('SET', KEYS[1], nxt, 'PXAT', math.floor((nxt + keep) / 1000) + 1000)
return {at, now, seq, carry}
`)

// stampScript moves a booking to the server's now, the moment the call
// leaves, if every window still holds it there: the window ending now,
// and each window ending at a later event stamped or booked before this
// one, which the call joins by leaving now. Bookings made after it are
// left out of the later windows, as the local pacer leaves them out (see
// window.holds): if this call leaves late, it is they that wait when
// their time comes. Else it leaves the booking where it was and answers
// the time to try again.
//
// KEYS the windows; ARGV: the booking's number, then limit, base µs and
// amount per window. Returns {0, now} when stamped, {retry, now} when not.
var stampScript = redis.NewScript(epochCheck + widestMargin + members + `
local seq = tonumber(ARGV[1])
local retry = 0
for i = 1, #KEYS do
  local key = KEYS[i]
  local limit = tonumber(ARGV[1 + 3*i - 2])
  local span = tonumber(ARGV[1 + 3*i - 1]) + margin
  local take = tonumber(ARGV[1 + 3*i])
  local booked = tonumber(redis.call('ZSCORE', key, seq .. ':1'))
  -- the events in (from, to], this booking's left out
  local function used(from, to)
    local n = redis.call('ZCOUNT', key, '(' .. from, to)
    if booked and booked > from and booked <= to then n = n - take end
    return n
  end
  if used(now - span, now) + take > limit then
    -- try again once the oldest other event has left
    local ev = redis.call('ZRANGEBYSCORE', key, '(' .. (now - span), now, 'WITHSCORES', 'LIMIT', 0, take + 1)
    for j = 1, #ev, 2 do
      if stamped(ev[j]) or seqOf(ev[j]) ~= seq then
        retry = math.max(retry, tonumber(ev[j + 1]) + span)
        break
      end
    end
  end
  local ahead = redis.call('ZRANGEBYSCORE', key, '(' .. now, '(' .. (now + span), 'WITHSCORES')
  local seen = {}
  for j = 1, #ahead, 2 do
    local t = tonumber(ahead[j + 1])
    if not seen[t] and (stamped(ahead[j]) or seqOf(ahead[j]) < seq) then
      seen[t] = true
      if used(t - span, t) + take > limit then retry = math.max(retry, t + 1) end
    end
  end
end
if retry > 0 then return {retry, now} end
for i = 1, #KEYS do
  local take = tonumber(ARGV[1 + 3*i])
  local span = tonumber(ARGV[1 + 3*i - 1]) + margin
  each('ZREM', KEYS[i], nil, seq .. ':', take)
  each('ZADD', KEYS[i], now, 's' .. seq .. ':', take)
  -- the set may have been emptied and made anew: it lasts as its events do
  redis.call('PEXPIREAT', KEYS[i], math.floor((now + 2*span) / 1000) + 1000)
end
return {0, now}
`)

// cancelScript drops a booking from its windows. KEYS the windows; ARGV:
// the booking's number, then the amount per window.
var cancelScript = redis.NewScript(epochCheck + members + `
for i = 1, #KEYS do
  each('ZREM', KEYS[i], nil, ARGV[1] .. ':', tonumber(ARGV[1 + i]))
  each('ZREM', KEYS[i], nil, 's' .. ARGV[1] .. ':', tonumber(ARGV[1 + i]))
end
return {0}
`)

// local maps a time of the server's clock (µs) onto ours, from the
// server's now as a script saw it, taken halfway through the round trip,
// and keeps the offset between the clocks.
func (s *sharedWindows) local(at, now int64, sent, got time.Time) time.Time {
	mid := sent.Add(got.Sub(sent) / 2)
	s.offset.Store(now - mid.UnixMicro())
	return mid.Add(time.Duration(at-now) * time.Microsecond)
}

func (s *sharedWindows) keys(endpoint string, limits []sharedLimit) []string {
	keys := make([]string, len(limits))
	for i, l := range limits {
		keys[i] = s.prefix + endpoint + ":" + l.name
		if l.global {
			keys[i] = s.prefix + l.name
		}
	}
	return keys
}

// scriptArgs is what the book and stamp scripts take, after the
// prefixes' keys and arguments: first, then each limit's, in full for the
// book script.
func scriptArgs(first []any, limits []sharedLimit, book bool) []any {
	args := first
	for _, l := range limits {
		args = append(args, l.limit, l.base.Microseconds(), l.amount)
		if book {
			flags := 0
			if l.spaced {
				flags |= 1
			}
			if l.split {
				flags |= 2
			}
			args = append(args, flags, l.from)
		}
	}
	return args
}

// prefixed puts the margin prefix's key and argument (see widestMargin)
// before a script's own.
func (s *sharedWindows) prefixed(keys []string, args []any, margin time.Duration) ([]string, []any) {
	return append([]string{s.prefix + "margin"}, keys...), append([]any{margin.Microseconds()}, args...)
}

// book reserves a slot for a call to n recipients no earlier than
// earliest (zero: at once) in the windows of limits, counted over their
// base widened by margin (or a wider one in force), and returns when, on
// this host's clock, the booking's number, and how many of the
// recipients it carries.
func (s *sharedWindows) book(ctx context.Context, endpoint string, n int, limits []sharedLimit, margin time.Duration, earliest time.Time) (time.Time, int64, int, error) {
	keys := append([]string{s.prefix + endpoint + ":next", s.prefix + "seq", s.prefix + "born"}, s.keys(endpoint, limits)...)
	var from int64
	if !earliest.IsZero() {
		from = earliest.UnixMicro() + s.offset.Load()
	}
	keys, args := s.prefixed(keys, scriptArgs([]any{from, n}, limits, true), margin)
	floor := s.seq.Load() // given before this booking was asked for
	sent := time.Now()
	res, err := s.run(ctx, bookScript, keys, args...)
	got := time.Now()
	if err != nil {
		return time.Time{}, 0, 0, err
	}
	if err := s.gave(floor, res[2]); err != nil {
		return time.Time{}, 0, 0, err
	}
	return s.local(res[0], res[1], sent, got), res[2], int(res[3]), nil
}

// gave checks booking number seq, given by a call made once floor had
// been given: Redis numbers bookings in order, and a lower one means its
// windows went back in time. It keeps the highest.
func (s *sharedWindows) gave(floor, seq int64) error {
	if seq <= floor {
		err := errors.New("shared quota (redis): the Redis server's windows went back in time (restored from an older snapshot?) since this run joined them")
		s.failed.CompareAndSwap(nil, &err)
		return err
	}
	for {
		old := s.seq.Load()
		if seq <= old || s.seq.CompareAndSwap(old, seq) {
			return nil
		}
	}
}

// stamp counts booking seq at the server's now, as its call leaves, and
// returns that moment on our clock; it reports false, and when to try
// again, if a window is full there.
func (s *sharedWindows) stamp(ctx context.Context, endpoint string, seq int64, limits []sharedLimit, margin time.Duration) (bool, time.Time, error) {
	ok, at, _, err := s.stampAt(ctx, endpoint, seq, limits, margin)
	return ok, at, err
}

// stampAt is stamp, with the server's now (µs) as well: the time the
// windows hold.
func (s *sharedWindows) stampAt(ctx context.Context, endpoint string, seq int64, limits []sharedLimit, margin time.Duration) (bool, time.Time, int64, error) {
	keys, args := s.prefixed(s.keys(endpoint, limits), scriptArgs([]any{seq}, limits, false), margin)
	sent := time.Now()
	res, err := s.run(ctx, stampScript, keys, args...)
	got := time.Now()
	if err != nil {
		return false, time.Time{}, 0, err
	}
	if res[0] == 0 {
		return true, s.local(res[1], res[1], sent, got), res[1], nil // when it counted
	}
	return false, s.local(res[0], res[1], sent, got), res[1], nil
}

// cancel drops booking seq.
func (s *sharedWindows) cancel(ctx context.Context, endpoint string, seq int64, limits []sharedLimit) error {
	args := []any{seq}
	for _, l := range limits {
		args = append(args, l.amount)
	}
	_, err := s.run(ctx, cancelScript, s.keys(endpoint, limits), args...)
	return err
}

// SharedQuota is an app's quota windows in Redis, for Config.Shared.
type SharedQuota struct{ w *sharedWindows }

// New reports whether the app's windows were made within the last
// minute (by this run or another): their calls wait a window's length,
// up to a minute, for the calls made before them, which they do not
// know, to leave the window.
func (q *SharedQuota) New() bool { return time.Since(q.w.born) < time.Minute+time.Second }

// NewSharedQuota keeps the windows of app (its org and app, or its app
// ID) in rdb, and joins them.
func NewSharedQuota(ctx context.Context, rdb redis.UniversalClient, app string) (*SharedQuota, error) {
	w, err := newSharedWindows(ctx, rdb, app)
	if err != nil {
		return nil, err
	}
	return &SharedQuota{w: w}, nil
}

// sharedTimeout bounds each call to Redis: a Redis gone away stops the
// run within it (Run stops dispatching at the first error).
const sharedTimeout = 2 * time.Second

// sharedPacer is an endpoint's part of the shared windows.
type sharedPacer struct {
	w        *sharedWindows
	endpoint string
}

func (s *sharedPacer) book(b booking, limits []sharedLimit, margin time.Duration) (time.Time, int64, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	return s.w.book(ctx, s.endpoint, b.n, limits, margin, b.at)
}

func (s *sharedPacer) stamp(b booking, limits []sharedLimit, margin time.Duration) (bool, time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	return s.w.stamp(ctx, s.endpoint, b.seq, limits, margin)
}

func (s *sharedPacer) cancel(b booking, limits []sharedLimit) error {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	return s.w.cancel(ctx, s.endpoint, b.seq, limits)
}
