package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"imcast/emulator"
)

var stamped = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `)

// TestRunSaysWhy runs a campaign against a server that refuses a fifth of
// the calls (403) and answers 500 after delivering to a third: the run
// starts by naming the host, app, campaign and ledger; every log line
// starts with a timestamp; the refusals and the uncertain deliveries are
// logged with their reasons as they come, and the summary names the
// reasons with their counts and the report command with the ledger.
func TestRunSaysWhy(t *testing.T) {
	dir := t.TempDir()
	campaign, _ := testCampaign(t, dir, 400)
	srv := startFake(t, emulator.Config{QuotaScale: 20, Faults: emulator.Faults{QuotaForbidden: 0.2, ErrorAfter: 0.3}, Seed: 3})
	t.Setenv("EASEMOB_TOKEN", "test-token")
	state := filepath.Join(dir, "ledger.db")
	code, stdout, stderr := runCLI(t, "run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", state, "--quota-scale", "20", "--max-failure-rate", "1", campaign)
	if code != exitIncomplete {
		t.Fatalf("exit %d, want 3 (uncertain deliveries)\n%s\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, l := range lines {
		if !stamped.MatchString(l) {
			t.Errorf("stderr line without a timestamp: %q", l)
		}
	}
	start := lines[0]
	for _, want := range []string{"host " + srv.URL + "/o/a", "app /o/a", "campaign ", "ledger " + state} {
		if !strings.Contains(start, want) {
			t.Errorf("start line %q does not name %q", start, want)
		}
	}
	for _, want := range []string{"calls retried: not delivered: status 403", "uncertain: ambiguous: status 500"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("no log line of %q:\n%s", want, stderr)
		}
		if !strings.Contains(stdout, want) {
			t.Errorf("the summary does not name %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stdout, "why:") || !strings.Contains(stdout, "imcast report --state "+state+" --only failed,uncertain") {
		t.Errorf("the summary names no reasons, or not the report command with the ledger:\n%s", stdout)
	}
}

// TestRunJSONEventsHaveTimes runs with --json against faults: every line
// of stdout is one object with an event and a time, and the run's start,
// progress, retries, delivery errors and summary are among them.
func TestRunJSONEventsHaveTimes(t *testing.T) {
	dir := t.TempDir()
	campaign, _ := testCampaign(t, dir, 400)
	srv := startFake(t, emulator.Config{QuotaScale: 20, Faults: emulator.Faults{QuotaForbidden: 0.2, ErrorAfter: 0.3}, Seed: 3})
	t.Setenv("EASEMOB_TOKEN", "test-token")
	code, stdout, stderr := runCLI(t, "run", "--json", "--host", srv.URL, "--org", "o", "--app", "a", "--state", filepath.Join(dir, "l.db"), "--quota-scale", "20", "--max-failure-rate", "1", campaign)
	if code != exitIncomplete {
		t.Fatalf("exit %d, want 3\n%s\n%s", code, stdout, stderr)
	}
	events := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var e struct {
			Event string `json:"event"`
			Time  string `json:"time"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Event == "" || !stamped.MatchString(e.Time+" ") {
			t.Errorf("stdout line %q: not an object with an event and a time (%v)", l, err)
		}
		events[e.Event]++
	}
	for _, want := range []string{"start", "progress", "retry", "error", "summary"} {
		if events[want] == 0 {
			t.Errorf("no %s event among %v", want, events)
		}
	}
}

// TestCheckMakesAnAuthenticatedCall runs check with a given token: it
// exits 0 only when the host accepts the app and the token in a call that
// changes nothing, and 1 naming the cause against a dead host, a wrong
// token or an app the host does not know.
func TestCheckMakesAnAuthenticatedCall(t *testing.T) {
	srv := startFake(t, emulator.Config{Token: "right-token", Apps: []string{"o/a"}})
	closed := startFake(t, emulator.Config{Token: "right-token", NoRecall: true})
	cases := []struct {
		name, host, app, token string
		code                   int
		want                   string
	}{
		{"good", srv.URL, "a", "right-token", exitOK, "accepted the app and the token"},
		{"recall unopened", closed.URL, "a", "right-token", exitOK, "recall service is not enabled"},
		{"wrong token", srv.URL, "a", "wrong-token", exitFatal, "refused the credentials"},
		{"unknown app", srv.URL, "b", "right-token", exitFatal, "does not know the app"},
		{"dead host", "http://127.0.0.1:1", "a", "right-token", exitFatal, "connect"},
	}
	for _, c := range cases {
		t.Setenv("EASEMOB_TOKEN", c.token)
		code, stdout, stderr := runCLI(t, "check", "--host", c.host, "--org", "o", "--app", c.app)
		if code != c.code || !strings.Contains(stdout+stderr, c.want) {
			t.Errorf("%s: exit %d, want %d saying %q\n%s%s", c.name, code, c.code, c.want, stdout, stderr)
		}
		if strings.Contains(stdout+stderr, c.token) {
			t.Errorf("%s: the token was printed", c.name)
		}
	}
	st := srv.Stats()
	if st.Delivered != 0 || st.Recalled != 0 {
		t.Errorf("check delivered %d and recalled %d, want nothing", st.Delivered, st.Recalled)
	}
}

// TestCheckRefusesHostsThatAreNotTheAPI: a host that answers the probe
// with an error the recall API does not give (an app not found, a page
// of a web server, another refusal) fails check.
func TestCheckRefusesHostsThatAreNotTheAPI(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
	}{
		{400, `{"error":"organization_application_not_found","error_description":"no such app"}`},
		{400, `<html><body>400 Bad Request</body></html>`},
		{403, `{"error":"forbidden_op","error_description":"app is disabled"}`},
		{403, `{"error":"forbidden_op","error_description":"recall is forbidden for this app"}`},
		{200, `{"ok":true}`},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(c.status)
			io.WriteString(w, c.body)
		}))
		t.Setenv("EASEMOB_TOKEN", "right-token")
		code, stdout, stderr := runCLI(t, "check", "--host", srv.URL, "--org", "o", "--app", "a")
		if code != exitFatal {
			t.Errorf("a host answering %d %s: exit %d, want 1\n%s%s", c.status, c.body, code, stdout, stderr)
		}
		srv.Close()
	}
}

// TestForbiddenOperationIsNotRetried: a 403 that is no quota refusal
// (forbidden_op: the app may not do this) fails the deliveries at once,
// with the reason in the summary, instead of sending them again for
// minutes.
func TestForbiddenOperationIsNotRetried(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(403)
		io.WriteString(w, `{"error":"forbidden_op","error_description":"app is disabled"}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	campaign := writeCampaign(t, dir, map[string]int{"groups": 9})
	t.Setenv("EASEMOB_TOKEN", "test-token")
	code, stdout, stderr := runCLI(t, "run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", filepath.Join(dir, "l.db"), "--quiet", campaign)
	if code != exitIncomplete || calls.Load() != 3 || !strings.Contains(stdout, "app is disabled") {
		t.Errorf("every call 403 forbidden_op: exit %d after %d calls, want 3 after 3 naming the reason\n%s%s", code, calls.Load(), stdout, stderr)
	}
}

// TestReasonsAreOnePerCause: uncertain deliveries a 200 answer left out
// are a reason of the summary, and connection resets are one reason
// whatever the ports they came on.
func TestReasonsAreOnePerCause(t *testing.T) {
	dir := t.TempDir()
	campaign := writeCampaign(t, dir, map[string]int{"rooms": 600})
	srv := startFake(t, emulator.Config{QuotaScale: 20, Faults: emulator.Faults{Partial: 0.2, ResetAfter: 0.2}, Seed: 5})
	code, out := guardRun(t, srv, filepath.Join(dir, "l.db"), campaign, "--max-failure-rate", "1")
	if code != exitIncomplete || !strings.Contains(out, "gave no message ID") {
		t.Fatalf("exit %d, want 3 with the partial answers' reason\n%s", code, out)
	}
	if n := strings.Count(out, "connection reset by peer"); n != 1 {
		t.Errorf("connection resets are %d reasons of the summary, want 1\n%s", n, out)
	}
}
