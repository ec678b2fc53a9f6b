package planner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"testing"
)

// The seed corpora are in testdata/fuzz/FuzzReadCSV and
// testdata/fuzz/FuzzReadJSONL: the samples' campaigns and the odd cases of
// the readers (byte-order mark, CRLF, quoting, arrays, wrong types).

// FuzzReadCSV checks that no CSV input makes the reader or the validation
// of its rows panic, and that what they report holds together.
func FuzzReadCSV(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRead(t, readCSV, data, 2)
	})
}

// FuzzReadJSONL is FuzzReadCSV for JSON Lines.
func FuzzReadJSONL(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRead(t, readJSONL, data, 1)
	})
}

// checkRead reads data with read and compiles every row as scan does, and
// checks that the lines given are in the input and go forward, and that
// every message compiled is valid JSON within the size limit. A panic is a
// failure.
func checkRead(t *testing.T, read func(io.Reader, rowFunc, badFunc) error, data []byte, firstRow int) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	lines := bytes.Count(data, []byte("\n")) + 1
	last := 0
	rows := 0
	fn := func(line int, f *fields, to []string) error {
		rows++
		if rows > len(data)+1 {
			t.Fatalf("%d rows from %d bytes", rows, len(data))
		}
		if line < firstRow || line > lines || line < last {
			t.Fatalf("row at line %d: want a line from %d to %d, not before the last row's (%d)", line, firstRow, lines, last)
		}
		last = line
		g := *f
		g.File, g.Thumb = opt{}, opt{} // never read a file the fuzzer names
		m, probs := compile(g, "", 0)
		if m == nil {
			if len(probs) == 0 {
				t.Fatalf("line %d: no message and no problem", line)
			}
			return nil
		}
		if len(probs) > 0 {
			t.Fatalf("line %d: a message and problems %q", line, probs)
		}
		if !json.Valid(m.Message.Body) || (m.Message.Ext != nil && !json.Valid(m.Message.Ext)) {
			t.Fatalf("line %d: body %q ext %q: not JSON", line, m.Message.Body, m.Message.Ext)
		}
		if n := len(m.Message.Body) + len(m.Message.Ext); n > MaxBodyExt {
			t.Fatalf("line %d: valid message of %d bytes, over %d", line, n, MaxBodyExt)
		}
		if !m.Kind.Valid() {
			t.Fatalf("line %d: valid message of unknown kind %q", line, m.Kind)
		}
		if _, err := (Batch{Message: m, To: to}).API().Encode(); err != nil {
			t.Fatalf("line %d: valid message does not encode: %v", line, err)
		}
		return nil
	}
	bad := func(line int, format string, args ...any) {
		if line < 0 || line > lines+1 {
			t.Fatalf("problem at line %d of %d: %s", line, lines, fmt.Sprintf(format, args...))
		}
	}
	if err := read(bytes.NewReader(data), fn, bad); err != nil {
		t.Fatalf("read: %v", err)
	}
}
