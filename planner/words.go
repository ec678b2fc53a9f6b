package planner

import "fmt"

// Count words n things for the messages a user reads: "1 delivery",
// "2 deliveries", "0 deliveries".
func Count[N ~int | ~int64](n N, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
