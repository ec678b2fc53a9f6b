package planner

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"imcast/chatapi"
	"imcast/checkpoint"
)

// MaxBodyExt is the most bytes the body and ext of one message may hold
// together (API.md: 5 KB; the to list does not count).
const MaxBodyExt = 5120

// MaxUpload is the largest file the service takes by default (10 MB).
const MaxUpload = 10 << 20

// UploadReserve is the room kept in the 5 KB limit for the url and secret an
// upload fills into the body of a message sent with a file.
const UploadReserve = 256

// Message is a validated message and where it goes: a kind and, for the
// directed kinds, a scope. Rows with equal Messages are batched together.
type Message struct {
	Kind    chatapi.Kind
	Scope   string
	Message chatapi.Message
	File    Attachment // uploaded into the body's url and secret
	Thumb   Attachment // a video's thumbnail, uploaded into thumb and thumb_secret
	// Restrict uploads the attachments with restrict-access, so that only
	// holders of the share-secret can fetch them.
	Restrict bool
	Digest   [32]byte // identifies the message in the ledger
	// Campaign is the campaign the rows named (a report's campaign
	// column), "" for the run's own. It is not part of the digest: the
	// same message in two campaigns is the same message.
	Campaign string
	// Reported is the state a report's rows gave its deliveries (Pending
	// when they give none): a report fed back to another ledger still
	// says what was sent. It is not part of the digest nor of the key.
	Reported checkpoint.State
}

// Key is what batches messages together: rows batch when their campaign
// and message are the same.
type Key struct {
	Campaign string
	Digest   [32]byte
}

// Key returns m's batching key.
func (m *Message) Key() Key { return Key{m.Campaign, m.Digest} }

// Attachment is a local file a message carries.
type Attachment struct {
	Name  string   // as the row names it, relative to its folder
	Named string   // absolute, symlinks not resolved: the way the row reaches it
	Path  string   // absolute, symlinks resolved; "" for none
	Sum   [32]byte // SHA-256 of the content: the same picture under another name is the same message
	Size  int64    // bytes
}

var (
	customEvent = regexp.MustCompile(`^[a-zA-Z0-9\-_/.]{1,32}$`)
	types       = []string{"txt", "img", "audio", "video", "file", "loc", "cmd", "custom"}
	legacyTypes = []string{"txt", "img", "audio", "video", "cmd"}
	mediaTypes  = []string{"img", "audio", "video", "file"}
)

// compile validates f and builds its Message. dir is the campaign file's
// folder, for relative file paths; extReserve is room the runner will add to
// ext (--dedup-ext). Every problem is returned, not only the first.
func compile(f fields, dir string, extReserve int) (*Message, []string) {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	kind, typ := kindAndType(f, bad)
	m := &Message{Kind: kind, Message: chatapi.Message{Type: typ}, Campaign: strings.TrimSpace(f.Campaign.V)}
	if v := strings.TrimSpace(f.State.V); v != "" {
		st, err := checkpoint.ParseState(v)
		if err != nil {
			bad("state: %v", err)
		}
		m.Reported = st
	}
	switch {
	case kind.Scoped() && strings.TrimSpace(f.Scope.V) == "":
		bad("scope: %s needs the ID of its %s", kind, map[bool]string{true: "group", false: "chat room"}[kind == chatapi.GroupMembers])
	case kind.Scoped():
		m.Scope = strings.TrimSpace(f.Scope.V)
	case f.Scope.OK && f.Scope.V != "" && kind != "":
		bad("scope is only for group_members and room_members, not %s", kind)
	}
	body := bodyOf(f, typ, bad)
	attachFiles(f, m, dir, len(probs) == 0, bad)
	if body != nil {
		checkBody(typ, body, f.File.OK && f.File.V != "", bad)
	}
	if f.From.OK {
		if f.From.V == "" {
			bad(`from is "": leave it out to send as admin`)
		}
		m.Message.From = &f.From.V
	}
	if f.Ext.OK {
		var obj map[string]any
		if err := decodeObject(f.Ext.V, &obj); err != nil {
			bad("ext: %v", err)
		} else {
			m.Message.Ext = canonical(obj)
		}
	}
	compileOptions(f, kind, &m.Message, bad)
	if body != nil {
		m.Message.Body = canonical(body)
		checkSize(m, extReserve, bad)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	m.Digest = digest(m)
	return m, nil
}

// kindAndType reads a row's kind (users if none) and message type (txt
// if none).
func kindAndType(f fields, bad func(string, ...any)) (chatapi.Kind, string) {
	kind := chatapi.Users
	if f.Kind.OK && f.Kind.V != "" {
		k, err := chatapi.ParseKind(f.Kind.V)
		if err != nil {
			bad("%v", err)
		}
		kind = k
	}
	typ := "txt"
	if f.Type.OK && f.Type.V != "" {
		typ = f.Type.V
		allowed := types
		if kind.Legacy() {
			allowed = legacyTypes
		}
		if !slices.Contains(allowed, typ) {
			bad("unknown type %q (want one of %s)", typ, strings.Join(allowed, ", "))
		}
	}
	return kind, typ
}

// bodyOf is a row's body, with msg as the shorthand of body.msg; nil if
// the body does not decode.
func bodyOf(f fields, typ string, bad func(string, ...any)) map[string]any {
	body := map[string]any{}
	if f.Body.OK && strings.TrimSpace(f.Body.V) != "" {
		if err := decodeObject(f.Body.V, &body); err != nil {
			bad("body: %v", err)
			body = nil
		}
	}
	if f.Msg.OK && f.Msg.V != "" {
		if typ != "txt" {
			bad("msg is the text of a txt message; %s message takes body", article(typ))
		} else if body != nil {
			body["msg"] = f.Msg.V
		}
	}
	return body
}

// attachFiles checks the file and thumb a row names and sets m's, and its
// restrict_access; clean says the row had no problem before them.
func attachFiles(f fields, m *Message, dir string, clean bool, bad func(string, ...any)) {
	typ := m.Message.Type
	found := false
	badHere := func(format string, args ...any) { found = true; bad(format, args...) }
	if f.File.OK && f.File.V != "" {
		if !slices.Contains(mediaTypes, typ) {
			badHere("file is for img, audio, video and file messages, not %s", typ)
		}
		m.File = attach("file", f.File.V, dir, badHere)
	}
	if f.Thumb.OK && f.Thumb.V != "" {
		if typ != "video" {
			badHere("thumb is the thumbnail of a video message, not %s", article(typ))
		}
		m.Thumb = attach("thumb", f.Thumb.V, dir, badHere)
	}
	if f.RestrictAccess.OK {
		if b := boolean("restrict_access", f.RestrictAccess, badHere); b != nil {
			m.Restrict = *b
		}
		if m.File.Path == "" && m.Thumb.Path == "" && clean && !found {
			bad("restrict_access is for messages with a file or thumb to upload")
		}
	}
}

// checkSize checks that body and ext, with what the run adds to them, fit
// the service's limit.
func checkSize(m *Message, extReserve int, bad func(string, ...any)) {
	size := len(m.Message.Body) + len(m.Message.Ext) + extReserve
	if m.File.Path != "" {
		size += UploadReserve
	}
	if m.Thumb.Path != "" {
		size += UploadReserve
	}
	if size > MaxBodyExt {
		bad("body and ext take %d bytes, over the limit of %d", size, MaxBodyExt)
	}
}

// checkBody checks the body fields the API requires for the type.
func checkBody(typ string, body map[string]any, uploading bool, bad func(string, ...any)) {
	str := func(name string, required bool) {
		v, ok := body[name]
		switch {
		case !ok && required:
			bad("body.%s: %s message needs it", name, article(typ))
		case !ok:
		default:
			if s, isStr := v.(string); !isStr {
				bad("body.%s: want a string", name)
			} else if s == "" && required {
				bad("body.%s is empty", name)
			}
		}
	}
	switch typ {
	case "txt":
		if _, ok := body["msg"]; !ok {
			bad("a txt message needs msg (or body.msg)")
		} else {
			str("msg", true)
		}
	case "img", "audio", "video", "file":
		if !uploading {
			str("url", true)
		}
	case "loc":
		str("lat", true)
		str("lng", true)
		str("addr", true)
	case "cmd":
		str("action", true)
	case "custom":
		if v, ok := body["customEvent"]; ok {
			if s, isStr := v.(string); !isStr || !customEvent.MatchString(s) {
				bad("body.customEvent: want 1 to 32 of a-z A-Z 0-9 - _ / . (got %s)", clip(canonical(v)))
			}
		}
		if v, ok := body["customExts"]; ok {
			exts, isObj := v.(map[string]any)
			if !isObj {
				bad("body.customExts: want an object of strings")
				break
			}
			if len(exts) > 16 {
				bad("body.customExts: %d entries, at most 16", len(exts))
			}
			for _, k := range sortedKeys(exts) {
				if _, isStr := exts[k].(string); !isStr {
					bad("body.customExts.%s: want a string", k)
				}
			}
		}
	}
}

// compileOptions checks the options against the kinds they apply to.
func compileOptions(f fields, kind chatapi.Kind, m *chatapi.Message, bad func(string, ...any)) {
	only := func(name string, kinds ...chatapi.Kind) bool {
		if slices.Contains(kinds, kind) {
			return true
		}
		names := make([]string, len(kinds))
		for i, k := range kinds {
			names[i] = string(k)
		}
		bad("%s is only for %s, not %s", name, andList(names), kind)
		return false
	}
	if f.SyncDevice.OK && only("sync_device", chatapi.Users) {
		m.SyncDevice = boolean("sync_device", f.SyncDevice, bad)
	}
	if f.NeedGroupAck.OK && only("need_group_ack", chatapi.Groups) {
		m.NeedGroupAck = boolean("need_group_ack", f.NeedGroupAck, bad)
	}
	if f.RouteType.OK && only("routetype", chatapi.Users, chatapi.Groups) {
		if f.RouteType.V != "ROUTE_ONLINE" {
			bad("routetype: want ROUTE_ONLINE, got %q", f.RouteType.V)
		}
		m.RouteType = f.RouteType.V
	}
	if f.ChatroomMsgLevel.OK && only("chatroom_msg_level", chatapi.Rooms, chatapi.RoomMembers) {
		if !slices.Contains([]string{"high", "normal", "low"}, f.ChatroomMsgLevel.V) {
			bad("chatroom_msg_level: want high, normal or low, got %q", f.ChatroomMsgLevel.V)
		}
		m.ChatroomMsgLevel = f.ChatroomMsgLevel.V
	}
	if f.RoamIgnoreUsers.OK && only("roam_ignore_users", chatapi.Users, chatapi.Groups, chatapi.Rooms) {
		users := []string{}
		if err := json.Unmarshal([]byte(f.RoamIgnoreUsers.V), &users); err != nil || users == nil {
			bad("roam_ignore_users: want a JSON array of user IDs, got %s", clip([]byte(f.RoamIgnoreUsers.V)))
		} else if len(users) > 20 && kind != chatapi.Users {
			bad("roam_ignore_users: %d users, at most 20 for %s", len(users), kind)
		}
		m.RoamIgnoreUsers = users
	}
}

// boolean reads a JSON true or false.
func boolean(name string, o opt, bad func(string, ...any)) *bool {
	switch strings.TrimSpace(o.V) {
	case "true":
		return new(true)
	case "false":
		return new(false)
	}
	bad("%s: want true or false, got %s", name, clip([]byte(o.V)))
	return nil
}

// decodeObject decodes a JSON object, keeping numbers as written.
func decodeObject(text string, v *map[string]any) error {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return fmt.Errorf("%s", jsonError(err))
	}
	if !onlySpace([]byte(text[dec.InputOffset():])) {
		return fmt.Errorf("malformed JSON: text after the object")
	}
	obj, ok := x.(map[string]any)
	if !ok {
		what := "null"
		switch x.(type) {
		case []any:
			what = "an array"
		case string:
			what = "a string"
		case json.Number:
			what = "a number"
		case bool:
			what = "a boolean"
		}
		return fmt.Errorf("want a JSON object, got %s", what)
	}
	*v = obj
	return nil
}

// canonical encodes v compactly with sorted keys and no HTML escaping: the
// bytes sent, and the bytes digested.
func canonical(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("planner: re-encode decoded JSON: %v", err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// digest identifies a message: everything that goes into its request but the
// recipients.
func digest(m *Message) [32]byte {
	return sha256.Sum256(canonical(struct {
		Kind     chatapi.Kind    `json:"kind"`
		Scope    string          `json:"scope"`
		Message  chatapi.Message `json:"message"`
		File     []byte          `json:"file_sha256,omitempty"`
		Thumb    []byte          `json:"thumb_sha256,omitempty"`
		Restrict bool            `json:"restrict_access,omitempty"`
	}{m.Kind, m.Scope, m.Message, m.File.sum(), m.Thumb.sum(), m.Restrict}))
}

func (a Attachment) sum() []byte {
	if a.Path == "" {
		return nil
	}
	return a.Sum[:]
}

// attach checks a file a row names and hashes it. The name is relative to
// base (the campaign file's folder, or --files DIR) and must stay inside it
// once every symlink is resolved: a campaign from someone else must not
// make imcast send any file of the machine. It must be a regular file of at
// most MaxUpload bytes, and not one of the kernel's (/proc, /sys, /dev),
// whose sizes are not their contents.
func attach(key, name, base string, bad func(string, ...any)) Attachment {
	fail := func(format string, args ...any) Attachment {
		bad("%s %s: "+format, append([]any{key, name}, args...)...)
		return Attachment{}
	}
	if filepath.IsAbs(name) || filepath.VolumeName(name) != "" {
		return fail("an absolute path; name the file relative to the folder %s", base)
	}
	abs, err := filepath.Abs(base)
	root := abs
	if err == nil {
		root, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return fail("%s", errText(err))
	}
	joined := filepath.Join(root, name)
	if !inside(root, joined) {
		return fail("outside the folder %s", base)
	}
	path, err := filepath.EvalSymlinks(joined)
	if err != nil {
		return fail("%s", errText(err))
	}
	if !inside(root, path) {
		return fail("a link to %s, outside the folder %s", path, base)
	}
	for _, sys := range []string{"/proc", "/sys", "/dev"} {
		if inside(sys, path) {
			return fail("not a regular file")
		}
	}
	sum, size, err := fileSum(path)
	if err != nil {
		return fail("%v", err)
	}
	return Attachment{Name: name, Named: filepath.Join(abs, name), Path: path, Sum: sum, Size: size}
}

// inside reports whether path is dir or below it; both are clean and
// absolute.
func inside(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// ErrAttachmentChanged is returned by Attachment.Read for a file whose
// content is not what the plan hashed.
var ErrAttachmentChanged = errors.New("the file changed since the campaign was planned; plan and run again")

// Read returns the attachment's content, checked against the digest the
// plan took, so that what is uploaded is exactly what was validated.
func (a Attachment) Read() ([]byte, error) {
	f, err := openRegular(a.Path)
	if err != nil {
		return nil, fmt.Errorf("attachment %s: %w", a.Path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxUpload+1))
	if err != nil {
		return nil, fmt.Errorf("attachment %s: %w", a.Path, err)
	}
	if len(b) > MaxUpload || sha256.Sum256(b) != a.Sum {
		return nil, fmt.Errorf("attachment %s: %w", a.Path, ErrAttachmentChanged)
	}
	return b, nil
}

// openRegular opens a regular file of at most MaxUpload bytes. It opens
// without blocking, so that a FIFO put in the file's place is refused, not
// waited on.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, errors.New(errText(err))
	}
	st, err := f.Stat()
	switch {
	case err != nil:
		err = errors.New(errText(err))
	case !st.Mode().IsRegular():
		err = errors.New("not a regular file")
	case st.Size() > MaxUpload:
		err = fmt.Errorf("%d bytes, over the %d the service takes", st.Size(), MaxUpload)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// fileSum hashes a file's content: the same picture under another name or
// folder is the same message.
func fileSum(path string) ([32]byte, int64, error) {
	f, err := openRegular(path)
	if err != nil {
		return [32]byte{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, MaxUpload+1))
	if err != nil {
		return [32]byte{}, 0, errors.New(errText(err))
	}
	if n > MaxUpload {
		return [32]byte{}, 0, fmt.Errorf("over the %d bytes the service takes", MaxUpload)
	}
	return [32]byte(h.Sum(nil)), n, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// errText drops the path an os error repeats.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// RowJSON returns the message in the keys of a campaign row (kind, scope,
// type, body, from, ext, the options and file), without recipients: the
// ledger keeps it so that a report can be fed back as a campaign.
func (m *Message) RowJSON() []byte {
	row := map[string]any{}
	for _, c := range columns {
		if c.write == nil {
			continue
		}
		if v, ok := c.write(m); ok {
			row[c.name] = v
		}
	}
	return canonical(row)
}

// article puts "a" or "an" before a message type.
func article(typ string) string {
	if strings.ContainsRune("aeiou", rune(typ[0])) {
		return "an " + typ
	}
	return "a " + typ
}

// andList joins names as "a", "a and b", "a, b and c".
func andList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
