package emulator

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

const (
	// MaxUploadSize is the largest file POST /chatfiles takes (10 MB); a
	// larger one answers 413.
	MaxUploadSize = 10 << 20
	// maxUploadRequest bounds a whole upload request: the file plus room
	// for the multipart framing and other fields. A request beyond it
	// answers 413 and its connection is closed.
	maxUploadRequest = MaxUploadSize + 1<<20
	// uploadCallsPerSecond is the default quota of POST /chatfiles.
	uploadCallsPerSecond = 100
)

// Upload is one file stored by POST /chatfiles.
type Upload struct {
	UUID       string // entities[0].uuid of the answer
	Secret     string // entities[0].share-secret of the answer
	SHA256     string // of the content, in lower-case hex
	Size       int64  // of the content, in bytes
	Filename   string // from the multipart header of the file field
	Restricted bool   // the request had the header restrict-access: true
}

// storedFile is the content of one or more uploads.
type storedFile struct {
	data []byte
	n    int // uploads of this content
}

// uploadAnswer is the 200 answer of POST /chatfiles.
type uploadAnswer struct {
	Action          string       `json:"action"`
	Application     string       `json:"application"`
	Path            string       `json:"path"`
	URI             string       `json:"uri"`
	Entities        []fileEntity `json:"entities"`
	Timestamp       int64        `json:"timestamp"`
	Duration        int          `json:"duration"`
	Organization    string       `json:"organization,omitempty"`
	ApplicationName string       `json:"applicationName,omitempty"`
}

// fileEntity describes a stored file in an upload answer.
type fileEntity struct {
	UUID        string `json:"uuid"`
	Type        string `json:"type"`
	ShareSecret string `json:"share-secret"`
}

// serveUpload answers POST {base}/chatfiles: token, multipart body, size,
// quota, in this order. Only a stored file uses quota. The headers
// thumbnail-height and thumbnail-width are accepted and ignored.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request, b base) {
	if e := s.authorize(r); e != nil {
		s.fail(w, nil, e)
		return
	}
	data, name, e := readUpload(w, r)
	if e != nil {
		s.fail(w, nil, e)
		return
	}
	u := Upload{
		UUID:       newUUID(),
		Secret:     randomText(33),
		Size:       int64(len(data)),
		Filename:   name,
		Restricted: strings.EqualFold(strings.TrimSpace(r.Header.Get("restrict-access")), "true"),
	}
	sum := sha256.Sum256(data)
	u.SHA256 = hex.EncodeToString(sum[:])

	s.mu.Lock()
	now, ok := s.takeCall(w, s.uploadQuota)
	if !ok {
		return
	}
	f := s.files[sum]
	if f == nil {
		f = &storedFile{data: data}
		s.files[sum] = f
	} else {
		s.stats.DuplicateUploads++
	}
	f.n++
	s.byUUID[u.UUID] = len(s.uploads)
	s.uploads = append(s.uploads, u)
	s.stats.Uploads++
	s.countResponse(nil, http.StatusOK)
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, uploadAnswer{
		Action: "post", Application: applicationUUID, Path: "/chatfiles",
		URI:       origin(r) + b.prefix + "/chatfiles",
		Entities:  []fileEntity{{UUID: u.UUID, Type: "chatfile", ShareSecret: u.Secret}},
		Timestamp: now.UnixMilli(), Organization: b.org, ApplicationName: b.appName(),
	})
}

// readUpload reads the multipart field file of r, and its file name. A body
// that is not multipart/form-data answers 400 invalid_request_body, one
// without a file field 400 illegal_argument "file must be provided", and a
// file over MaxUploadSize 413 file_too_large. Other fields are skipped.
func readUpload(w http.ResponseWriter, r *http.Request) ([]byte, string, *apiError) {
	body := http.MaxBytesReader(w, r.Body, maxUploadRequest)
	r.Body = body
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, "", errInvalidBody()
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, "", errIllegalArgument(descNoFile)
		}
		if err != nil {
			return nil, "", readError(err)
		}
		if p.FormName() != "file" {
			if _, err := io.Copy(io.Discard, p); err != nil {
				return nil, "", readError(err)
			}
			continue
		}
		data, err := io.ReadAll(io.LimitReader(p, MaxUploadSize+1))
		if err != nil {
			return nil, "", readError(err)
		}
		if len(data) > MaxUploadSize {
			// Read the rest (within maxUploadRequest), so that the client
			// gets the answer rather than a reset while it still sends.
			_, _ = io.Copy(io.Discard, body)
			return nil, "", errFileTooLarge()
		}
		return data, p.FileName(), nil
	}
}

// readError is the answer to an error reading an upload body.
func readError(err error) *apiError {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return errFileTooLarge()
	}
	return errInvalidBody()
}

// serveDownload answers GET {base}/chatfiles/{uuid} with the stored content.
// It needs a bearer token, and for a restricted upload the header
// share-secret with the secret given at upload.
func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request, id string) {
	if e := s.authorize(r); e != nil {
		s.fail(w, nil, e)
		return
	}
	s.mu.Lock()
	i, ok := s.byUUID[id]
	var u Upload
	var data []byte
	if ok {
		u = s.uploads[i]
		sum, _ := hex.DecodeString(u.SHA256)
		data = s.files[[sha256.Size]byte(sum)].data
	}
	s.mu.Unlock()
	switch {
	case !ok:
		s.fail(w, nil, errNotFound("Service resource not found: chatfile "+id+" does not exist"))
		return
	case u.Restricted && subtle.ConstantTimeCompare([]byte(r.Header.Get("share-secret")), []byte(u.Secret)) != 1:
		s.fail(w, nil, errUnauthorized(descShareSecret))
		return
	}
	s.mu.Lock()
	s.countResponse(nil, http.StatusOK)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// Uploads returns every file stored by POST /chatfiles, in order.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.uploads)
}

// UploadsOf reports how many uploads stored content with this SHA-256
// (lower-case hex, as in Upload.SHA256).
func (s *Server) UploadsOf(sha256Hex string) int {
	sum, err := hex.DecodeString(sha256Hex)
	if err != nil || len(sum) != sha256.Size {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.files[[sha256.Size]byte(sum)]; f != nil {
		return f.n
	}
	return 0
}

// newUUID returns a random (version 4) UUID in its string form.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
