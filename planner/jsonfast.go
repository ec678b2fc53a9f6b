package planner

import (
	"bytes"
	"unicode/utf8"
)

// decodePlainRow decodes text, one JSON Lines row, into row as
// encoding/json with DisallowUnknownFields decodes it, and reports whether
// it could: text must be an object whose keys are columns, exactly as
// spelled, and whose values are strings with no escape, arrays of them,
// true, false or null. That is the common row, and this reads it several
// times faster; any other (an object value, a number, an escape, a key of
// another case, or text that is not JSON) is left to encoding/json, the
// reference, which reads it or says what is wrong.
func decodePlainRow(text []byte, row *jsonRow) bool {
	p := plainScan{b: text}
	if !p.byte('{') {
		return false
	}
	if p.byte('}') {
		return p.end()
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return false
		}
		i, known := columnOf[string(key)]
		if !known {
			return false
		}
		raw, ok := p.value()
		if !ok {
			return false
		}
		row[i] = raw
		if p.byte('}') {
			return p.end()
		}
		if !p.byte(',') {
			return false
		}
	}
}

// plainScan reads the JSON decodePlainRow takes.
type plainScan struct {
	b []byte
	i int
}

func (p *plainScan) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

// byte reads c, after white space.
func (p *plainScan) byte(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end reports whether nothing but white space is left.
func (p *plainScan) end() bool {
	p.space()
	return p.i == len(p.b)
}

// str reads a string with no escape and returns its text, quotes left out.
func (p *plainScan) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// value reads a string, an array of strings, true, false or null, and
// returns its JSON text.
func (p *plainScan) value() ([]byte, bool) {
	p.space()
	start := p.i
	if p.i >= len(p.b) {
		return nil, false
	}
	switch p.b[p.i] {
	case '"':
		_, ok := p.str()
		return p.b[start:p.i], ok
	case '[':
		p.i++
		if p.byte(']') {
			return p.b[start:p.i], true
		}
		for {
			if _, ok := p.str(); !ok {
				return nil, false
			}
			if p.byte(']') {
				return p.b[start:p.i], true
			}
			if !p.byte(',') {
				return nil, false
			}
		}
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
			p.i += len(lit)
			return p.b[start:p.i], true
		}
	}
	return nil, false
}

// plainString returns the text of raw, a JSON string, when it holds no
// escape and is UTF-8, as json.Unmarshal would give it.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	in := raw[1 : len(raw)-1]
	for _, c := range in {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}

// plainStrings returns the texts of raw, a JSON array of strings, when
// each is plain (see plainString).
func plainStrings(raw []byte) ([]string, bool) {
	p := plainScan{b: raw}
	if !p.byte('[') {
		return nil, false
	}
	out := []string{}
	if p.byte(']') {
		return out, p.end()
	}
	for {
		s, ok := p.str()
		if !ok || !utf8.Valid(s) {
			return nil, false
		}
		out = append(out, string(s))
		if p.byte(']') {
			return out, p.end()
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}
