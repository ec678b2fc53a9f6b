package planner

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a campaign, at a line of a file.
type Problem struct {
	File string
	Line int // 0 when the problem is with the file as a whole
	Msg  string
}

// String reads FILE:LINE: what is wrong.
func (p Problem) String() string {
	if p.Line == 0 {
		return fmt.Sprintf("%s: %s", p.File, p.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

// MaxProblems is how many problems an InvalidError lists; the rest are
// counted.
const MaxProblems = 100

// InvalidError is returned when a campaign has problems: nothing may be sent.
// It lists up to MaxProblems of them and counts the rest.
type InvalidError struct {
	Problems []Problem
	More     int // problems found beyond the listed ones
}

// Error lists the problems, one a line.
func (e *InvalidError) Error() string {
	var b strings.Builder
	n := len(e.Problems) + e.More
	fmt.Fprintf(&b, "invalid campaign: %d problem", n)
	if n != 1 {
		b.WriteString("s")
	}
	b.WriteString(", nothing was sent")
	for _, p := range e.Problems {
		b.WriteString("\n")
		b.WriteString(p.String())
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "\n... and %d more", e.More)
	}
	return b.String()
}

// problems collects problems up to MaxProblems and counts the rest.
type problems struct{ InvalidError }

func (ps *problems) add(file string, line int, format string, args ...any) {
	if len(ps.Problems) >= MaxProblems {
		ps.More++
		return
	}
	ps.Problems = append(ps.Problems, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// count is how many problems were found, listed or not.
func (ps *problems) count() int { return len(ps.Problems) + ps.More }

func (ps *problems) empty() bool { return len(ps.Problems) == 0 }

func (ps *problems) err() error {
	if ps.empty() {
		return nil
	}
	e := ps.InvalidError
	return &e
}
