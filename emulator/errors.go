package emulator

import "errors"

// ErrNotLoopback is returned by Listen for an address that is not on a
// loopback interface: the emulator never serves beyond the local host.
var ErrNotLoopback = errors.New("not a loopback address")

// ErrInvalidFaults is returned by Faults.Validate when a probability is
// outside [0, 1] or a duration is negative.
var ErrInvalidFaults = errors.New("invalid faults")
