// Package emulator is an in-process HTTP emulator of the Easemob / Agora Chat
// message-send REST API, used as the test oracle of imcast and by
// `imcast fake-server`.
//
// It serves both base-URL flavours (/{org}/{app} and /app-id/{app_id}), the
// five message-send endpoints of the newer API (users, chatgroups, chatrooms,
// and the directed chatgroups/users and chatrooms/users) and the legacy
// /messages endpoint. It checks the bearer token, validates request bodies
// with the documented errors and per-call caps, enforces the per-app quotas
// over true sliding windows (a rejected call uses no quota), injects faults
// with a seeded random source, and records every delivery by kind, scope and
// recipient so that tests can count deliveries and duplicates (and, with
// Config.KeepIDs, the message IDs each recipient was given). GET
// /_emulator/stats answers Stats as JSON, and GET or POST /_emulator/faults
// reads or replaces the Faults; neither needs a token.
//
// A message call is checked, admitted by the quotas, drawn for faults and
// delivered as it arrives; its answer goes out after its latency (Latency
// plus a seeded draw of LatencyJitter), and a call given up meanwhile
// stands as decided. The faults refuse a call (429, 403, 503, 500, with no
// delivery), deliver and fail (500 or a reset connection), deliver and
// answer an unusual success (201, 202, 204), deliver to all but name only
// some recipients in the answer (partial), deliver to some only and name
// those (partial_deliver), deliver and never answer until the client gives
// up (stall_after), or answer a redirect without delivering (redirect, and
// token_redirect for POST /token). The Retry-After of 429 and 503 answers
// is set by the faults too.
//
// Listen also starts a trap, a second loopback listener where the
// redirects point: it records what it receives (Running.TrapRequests) and
// answers everything 200 as if it had delivered, so that a client that
// follows a redirect, or sends its credentials along, is caught.
//
// It also issues app tokens (POST /token, client credentials, with expiry
// by the server clock) and stores file uploads (POST /chatfiles, read back
// with GET /chatfiles/{uuid}), each with its call quota; IssuedTokens and
// Uploads list them for tests. Faults apply to message calls only.
//
// It recalls sent messages (POST /messages/msg_recall and
// /messages/batch_recall, at most 30 a call, 100 calls/s each): every
// message ID it issued is kept with its recipient, chat type and time, a
// message is recalled at most once, within Config.RecallWindow of its
// sending unless forced, never a cmd message; Stats counts the recalls and
// the repeats. The faults of message calls apply to recall calls too.
//
// It does not check that a message body's url points to an upload, and does
// not model user or group existence (except the legacy 404 for
// Config.UnknownIDs), thumbnails, push, roaming or message history. It
// shares no code with the API client it is meant to check.
package emulator
