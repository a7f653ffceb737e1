// Package faults holds rollout's end-to-end fault, bad-input and secrets tests. It has no code of its
// own: every test drives the real reconcile.Loop, in this process or as the rollout binary (alone, or
// through the action's scripts), with real parts (go-git over bare repositories and a smart-HTTP git
// server, the GitHub test server, JSON Lines traffic files, the HTTP notifier against a loopback
// webhook) and injects the faults a production controller meets: sources that are down or hang,
// remotes that fail or hang, humans pushing in between, a process dying half way, GitHub rate limits,
// and two controllers at once. SECURITY.md names the test behind each guarantee.
package faults
