package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imcast/emulator"
)

// testCampaign writes a mixed campaign and returns its path and every
// delivery it holds, as emulator (kind, scope, recipient) triples.
func testCampaign(t *testing.T, dir string, users int) (string, []delivery) {
	t.Helper()
	var lines []string
	var all []delivery
	add := func(kind, scope string, to []string, extra string) {
		b, _ := json.Marshal(to)
		row := fmt.Sprintf(`{"kind":%q,"to":%s%s`, kind, b, extra)
		if scope != "" {
			row += fmt.Sprintf(`,"scope":%q`, scope)
		}
		lines = append(lines, row+"}")
		for _, id := range to {
			all = append(all, delivery{kind, scope, id})
		}
	}
	ids := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%04d", prefix, i)
		}
		return out
	}
	add("users", "", ids("u", users), `,"msg":"hello users","from":"shop"`)
	add("groups", "", ids("g", 31), `,"msg":"hello groups"`)
	add("rooms", "", ids("r", 41), `,"msg":"hello rooms","chatroom_msg_level":"high"`)
	add("group_members", "g0001", ids("m", 45), `,"msg":"hello members"`)
	add("room_members", "r0002", ids("n", 25), `,"type":"cmd","body":{"action":"refresh"}`)
	add("legacy_users", "", ids("l", 50), `,"msg":"hello legacy"`)
	path := filepath.Join(dir, "mixed.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, all
}

type delivery struct{ kind, scope, to string }

// startFake starts an emulator for a test.
func startFake(t *testing.T, cfg emulator.Config) *emulator.Running {
	t.Helper()
	srv, err := emulator.Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// reportRows reads the ledger's deliveries through imcast report.
func reportRows(t *testing.T, state string) map[delivery]map[string]string {
	t.Helper()
	code, out, stderr := runCLI(t, "report", "--state", state, "--format", "jsonl")
	if code != exitOK {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	rows := map[delivery]map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("report line %q: %v", sc.Text(), err)
		}
		str := map[string]string{}
		for k, v := range row {
			if s, ok := v.(string); ok {
				str[k] = s
			}
		}
		d := delivery{str["kind"], str["scope"], str["recipient"]}
		if _, dup := rows[d]; dup {
			t.Errorf("report lists %v twice", d)
		}
		rows[d] = str
	}
	return rows
}

func TestRunSendsEveryDeliveryOnceUnderFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults emulator.Faults
		// whether faulty calls leave deliveries uncertain, and whether
		// the emulator delivered them anyway
		uncertain, delivers bool
	}{
		{name: "429", faults: emulator.Faults{TooManyRequests: 0.3}},
		{name: "403", faults: emulator.Faults{QuotaForbidden: 0.3}},
		{name: "503", faults: emulator.Faults{Unavailable: 0.3}},
		{name: "latency", faults: emulator.Faults{Latency: 40e6}},
		{name: "500 before delivering", faults: emulator.Faults{ErrorBefore: 0.3}, uncertain: true},
		{name: "500 after delivering", faults: emulator.Faults{ErrorAfter: 0.3}, uncertain: true, delivers: true},
		{name: "reset after delivering", faults: emulator.Faults{ResetAfter: 0.3}, uncertain: true, delivers: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			campaign, all := testCampaign(t, dir, 1300)
			srv := startFake(t, emulator.Config{QuotaScale: 20, Faults: tt.faults, Seed: 7})
			t.Setenv("EASEMOB_TOKEN", "test-token")
			state := filepath.Join(dir, "ledger.db")
			args := []string{"run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", state, "--quota-scale", "20", "--max-failure-rate", "1", "--quiet", campaign}
			code, stdout, stderr := runCLI(t, args...)
			stats := srv.Stats()
			if stats.Duplicates != 0 {
				t.Fatalf("emulator counted %d duplicates", stats.Duplicates)
			}
			rows := reportRows(t, state)
			uncertain := 0
			for _, d := range all {
				row := rows[d]
				got := srv.Delivered(d.kind, d.scope, d.to)
				switch {
				case row == nil:
					t.Fatalf("%v: not in the ledger", d)
				case row["state"] == "sent" && got != 1:
					t.Fatalf("%v: recorded sent, delivered %d times", d, got)
				case row["state"] == "uncertain":
					uncertain++
					if !tt.uncertain {
						t.Fatalf("%v: uncertain (%s) though no fault could leave it so", d, row["error"])
					}
					if want := map[bool]int{true: 1, false: 0}[tt.delivers]; got != want {
						t.Fatalf("%v: uncertain, delivered %d times, want %d", d, got, want)
					}
				case row["state"] != "sent" && row["state"] != "uncertain":
					t.Fatalf("%v: state %s (%s)", d, row["state"], row["error"])
				}
			}
			wantCode := exitOK
			if tt.uncertain {
				wantCode = exitIncomplete
				if uncertain == 0 {
					t.Fatalf("no delivery is uncertain; faults: %v", stats.Faults)
				}
			}
			if code != wantCode {
				t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, wantCode, stdout, stderr)
			}
			if len(rows) != len(all) {
				t.Errorf("report has %d deliveries, want %d", len(rows), len(all))
			}

			// Running again sends nothing: sent ones are done, uncertain
			// ones are held.
			before := srv.Stats().Accepted
			srv.SetFaults(emulator.Faults{})
			code, stdout, _ = runCLI(t, args...)
			if after := srv.Stats().Accepted; after != before {
				t.Errorf("second run made %d accepted calls, want 0", after-before)
			}
			if code != wantCode {
				t.Errorf("second run: exit code %d, want %d\n%s", code, wantCode, stdout)
			}
			if tt.uncertain && !strings.Contains(stdout, "not resent") {
				t.Errorf("second run does not say uncertain deliveries were held:\n%s", stdout)
			}
		})
	}
}
