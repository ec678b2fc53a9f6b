package checkpoint

import "errors"

// ErrLocked is returned by Open when another process holds the ledger.
var ErrLocked = errors.New("the ledger is in use by another imcast process")

// ErrCorrupt is returned when a record cannot be decoded.
var ErrCorrupt = errors.New("ledger record is corrupt")
