// Package job sends a planned campaign: a worker pool (errgroup) fed by one
// queue per endpoint, paced by one limiter per endpoint that keeps every
// sliding window of every quota under its limit, with retries and backoff
// for what the server refused without delivering, and a ledger record for
// every batch before and after its call.
//
// It declares what it needs, a Sender (the API client) and a Ledger
// (checkpoint), and does not read campaign files or open the ledger itself.
package job
