package chatapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
)

// Uploaded is a file the service holds: the url and share-secret a message
// body carries to point at it.
type Uploaded struct {
	UUID   string
	URL    string // {base}/chatfiles/{uuid}
	Secret string // the share-secret
}

// Upload sends content, named name, to {base}/chatfiles (multipart field
// "file"), with "restrict-access: true" when restrict is set, so that only
// holders of the share-secret can fetch it. It takes the bytes, not a
// path, so that what is sent is exactly what the caller checked. Failures
// are *Errors, sorted as for Send; sending a file again does no harm, so a
// runner may retry any.
func (c *Client) Upload(ctx context.Context, name string, content []byte, restrict bool) (Uploaded, error) {
	var up Uploaded
	err := c.withToken(ctx, func(token string) (err error) {
		up, err = c.upload(ctx, name, content, restrict, token)
		return err
	})
	return up, err
}

func (c *Client) upload(ctx context.Context, name string, content []byte, restrict bool, token string) (Uploaded, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", filepath.Base(name))
	if err == nil {
		_, err = part.Write(content)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return Uploaded{}, &Error{Op: "upload", Outcome: Permanent, Err: err}
	}
	// Uploads have no fixed size: give them a longer time than a call.
	ctx, cancel := context.WithTimeout(ctx, 4*c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/chatfiles", &body)
	if err != nil {
		return Uploaded{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if restrict {
		req.Header.Set("restrict-access", "true")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Uploaded{}, &Error{Op: "upload", Outcome: Ambiguous, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if !success(resp.StatusCode) {
		e := failure(resp, raw)
		e.Op = "upload"
		return Uploaded{}, e
	}
	var a struct {
		Entities []struct {
			UUID        string `json:"uuid"`
			ShareSecret string `json:"share-secret"`
		} `json:"entities"`
	}
	if jerr := json.Unmarshal(raw, &a); jerr != nil || len(a.Entities) == 0 || a.Entities[0].UUID == "" {
		return Uploaded{}, &Error{Op: "upload", Outcome: Ambiguous, Status: resp.StatusCode, Err: errors.New("the answer names no uploaded file")}
	}
	ent := a.Entities[0]
	return Uploaded{UUID: ent.UUID, URL: fmt.Sprintf("%s/chatfiles/%s", c.base, ent.UUID), Secret: ent.ShareSecret}, nil
}
