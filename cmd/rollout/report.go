package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/reconcile/gitrepo"
	"github.com/rollout-dev/rollout/reconcile/report"
	"github.com/rollout-dev/rollout/rollouts"
)

func init() {
	repositoryFlags["report"] = []string{"repo", "branch", "dir", "token-file"}
}

// reportOptions are the inputs of `rollout report`.
type reportOptions struct {
	Output  string
	Since   string
	Out     string
	Charts  string
	Every   string
	Metrics string
	Now     string
	Cache   string
	NoCache bool
	Summary string
	// Artifact names the artifact the summary says the page and charts are in.
	Artifact string
}

func (app *App) reportCmd() *cobra.Command {
	opts := &reportOptions{}
	cmd := &cobra.Command{
		Use:   "report [-o html] [--since 30d] [--out FILE] [--charts DIR]",
		Short: "Write every rollout's story as one self-contained HTML page of charts",
		Long: `report reads every rollout's history from git and writes one HTML file that needs no server,
no script and no network: the canary weight over time (each change numbered, with its commit, actor
and decision), and for the current and past stages each rule's estimate and always-valid interval
over time against its limit, with each decision marked.

The intervals are replayed: the judge runs again at each past tick (every --every) over the stage's
window, with the spec as git held it then and the statistics the metrics source gives now. Each tick
is cached under the user cache directory by spec commit, tick and source, so a second report only
reads what is new. --charts DIR also writes each rollout's charts as SVG files, for a job summary.

Example:
  rollout report --since 7d --out report.html
  rollout report --repo https://github.com/acme/llm-config --out site/index.html --charts site/charts`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return app.reportRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Output, "output", "o", "html", "output format: html")
	f.StringVar(&opts.Since, "since", "30d", "how far back the report goes (a duration: 12h, 7d)")
	f.StringVar(&opts.Out, "out", "-", "the HTML file to write; - writes to standard output")
	f.StringVar(&opts.Charts, "charts", "", "also write each rollout's charts as SVG files in this folder")
	f.StringVar(&opts.Every, "every", "1h", "time between two replayed ticks of a stage")
	f.StringVar(&opts.Metrics, "metrics", "", "metrics source for this run: file:PATH, prometheus:URL, postgres://… or clickhouse://… (default: each spec's)")
	f.StringVar(&opts.Now, "now", "", "end the report at this RFC 3339 time instead of now")
	f.StringVar(&opts.Cache, "cache", "", "the folder of replayed ticks (default: rollout/report in the user cache folder)")
	f.BoolVar(&opts.NoCache, "no-cache", false, "replay every tick, reading and writing no cache")
	f.StringVar(&opts.Summary, "summary", "", "also write a Markdown summary (for a GitHub job summary) to this file")
	f.StringVar(&opts.Artifact, "artifact", "", "the artifact the summary says holds the page and the charts")
	return cmd
}

func (app *App) reportRun(ctx context.Context, opts *reportOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if opts.Output != "html" {
		return usageError{fmt.Errorf("unknown output format %q: want html", opts.Output)}
	}
	since, err := rollouts.ParseDuration(opts.Since)
	if err != nil || since <= 0 {
		return usageError{fmt.Errorf("--since %q: want a positive duration such as 30d or 12h", opts.Since)}
	}
	every, err := rollouts.ParseDuration(opts.Every)
	if err != nil || time.Duration(every) < time.Minute {
		return usageError{fmt.Errorf("--every %q: want a duration of a minute or more, such as 1h", opts.Every)}
	}
	var now time.Time
	if opts.Now != "" {
		t, err := time.Parse(time.RFC3339, opts.Now)
		if err != nil {
			return usageError{fmt.Errorf("--now %q is not an RFC 3339 time such as 2026-04-16T12:00:00Z", opts.Now)}
		}
		now = t.UTC()
	} else {
		now = app.Now().UTC()
	}
	var cache report.Cache
	if !opts.NoCache {
		dir := opts.Cache
		if dir == "" {
			if base, err := os.UserCacheDir(); err == nil {
				dir = filepath.Join(base, "rollout", "report")
			}
		}
		if dir != "" {
			cache = report.DirCache{Dir: dir}
		}
	}

	getenv, err := app.githubEnv()
	if err != nil {
		return err
	}
	remote, err := gitrepo.Open(ctx, gitrepo.Options{URL: app.Repo, Branch: app.Branch, Auth: gitrepo.TokenAuth(getenv("GITHUB_TOKEN"))})
	if err != nil {
		return err
	}
	snap, err := remote.Snapshot(ctx)
	if err != nil {
		return err
	}
	set, err := rollouts.Load(snap.Files, app.Dir)
	if err != nil {
		return err
	}
	history, err := remote.History(ctx)
	if err != nil {
		return err
	}
	replayer := &report.Replayer{Cache: cache, Every: time.Duration(every), Open: app.reportSource(opts.Metrics)}
	page := report.Page{Repository: redactSource(app.Repo), Branch: snap.Branch, Since: now.Add(-time.Duration(since)), Now: now, Every: time.Duration(every)}
	if page.Repository == "" {
		page.Repository = "the current checkout"
	}
	for _, p := range set.Errors() {
		page.Problems = append(page.Problems, p.Error())
	}
	for _, file := range reportFiles(snap.Files, app.Dir, set) {
		commits, err := history.Log(file.path, 0)
		if err != nil {
			page.Problems = append(page.Problems, fmt.Sprintf("%s: %v", file.path, err))
			continue
		}
		in := report.Input{Name: file.name, Path: file.path, Spec: file.spec}
		for i := len(commits) - 1; i >= 0; i-- {
			c := commits[i]
			in.Versions = append(in.Versions, report.Version{Commit: c.Hash, When: c.When.UTC(), Content: c.Content})
		}
		if in.Name == "" {
			in.Name = lastName(file.path, commits)
		}
		for _, e := range weightChanges(in.Name, commits) {
			in.Changes = append(in.Changes, report.Change{Commit: e.Commit, When: e.When, Author: e.Author, Actor: e.Actor,
				Decision: e.Decision, Subject: e.Subject, Weight: e.To})
		}
		page.Rollouts = append(page.Rollouts, replayer.Replay(ctx, in, page.Since, now))
	}

	var html bytes.Buffer
	if err := report.WriteHTML(&html, page); err != nil {
		return err
	}
	if opts.Out == "-" {
		if _, err := app.Stdout.Write(html.Bytes()); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else if err := writeFileAtomic(opts.Out, html.Bytes()); err != nil {
		return err
	}
	if opts.Charts != "" {
		if err := os.MkdirAll(opts.Charts, 0o755); err != nil {
			return fmt.Errorf("write charts: %w", err)
		}
		for _, f := range report.Charts(page) {
			if err := os.WriteFile(filepath.Join(opts.Charts, f.Name), []byte(f.SVG), 0o644); err != nil {
				return fmt.Errorf("write charts: %w", err)
			}
		}
	}
	if opts.Summary != "" {
		if err := writeFileAtomic(opts.Summary, []byte(report.Markdown(page, opts.Artifact))); err != nil {
			return err
		}
	}
	if opts.Out != "-" {
		fmt.Fprintf(app.Stderr, "rollout: wrote %s (%d rollouts, %d KB)\n", opts.Out, len(page.Rollouts), (html.Len()+1023)/1024)
	}
	return nil
}

// reportFile is one spec file the report tells the story of; spec is nil when the file has errors now.
type reportFile struct {
	path, name string
	spec       *rollouts.Spec
}

// reportFiles lists every spec file of dir in name order: those that load, and those Load left out
// for their errors, so that a rollout whose spec someone broke keeps its history on the page (the
// errors are listed at its top) instead of vanishing from it.
func reportFiles(files fs.FS, dir string, set *rollouts.Set) []reportFile {
	loaded := map[string]*rollouts.Spec{}
	for _, d := range set.Documents {
		loaded[d.Path] = d.Spec
	}
	broken := map[string]bool{}
	for _, p := range set.Errors() {
		broken[p.File] = true
	}
	entries, _ := fs.ReadDir(files, dir)
	var out []reportFile
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		switch spec, ok := loaded[p]; {
		case ok:
			out = append(out, reportFile{path: p, name: spec.Name, spec: spec})
		case broken[p] && !e.IsDir() && rollouts.IsSpecFile(e.Name()):
			out = append(out, reportFile{path: p})
		}
	}
	return out
}

// lastName is the rollout name of the newest version of a spec file that has one (commits newest
// first), else the file's name without its extension.
func lastName(file string, commits []gitrepo.Commit) string {
	for _, c := range commits {
		var doc struct {
			Name string `yaml:"name"`
		}
		if c.Content != nil && yaml.Unmarshal(c.Content, &doc) == nil && doc.Name != "" {
			return doc.Name
		}
	}
	base := path.Base(file)
	return strings.TrimSuffix(base, path.Ext(base))
}

// reportSource opens a spec's metrics source for the replay and names it for the cache: a hash of the
// source string (a relative file: path made absolute), its schema and models, so that no credential
// in a URL reaches a file name and two sources never share a cached tick.
func (app *App) reportSource(override string) report.SourceOpener {
	return func(spec *rollouts.Spec) (policy.Source, string, error) {
		src, err := app.openSource(spec, override)
		if err != nil {
			return nil, "", err
		}
		name := spec.Metrics.Source
		if override != "" {
			name = override
		}
		if path, ok := strings.CutPrefix(name, "file:"); ok {
			if abs, err := filepath.Abs(path); err == nil {
				name = "file:" + abs
			}
		}
		h := sha256.Sum256([]byte(name + "\x00" + spec.Metrics.Schema))
		return src, hex.EncodeToString(h[:]), nil
	}
}

// writeFileAtomic writes data to path through a temporary file in the same folder, so that a reader
// (a web server, a browser) never sees half a report. What is not a regular file (--out /dev/stdout,
// /dev/null, a named pipe) is written in place: renaming over it would replace the device with a
// file, for every process of the machine when run as root. A symbolic link stays one: its target is
// replaced.
func writeFileAtomic(path string, data []byte) error {
	if info, err := os.Stat(path); err == nil {
		switch {
		case info.IsDir():
			return fmt.Errorf("write report: %s is a folder", path)
		case !info.Mode().IsRegular():
			return writeInPlace(path, data)
		}
		if target, err := filepath.EvalSymlinks(path); err == nil {
			path = target
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// writeInPlace writes data to a file that exists and is no regular file, such as a device or a pipe.
func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
