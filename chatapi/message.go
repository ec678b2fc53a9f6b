package chatapi

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Message is one message as the service receives it, without its recipients.
// A nil pointer, nil slice or empty string leaves the field out of the
// request; a non-nil empty RoamIgnoreUsers is sent as [].
type Message struct {
	Type             string          // txt, img, audio, video, file, loc, cmd or custom
	Body             json.RawMessage // the body object of the type
	From             *string         // sender; absent means admin
	Ext              json.RawMessage // extension object; absent when nil
	SyncDevice       *bool           // users: also sync to the sender's devices
	RouteType        string          // users, groups: ROUTE_ONLINE
	RoamIgnoreUsers  []string        // users, groups, rooms: hidden from their roaming history
	NeedGroupAck     *bool           // groups: ask for read receipts
	ChatroomMsgLevel string          // rooms, room members: high, normal or low
}

// Batch is one call's worth of work: a message and the recipients that get
// it through one endpoint.
type Batch struct {
	Kind    Kind
	Scope   string   // the group or room ID, for GroupMembers and RoomMembers
	To      []string // user, group or room IDs; member IDs for the directed kinds
	Message Message
}

// request is the body of POST /messages/{users,chatgroups,chatrooms}[/users]
// (seeds 001, 002, 003).
type request struct {
	From             *string         `json:"from,omitempty"`
	To               []string        `json:"to"`
	Type             string          `json:"type"`
	Body             json.RawMessage `json:"body"`
	Ext              json.RawMessage `json:"ext,omitempty"`
	Users            []string        `json:"users,omitzero"`
	SyncDevice       *bool           `json:"sync_device,omitempty"`
	RouteType        string          `json:"routetype,omitempty"`
	RoamIgnoreUsers  []string        `json:"roam_ignore_users,omitzero"`
	NeedGroupAck     *bool           `json:"need_group_ack,omitempty"`
	ChatroomMsgLevel string          `json:"chatroom_msg_level,omitempty"`
}

// legacyRequest is the body of POST /messages (seed 000).
type legacyRequest struct {
	TargetType string          `json:"target_type"`
	Target     []string        `json:"target"`
	Msg        json.RawMessage `json:"msg"`
	From       *string         `json:"from,omitempty"`
	Ext        json.RawMessage `json:"ext,omitempty"`
}

// Encode returns the JSON request body the client sends for b: compact, with
// no HTML escaping, so its size is the size on the wire.
func (b Batch) Encode() ([]byte, error) {
	if !b.Kind.Valid() {
		return nil, fmt.Errorf("unknown kind %q", b.Kind)
	}
	m := b.Message
	if b.Kind.Legacy() {
		msg, err := legacyMsg(m.Type, m.Body)
		if err != nil {
			return nil, err
		}
		target := "users"
		if b.Kind == LegacyGroups {
			target = "chatgroups"
		}
		return marshal(legacyRequest{TargetType: target, Target: b.To, Msg: msg, From: m.From, Ext: m.Ext})
	}
	r := request{
		From: m.From, To: b.To, Type: m.Type, Body: m.Body, Ext: m.Ext,
		SyncDevice: m.SyncDevice, RouteType: m.RouteType, RoamIgnoreUsers: m.RoamIgnoreUsers,
		NeedGroupAck: m.NeedGroupAck, ChatroomMsgLevel: m.ChatroomMsgLevel,
	}
	if b.Kind.Scoped() {
		r.To, r.Users = []string{b.Scope}, b.To
		if r.Users == nil {
			r.Users = []string{}
		}
	}
	if r.To == nil {
		r.To = []string{}
	}
	return marshal(r)
}

// legacyMsg folds the type into the body object, as the legacy API's "msg"
// field holds both.
func legacyMsg(typ string, body json.RawMessage) (json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &fields); err != nil {
			return nil, fmt.Errorf("body is not a JSON object: %w", err)
		}
	}
	t, err := marshal(typ)
	if err != nil {
		return nil, err
	}
	fields["type"] = t
	return marshal(fields)
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
