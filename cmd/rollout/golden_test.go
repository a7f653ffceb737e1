package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// checkGolden compares got with testdata/<name>, rewriting it under -update. name is relative to
// the package folder even when the test has changed directory, through base.
func checkGolden(t *testing.T, base, name string, got []byte) {
	t.Helper()
	checkGoldenFile(t, filepath.Join(base, "testdata", name), got)
}

// checkGoldenFile compares got with the file at path, rewriting it under -update.
func checkGoldenFile(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// runApp runs the command line and returns its exit code, stdout and stderr.
func runApp(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	app := &App{Stdin: bytes.NewReader(nil), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	code := app.Main(args)
	return code, stdout.String(), stderr.String()
}
