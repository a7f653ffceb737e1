// Package e2egithub holds the end-to-end tests of rollout on GitHub, and nothing else: the real
// reconcile.Loop, with gitrepo.Remote as its repository, githubforge.Forge as its forge and JSONL files
// as its metrics, against the fake GitHub of internal/githubtest, which serves the REST API and, through
// the real `git http-backend`, the git repository itself.
//
// The tests play the humans: they open and merge the pull request that adds a canary, write the
// traffic of each stage, merge or close the bot's pull requests and push to its branch; then they read
// the fake GitHub's state and the server's bare repository with go-git.
package e2egithub
