package emulator

import (
	"encoding/json"
	"net/http"
	"strings"
)

// errorBody is the JSON of every failed call.
type errorBody struct {
	Error       string `json:"error"`
	Exception   string `json:"exception,omitempty"`
	Timestamp   int64  `json:"timestamp"`
	Duration    int    `json:"duration"`
	ErrorCode   int    `json:"error_code,omitempty"`
	Description string `json:"error_description"`
}

// apiError is a failed call: its status and body (the timestamp is set when
// it is sent).
type apiError struct {
	status int
	body   errorBody
}

const (
	descInvalidBody  = "Request body is invalid. Please check body is correct."
	descReachLimit   = "message send reach limit"
	descAPILimit     = "This request has reached api limit"
	descTooLarge     = "message is too large"
	descNoToken      = "Unable to authenticate due to missing access token"
	descBadToken     = "Unable to authenticate due to expired access token"
	descUnavailable  = "The service is temporarily unavailable: too many requests, pause and retry"
	descInternal     = "Internal server error"
	descBadSecret    = "client_secret does not match"
	descTooBig       = "file exceeding maximum limit"
	descNoFile       = "file must be provided"
	descShareSecret  = "Unable to access the file due to a missing or wrong share-secret"
	codeTooLarge     = 14007
	exceptionSend    = "MessageSendException"
	exceptionInvalid = "InvalidRequestBodyException"
)

func errInvalidBody() *apiError {
	return &apiError{http.StatusBadRequest, errorBody{Error: "invalid_request_body", Exception: exceptionInvalid, Description: descInvalidBody}}
}

func errSend(desc string) *apiError {
	return &apiError{http.StatusBadRequest, errorBody{Error: "message_send_error", Exception: exceptionSend, Description: desc}}
}

func errTooLarge() *apiError {
	e := errSend(descTooLarge)
	e.body.ErrorCode = codeTooLarge
	return e
}

// errIllegalArgument is a token or upload request that lacks a field or
// has a wrong one. The docs give no exception for it, nor for
// errInvalidGrant and errFileTooLarge.
func errIllegalArgument(desc string) *apiError {
	return &apiError{http.StatusBadRequest, errorBody{Error: "illegal_argument", Description: desc}}
}

func errInvalidGrant() *apiError {
	return &apiError{http.StatusBadRequest, errorBody{Error: "invalid_grant", Description: descBadSecret}}
}

func errFileTooLarge() *apiError {
	return &apiError{http.StatusRequestEntityTooLarge, errorBody{Error: "file_too_large", Description: descTooBig}}
}

func errUnauthorized(desc string) *apiError {
	return &apiError{http.StatusUnauthorized, errorBody{Error: "unauthorized", Exception: "UnauthorizedException", Description: desc}}
}

func errReachLimit() *apiError {
	return &apiError{http.StatusForbidden, errorBody{Error: "message_send_error", Exception: exceptionSend, Description: descReachLimit}}
}

func errAPILimit() *apiError {
	return &apiError{http.StatusTooManyRequests, errorBody{Error: "resource_limited", Exception: "ResourceLimitedException", Description: descAPILimit}}
}

func errUnavailable(desc string) *apiError {
	return &apiError{http.StatusServiceUnavailable, errorBody{Error: "service_unavailable", Exception: "ServiceUnavailableException", Description: desc}}
}

func errInternal() *apiError {
	return &apiError{http.StatusInternalServerError, errorBody{Error: "internal_server_error", Exception: "InternalServerErrorException", Description: descInternal}}
}

func errNotFound(desc string) *apiError {
	return &apiError{http.StatusNotFound, errorBody{Error: "service_resource_not_found", Exception: "ResourceNotFoundException", Description: desc}}
}

// errNoApp answers a call to an app the server does not serve.
func errNoApp(b base) *apiError {
	return &apiError{http.StatusNotFound, errorBody{Error: "organization_application_not_found", Exception: "ApplicationNotFoundException",
		Description: "Could not find application for " + strings.TrimPrefix(b.prefix, "/") + " from URI: " + b.prefix}}
}

func errMethod(method string) *apiError {
	return &apiError{http.StatusMethodNotAllowed, errorBody{Error: "method_not_allowed", Exception: "MethodNotAllowedException", Description: "Request method '" + method + "' is not supported"}}
}

// errStatus is the error answer to a quota or fault status.
func errStatus(status int) *apiError {
	switch status {
	case http.StatusTooManyRequests:
		return errAPILimit()
	case http.StatusForbidden:
		return errReachLimit()
	case http.StatusServiceUnavailable:
		return errUnavailable(descUnavailable)
	}
	return errInternal()
}

// writeJSON sends v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal_server_error","error_description":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
