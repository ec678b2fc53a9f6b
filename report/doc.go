// Package report is what imcast tells its user: the progress of a run (a
// bar on a terminal, steady lines elsewhere, or JSON events), the summary
// at its end, the status of every campaign in a ledger, and the ledger's
// deliveries one row each, as CSV or JSON Lines that run accepts back as a
// campaign.
//
// It only reads: the run's counters and the ledger.
package report
