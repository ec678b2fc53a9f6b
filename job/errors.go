package job

import "errors"

// ErrUnauthorized stops a run when the server refuses the app token even
// after a refresh, or the client credentials: no call can succeed until
// the credentials are fixed.
var ErrUnauthorized = errors.New("the server refused the credentials")

// ErrNoUploader is returned for a message with a file to upload when the
// run has no way to upload it.
var ErrNoUploader = errors.New("a message has a file to upload, but no uploader is configured")
