package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

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
	// Render returns the file's content for the valid specs of the default branch, in file order.
	Render func(specs []*rollouts.Spec) ([]byte, error)
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
	for _, p := range l.Publish {
		content, err := p.Render(specs)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s not published: %v", p.Path, err))
			continue
		}
		if old, err := fs.ReadFile(tree, p.Path); err == nil && bytes.Equal(old, content) {
			continue
		}
		files[p.Path] = content
	}
	return warnings
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
