package job

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // image sizes for img messages
	_ "image/jpeg"
	_ "image/png"
	"path/filepath"
	"sync"
	"time"

	"imcast/chatapi"
	"imcast/checkpoint"
	"imcast/planner"
)

// Uploader puts a file on the service.
type Uploader interface {
	BaseURL() string
	Upload(ctx context.Context, name string, content []byte, restrict bool) (chatapi.Uploaded, error)
}

// UploadLedger remembers what was uploaded, across runs and campaigns.
type UploadLedger interface {
	Uploaded(key [32]byte) (checkpoint.Upload, bool, error)
	RecordUpload(key [32]byte, u checkpoint.Upload) error
}

// uploadAttempts is how many times an upload is tried before the run stops.
const uploadAttempts = 5

// Uploads returns a Preparer that uploads a message's file and thumbnail
// and fills the body: url, secret and (when absent) filename; size for an
// image; file_length for a video; thumb and thumb_secret. A file is uploaded
// once for the ledger: an upload recorded there, for the same content, the
// same base URL and the same restriction, is used again, so a resumed or
// repeated run does not upload it again.
func Uploads(up Uploader, ledger UploadLedger) Preparer {
	return (&uploads{up: up, ledger: ledger}).prepare
}

// uploads uploads the files of a run's messages.
type uploads struct {
	up     Uploader
	ledger UploadLedger
	mu     sync.Mutex // one upload at a time: two messages may share a file
}

// prepare is the Preparer: the message with its files uploaded and named
// in its body.
func (u *uploads) prepare(ctx context.Context, m *planner.Message) (chatapi.Message, error) {
	msg := m.Message
	body := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(msg.Body))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		return msg, fmt.Errorf("message body: %w", err)
	}
	setDefault := func(k string, v any) {
		if _, ok := body[k]; !ok {
			body[k] = v
		}
	}
	if a := m.File; a.Path != "" {
		got, content, err := u.get(ctx, a, m.Restrict)
		if err != nil {
			return msg, err
		}
		body["url"], body["secret"] = got.URL, got.Secret
		setDefault("filename", filepath.Base(a.Name))
		switch msg.Type {
		case "img":
			if w, h, ok := imageSize(content); ok {
				setDefault("size", map[string]int{"width": w, "height": h})
			}
		case "video":
			setDefault("file_length", len(content))
		}
	}
	if a := m.Thumb; a.Path != "" {
		got, _, err := u.get(ctx, a, m.Restrict)
		if err != nil {
			return msg, err
		}
		body["thumb"], body["thumb_secret"] = got.URL, got.Secret
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return msg, err
	}
	msg.Body = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return msg, nil
}

// get reads a's content once, checked against the digest the plan took
// (what is uploaded is what was validated), and uploads it unless the
// ledger has it.
func (u *uploads) get(ctx context.Context, a planner.Attachment, restrict bool) (checkpoint.Upload, []byte, error) {
	content, err := a.Read()
	if err != nil {
		return checkpoint.Upload{}, nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	key := uploadKey(u.up.BaseURL(), a.Sum, restrict)
	if rec, ok, err := u.ledger.Uploaded(key); err != nil || ok {
		return rec, content, err
	}
	rec, err := u.upload(ctx, a.Name, content, restrict)
	if err != nil {
		return checkpoint.Upload{}, nil, err
	}
	if err := u.ledger.RecordUpload(key, rec); err != nil {
		return checkpoint.Upload{}, nil, fmt.Errorf("ledger: %w", err)
	}
	return rec, content, nil
}

// upload puts content on the service, trying again after what the
// server refused, uploadAttempts times in all.
func (u *uploads) upload(ctx context.Context, name string, content []byte, restrict bool) (checkpoint.Upload, error) {
	var err error
	for attempt := 1; attempt <= uploadAttempts; attempt++ {
		var got chatapi.Uploaded
		if got, err = u.up.Upload(ctx, name, content, restrict); err == nil {
			return checkpoint.Upload{UUID: got.UUID, URL: got.URL, Secret: got.Secret, Time: time.Now()}, nil
		}
		if chatapi.CredentialsRefused(err) {
			// no upload can succeed until the credentials are fixed
			if !errors.Is(err, chatapi.ErrCredentials) {
				err = fmt.Errorf("%w: %v", chatapi.ErrCredentials, err)
			}
			return checkpoint.Upload{}, fmt.Errorf("upload %s: %w", name, err)
		}
		if chatapi.OutcomeOf(err) == chatapi.Permanent {
			break
		}
		pause := time.Duration(attempt) * time.Second
		var e *chatapi.Error
		if errors.As(err, &e) && e.RetryAfter > pause {
			pause = e.RetryAfter
		}
		if !sleepUntil(ctx, time.Now().Add(pause)) {
			return checkpoint.Upload{}, ctx.Err()
		}
	}
	return checkpoint.Upload{}, fmt.Errorf("upload %s: %w", name, err)
}

// uploadKey names an upload in the ledger: the content, where it went, and
// whether access to it is restricted.
func uploadKey(base string, sum [32]byte, restrict bool) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%t\x00", base, restrict)
	h.Write(sum[:])
	return [32]byte(h.Sum(nil))
}

// imageSize reads the pixel size of a PNG, JPEG or GIF.
func imageSize(content []byte) (w, h int, ok bool) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(content))
	if err != nil {
		return 0, 0, false
	}
	return cfg.Width, cfg.Height, true
}
