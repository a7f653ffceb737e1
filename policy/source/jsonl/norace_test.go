//go:build !race

package jsonl

// raceEnabled is true under the race detector, whose sync.Pool drops a random share of what is put back.
const raceEnabled = false
