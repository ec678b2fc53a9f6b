package planner

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// opt is a string that may be absent, so that an empty value ("from": "")
// can be told from a missing one.
type opt struct {
	V  string
	OK bool
}

func some(s string) opt { return opt{V: s, OK: true} }

// fields are one row's values as read, before validation. JSON values (body,
// ext, roam_ignore_users) and booleans are kept as their text; "" means
// absent. Both readers produce them, so CSV and JSON Lines rows follow the
// same rules.
type fields struct {
	Kind, Scope, Type, File     opt
	Thumb, RestrictAccess       opt // thumbnail file of a video; restrict_access: JSON true or false
	Msg, From                   opt
	RouteType, ChatroomMsgLevel opt
	Body, Ext, RoamIgnoreUsers  opt // JSON text
	SyncDevice, NeedGroupAck    opt // JSON true or false
	// Campaign is the campaign a row belongs to, in a report fed back as a
	// campaign (its campaign column); absent: the run's.
	Campaign opt
	// State is the delivery's state in a report fed back (its state
	// column): what the ledger it came from knew of it.
	State opt
}

// over returns f with every absent field taken from d, the campaign's
// defaults (--message).
func (f fields) over(d *fields) fields {
	if d == nil {
		return f
	}
	for _, c := range fieldColumns {
		if a := c.field(&f); !a.OK {
			*a = *c.field(d)
		}
	}
	return f
}

// appendKey appends a text that is equal for two rows exactly when their
// fields are: rows with the same key share one validated message.
func (f *fields) appendKey(b []byte) []byte {
	for _, c := range fieldColumns {
		if o := c.field(f); o.OK {
			b = append(b, 1)
			b = append(b, o.V...)
		}
		b = append(b, 0)
	}
	return b
}

// fields converts the row, reporting every value of the wrong JSON type.
func (r *jsonRow) fields(bad func(format string, args ...any)) fields {
	var f fields
	str := func(name string, raw json.RawMessage) opt {
		if raw == nil {
			return opt{}
		}
		if s, ok := plainString(raw); ok {
			return some(s)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			bad("%s: want a string, got %s", name, clip(raw))
			return opt{}
		}
		return some(s)
	}
	text := func(raw json.RawMessage) opt {
		if raw == nil {
			return opt{}
		}
		return some(string(raw))
	}
	for i, c := range columns {
		switch {
		case c.field == nil:
		case c.value == jsonText:
			*c.field(&f) = text(r[i])
		default:
			*c.field(&f) = str(c.name, r[i])
		}
	}
	return f
}

// recipients reads "to" (or a report's "recipient"): a string or an array
// of strings.
func (r *jsonRow) recipients(bad func(format string, args ...any)) []string {
	if r[colTo] != nil && r[colRecipient] != nil {
		bad("both to and recipient keys: keep one")
		return nil
	}
	raw := r[colTo]
	name := "to"
	if raw == nil && r[colRecipient] != nil {
		raw, name = r[colRecipient], "recipient"
	}
	if raw == nil {
		return nil
	}
	if one, ok := plainString(raw); ok {
		return []string{one}
	}
	if many, ok := plainStrings(raw); ok {
		return many
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		bad("%s: want a string or an array of strings, got %s", name, clip(raw))
		return nil
	}
	return many
}

// maxID is the longest recipient or scope ID, in bytes.
const maxID = 256

// idProblem says what is wrong with a recipient or scope ID, trimmed of
// blanks, or "" if nothing is: longer than maxID bytes, or holding a
// control character (NUL, a new line, ESC) or an invisible format character
// (a right-to-left override, a zero-width space), which could pass for
// another ID or drive the terminal of whoever reads it. The ID is shown
// quoted and clipped.
func idProblem(id string) string {
	if len(id) > maxID {
		return fmt.Sprintf("%s: %d bytes, at most %d", quoteID(id), len(id), maxID)
	}
	for i := 0; i < len(id); {
		if c := id[i]; c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return fmt.Sprintf("%s: holds a control character (U+%04X)", quoteID(id), c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(id[i:])
		switch {
		case unicode.IsControl(r):
			return fmt.Sprintf("%s: holds a control character (U+%04X)", quoteID(id), r)
		case unicode.Is(unicode.Cf, r):
			return fmt.Sprintf("%s: holds an invisible format character (U+%04X)", quoteID(id), r)
		}
		i += n
	}
	return ""
}

// quoteID quotes an ID for a problem, escaped so that it cannot drive a
// terminal, and clipped to 40 bytes.
func quoteID(id string) string {
	const max = 40
	if len(id) <= max {
		return strconv.Quote(id)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(id[cut]) {
		cut--
	}
	return strconv.Quote(id[:cut]) + "..."
}

// clip shortens a value quoted in an error message.
func clip(raw []byte) string {
	s := strings.TrimSpace(string(raw))
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// jsonError words a JSON syntax or type error without Go type names.
func jsonError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se.Error())
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("%s: want %s, got a JSON %s", te.Field, goTypeWord(te.Type.String()), te.Value)
		}
		return fmt.Sprintf("want a JSON object, got a JSON %s", te.Value)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown key " + f
	}
	return "malformed JSON: " + strings.TrimPrefix(msg, "json: ")
}

func goTypeWord(t string) string {
	switch t {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "[]string":
		return "an array of strings"
	}
	return "a JSON value"
}
