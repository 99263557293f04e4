//go:build race

package upstream

// raceEnabled: the test binary runs under the race detector, which slows the client several times
// over; timing bounds that tell a mechanism from its absence allow for it.
const raceEnabled = true
