package checkpoint

import (
	"errors"
	"fmt"
)

// ErrLocked is returned by Open when another process holds the ledger.
var ErrLocked = errors.New("the ledger is in use by another imcast process")

// ErrNoLedger is returned by Open, with Options.MustExist, when there is
// no file at the path.
var ErrNoLedger = errors.New("no ledger there (give --state the file a run wrote)")

// ErrCorrupt is returned when a record cannot be decoded.
var ErrCorrupt = errors.New("ledger record is corrupt")

// ErrDamaged is wrapped by every *DamagedError.
var ErrDamaged = errors.New("the ledger is damaged")

// DamagedError is a ledger file that cannot be read as a ledger: cut short,
// overwritten, from another version, or not a ledger at all. Nothing is
// sent from it, and it is never changed.
type DamagedError struct {
	Path   string
	Reason string // what is wrong, e.g. "it is cut short: ..."
	Err    error  // the error underneath, if any
}

func (e *DamagedError) Error() string {
	msg := fmt.Sprintf("the ledger %s is damaged: %s", e.Path, e.Reason)
	if e.Err != nil {
		msg += " (" + e.Err.Error() + ")"
	}
	return msg + ". Keep the file as it is; restore a copy of it if you have one, or start a new ledger with --state NEWFILE (a new ledger does not know what this one sent)"
}

// Unwrap returns ErrDamaged and the error underneath.
func (e *DamagedError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrDamaged, e.Err}
	}
	return []error{ErrDamaged}
}
