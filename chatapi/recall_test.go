package chatapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"imcast/chatapi"
	"imcast/emulator"
)

// TestRecallBatch sends to every kind that answers message IDs and
// recalls them in one batch_recall call, by each kind's chat type (a
// directed message from its group or room): every one recalled; again,
// each not found; a server that leaves messages out of its answer leaves
// them absent from the result.
func TestRecallBatch(t *testing.T) {
	srv := startEmulator(t, emulator.Config{Token: "good"})
	c := newClient(t, srv.URL, chatapi.StaticToken("good"), 0)
	ctx := context.Background()
	var msgs []chatapi.Recall
	for _, b := range []chatapi.Batch{
		txt(chatapi.Users, "", "u1", "u2"), txt(chatapi.Groups, "", "g1"), txt(chatapi.Rooms, "", "r1"),
		txt(chatapi.GroupMembers, "g2", "m1", "m2"), txt(chatapi.RoomMembers, "r2", "m1"),
	} {
		res, err := c.Send(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for to, id := range res.IDs {
			if b.Kind.Scoped() {
				to = b.Scope
			}
			if !seen[id] {
				seen[id] = true
				msgs = append(msgs, chatapi.Recall{MsgID: id, To: to, ChatType: b.Kind.ChatType()})
			}
		}
	}
	res, err := c.RecallBatch(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if reason, ok := res[m.MsgID]; !ok || reason != "" {
			t.Errorf("%+v: recalled %q (answered %v), want recalled", m, reason, ok)
		}
	}
	res, err = c.RecallBatch(ctx, msgs)
	if err != nil || len(res) != len(msgs) || res[msgs[0].MsgID] != chatapi.ReasonNotFound {
		t.Errorf("recalled again: %v %v, want each %q", res, err, chatapi.ReasonNotFound)
	}
	if st := srv.Stats(); st.Recalled != len(msgs) || st.RecallRepeats != len(msgs) {
		t.Errorf("the server recalled %d (repeats %d), want %d", st.Recalled, st.RecallRepeats, len(msgs))
	}

	if _, err := c.RecallBatch(ctx, make([]chatapi.Recall, 31)); err == nil {
		t.Error("31 messages in one call were sent")
	}
	srv.SetFaults(emulator.Faults{Partial: 1})
	res, err = c.RecallBatch(ctx, msgs)
	if err != nil || len(res) >= len(msgs) {
		t.Errorf("a partial answer: %v %v, want fewer than %d results", res, err, len(msgs))
	}
	srv.SetFaults(emulator.Faults{TooManyRequests: 1})
	var e *chatapi.Error
	if _, err := c.RecallBatch(ctx, msgs); !errors.As(err, &e) || e.Outcome != chatapi.NotDelivered {
		t.Errorf("a 429: %v, want not delivered", err)
	}
	srv.SetFaults(emulator.Faults{ErrorAfter: 1})
	if _, err := c.RecallBatch(ctx, msgs); !errors.As(err, &e) || e.Outcome != chatapi.Ambiguous {
		t.Errorf("a 500: %v, want ambiguous", err)
	}
}

// TestRecallRefusedByTheService: an app whose recall service is not
// enabled answers 403, a permanent refusal.
func TestRecallRefusedByTheService(t *testing.T) {
	srv := startEmulator(t, emulator.Config{Token: "good", NoRecall: true})
	c := newClient(t, srv.URL, chatapi.StaticToken("good"), 0)
	var e *chatapi.Error
	_, err := c.RecallBatch(context.Background(), []chatapi.Recall{{MsgID: "1", To: "u1", ChatType: "chat"}})
	if !errors.As(err, &e) || e.Outcome != chatapi.Permanent || e.Status != 403 {
		t.Errorf("recall unopened: %v, want a permanent 403", err)
	}
}

// TestRecallAnswerForms reads the forms a batch_recall answer's items
// take: "yes" (any case), a reason, a boolean, a numeric msg_id, no
// outcome, and an item for a message not asked, which is ignored.
func TestRecallAnswerForms(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"data":[{"msg_id":"1","recalled":"YES"},{"msg_id":"2","recalled":"not_found msg"},`+
			`{"msg_id":"3","recalled":true},{"msg_id":4,"recalled":"yes"},{"msg_id":"5"},{"msg_id":"6","recalled":false},{"msg_id":"99","recalled":"yes"}]}`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, chatapi.StaticToken("good"), 0)
	var msgs []chatapi.Recall
	for i := range 6 {
		msgs = append(msgs, chatapi.Recall{MsgID: fmt.Sprint(i + 1), To: "u", ChatType: "chat"})
	}
	res, err := c.RecallBatch(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"1": "", "2": chatapi.ReasonNotFound, "3": "", "4": ""} {
		if got, ok := res[id]; !ok || got != want {
			t.Errorf("message %s: %q (answered %v), want %q", id, got, ok, want)
		}
	}
	for _, id := range []string{"5", "6"} {
		if got, ok := res[id]; !ok || got == "" {
			t.Errorf("message %s: %q (answered %v), want not recalled with a reason", id, got, ok)
		}
	}
	if _, ok := res["99"]; ok || len(res) != 6 {
		t.Errorf("results %v: want the six asked, not 99", res)
	}
}
