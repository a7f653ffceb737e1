//go:build !race

package policy

const raceEnabled = false

const simRuns = 500
