// Package job sends a planned campaign: a worker pool (errgroup) fed by one
// queue per endpoint, paced by one limiter per endpoint that keeps every
// sliding window of every quota under its limit, with retries and backoff
// for what the server refused without delivering, and a ledger record for
// every batch before and after its call. A watchdog stops a run whose host
// gives no answer.
//
// It declares what it needs, a Sender (the API client) and a Store or Ledger
// (checkpoint), and does not read campaign files or open the ledger itself.
// RunCampaign routes each delivery to its campaign of the ledger and refuses
// a run that would send again what another campaign sent.
package job
