// Package planner reads campaign files (CSV and JSON Lines), validates every
// row against the API's rules before anything is sent, groups rows with the
// same message into batches up to their endpoint's cap, and estimates the
// schedule the quotas allow.
//
// It streams: a campaign of millions of rows is read row by row and never
// held in memory as rows; what it keeps is one 64-bit hash per delivery (to
// drop a recipient listed twice for the same message) and one entry per
// distinct message. It sends nothing and keeps no ledger: batches go to the
// job package, which paces and sends them.
package planner
