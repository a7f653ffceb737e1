package rollouts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Fingerprint is a short, stable hash of a canary block alone: its model and its prompt as written.
// A nil canary has the empty fingerprint. CanaryFingerprint adds the content of the files the canary
// refers to, and is what status.canary holds; with no such file the two are equal.
func Fingerprint(c *Variant) string {
	return fingerprintWith(c, nil)
}

// fingerprintWith hashes a canary block and the content hashes of the files it refers to (path → hash).
// With no files it is the hash earlier versions wrote to status.canary, so their statuses still belong.
func fingerprintWith(c *Variant, files map[string]string) string {
	if c == nil {
		return ""
	}
	h := sha256.New()
	h.Write([]byte("model\x00" + c.Model + "\x00prompt\x00" + c.Prompt))
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		h.Write([]byte("\x00file\x00" + p + "\x00" + files[p]))
	}
	return hex.EncodeToString(h.Sum(nil))[:8]
}

// Reference is one file whose content is part of the canary: the canary's prompt file, or a route
// file's canary entries (everything in them but the weight the controller sets).
type Reference struct {
	// Kind is "prompt" or "route".
	Kind string
	// Path is the file's path in the repository.
	Path string
	// Hash is a short hash of the content that counts.
	Hash string
}

// describe names the reference for a message: "prompt prompts/summarize/v4.md".
func (r Reference) describe() string {
	if r.Kind == "route" {
		return "route " + r.Path + "'s canary entry"
	}
	return r.Kind + " " + r.Path
}

// ReadReferences records in every spec of set the files its canary refers to, read from repo, the
// repository's tree (a snapshot: no git here). Call it where CheckRoutes is called. A prompt that names
// no file of the repository is a version label and refers to nothing; a route that cannot be read is
// left out (CheckRoutes reports it).
func ReadReferences(set *Set, repo fs.FS) {
	for _, d := range set.Documents {
		ReadSpecReferences(d.Spec, repo)
	}
}

// ReadSpecReferences records in spec the files its canary refers to, read from repo. A nil repo
// records nothing, and the canary is then identified by its block alone.
func ReadSpecReferences(spec *Spec, repo fs.FS) {
	spec.references, spec.referencesRead = nil, false
	if repo == nil {
		return
	}
	spec.referencesRead = true
	c := spec.Canary
	if c == nil {
		return
	}
	if p := path.Clean(c.Prompt); c.Prompt != "" && fs.ValidPath(p) && p != "." {
		if info, err := fs.Stat(repo, p); err == nil && info.Mode().IsRegular() && info.Size() <= MaxFileSize {
			if b, err := fs.ReadFile(repo, p); err == nil {
				spec.references = append(spec.references, Reference{Kind: "prompt", Path: c.Prompt, Hash: shortHash(b)})
			}
		}
	}
	for _, r := range spec.Traffic.Routes {
		p, err := routeFilePath(repo, r.RoutePath())
		if err != nil {
			continue
		}
		src, err := fs.ReadFile(repo, p)
		if err != nil {
			continue
		}
		entries, err := canaryEntries(p, src, r, spec.Stable.Model, c.Model)
		if err != nil {
			continue
		}
		spec.references = append(spec.references, Reference{Kind: "route", Path: r.RoutePath(), Hash: shortHash(entries)})
	}
}

// References are the files the canary refers to, as ReadSpecReferences found them.
func (s *Spec) References() []Reference { return s.references }

func shortHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:8]
}

// canaryEntries renders what a route holds for the canary, without the weights the controller writes:
// the mappings that hold the canary's weight, that key left out.
func canaryEntries(name string, src []byte, r Route, stableModel, canaryModel string) ([]byte, error) {
	targets, err := routeTargets(name, src, r, stableModel, canaryModel, 0)
	if err != nil {
		return nil, err
	}
	f, err := loadRouteFile(name, src)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, t := range targets {
		if !t.canary {
			continue
		}
		m, err := t.parent(f.root)
		if err != nil {
			return nil, err
		}
		entry := *m
		entry.Content = nil
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value != t.key {
				entry.Content = append(entry.Content, m.Content[i], m.Content[i+1])
			}
		}
		entry.Style = yaml.FlowStyle
		b, err := yaml.Marshal(&entry)
		if err != nil {
			return nil, err
		}
		out = append(append(out, formatPath(t.parentPath)+"\x00"...), b...)
	}
	return out, nil
}

// CanaryFingerprint is the identity of spec's canary, as status.canary records it: the canary block
// and the content of every file it refers to (ReadSpecReferences).
func CanaryFingerprint(spec *Spec) string {
	return fingerprintWith(spec.Canary, CanaryFiles(spec))
}

// CanaryFiles are the content hashes of the files spec's canary refers to, by path, as status.files
// records them; nil for none.
func CanaryFiles(spec *Spec) map[string]string {
	if len(spec.references) == 0 || spec.Canary == nil {
		return nil
	}
	out := make(map[string]string, len(spec.references))
	for _, r := range spec.references {
		out[r.Path] = r.Hash
	}
	return out
}

// CanaryChanged reports whether spec's status belongs to an earlier canary, and why: "the canary
// changed" when the block differs, "prompt prompts/summarize/v4.md changed" when a file it refers to
// does. A status without canary belongs to the current canary (a status written by hand). A status
// without files, written before file contents counted, belongs to the current canary when its block
// is the same. Without references read (a spec parsed from bytes alone) only the block is compared.
func CanaryChanged(spec *Spec) (string, bool) {
	st := spec.Status
	if st == nil || st.Canary == "" || spec.Canary == nil {
		return "", false
	}
	if st.Canary != fingerprintWith(spec.Canary, st.Files) {
		return "the canary changed", true
	}
	if !spec.referencesRead || st.Files == nil {
		return "", false
	}
	var changed []string
	seen := map[string]bool{}
	for _, r := range spec.references {
		seen[r.Path] = true
		if st.Files[r.Path] != r.Hash {
			changed = append(changed, r.describe())
		}
	}
	var gone []string
	for p := range st.Files {
		if !seen[p] {
			gone = append(gone, p)
		}
	}
	sort.Strings(gone)
	for _, p := range gone {
		if p == spec.Canary.Prompt {
			changed = append(changed, "prompt "+p)
		} else {
			changed = append(changed, "file "+p)
		}
	}
	if len(changed) == 0 {
		return "", false
	}
	return fmt.Sprintf("%s changed", strings.Join(changed, ", ")), true
}
