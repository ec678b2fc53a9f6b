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
		checkRead(t, func(r io.Reader, fn rowFunc, bad badFunc) error { return readCSV(r, 0, fn, bad) }, data, 2)
	})
}

// FuzzReadJSONL is FuzzReadCSV for JSON Lines.
func FuzzReadJSONL(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRead(t, func(r io.Reader, fn rowFunc, bad badFunc) error { return readJSONL(r, 0, fn, bad) }, data, 1)
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

// FuzzReadCSVAgreesWithEncodingCSV checks that readCSV, with its own split
// of plain lines, reads every input exactly as encoding/csv does:
// the same rows at the same lines, the same problems.
func FuzzReadCSVAgreesWithEncodingCSV(f *testing.F) {
	for _, s := range []string{
		"to\nu1\nu2\n",
		"to,msg\r\nu1,hi\r\nu2,\"a, b\"\r\nu3,x\n",
		"\xef\xbb\xbfto,msg\nu1,hi\n\nu2\nu3,hi,extra\n",
		"to\n\"u1\"\nu2\n",
		"to,msg\nu1,a\rb\nu2,c\r",
		"msg\nhi\n",
		"to,to\nu1,u2\n",
		"\nto\nu1\n",
		"to\nu1\n\r\n\nu2",
		"to,msg\nu1,\xff\nu2,ok\n",
		"to,msg\nu1,x\"y\nu2,ok\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// shifted, as a read of the rows appended to a file is
		shift := len(data) % 3
		fast, ref := readAll(t, data, func(r io.Reader, fn rowFunc, bad badFunc) error {
			return readCSV(r, shift, fn, bad)
		}), readAll(t, data, func(r io.Reader, fn rowFunc, bad badFunc) error {
			return readCSVReference(r, fn, bad, shift)
		})
		if fast != ref {
			t.Fatalf("input %q\nreadCSV:\n%s\nencoding/csv:\n%s", data, fast, ref)
		}
	})
}

// readAll reads data with read and returns what it saw, row by row and
// problem by problem, in order.
func readAll(t *testing.T, data []byte, read func(io.Reader, rowFunc, badFunc) error) string {
	var b bytes.Buffer
	fn := func(line int, f *fields, to []string) error {
		fmt.Fprintf(&b, "row %d: %+v to %q\n", line, *f, to)
		return nil
	}
	bad := func(line int, format string, args ...any) {
		fmt.Fprintf(&b, "problem %d: %s\n", line, fmt.Sprintf(format, args...))
	}
	if err := read(bytes.NewReader(data), fn, bad); err != nil {
		t.Fatalf("read: %v", err)
	}
	return b.String()
}

// FuzzReadJSONLAgreesWithEncodingJSON checks that readJSONL, reading the
// common rows itself, reads every input exactly as it does with
// encoding/json alone: the same rows and fields at the same lines, the
// same problems.
func FuzzReadJSONLAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"to":"u1","msg":"hi"}` + "\n" + `{"kind":"groups","to":["g1","g2"],"msg":"yo"}`,
		`{ "to" : [ "a" , "b" ] , "restrict_access" : true , "from" : null }`,
		`{"to":"u1","to":"u2"}` + "\n" + `{"TO":"u1"}` + "\n" + `{"to":"a\"b"}`,
		`{"to":"u1","ext":{"a":1},"msg":"x"}` + "\n" + `{"to":1}` + "\n" + `{"to":[]}`,
		`{"to":"u1"} x` + "\n" + `{"to":"u1",}` + "\n" + `{}` + "\n" + `[]` + "\n" + `{"nope":"x"}`,
		`{"to":"\u00e9","msg":"caf\u00e9"}` + "\n" + `{"to":"é","msg":"\t"}` + "\n" + `{"to":["a",null]}`,
		`{"recipient":"u1","campaign":"c","state":"sent","message_id":"1","error":"","time":"t"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		read := func(plain bool) string {
			old := plainRows
			plainRows = plain
			defer func() { plainRows = old }()
			return readAll(t, data, func(r io.Reader, fn rowFunc, bad badFunc) error {
				return readJSONL(r, 0, fn, bad)
			})
		}
		if fast, ref := read(true), read(false); fast != ref {
			t.Fatalf("input %q\nread plain:\n%s\nencoding/json:\n%s", data, fast, ref)
		}
	})
}
