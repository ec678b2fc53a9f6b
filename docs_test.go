package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCompletionInBash sources imcast completion bash in a real bash and
// completes a command and a flag; and imcast man prints a page naming
// every command.
func TestCompletionInBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("no bash on this machine")
	}
	bin := binary(t)
	script := `source <("$IMCAST" completion bash)
imcast() { "$IMCAST" "$@"; }
COMP_WORDS=(imcast re); COMP_CWORD=1; _imcast_complete; echo "${COMPREPLY[*]}"
COMP_WORDS=(imcast run --qu); COMP_CWORD=2; _imcast_complete; echo "${COMPREPLY[*]}"`
	cmd := exec.Command(bash, "-c", script)
	cmd.Env = append(os.Environ(), "IMCAST="+bin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[0] != "report resolve recall" || lines[1] != "--quota-scale --quiet" {
		t.Errorf("completions: %q, want [\"report resolve recall\" \"--quota-scale --quiet\"]", lines)
	}
	page, err := exec.Command(bin, "man").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"plan", "run", "status", "report", "resolve", "check", "fake-server"} {
		if !strings.Contains(string(page), "\n.SH "+strings.ToUpper("commands")) || !strings.Contains(string(page), c) {
			t.Errorf("man page lacks %s", c)
		}
	}
}
