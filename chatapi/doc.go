// Package chatapi is the client of the Easemob / Agora Chat message-send
// REST API.
//
// It knows the endpoints and their per-call caps (Kind), turns a message and
// its recipients (Batch) into the exact HTTP request the service expects, for
// both base-URL flavours (/{org}/{app} and /app-id/{app_id}) and for the
// legacy /messages API, and reads the answer back into per-recipient message
// IDs. Every failure is sorted into one of three outcomes a runner acts on:
// not delivered (retry), permanent, or ambiguous (the server may have
// delivered). See Error and OutcomeOf.
//
// It does not pace, retry, batch or remember anything: those are the jobs of
// the planner, job and checkpoint packages.
package chatapi
