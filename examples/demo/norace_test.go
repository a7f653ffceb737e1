//go:build !race

package demo

// raceEnabled is true under the race detector, which makes a whole story ten times slower.
const raceEnabled = false
