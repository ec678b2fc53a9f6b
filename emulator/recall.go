package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Kind names of the recall endpoints (API.md, "Recall"), as used by Stats.
const (
	KindRecall      = "recall"       // POST /messages/msg_recall, one message
	KindBatchRecall = "batch_recall" // POST /messages/batch_recall, up to 30
)

const (
	// maxBatchRecall is how many messages one batch_recall call may name.
	maxBatchRecall = 30
	// defaultRecallWindow is how long after its sending a message may be
	// recalled without force.
	defaultRecallWindow = 2 * time.Minute
	// The reasons the recall API gives, in an error or in a batch's item.
	reasonNotFound  = "not_found msg"
	reasonTooLate   = "exceed recall time limit"
	reasonNoTo      = "can't find msg to"
	reasonCmd       = "cmd message can't be recalled"
	reasonUnopened  = "message recall service is unopened"
	recalledYes     = "yes"
	exceptionRecall = "MessageRecallException"
)

// chatTypes is the recall chat_type of each send kind's messages: a
// directed message is recalled from its group or room.
var chatTypes = map[string]string{
	KindUsers: "chat", KindGroups: "groupchat", KindGroupMembers: "groupchat",
	KindRooms: "chatroom", KindRoomMembers: "chatroom",
}

// sentMessage is what the server keeps of each message ID it issued, to
// recall it.
type sentMessage struct {
	to       string // the user, group or room it went to
	chatType string
	at       time.Time
	cmd      bool // cmd messages cannot be recalled
	recalled bool
}

// recallItem is one message a recall call names; problem is why it is
// malformed, if it is.
type recallItem struct {
	msgID, to, chatType, from string
	force                     bool
	problem                   string
}

// recallResult is one message's outcome in a recall answer: Recalled is
// "yes", or the reason it was not recalled (then only MsgID is set).
type recallResult struct {
	Recalled string `json:"recalled"`
	ChatType string `json:"chattype,omitempty"`
	From     string `json:"from,omitempty"`
	To       string `json:"to,omitempty"`
	MsgID    string `json:"msg_id"`
	status   int    // of the error that msg_recall answers when not recalled
}

// recallAnswer is the 200 answer of a recall call: data is one
// recallResult for msg_recall, an array of them for batch_recall.
type recallAnswer struct {
	Path            string `json:"path"`
	URI             string `json:"uri"`
	Timestamp       int64  `json:"timestamp"`
	Organization    string `json:"organization,omitempty"`
	Application     string `json:"application"`
	Action          string `json:"action"`
	Data            any    `json:"data"`
	Duration        int    `json:"duration"`
	ApplicationName string `json:"applicationName,omitempty"`
}

func errRecall(status int, desc string) *apiError {
	e := "message_recall_error"
	if desc == reasonUnopened {
		e = "forbidden_op"
	}
	return &apiError{status, errorBody{Error: e, Exception: exceptionRecall, Description: desc}}
}

// parseRecall validates the body of a recall call: one message for
// msg_recall, whose missing fields answer 400; a list of at most 30 in
// msgs for batch_recall, whose items' missing fields are answered in the
// item.
func parseRecall(ep *endpoint, raw []byte) (*request, *apiError) {
	top, ok := object(raw)
	if !ok {
		return nil, errInvalidBody()
	}
	if ep.kind == KindRecall {
		it, ok := recallOf(top)
		if !ok {
			return nil, errInvalidBody()
		}
		if it.problem != "" {
			return nil, errRecall(http.StatusBadRequest, it.problem)
		}
		return &request{recalls: []recallItem{it}}, nil
	}
	var msgs []json.RawMessage
	if v := field(top, "msgs"); v != nil && json.Unmarshal(v, &msgs) != nil {
		return nil, errInvalidBody()
	}
	if len(msgs) == 0 {
		return nil, errRecall(http.StatusBadRequest, "param msgs can't be empty")
	}
	if len(msgs) > ep.maxTo {
		return nil, errRecall(http.StatusBadRequest, fmt.Sprintf("params msgs's size can't exceed limit %d", ep.maxTo))
	}
	r := &request{recalls: make([]recallItem, 0, len(msgs))}
	for _, m := range msgs {
		o, ok := object(m)
		if !ok {
			return nil, errInvalidBody()
		}
		it, ok := recallOf(o)
		if !ok {
			return nil, errInvalidBody()
		}
		r.recalls = append(r.recalls, it)
	}
	return r, nil
}

// recallOf reads one message to recall; ok is false when a field has the
// wrong JSON type.
func recallOf(o map[string]json.RawMessage) (recallItem, bool) {
	for _, k := range []string{"msg_id", "to", "chat_type", "from", "recallMessageExtensionInfo"} {
		if v := field(o, k); v != nil && jsonKind(v) != '"' {
			return recallItem{}, false
		}
	}
	for _, k := range []string{"force", "sync_device"} {
		if v := field(o, k); v != nil && jsonKind(v) != 't' && jsonKind(v) != 'f' {
			return recallItem{}, false
		}
	}
	it := recallItem{
		msgID: str(field(o, "msg_id")), to: str(field(o, "to")), chatType: str(field(o, "chat_type")),
		from: str(field(o, "from")), force: jsonKind(field(o, "force")) == 't',
	}
	switch {
	case it.msgID == "":
		it.problem = "param msg_id can't be empty"
	case it.to == "":
		it.problem = "param to can't be empty"
	case it.chatType == "":
		it.problem = "param chat_type can't be empty"
	}
	return it, true
}

// refusedRecall is why the message of it may not be recalled at now, or
// nil; s.mu is held.
func (s *Server) refusedRecall(it recallItem, now time.Time) *recallResult {
	no := func(status int, reason string) *recallResult {
		return &recallResult{MsgID: it.msgID, Recalled: reason, status: status}
	}
	if it.problem != "" {
		return no(http.StatusBadRequest, it.problem)
	}
	id, err := strconv.ParseUint(it.msgID, 10, 64)
	m, ok := s.sent[id]
	switch {
	case err != nil || !ok:
		return no(http.StatusForbidden, reasonNotFound)
	case m.to != it.to || m.chatType != it.chatType:
		return no(http.StatusBadRequest, reasonNoTo)
	case m.recalled:
		s.stats.RecallRepeats++
		return no(http.StatusForbidden, reasonNotFound)
	case m.cmd:
		return no(http.StatusForbidden, reasonCmd)
	case !it.force && now.Sub(m.at) > s.recallWindow:
		return no(http.StatusForbidden, reasonTooLate)
	}
	return nil
}

// recallOne recalls one message at now, if it may be; s.mu is held.
func (s *Server) recallOne(it recallItem, now time.Time) recallResult {
	if no := s.refusedRecall(it, now); no != nil {
		return *no
	}
	id, _ := strconv.ParseUint(it.msgID, 10, 64)
	m := s.sent[id]
	m.recalled = true
	s.sent[id] = m
	s.stats.Recalled++
	from := it.from
	if from == "" {
		from = "admin"
	}
	return recallResult{Recalled: recalledYes, ChatType: m.chatType, From: from, To: m.to, MsgID: it.msgID}
}

// recall runs an admitted recall call drawn fault, and returns its
// answer: the faults after admission act as for a message call, partial
// and partial_deliver both recalling every message and leaving some out
// of the answer. s.mu is held.
func (s *Server) recall(ep *endpoint, req *request, fault string, now time.Time, b base, origin string) outcome {
	if ep.kind != KindRecall && s.recallRefusesWhole {
		// as msg_recall answers: the first message that may not be
		// recalled is the call's error, and none is recalled
		for _, it := range req.recalls {
			if no := s.refusedRecall(it, now); no != nil {
				return s.refusal(errRecall(no.status, no.Recalled), now)
			}
		}
	}
	results := make([]recallResult, len(req.recalls))
	for i, it := range req.recalls {
		results[i] = s.recallOne(it, now)
	}
	o, answered := s.afterFault(fault, now)
	if answered {
		return o
	}
	status := o.status
	partial := fault == FaultPartial || fault == FaultPartialDeliver
	answer := recallAnswer{
		Path: ep.path, URI: origin + b.prefix + ep.path, Timestamp: now.UnixMilli(),
		Organization: b.org, Application: applicationUUID, Action: "post", ApplicationName: b.appName(),
	}
	if ep.kind == KindRecall {
		r := results[0]
		switch {
		case partial:
			answer.Data = map[string]any{}
		case r.Recalled != recalledYes:
			return s.refusal(errRecall(r.status, r.Recalled), now)
		default:
			answer.Data = r
		}
		return outcome{status: status, body: answer}
	}
	if partial {
		left := make([]bool, len(results))
		for _, p := range s.rng.Perm(len(results))[:1+s.rng.IntN(len(results))] {
			left[p] = true
		}
		kept := results[:0]
		for i, r := range results {
			if !left[i] {
				kept = append(kept, r)
			}
		}
		results = kept
	}
	answer.Data = results
	return outcome{status: status, body: answer}
}

// remember keeps a message ID issued for a message of kind ep to to, to
// recall it later; s.mu is held.
func (s *Server) remember(ep *endpoint, id uint64, to string, cmd bool, now time.Time) {
	if ct, ok := chatTypes[ep.kind]; ok {
		s.sent[id] = sentMessage{to: to, chatType: ct, at: now, cmd: cmd}
	}
}
