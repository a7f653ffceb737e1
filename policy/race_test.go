//go:build race

package policy

// raceEnabled is true under the race detector, which makes every simulated judgment several times
// slower; the simulations then run fewer rollouts.
const raceEnabled = true

const simRuns = 200
