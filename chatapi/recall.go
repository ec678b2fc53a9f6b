package chatapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The recall endpoints (API.md, "Recall").
const (
	recallPath      = "/messages/msg_recall"
	batchRecallPath = "/messages/batch_recall"
	// MaxRecallPerCall is the most messages one batch_recall call names.
	MaxRecallPerCall = 30
)

// ChatType is the recall chat_type of the kind's messages: "chat" for
// users, "groupchat" for groups and their members, "chatroom" for rooms
// and theirs; "" for the legacy kinds, whose answers hold no message ID.
func (k Kind) ChatType() string {
	switch k {
	case Users:
		return "chat"
	case Groups, GroupMembers:
		return "groupchat"
	case Rooms, RoomMembers:
		return "chatroom"
	}
	return ""
}

// Recall is one message to recall: its ID, where it went (the user,
// group or room; for a directed message the group or room) and its
// chat type.
type Recall struct {
	MsgID    string `json:"msg_id"`
	To       string `json:"to"`
	ChatType string `json:"chat_type"`
	Force    bool   `json:"force"`
}

// RecallResult is what a batch_recall answer said of each message it
// named, by message ID: "" when it was recalled, else the server's reason
// ("exceed recall time limit", "not_found msg"). A message the answer
// left out is absent: its fate is unknown.
type RecallResult map[string]string

// ReasonNotFound is the reason the server gives for a message it cannot
// find: never sent, expired, or already recalled.
const ReasonNotFound = "not_found msg"

// RecallBatch makes one batch_recall call for msgs (at most
// MaxRecallPerCall). A failure is an *Error: NotDelivered for the
// refusals to try again after a pause (429, 503, 401), Permanent for
// those that will not change (400, a 403 such as the recall service
// unopened, a redirect), Ambiguous when the server may have recalled some.
// Recalling again after an ambiguous failure is safe: a message recalled
// already answers ReasonNotFound.
func (c *Client) RecallBatch(ctx context.Context, msgs []Recall) (RecallResult, error) {
	if len(msgs) == 0 || len(msgs) > MaxRecallPerCall {
		return nil, fmt.Errorf("a recall call names 1 to %d messages, not %d", MaxRecallPerCall, len(msgs))
	}
	var res RecallResult
	err := c.withToken(ctx, func(token string) error {
		var data json.RawMessage
		var err error
		data, err = c.recallCall(ctx, batchRecallPath, map[string]any{"msgs": msgs}, token)
		if err != nil {
			return err
		}
		res, err = recallResults(data, msgs)
		return err
	})
	return res, err
}

// recallItem is one message's outcome in a recall answer.
type recallItem struct {
	MsgID    json.RawMessage `json:"msg_id"`   // a string, or a number
	Recalled json.RawMessage `json:"recalled"` // "yes", a reason, or a boolean
}

// outcome is the item's recalled: "" for recalled, else the reason.
func (it recallItem) outcome() string {
	var r string
	if json.Unmarshal(it.Recalled, &r) != nil {
		switch strings.TrimSpace(string(it.Recalled)) {
		case "true":
			return ""
		case "", "null":
			return "the answer gave no outcome"
		}
		return "the answer says not recalled: " + string(it.Recalled)
	}
	switch r = strings.TrimSpace(r); {
	case strings.EqualFold(r, "yes"):
		return ""
	case r == "":
		return "the answer gave no outcome"
	}
	return r
}

// recallResults reads a batch_recall answer's data: an array of items
// whose recalled is "yes" or the reason it is not. An item naming a
// message the call did not ask about is ignored.
func recallResults(data json.RawMessage, msgs []Recall) (RecallResult, error) {
	var items []recallItem
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, &Error{Outcome: Ambiguous, Status: http.StatusOK, Err: fmt.Errorf("read answer: the data is not a list of recalls: %w", err)}
	}
	asked := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		asked[m.MsgID] = true
	}
	res := make(RecallResult, len(items))
	for _, it := range items {
		var id string
		if json.Unmarshal(it.MsgID, &id) != nil {
			id = string(it.MsgID)
		}
		if !asked[id] {
			continue
		}
		res[id] = it.outcome()
	}
	return res, nil
}

// recallCall posts body to a recall path and returns the data of a 2xx
// answer.
func (c *Client) recallCall(ctx context.Context, path string, body any, token string) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ctx, wrote := traceWritten(ctx)
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := c.post(ctx, path, raw, token)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &Error{Outcome: transportOutcome(wrote), Err: stripURL(err)}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if !success(resp.StatusCode) {
		e := failure(resp, answer)
		if e.Status == http.StatusForbidden {
			// not the send quota: the message's or the service's refusal
			e.Outcome = Permanent
		}
		return nil, e
	}
	if err != nil {
		return nil, &Error{Outcome: Ambiguous, Status: resp.StatusCode, Err: fmt.Errorf("read answer: %w", stripURL(err))}
	}
	var a struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(answer, &a) != nil || len(a.Data) == 0 || string(a.Data) == "null" {
		return nil, &Error{Outcome: Ambiguous, Status: resp.StatusCode, Err: errors.New("the answer holds no data naming what was recalled")}
	}
	return a.Data, nil
}

// recallUnopened is what the API says, in a 403 forbidden_op, of a
// recall to an app whose recall service is not enabled.
const recallUnopened = "recall service is unopened"

// ErrNotTheAPI is the error of Probe when the host answers, but not as
// the API answers a recall naming no message.
var ErrNotTheAPI = errors.New("the host did not answer as the API does (want 400 message_recall_error to a recall naming no message)")

// ErrAppNotFound is the error of Probe when the host does not know the
// app (404).
var ErrAppNotFound = errors.New("the host does not know the app (404): check --org and --app, or --app-id")

// Probe makes one harmless authenticated call, to check the host, the app
// and the token without sending: a recall that names no message, which
// the server refuses (400 message_recall_error) once it has accepted the
// token, or answers 403 forbidden_op if the recall service is not enabled
// (recall is then false). It returns an error wrapping ErrCredentials
// for a token refused, ErrAppNotFound for a 404 or an app not found,
// ErrNotTheAPI for any other answer (another 400 or 403, an HTML page, a
// 5xx), and the failure when the host cannot be reached. A 429 or 503 is tried again a few times,
// after its Retry-After.
func (c *Client) Probe(ctx context.Context) (recall bool, err error) {
	const tries = 3
	for try := range tries {
		err = c.withToken(ctx, func(token string) error {
			_, err := c.recallCall(ctx, recallPath, Recall{ChatType: "chat"}, token)
			return err
		})
		var e *Error
		switch {
		case err == nil:
			return true, nil
		case !errors.As(err, &e):
			return false, err
		case e.Status == http.StatusBadRequest && e.Code == "message_recall_error":
			return true, nil // what the recall API answers a recall naming nothing
		case e.Status == http.StatusForbidden && e.Code == "forbidden_op" && strings.Contains(strings.ToLower(e.Description), recallUnopened):
			return false, nil // the app's recall service is not enabled
		case e.Status == http.StatusForbidden && e.Code == "message_recall_error":
			return true, nil
		case e.Status == http.StatusUnauthorized:
			return false, fmt.Errorf("%w: %w", ErrCredentials, err)
		case e.Status == http.StatusNotFound, e.Code == "organization_application_not_found":
			return false, fmt.Errorf("%w: %w", ErrAppNotFound, err)
		case e.Status != http.StatusTooManyRequests && e.Status != http.StatusServiceUnavailable, try == tries-1:
			return false, fmt.Errorf("%w: %w", ErrNotTheAPI, err)
		default:
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(min(max(e.RetryAfter, 200*time.Millisecond), 2*time.Second)):
			}
		}
	}
	return false, err
}
