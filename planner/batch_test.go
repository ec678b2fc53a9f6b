package planner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestBatchCaps checks that rows of one message fill batches up to their
// endpoint's cap, and no further, and that Plan counts the same batches.
func TestBatchCaps(t *testing.T) {
	tests := []struct {
		kind  string
		scope string
		n     int
		want  []int
	}{
		// users: 100, what the 6000/min message quota allows a second
		{kind: "users", n: 100, want: []int{100}},
		{kind: "users", n: 101, want: []int{100, 1}},
		{kind: "groups", n: 3, want: []int{3}},
		{kind: "groups", n: 4, want: []int{3, 1}},
		{kind: "rooms", n: 10, want: []int{10}},
		{kind: "rooms", n: 11, want: []int{10, 1}},
		{kind: "group_members", scope: "184524748161025", n: 20, want: []int{20}},
		{kind: "group_members", scope: "184524748161025", n: 21, want: []int{20, 1}},
		{kind: "room_members", scope: "185145305923585", n: 20, want: []int{20}},
		{kind: "room_members", scope: "185145305923585", n: 21, want: []int{20, 1}},
		{kind: "legacy_users", n: 20, want: []int{20}},
		{kind: "legacy_users", n: 21, want: []int{20, 1}},
		{kind: "legacy_groups", n: 20, want: []int{20}},
		{kind: "legacy_groups", n: 21, want: []int{20, 1}},
		{kind: "users", n: 250, want: []int{100, 100, 50}},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.n, tt.kind), func(t *testing.T) {
			to := ids("r", tt.n)
			file := writeFile(t, dir, fmt.Sprintf("caps%d.csv", i), idCSV(tt.kind, tt.scope, "hi", to))
			opts := Options{Files: []string{file}}
			bs := batchesOf(t, opts, nil)
			if got := sizes(bs); !slices.Equal(got, tt.want) {
				t.Errorf("batch sizes: got %v, want %v", got, tt.want)
			}
			var all []string
			for _, b := range bs {
				all = append(all, b.To...)
				if string(b.Message.Kind) != tt.kind || b.Message.Scope != tt.scope {
					t.Errorf("batch of kind %q scope %q, want %q %q", b.Message.Kind, b.Message.Scope, tt.kind, tt.scope)
				}
			}
			if !slices.Equal(all, to) {
				t.Errorf("recipients in batch order: got %d, want the %d of the file in file order", len(all), len(to))
			}
			p := mustPlan(t, opts)
			kp := kindPlan(p, tt.kind)
			if kp.Batches != int64(len(tt.want)) || kp.Calls != int64(len(tt.want)) || kp.Recipients != int64(tt.n) {
				t.Errorf("plan: got %d batches, %d calls, %d recipients; want %d, %d, %d", kp.Batches, kp.Calls, kp.Recipients, len(tt.want), len(tt.want), tt.n)
			}
		})
	}
}

// TestBatchScopes checks that directed rows to different groups or rooms
// never share a batch, however they are interleaved.
func TestBatchScopes(t *testing.T) {
	for _, kind := range []string{"group_members", "room_members"} {
		t.Run(kind, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("kind,scope,to,msg\n")
			for i := range 30 {
				fmt.Fprintf(&b, "%s,s%d,m%02d,hi\n", kind, i%3, i)
			}
			file := writeFile(t, t.TempDir(), "scopes.csv", b.String())
			bs := batchesOf(t, Options{Files: []string{file}}, nil)
			var got []string
			for _, b := range bs {
				got = append(got, fmt.Sprintf("%s %v", b.Message.Scope, b.To))
			}
			checkLines(t, "batches", got, []string{
				"s0 [m00 m03 m06 m09 m12 m15 m18 m21 m24 m27]",
				"s1 [m01 m04 m07 m10 m13 m16 m19 m22 m25 m28]",
				"s2 [m02 m05 m08 m11 m14 m17 m20 m23 m26 m29]",
			})
		})
	}
}

// TestBatchMessages checks that two rows share a batch exactly when their
// messages are the same: any difference in body, from, ext, type, kind or
// an option keeps them apart, while the same JSON written another way
// (key order, spaces, msg for body.msg, a default written out) does not.
func TestBatchMessages(t *testing.T) {
	tests := []struct {
		name string
		a, b string // the rest of a JSONL row after "to"
		same bool
	}{
		{name: "different msg", a: `"msg":"hi"`, b: `"msg":"hello"`},
		{name: "different body", a: `"type":"cmd","body":{"action":"a"}`, b: `"type":"cmd","body":{"action":"b"}`},
		{name: "body field more", a: `"body":{"msg":"hi"}`, b: `"body":{"msg":"hi","x":"1"}`},
		{name: "different from", a: `"msg":"hi","from":"shop"`, b: `"msg":"hi","from":"bot"`},
		{name: "from and admin", a: `"msg":"hi","from":"shop"`, b: `"msg":"hi"`},
		{name: "different ext", a: `"msg":"hi","ext":{"k":"1"}`, b: `"msg":"hi","ext":{"k":"2"}`},
		{name: "ext and none", a: `"msg":"hi","ext":{}`, b: `"msg":"hi"`},
		{name: "ext number and string", a: `"msg":"hi","ext":{"k":1}`, b: `"msg":"hi","ext":{"k":"1"}`},
		{name: "sync_device", a: `"msg":"hi","sync_device":true`, b: `"msg":"hi"`},
		{name: "sync_device true and false", a: `"msg":"hi","sync_device":true`, b: `"msg":"hi","sync_device":false`},
		{name: "routetype", a: `"msg":"hi","routetype":"ROUTE_ONLINE"`, b: `"msg":"hi"`},
		{name: "roam_ignore_users", a: `"msg":"hi","roam_ignore_users":["x"]`, b: `"msg":"hi","roam_ignore_users":["y"]`},
		{name: "kind", a: `"kind":"users","msg":"hi"`, b: `"kind":"legacy_users","msg":"hi"`},
		{name: "type", a: `"type":"cmd","body":{"action":"a","msg":"x"}`, b: `"type":"txt","body":{"action":"a","msg":"x"}`},
		{name: "chatroom_msg_level", a: `"kind":"rooms","msg":"hi","chatroom_msg_level":"high"`, b: `"kind":"rooms","msg":"hi","chatroom_msg_level":"low"`},
		{name: "need_group_ack", a: `"kind":"groups","msg":"hi","need_group_ack":true`, b: `"kind":"groups","msg":"hi"`},
		{name: "body key order", a: `"body":{"msg":"hi","a":"1","b":{"y":"2","x":"3"}}`, b: `"body":{"b":{"x":"3","y":"2"},"a":"1","msg":"hi"}`, same: true},
		{name: "ext key order", a: `"msg":"hi","ext":{"a":"1","b":"2"}`, b: `"msg":"hi","ext":{"b":"2","a":"1"}`, same: true},
		{name: "spaces", a: `"msg":"hi","ext":{"a":[1,2]}`, b: `"msg":"hi","ext":{ "a" : [ 1 , 2 ] }`, same: true},
		{name: "msg is body.msg", a: `"msg":"hi"`, b: `"body":{"msg":"hi"}`, same: true},
		{name: "defaults written out", a: `"msg":"hi"`, b: `"kind":"users","type":"txt","msg":"hi"`, same: true},
		{name: "same text escaped", a: `"msg":"é<"`, b: `"msg":"\u00e9\u003c"`, same: true},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := fmt.Sprintf("{\"to\":\"r1\",%s}\n{\"to\":\"r2\",%s}\n", tt.a, tt.b)
			file := writeFile(t, dir, fmt.Sprintf("messages%d.jsonl", i), content)
			bs := batchesOf(t, Options{Files: []string{file}}, nil)
			want := []int{1, 1}
			if tt.same {
				want = []int{2}
			}
			if got := sizes(bs); !slices.Equal(got, want) {
				t.Errorf("batch sizes: got %v, want %v", got, want)
			}
		})
	}
}

// TestBatchRepeats checks that a recipient listed twice for one message is
// kept once, and counted as repeated by Plan, while the same recipient of
// two messages gets both.
func TestBatchRepeats(t *testing.T) {
	tests := []struct {
		name         string
		content      string
		want         []string // batches
		wantRepeated int64
	}{
		{
			name:         "twice for one message",
			content:      "to,msg\nalice,hi\nbob,hi\nalice,hi\n bob ,hi\ncarol,hi\n",
			want:         []string{"hi [alice bob carol]"},
			wantRepeated: 2,
		},
		{
			name:    "once for each of two messages",
			content: "to,msg\nalice,hi\nalice,bye\n",
			want:    []string{"hi [alice]", "bye [alice]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, t.TempDir(), "repeats.csv", tt.content)
			opts := Options{Files: []string{file}}
			var got []string
			for _, b := range batchesOf(t, opts, nil) {
				got = append(got, fmt.Sprintf("%s %v", bodyMsg(t, b), b.To))
			}
			checkLines(t, "batches", got, tt.want)
			p := mustPlan(t, opts)
			if p.Total.Repeated != tt.wantRepeated {
				t.Errorf("repeated: got %d, want %d", p.Total.Repeated, tt.wantRepeated)
			}
		})
	}

	t.Run("in a JSONL array and across files", func(t *testing.T) {
		dir := t.TempDir()
		a := writeFile(t, dir, "a.jsonl", `{"to":["alice","bob","alice"],"msg":"hi"}`+"\n")
		b := writeFile(t, dir, "b.csv", "to,msg\nbob,hi\ncarol,hi\n")
		opts := Options{Files: []string{a, b}}
		bs := batchesOf(t, opts, nil)
		if len(bs) != 1 || fmt.Sprint(bs[0].To) != "[alice bob carol]" {
			t.Errorf("batches: got %d, first %v; want 1 of [alice bob carol]", len(bs), bs[0].To)
		}
		p := mustPlan(t, opts)
		if p.Total.Recipients != 3 || p.Total.Repeated != 2 || p.Rows != 5 {
			t.Errorf("plan: got %d recipients, %d repeated, %d read; want 3, 2, 5", p.Total.Recipients, p.Total.Repeated, p.Rows)
		}
	})
}

// batchKey describes a batch fully enough to compare two runs.
func batchKey(b Batch) string {
	return fmt.Sprintf("%s/%s/%x %v", b.Message.Kind, b.Message.Scope, b.Message.Digest, b.To)
}

// TestBatchesDeterministic checks that the same input always gives the same
// batches in the same order: full batches as they fill, then the partial
// ones in the order their messages first appeared.
func TestBatchesDeterministic(t *testing.T) {
	t.Run("samples, twice", func(t *testing.T) {
		opts := Options{Files: []string{"../samples/mixed.jsonl", "../samples/mixed.csv", "../samples/users.csv", "../samples/groups.jsonl", "../samples/legacy.jsonl"}}
		var runs [2][]string
		for i := range runs {
			for _, b := range batchesOf(t, opts, nil) {
				runs[i] = append(runs[i], batchKey(b))
			}
		}
		checkLines(t, "second run against the first", runs[1], runs[0])
	})
	t.Run("order", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("to,msg\n")
		b.WriteString("a1,first\na2,first\n")
		for _, id := range ids("b", 100) {
			fmt.Fprintf(&b, "%s,second\n", id)
		}
		b.WriteString("c1,third\na3,first\n")
		file := writeFile(t, t.TempDir(), "order.csv", b.String())
		var got []string
		for _, bt := range batchesOf(t, Options{Files: []string{file}}, nil) {
			got = append(got, fmt.Sprintf("%s %d", bodyMsg(t, bt), len(bt.To)))
		}
		checkLines(t, "batches", got, []string{"second 100", "first 3", "third 1"})
	})
}

// TestBatchesPending checks that deliveries PendingFunc rejects are left out
// and the batches still fill to the cap, and that its errors stop Batches.
func TestBatchesPending(t *testing.T) {
	to := ids("u", 1300)
	file := writeFile(t, t.TempDir(), "pending.csv", idCSV("users", "", "hi", to))
	opts := Options{Files: []string{file}}

	t.Run("rejects some", func(t *testing.T) {
		asked := 0
		pending := func(m *Message, id string) (bool, error) {
			asked++
			var n int
			fmt.Sscanf(id, "u%d", &n)
			return n%2 == 1, nil
		}
		bs := batchesOf(t, opts, pending)
		if got, want := sizes(bs), []int{100, 100, 100, 100, 100, 100, 50}; !slices.Equal(got, want) {
			t.Errorf("batch sizes: got %v, want %v", got, want)
		}
		for _, b := range bs {
			for _, id := range b.To {
				var n int
				fmt.Sscanf(id, "u%d", &n)
				if n%2 == 0 {
					t.Errorf("batch holds %s, which pending rejected", id)
				}
			}
		}
		if asked != len(to) {
			t.Errorf("pending asked %d times, want %d", asked, len(to))
		}
	})
	t.Run("rejects all", func(t *testing.T) {
		bs := batchesOf(t, opts, func(*Message, string) (bool, error) { return false, nil })
		if len(bs) != 0 {
			t.Errorf("got %d batches, want none", len(bs))
		}
	})
	t.Run("error", func(t *testing.T) {
		errLedger := errors.New("ledger closed")
		_, err := tryBatches(t, opts, func(*Message, string) (bool, error) { return false, errLedger })
		if !errors.Is(err, errLedger) {
			t.Errorf("got error %v, want %v", err, errLedger)
		}
	})
	t.Run("emit error", func(t *testing.T) {
		c, err := Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		errStop := errors.New("stop")
		n := 0
		err = c.Batches(context.Background(), defaultQuotas(t), nil, func(Batch) error { n++; return errStop })
		if !errors.Is(err, errStop) || n != 1 {
			t.Errorf("got error %v after %d batches, want %v after 1", err, n, errStop)
		}
	})
}

// TestBatchesInvalid checks that Batches refuses an invalid campaign.
func TestBatchesInvalid(t *testing.T) {
	_, err := tryBatches(t, Options{Files: []string{invalidDir + "from_empty.jsonl"}}, nil)
	checkLines(t, "problems", problemStrings(t, err), []string{invalidDir + `from_empty.jsonl:2: from is "": leave it out to send as admin`})
}

// TestBatchAPI checks that a batch converts to the API client's batch.
func TestBatchAPI(t *testing.T) {
	file := writeFile(t, t.TempDir(), "m.jsonl", `{"kind":"room_members","scope":"185145305923585","to":["alice","bob"],"msg":"hi","chatroom_msg_level":"high"}`+"\n")
	bs := batchesOf(t, Options{Files: []string{file}}, nil)
	if len(bs) != 1 {
		t.Fatalf("got %d batches, want 1", len(bs))
	}
	body, err := bs[0].API().Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"to":["185145305923585"],"type":"txt","body":{"msg":"hi"},"users":["alice","bob"],"chatroom_msg_level":"high"}`
	if string(body) != want {
		t.Errorf("request:\ngot  %s\nwant %s", body, want)
	}
}
