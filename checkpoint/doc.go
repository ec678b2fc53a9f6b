// Package checkpoint is the ledger: a bbolt file that records, for every
// delivery of every campaign, whether it is in flight, sent (with the
// server's message ID), failed (with the error) or uncertain, so that a run
// that was killed or run again never sends a delivery twice.
//
// Deliveries are recorded a batch at a time, as one record appended under a
// sequence number: durably in flight before the request is written, then
// rewritten durably with the outcome. Concurrent writers share commits
// (group commit), so the ledger keeps up with any quota. The ledger also
// keeps each campaign's messages, for reports, and the attachments already
// uploaded, by content hash.
//
// It does not decide what to send: the job package asks it what is done.
package checkpoint
