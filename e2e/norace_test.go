//go:build linux && !race

package e2e

// e2eRace reports that the test binary runs with the race detector (see e2e_race_test.go).
const e2eRace = false
