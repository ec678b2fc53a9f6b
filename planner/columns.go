package planner

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// jsonValue says how a column's value reads from JSON Lines (a CSV cell
// is always its text, "" for absent).
type jsonValue int

const (
	jsonString     jsonValue = iota // a JSON string
	jsonText                        // JSON text kept as written: an object, an array, a boolean
	jsonRecipients                  // a string or an array of strings: to, recipient
	jsonIgnored                     // read back from a report and dropped: message_id, error, time
)

// reportPlace says where a column stands in a deliveries report.
type reportPlace int

const (
	notReported    reportPlace = iota
	reportDelivery             // a value of the delivery (the report writes it)
	reportMessage              // a value of the message, as RowJSON writes it
)

// column is one key of a campaign row, as CSV headers and JSON Lines keys
// spell it.
type column struct {
	name  string
	value jsonValue
	// field is where the value goes in a row's fields; nil for the
	// recipients and the ignored columns.
	field func(*fields) *opt
	// write is what RowJSON writes under the name for a message; nil: it
	// writes nothing (msg, which body holds, and what is not the message's)
	write  func(m *Message) (any, bool)
	report reportPlace
	// perRow: only a row gives it, never the --message defaults (the
	// recipients, and what a report says of a delivery)
	perRow bool
}

// columns is the one table of a campaign row's keys: both readers, the
// validation of headers and keys, the --message defaults, RowJSON and a
// report's columns are built from it, so that a report fed back reads as
// a campaign. Its order is the report's.
var columns = [...]column{
	{name: "campaign", field: func(f *fields) *opt { return &f.Campaign }, report: reportDelivery, perRow: true},
	{name: "kind", field: func(f *fields) *opt { return &f.Kind }, report: reportDelivery,
		write: func(m *Message) (any, bool) { return m.Kind, true }},
	{name: "scope", field: func(f *fields) *opt { return &f.Scope }, report: reportDelivery,
		write: func(m *Message) (any, bool) { return m.Scope, m.Scope != "" }},
	{name: "to", value: jsonRecipients, perRow: true},
	{name: "recipient", value: jsonRecipients, report: reportDelivery, perRow: true},
	{name: "state", field: func(f *fields) *opt { return &f.State }, report: reportDelivery, perRow: true},
	{name: "message_id", value: jsonIgnored, report: reportDelivery, perRow: true},
	{name: "error", value: jsonIgnored, report: reportDelivery, perRow: true},
	{name: "time", value: jsonIgnored, report: reportDelivery, perRow: true},
	{name: "recall", value: jsonIgnored, report: reportDelivery, perRow: true},
	{name: "type", field: func(f *fields) *opt { return &f.Type }, report: reportMessage,
		write: func(m *Message) (any, bool) { return m.Message.Type, true }},
	{name: "msg", field: func(f *fields) *opt { return &f.Msg }},
	{name: "body", value: jsonText, field: func(f *fields) *opt { return &f.Body }, report: reportMessage,
		write: func(m *Message) (any, bool) { return m.Message.Body, m.Message.Body != nil }},
	{name: "from", field: func(f *fields) *opt { return &f.From }, report: reportMessage,
		write: func(m *Message) (any, bool) { return m.Message.From, m.Message.From != nil }},
	{name: "ext", value: jsonText, field: func(f *fields) *opt { return &f.Ext }, report: reportMessage,
		write: func(m *Message) (any, bool) { return m.Message.Ext, m.Message.Ext != nil }},
	{name: "sync_device", value: jsonText, field: func(f *fields) *opt { return &f.SyncDevice }, report: reportMessage,
		write: func(m *Message) (any, bool) { return m.Message.SyncDevice, m.Message.SyncDevice != nil }},
	{name: "routetype", field: func(f *fields) *opt { return &f.RouteType }, report: reportMessage,
		write: func(m *Message) (any, bool) { return m.Message.RouteType, m.Message.RouteType != "" }},
	{name: "roam_ignore_users", value: jsonText, field: func(f *fields) *opt { return &f.RoamIgnoreUsers }, report: reportMessage,
		write: func(m *Message) (any, bool) { return m.Message.RoamIgnoreUsers, m.Message.RoamIgnoreUsers != nil }},
	{name: "need_group_ack", value: jsonText, field: func(f *fields) *opt { return &f.NeedGroupAck }, report: reportMessage,
		write: func(m *Message) (any, bool) { return m.Message.NeedGroupAck, m.Message.NeedGroupAck != nil }},
	{name: "chatroom_msg_level", field: func(f *fields) *opt { return &f.ChatroomMsgLevel }, report: reportMessage,
		write: func(m *Message) (any, bool) { return m.Message.ChatroomMsgLevel, m.Message.ChatroomMsgLevel != "" }},
	{name: "file", field: func(f *fields) *opt { return &f.File }, report: reportMessage,
		write: func(m *Message) (any, bool) { return m.File.Name, m.File.Path != "" }},
	{name: "thumb", field: func(f *fields) *opt { return &f.Thumb }, report: reportMessage,
		write: func(m *Message) (any, bool) { return m.Thumb.Name, m.Thumb.Path != "" }},
	{name: "restrict_access", value: jsonText, field: func(f *fields) *opt { return &f.RestrictAccess }, report: reportMessage,
		write: func(m *Message) (any, bool) { return m.Restrict, m.Restrict }},
}

// columnOf maps a column's name to its place in columns.
var columnOf = func() map[string]int {
	m := make(map[string]int, len(columns))
	for i, c := range columns {
		m[c.name] = i
	}
	return m
}()

// Columns of the recipients, looked up once.
var (
	colTo        = columnOf["to"]
	colRecipient = columnOf["recipient"]
)

// fieldColumns are the columns that have a field, in table order: what
// fields.over and fields.appendKey go through.
var fieldColumns = func() []column {
	var out []column
	for _, c := range columns {
		if c.field != nil {
			out = append(out, c)
		}
	}
	return out
}()

// ReportColumns are the columns of a deliveries report, as campaign files
// spell them: the delivery's, then its message's, which RowJSON writes.
// Fed back to run, such a report reads as a campaign.
func ReportColumns() (delivery, message []string) {
	for _, c := range columns {
		switch c.report {
		case reportDelivery:
			delivery = append(delivery, c.name)
		case reportMessage:
			message = append(message, c.name)
		}
	}
	return delivery, message
}

// jsonRow is a JSON Lines row, or the --message defaults file: each
// column's JSON text as written, nil where its key is absent.
type jsonRow [len(columns)]json.RawMessage

// jsonRowType is a struct of one json.RawMessage per column, tagged with
// its name, for encoding/json to decode a row into as it decodes any
// struct: keys matched exactly, or else without regard to case, unknown
// keys refused, the last of a repeated key kept.
var jsonRowType = func() reflect.Type {
	fs := make([]reflect.StructField, len(columns))
	for i, c := range columns {
		fs[i] = reflect.StructField{Name: fmt.Sprintf("C%d", i), Type: reflect.TypeFor[json.RawMessage](),
			Tag: reflect.StructTag(fmt.Sprintf("json:%q", c.name))}
	}
	return reflect.StructOf(fs)
}()

// decode reads the next JSON value of dec into r, unknown keys refused.
func (r *jsonRow) decode(dec *json.Decoder) error {
	dec.DisallowUnknownFields()
	v := reflect.New(jsonRowType)
	if err := dec.Decode(v.Interface()); err != nil {
		return err
	}
	for i := range r {
		if raw := v.Elem().Field(i).Bytes(); raw != nil {
			r[i] = raw
		}
	}
	return nil
}

// csvHeader maps each column of a CSV header to its place in columns (-1
// for none), its names trimmed and lowercased, and lists the names it does
// not know.
func csvHeader(record []string) (cols []int, names, unknown []string) {
	cols = make([]int, len(record))
	names = make([]string, len(record))
	for i, h := range record {
		names[i] = strings.ToLower(strings.TrimSpace(h))
		c, ok := columnOf[names[i]]
		if !ok {
			c = -1
			unknown = append(unknown, names[i])
		}
		cols[i] = c
	}
	return cols, names, unknown
}
