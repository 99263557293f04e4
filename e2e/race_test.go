//go:build linux && race

package e2e

// e2eRace reports that the test binary runs with the race detector: CI's `go test -race`. The suite
// then builds podns with -race too, so that real clients drive the server under the detector.
const e2eRace = true
