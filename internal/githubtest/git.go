package githubtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// gitStore is the repository's object database as the Git Data API sees it: blobs, flat trees
// (path to blob), commits and refs. Hashes are content hashes, not git's, which no client may rely on.
type gitStore struct {
	blobs   map[string][]byte
	trees   map[string]map[string]string
	commits map[string]*gitCommit
	refs    map[string]string // "refs/heads/main" → commit
}

type gitCommit struct {
	SHA       string
	Tree      string
	Parents   []string
	Message   string
	Author    *gitPerson
	Committer *gitPerson
	Verified  bool
}

type gitPerson struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Date  string `json:"date"`
}

func newGitStore() gitStore {
	return gitStore{blobs: map[string][]byte{}, trees: map[string]map[string]string{},
		commits: map[string]*gitCommit{}, refs: map[string]string{}}
}

func (g *gitStore) putBlob(content []byte) string {
	sha := fakeSHA("blob\x00" + string(content))
	g.blobs[sha] = content
	return sha
}

func (g *gitStore) putTree(entries map[string]string) string {
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	for _, p := range paths {
		b.WriteString(p + "\x00" + entries[p] + "\n")
	}
	sha := fakeSHA("tree\x00" + b.String())
	g.trees[sha] = entries
	return sha
}

// isAncestor reports whether a is b or one of its ancestors.
func (g *gitStore) isAncestor(a, b string) bool {
	seen := map[string]bool{}
	queue := []string{b}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == a {
			return true
		}
		if seen[c] || g.commits[c] == nil {
			continue
		}
		seen[c] = true
		queue = append(queue, g.commits[c].Parents...)
	}
	return false
}

// SeedCommit makes a commit holding files on top of parent ("" for a root commit), points
// refs/heads/branch at it, and returns its hash. It stands for a push made with git.
func (s *Server) SeedCommit(branch, parent string, files map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries := map[string]string{}
	if p := s.git.commits[parent]; p != nil {
		for k, v := range s.git.trees[p.Tree] {
			entries[k] = v
		}
	}
	for path, content := range files {
		entries[path] = s.git.putBlob([]byte(content))
	}
	tree := s.git.putTree(entries)
	c := &gitCommit{Tree: tree, Message: "seed " + branch, Author: &gitPerson{Name: "Alice", Email: "alice@example.com", Date: *ts(s.Now())}}
	if parent != "" {
		c.Parents = []string{parent}
	}
	c.SHA = fakeSHA(fmt.Sprintf("commit\x00%s\x00%v\x00%s\x00%d", c.Tree, c.Parents, c.Message, len(s.git.commits)))
	c.Committer = c.Author
	s.git.commits[c.SHA] = c
	s.git.refs["refs/heads/"+branch] = c.SHA
	return c.SHA
}

// GitCommit is a commit made through the Git Data API, for assertions.
type GitCommit struct {
	Parents  []string
	Message  string
	Verified bool
	// Files is the commit's whole tree.
	Files map[string]string
}

// Ref returns the commit a branch points at, "" if none.
func (s *Server) Ref(branch string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.git.refs["refs/heads/"+branch]
}

// Commit returns a commit; ok is false when there is none.
func (s *Server) Commit(sha string) (GitCommit, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.git.commits[sha]
	if c == nil {
		return GitCommit{}, false
	}
	out := GitCommit{Parents: c.Parents, Message: c.Message, Verified: c.Verified, Files: map[string]string{}}
	for path, blob := range s.git.trees[c.Tree] {
		out.Files[path] = string(s.git.blobs[blob])
	}
	return out, true
}

func (h handler) commitJSON(c *gitCommit) map[string]any {
	base := fmt.Sprintf("%s/repos/%s/%s/git", h.s.URL, h.s.Owner, h.s.Repo)
	parents := []map[string]string{}
	for _, p := range c.Parents {
		parents = append(parents, map[string]string{"sha": p, "url": base + "/commits/" + p,
			"html_url": fmt.Sprintf("%s/%s/%s/commit/%s", h.s.URL, h.s.Owner, h.s.Repo, p)})
	}
	verification := map[string]any{"verified": false, "reason": "unsigned", "signature": nil, "payload": nil}
	if c.Verified {
		verification = map[string]any{"verified": true, "reason": "valid",
			"signature": "-----BEGIN PGP SIGNATURE-----\n\nfake\n-----END PGP SIGNATURE-----\n", "payload": "tree " + c.Tree}
	}
	return map[string]any{"sha": c.SHA, "node_id": "C_" + c.SHA, "url": base + "/commits/" + c.SHA,
		"html_url": fmt.Sprintf("%s/%s/%s/commit/%s", h.s.URL, h.s.Owner, h.s.Repo, c.SHA),
		"author":   c.Author, "committer": c.Committer, "message": c.Message,
		"tree":    map[string]string{"sha": c.Tree, "url": base + "/trees/" + c.Tree},
		"parents": parents, "verification": verification}
}

func (h handler) refJSON(ref, sha string) map[string]any {
	base := fmt.Sprintf("%s/repos/%s/%s/git", h.s.URL, h.s.Owner, h.s.Repo)
	return map[string]any{"ref": ref, "node_id": "REF_" + fakeSHA(ref)[:12], "url": base + "/" + ref,
		"object": map[string]string{"type": "commit", "sha": sha, "url": base + "/commits/" + sha}}
}

func (h handler) unprocessable(msg, doc string) {
	h.fail(http.StatusUnprocessableEntity, apiError{Message: msg, DocumentationURL: "https://docs.github.com/rest/git/" + doc})
}

// gitData serves the Git Data API: commits, blobs, trees and refs.
func (h handler) gitData(route string) {
	g := &h.s.git
	switch route {
	case "GET /repos/{owner}/{repo}/git/commits/{sha}":
		c := g.commits[h.params[2]]
		if c == nil {
			h.fail(http.StatusNotFound, apiError{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest/git/commits#get-a-commit-object"})
			return
		}
		h.cacheable(h.commitJSON(c), "")

	case "POST /repos/{owner}/{repo}/git/blobs":
		var req struct {
			Content  string `json:"content"`
			Encoding string `json:"encoding"`
		}
		if !h.decode(&req) {
			return
		}
		content := []byte(req.Content)
		if req.Encoding == "base64" {
			var err error
			if content, err = base64.StdEncoding.DecodeString(req.Content); err != nil {
				h.unprocessable("Invalid request.\n\ncontent is not valid Base64.", "blobs#create-a-blob")
				return
			}
		} else if req.Encoding != "" && req.Encoding != "utf-8" {
			h.unprocessable("Invalid request.\n\nencoding must be utf-8 or base64.", "blobs#create-a-blob")
			return
		}
		sha := g.putBlob(content)
		h.json(http.StatusCreated, map[string]string{"sha": sha,
			"url": fmt.Sprintf("%s/repos/%s/%s/git/blobs/%s", h.s.URL, h.s.Owner, h.s.Repo, sha)})

	case "POST /repos/{owner}/{repo}/git/trees":
		var req struct {
			BaseTree string `json:"base_tree"`
			Tree     []struct {
				Path    string  `json:"path"`
				Mode    string  `json:"mode"`
				Type    string  `json:"type"`
				SHA     *string `json:"sha"`
				Content *string `json:"content"`
			} `json:"tree"`
		}
		var raw struct {
			Tree []map[string]json.RawMessage `json:"tree"`
		}
		if !h.decode(&req) || json.Unmarshal(h.body, &raw) != nil {
			return
		}
		entries := map[string]string{}
		if req.BaseTree != "" {
			base, ok := g.trees[req.BaseTree]
			if !ok {
				h.unprocessable("Invalid tree info", "trees#create-a-tree")
				return
			}
			for k, v := range base {
				entries[k] = v
			}
		}
		for i, e := range req.Tree {
			if e.Type != "blob" || (e.Mode != "100644" && e.Mode != "100755") || e.Path == "" || strings.HasPrefix(e.Path, "/") {
				h.unprocessable("Invalid tree info", "trees#create-a-tree")
				return
			}
			_, hasSHA := raw.Tree[i]["sha"]
			switch {
			case e.Content != nil && e.SHA == nil:
				entries[e.Path] = g.putBlob([]byte(*e.Content))
			case e.SHA != nil && e.Content == nil:
				if _, ok := g.blobs[*e.SHA]; !ok {
					h.unprocessable("Invalid tree info: sha "+*e.SHA+" is not a blob", "trees#create-a-tree")
					return
				}
				entries[e.Path] = *e.SHA
			case hasSHA && e.SHA == nil && e.Content == nil:
				delete(entries, e.Path) // "sha": null deletes the file
			default:
				h.unprocessable("Must supply either tree.sha or tree.content", "trees#create-a-tree")
				return
			}
		}
		sha := g.putTree(entries)
		list := []map[string]string{}
		for path, blob := range entries {
			list = append(list, map[string]string{"path": path, "mode": "100644", "type": "blob", "sha": blob})
		}
		sort.Slice(list, func(i, j int) bool { return list[i]["path"] < list[j]["path"] })
		h.json(http.StatusCreated, map[string]any{"sha": sha, "tree": list, "truncated": false,
			"url": fmt.Sprintf("%s/repos/%s/%s/git/trees/%s", h.s.URL, h.s.Owner, h.s.Repo, sha)})

	case "POST /repos/{owner}/{repo}/git/commits":
		var req struct {
			Message   string     `json:"message"`
			Tree      string     `json:"tree"`
			Parents   []string   `json:"parents"`
			Author    *gitPerson `json:"author"`
			Committer *gitPerson `json:"committer"`
			Signature string     `json:"signature"`
		}
		if !h.decode(&req) {
			return
		}
		if _, ok := g.trees[req.Tree]; !ok || req.Message == "" {
			h.unprocessable("Invalid request.\n\n\"tree\" and \"message\" are required.", "commits#create-a-commit")
			return
		}
		for _, p := range req.Parents {
			if g.commits[p] == nil {
				h.unprocessable("Parent SHA does not exist or is not a commit object", "commits#create-a-commit")
				return
			}
		}
		now := *ts(h.s.Now())
		bot := &gitPerson{Name: botLogin, Email: "bot@users.noreply.github.com", Date: now}
		c := &gitCommit{Tree: req.Tree, Parents: req.Parents, Message: req.Message, Author: req.Author, Committer: req.Committer}
		// GitHub signs a commit it authors itself: one created with no author, committer or signature.
		c.Verified = req.Author == nil && req.Committer == nil && req.Signature == ""
		if c.Author == nil {
			c.Author = bot
		}
		if c.Committer == nil {
			c.Committer = bot
		}
		c.SHA = fakeSHA(fmt.Sprintf("commit\x00%s\x00%v\x00%s\x00%d", c.Tree, c.Parents, c.Message, len(g.commits)))
		g.commits[c.SHA] = c
		h.json(http.StatusCreated, h.commitJSON(c))

	case "GET /repos/{owner}/{repo}/git/ref/{ref}":
		ref := "refs/" + h.params[2]
		sha, ok := g.refs[ref]
		if !ok {
			h.fail(http.StatusNotFound, apiError{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest/git/refs#get-a-reference"})
			return
		}
		h.cacheable(h.refJSON(ref, sha), "")

	case "POST /repos/{owner}/{repo}/git/refs":
		var req struct {
			Ref string `json:"ref"`
			SHA string `json:"sha"`
		}
		if !h.decode(&req) {
			return
		}
		if !strings.HasPrefix(req.Ref, "refs/") || strings.Count(req.Ref, "/") < 2 {
			h.unprocessable("Reference name must start with 'refs/' and have at least two slashes.", "refs#create-a-reference")
			return
		}
		if g.commits[req.SHA] == nil {
			h.unprocessable("Object does not exist", "refs#create-a-reference")
			return
		}
		if _, exists := g.refs[req.Ref]; exists {
			h.unprocessable("Reference already exists", "refs#create-a-reference")
			return
		}
		g.refs[req.Ref] = req.SHA
		h.s.syncBranch(req.Ref, req.SHA)
		h.json(http.StatusCreated, h.refJSON(req.Ref, req.SHA))

	case "PATCH /repos/{owner}/{repo}/git/refs/{ref}":
		ref := "refs/" + h.params[2]
		var req struct {
			SHA   string `json:"sha"`
			Force bool   `json:"force"`
		}
		if !h.decode(&req) {
			return
		}
		cur, ok := g.refs[ref]
		switch {
		case !ok:
			h.unprocessable("Reference does not exist", "refs#update-a-reference")
		case g.commits[req.SHA] == nil:
			h.unprocessable("Object does not exist", "refs#update-a-reference")
		case !req.Force && !g.isAncestor(cur, req.SHA):
			h.unprocessable("Update is not a fast forward", "refs#update-a-reference")
		default:
			g.refs[ref] = req.SHA
			h.s.syncBranch(ref, req.SHA)
			h.json(http.StatusOK, h.refJSON(ref, req.SHA))
		}
	}
}

// syncBranch keeps pull requests' head.sha in step with their branch.
func (s *Server) syncBranch(ref, sha string) {
	name := strings.TrimPrefix(ref, "refs/heads/")
	s.branches[name] = sha
	for _, p := range s.pulls {
		if p.Head.Ref == name && p.State == "open" {
			p.Head.SHA = sha
			p.touch(s.Now())
		}
	}
}
