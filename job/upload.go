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
	var mu sync.Mutex // one upload at a time: two messages may share a file
	// get reads a's content once, checked against the digest the plan
	// took (what is uploaded is what was validated), and uploads it unless
	// the ledger has it.
	get := func(ctx context.Context, a planner.Attachment, restrict bool) (checkpoint.Upload, []byte, error) {
		content, err := a.Read()
		if err != nil {
			return checkpoint.Upload{}, nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		key := uploadKey(up.BaseURL(), a.Sum, restrict)
		if u, ok, err := ledger.Uploaded(key); err != nil || ok {
			return u, content, err
		}
		for attempt := 1; attempt <= uploadAttempts; attempt++ {
			var got chatapi.Uploaded
			got, err = up.Upload(ctx, a.Name, content, restrict)
			if err == nil {
				u := checkpoint.Upload{UUID: got.UUID, URL: got.URL, Secret: got.Secret, Time: time.Now()}
				if err := ledger.RecordUpload(key, u); err != nil {
					return checkpoint.Upload{}, nil, fmt.Errorf("ledger: %w", err)
				}
				return u, content, nil
			}
			if errors.Is(err, chatapi.ErrCredentials) || chatapi.OutcomeOf(err) == chatapi.Permanent {
				break
			}
			pause := time.Duration(attempt) * time.Second
			var e *chatapi.Error
			if errors.As(err, &e) && e.RetryAfter > pause {
				pause = e.RetryAfter
			}
			if !sleepUntil(ctx, time.Now().Add(pause)) {
				return checkpoint.Upload{}, nil, ctx.Err()
			}
		}
		return checkpoint.Upload{}, nil, fmt.Errorf("upload %s: %w", a.Name, err)
	}
	return func(ctx context.Context, m *planner.Message) (chatapi.Message, error) {
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
			u, content, err := get(ctx, a, m.Restrict)
			if err != nil {
				return msg, err
			}
			body["url"], body["secret"] = u.URL, u.Secret
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
			u, _, err := get(ctx, a, m.Restrict)
			if err != nil {
				return msg, err
			}
			body["thumb"], body["thumb_secret"] = u.URL, u.Secret
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
