package rollouts

import _ "embed"

// SpecSource is the Go source of the spec types. `rollout schema` reads their doc comments from it,
// so the JSON Schema's descriptions, shown by editors as you type, are the comments in spec.go.
//
//go:embed spec.go
var SpecSource []byte
