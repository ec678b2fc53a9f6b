package planner

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchRows is the campaign size of BenchmarkPlan: enough to measure the
// rate, small enough for go test -bench to stay quick. Sizes of millions are
// run by hand.
const benchRows = 100_000

// BenchmarkPlan plans a campaign of benchRows users and reports the rate in
// rows a second: a bare list of IDs with the message from --message, and a
// CSV with its own to, msg and from per row (a message for each 100 rows).
func BenchmarkPlan(b *testing.B) {
	dir := b.TempDir()
	message := filepath.Join(dir, "message.json")
	if err := os.WriteFile(message, []byte(`{"msg":"Welcome aboard!","from":"shop","ext":{"campaign":"welcome"}}`), 0o644); err != nil {
		b.Fatal(err)
	}
	jsonRow := func(i int) string {
		return fmt.Sprintf(`{"to":"user%08d","msg":"Hello, your code is %d","from":"shop"}`, i, i/100)
	}
	tests := []struct {
		name    string
		header  string
		row     func(i int) string
		message string
		ext     string // of the file: .csv unless set
		ref     bool   // JSON Lines read by encoding/json alone
	}{
		{name: "to", header: "to", row: func(i int) string { return fmt.Sprintf("user%08d", i) }, message: message},
		{name: "to,msg,from", header: "to,msg,from", row: func(i int) string {
			return fmt.Sprintf("user%08d,\"Hello, your code is %d\",shop", i, i/100)
		}},
		{name: "jsonl", row: jsonRow, ext: ".jsonl"},
		{name: "jsonl by encoding-json", row: jsonRow, ext: ".jsonl", ref: true},
	}
	q := defaultQuotas(b)
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			ext := cmp.Or(tt.ext, ".csv")
			file := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+ext)
			writeBenchCSV(b, file, tt.header, benchRows, tt.row)
			defer func(was bool) { plainRows = was }(plainRows)
			plainRows = !tt.ref
			c, err := Open(Options{Files: []string{file}, Message: tt.message})
			if err != nil {
				b.Fatal(err)
			}
			rows := 0
			for b.Loop() {
				p, err := c.Plan(context.Background(), q)
				if err != nil {
					b.Fatal(err)
				}
				if p.Total.Recipients != benchRows {
					b.Fatalf("planned %d recipients, want %d", p.Total.Recipients, benchRows)
				}
				rows += benchRows
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func writeBenchCSV(b *testing.B, path, header string, n int, row func(int) string) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	if header != "" {
		fmt.Fprintln(w, header)
	}
	for i := range n {
		fmt.Fprintln(w, row(i))
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}
