package policy

// RaceEnabled tells the external tests (package policy_test) whether the race detector runs, so that
// their simulations run fewer rollouts under it.
const RaceEnabled = raceEnabled
