//go:build !race

package upstream

// raceEnabled: see race_test.go.
const raceEnabled = false
