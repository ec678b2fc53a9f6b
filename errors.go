package main

import "errors"

// errIncomplete ends a run that finished with deliveries failed or
// uncertain (exit code 3).
var errIncomplete = errors.New("finished, but some deliveries failed or are uncertain")
