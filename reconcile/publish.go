package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rollout-dev/rollout/rollouts"
)

// Publication is a file of the repository that applications route by, rendered from every spec of the
// default branch (a GrowthBook SDK payload, for instance). The loop writes it in the same commit as each
// change it makes to the default branch, so that a rollback reaches the applications with the commit
// itself: a workflow chained on the push (an export job) never runs for a commit pushed with GitHub
// Actions' GITHUB_TOKEN.
type Publication struct {
	// Path is the file's path in the repository, slash-separated.
	Path string
	// Render returns the file's content for the valid specs of the default branch, in file order. kept
	// names the rollouts whose spec files fail to load on the branch: Render carries their entries over
	// unchanged from previous (the file as the branch holds it; nil when it holds none), since a spec
	// that cannot be read says nothing new about its rollout, and dropping its entry would change how
	// the applications route that rollout's users.
	Render func(specs []*rollouts.Spec, previous []byte, kept []string) ([]byte, error)
}

// ValidPublicationPath checks a Publication's path: relative, clean, inside the repository.
func ValidPublicationPath(p string) error {
	switch {
	case p == "" || strings.Contains(p, `\`) || path.IsAbs(p) || path.Clean(p) != p || p == "." ||
		p == ".." || strings.HasPrefix(p, "../") || strings.HasPrefix(p, ".git/") || p == ".git":
		return fmt.Errorf("publication path %q: want a clean relative path inside the repository (e.g. features/growthbook.json)", p)
	}
	return nil
}

// published adds to files (a commit about to be pushed on the default branch of tree) every publication
// whose content the commit changes, rendered from the specs as the commit leaves them. It never stops
// the commit: a publication that cannot be rendered is returned as a warning, and the commit lands
// without it.
func (l *Loop) published(tree fs.FS, set *rollouts.Set, files map[string][]byte) (warnings []string) {
	if len(l.Publish) == 0 {
		return nil
	}
	specs := make([]*rollouts.Spec, 0, len(set.Documents))
	for _, d := range set.Documents {
		spec := d.Spec
		if content, ok := files[d.Path]; ok {
			next, err := rollouts.Parse(d.Path, content)
			if err != nil || next == nil {
				// The edit broke its own spec: the loop's edits keep specs valid, so this is a bug;
				// publish nothing rather than a payload without the rollout.
				return []string{fmt.Sprintf("not published: %s does not parse after the edit: %v", d.Path, err)}
			}
			spec = next
		}
		specs = append(specs, spec)
	}
	kept := failedNames(tree, set)
	for _, p := range l.Publish {
		previous, err := fs.ReadFile(tree, p.Path)
		if err != nil {
			previous = nil
		}
		content, err := p.Render(specs, previous, kept)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s not published: %v", p.Path, err))
			continue
		}
		if previous != nil && bytes.Equal(previous, content) {
			continue
		}
		files[p.Path] = content
	}
	return warnings
}

// failedNames are the rollouts whose spec files fail to load in tree: each file as FailedSpecs names it,
// and the name the file states, read leniently (a spec with an unknown key or a bad value still names
// its rollout).
func failedNames(tree fs.FS, set *rollouts.Set) []string {
	var out []string
	for _, f := range FailedSpecs(set) {
		out = append(out, f.Rollout)
		if info, err := fs.Stat(tree, f.File); err != nil || info.Size() > rollouts.MaxFileSize {
			continue
		}
		src, err := fs.ReadFile(tree, f.File)
		if err != nil {
			continue
		}
		var doc struct {
			Name string `yaml:"name"`
		}
		if yaml.Unmarshal(src, &doc) == nil && doc.Name != "" && doc.Name != f.Rollout {
			out = append(out, doc.Name)
		}
	}
	return out
}

// publishStale commits, as bookkeeping, every publication that no longer matches the specs of the
// default branch: after a proposal merged (a merge does not render the publication), or after a person
// changed a spec. It returns the commit ("" when every publication is current).
func (l *Loop) publishStale(ctx context.Context, t *tick) (string, error) {
	files := map[string][]byte{}
	if warnings := l.published(t.snap.Files, t.set, files); len(warnings) > 0 {
		return "", errors.New(strings.Join(warnings, "; "))
	}
	if len(files) == 0 {
		return "", nil
	}
	paths := make([]string, 0, len(files))
	for _, p := range l.Publish {
		if _, ok := files[p.Path]; ok {
			paths = append(paths, p.Path)
		}
	}
	msg := fmt.Sprintf("rollout: publish %s\n\nThe specs of %s changed without it (a merged proposal, a person's edit).\n\n%s: publish\n",
		strings.Join(paths, ", "), short(t.snap.Head), TrailerBookkeeping)
	commit, err := l.Repo.Push(ctx, PushRequest{
		Branch: t.snap.Branch, Parent: t.snap.Head, Expect: t.snap.Head,
		Files: files, Message: msg, When: l.now(),
	})
	if err != nil {
		return "", fmt.Errorf("publish %s: %w", strings.Join(paths, ", "), err)
	}
	t.snap = &Snapshot{Branch: t.snap.Branch, Head: commit, Files: overlayFS{base: t.snap.Files, files: files}}
	return commit, nil
}
