package githubtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// The Git Data API (blobs, trees, commits, refs) reads and writes a real bare repository: the one
// EnableGit serves over smart HTTP, or, without EnableGit, a private one made on first use. Objects
// are written with go-git, so their hashes are git's; refs move with `git update-ref` and its
// compare-and-swap, so that they cannot race a push through git http-backend.
//
// Commits GitHub authors itself (created with no author, committer or signature) are signed with the
// server's OpenPGP key (SigningKey) in a gpgsig header, as GitHub signs them with its web-flow key;
// "verification" is then the real check of that signature.

// BotEmail is the commit email GitHub gives the token's account (the bot, rollout-bot[bot]): the
// author of the commits it makes through the Git Data API. GitHub maps it to the account's login.
const BotEmail = "149000001+rollout-bot[bot]@users.noreply.github.com"

// gitData is the repository behind the Git Data API and the key GitHub signs with.
type gitData struct {
	dir    string
	signer *openpgp.Entity
	public string // the armored public key
}

// gitRepo returns the repository behind the Git Data API, making a private one on first use.
// Called with s.mu held.
func (s *Server) gitRepo() *gitData {
	if s.data != nil {
		return s.data
	}
	dir := filepath.Join(s.t.TempDir(), s.Owner, s.Repo+".git")
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		s.t.Fatalf("githubtest: %v", err)
	}
	s.runGit("", "init", "--quiet", "--bare", "--initial-branch=main", dir)
	s.data = s.newGitData(dir)
	return s.data
}

// newGitData makes the signing key, from a fixed seed so that runs are alike.
func (s *Server) newGitData(dir string) *gitData {
	created := s.Now().AddDate(-1, 0, 0)
	e, err := openpgp.NewEntity("GitHub", "", "noreply@github.com", &packet.Config{
		Algorithm: packet.PubKeyAlgoEdDSA, Rand: rand.NewChaCha8([32]byte{'g', 'h'}),
		Time: func() time.Time { return created }})
	if err != nil {
		s.t.Fatalf("githubtest: make signing key: %v", err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err == nil {
		err = e.Serialize(w)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		s.t.Fatalf("githubtest: export signing key: %v", err)
	}
	return &gitData{dir: dir, signer: e, public: buf.String()}
}

// SigningKey is the armored OpenPGP public key the server signs the commits it authors with, as
// GitHub's web-flow key: go-git's Commit.Verify checks a commit against it.
func (s *Server) SigningKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gitRepo().public
}

// storage opens the repository's object database afresh, so that it sees packs pushed since.
func (g *gitData) storage() *filesystem.Storage {
	return filesystem.NewStorage(osfs.New(g.dir), cache.NewObjectLRUDefault())
}

// put stores an encoded object and returns its hash.
func put(st *filesystem.Storage, typ plumbing.ObjectType, encode func(plumbing.EncodedObject) error) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	obj.SetType(typ)
	if err := encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

func putBlob(st *filesystem.Storage, content []byte) (plumbing.Hash, error) {
	return put(st, plumbing.BlobObject, func(o plumbing.EncodedObject) error {
		w, err := o.Writer()
		if err != nil {
			return err
		}
		if _, err := w.Write(content); err != nil {
			return err
		}
		return w.Close()
	})
}

// errTreeShape is a file and a directory at the same path, or a path with an empty, "." or ".."
// component.
var errTreeShape = errors.New("invalid tree path")

// flatten lists every non-tree entry under tree by its full path.
func flatten(tree *object.Tree) (map[string]object.TreeEntry, error) {
	out := map[string]object.TreeEntry{}
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		name, e, err := walker.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if e.Mode != filemode.Dir {
			out[name] = e
		}
	}
}

// writeTree writes the nested trees holding entries (full path to entry) and returns the root's hash.
func writeTree(st *filesystem.Storage, entries map[string]object.TreeEntry) (plumbing.Hash, error) {
	var list []object.TreeEntry
	subs := map[string]map[string]object.TreeEntry{}
	for path, e := range entries {
		name, rest, nested := strings.Cut(path, "/")
		if name == "" || name == "." || name == ".." || (nested && rest == "") {
			return plumbing.ZeroHash, fmt.Errorf("%w: %q", errTreeShape, path)
		}
		if !nested {
			e.Name = name
			list = append(list, e)
			continue
		}
		if subs[name] == nil {
			subs[name] = map[string]object.TreeEntry{}
		}
		subs[name][rest] = e
	}
	for _, e := range list {
		if subs[e.Name] != nil {
			return plumbing.ZeroHash, fmt.Errorf("%w: %q is a file and a directory", errTreeShape, e.Name)
		}
	}
	for name, sub := range subs {
		h, err := writeTree(st, sub)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		list = append(list, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
	}
	// git orders a tree's entries by name, a directory's name as if it ended in "/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(list, func(i, j int) bool { return key(list[i]) < key(list[j]) })
	t := &object.Tree{Entries: list}
	return put(st, plumbing.TreeObject, t.Encode)
}

// commit reads a commit; ok is false when sha names no commit.
func (g *gitData) commit(sha string) (*object.Commit, bool) {
	if !plumbing.IsHash(sha) {
		return nil, false
	}
	c, err := object.GetCommit(g.storage(), plumbing.NewHash(sha))
	return c, err == nil
}

// ref returns the commit a full ref name points at, "" if none. Called with s.mu held.
func (s *Server) ref(name string) string {
	out, err := s.git1(s.gitRepo().dir, "show-ref", "--verify", "--hash", name)
	if err != nil {
		return ""
	}
	return out
}

// verification is the commit's "verification" object: the check of its gpgsig against the
// server's key.
func (s *Server) verification(c *object.Commit) map[string]any {
	if c.PGPSignature == "" {
		return map[string]any{"verified": false, "reason": "unsigned", "signature": nil, "payload": nil, "verified_at": nil}
	}
	var payload strings.Builder
	plain := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(plain); err == nil {
		r, _ := plain.Reader()
		_, _ = io.Copy(&payload, r)
	}
	out := map[string]any{"verified": false, "reason": "unknown_key", "signature": c.PGPSignature,
		"payload": payload.String(), "verified_at": nil}
	keys, err := openpgp.ReadArmoredKeyRing(strings.NewReader(s.gitRepo().public))
	if err != nil {
		return out
	}
	_, err = openpgp.CheckArmoredDetachedSignature(keys, strings.NewReader(payload.String()),
		strings.NewReader(c.PGPSignature), &packet.Config{Time: s.Now})
	if err == nil {
		out["verified"], out["reason"], out["verified_at"] = true, "valid", *ts(c.Committer.When)
	}
	return out
}

// SeedCommit makes a commit holding files on top of parent ("" for a root commit), points
// refs/heads/branch at it, and returns its hash. It stands for a push made with git: the commit is
// Alice's and unsigned.
func (s *Server) SeedCommit(branch, parent string, files map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gitRepo()
	st := g.storage()
	entries := map[string]object.TreeEntry{}
	c := &object.Commit{Message: "seed " + branch + "\n"}
	if parent != "" {
		p, ok := g.commit(parent)
		if !ok {
			s.t.Fatalf("githubtest: seed %s: no commit %s", branch, parent)
		}
		tree, err := p.Tree()
		if err == nil {
			entries, err = flatten(tree)
		}
		if err != nil {
			s.t.Fatalf("githubtest: seed %s: %v", branch, err)
		}
		c.ParentHashes = []plumbing.Hash{p.Hash}
	}
	for path, content := range files {
		h, err := putBlob(st, []byte(content))
		if err != nil {
			s.t.Fatalf("githubtest: seed %s: %v", branch, err)
		}
		entries[path] = object.TreeEntry{Mode: filemode.Regular, Hash: h}
	}
	var err error
	if c.TreeHash, err = writeTree(st, entries); err != nil {
		s.t.Fatalf("githubtest: seed %s: %v", branch, err)
	}
	c.Author = object.Signature{Name: "Alice", Email: "alice@example.com", When: s.Now()}
	c.Committer = c.Author
	h, err := put(st, plumbing.CommitObject, c.Encode)
	if err != nil {
		s.t.Fatalf("githubtest: seed %s: %v", branch, err)
	}
	s.runGit(g.dir, "update-ref", "refs/heads/"+branch, h.String())
	s.branches[branch] = h.String()
	return h.String()
}

// GitCommit is a commit of the Git Data API's repository, for assertions.
type GitCommit struct {
	Parents []string
	Message string
	// Verified is whether the commit carries a valid signature by the server's key.
	Verified bool
	// Files is the commit's whole tree: path to content.
	Files map[string]string
}

// Ref returns the commit a branch points at, "" if none.
func (s *Server) Ref(branch string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ref("refs/heads/" + branch)
}

// Commit returns a commit; ok is false when there is none.
func (s *Server) Commit(sha string) (GitCommit, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.gitRepo().commit(sha)
	if !ok {
		return GitCommit{}, false
	}
	out := GitCommit{Message: c.Message, Verified: s.verification(c)["verified"] == true, Files: map[string]string{}}
	for _, p := range c.ParentHashes {
		out.Parents = append(out.Parents, p.String())
	}
	files, err := c.Files()
	if err != nil {
		s.t.Fatalf("githubtest: read commit %s: %v", sha, err)
	}
	err = files.ForEach(func(f *object.File) error {
		content, err := f.Contents()
		out.Files[f.Name] = content
		return err
	})
	if err != nil {
		s.t.Fatalf("githubtest: read commit %s: %v", sha, err)
	}
	return out, true
}

func (h handler) gitURL(kind, sha string) string {
	return fmt.Sprintf("%s/repos/%s/%s/git/%s/%s", h.s.URL, h.s.Owner, h.s.Repo, kind, sha)
}

func person(p object.Signature) map[string]string {
	return map[string]string{"name": p.Name, "email": p.Email, "date": *ts(p.When)}
}

func (h handler) commitJSON(c *object.Commit) map[string]any {
	parents := []map[string]string{}
	for _, p := range c.ParentHashes {
		parents = append(parents, map[string]string{"sha": p.String(), "url": h.gitURL("commits", p.String()),
			"html_url": fmt.Sprintf("%s/%s/%s/commit/%s", h.s.URL, h.s.Owner, h.s.Repo, p)})
	}
	sha := c.Hash.String()
	return map[string]any{"sha": sha, "node_id": "C_" + sha, "url": h.gitURL("commits", sha),
		"html_url": fmt.Sprintf("%s/%s/%s/commit/%s", h.s.URL, h.s.Owner, h.s.Repo, sha),
		"author":   person(c.Author), "committer": person(c.Committer), "message": c.Message,
		"tree":    map[string]string{"sha": c.TreeHash.String(), "url": h.gitURL("trees", c.TreeHash.String())},
		"parents": parents, "verification": h.s.verification(c)}
}

// treeJSON lists a tree's entries as GET and POST git/trees answer, recursively or not.
func (h handler) treeJSON(st *filesystem.Storage, tree *object.Tree, recursive bool) map[string]any {
	list := []map[string]any{}
	add := func(path string, e object.TreeEntry) {
		m := map[string]any{"path": path, "mode": fmt.Sprintf("%06o", uint32(e.Mode)), "sha": e.Hash.String()}
		switch e.Mode {
		case filemode.Dir:
			m["type"], m["url"] = "tree", h.gitURL("trees", e.Hash.String())
		case filemode.Submodule:
			m["type"] = "commit"
		default:
			m["type"], m["url"] = "blob", h.gitURL("blobs", e.Hash.String())
			if size, err := st.EncodedObjectSize(e.Hash); err == nil {
				m["size"] = size
			}
		}
		list = append(list, m)
	}
	if recursive {
		walker := object.NewTreeWalker(tree, true, nil)
		for {
			name, e, err := walker.Next()
			if err != nil {
				break
			}
			add(name, e)
		}
		walker.Close()
	} else {
		for _, e := range tree.Entries {
			add(e.Name, e)
		}
	}
	return map[string]any{"sha": tree.Hash.String(), "url": h.gitURL("trees", tree.Hash.String()), "tree": list, "truncated": false}
}

func (h handler) refJSON(ref, sha string) map[string]any {
	base := fmt.Sprintf("%s/repos/%s/%s/git", h.s.URL, h.s.Owner, h.s.Repo)
	return map[string]any{"ref": ref, "node_id": "REF_" + fakeSHA(ref)[:12], "url": base + "/" + ref,
		"object": map[string]string{"type": "commit", "sha": sha, "url": base + "/commits/" + sha}}
}

func (h handler) unprocessable(msg, doc string) {
	h.fail(http.StatusUnprocessableEntity, apiError{Message: msg, DocumentationURL: "https://docs.github.com/rest/git/" + doc})
}

func (h handler) notFound(doc string) {
	h.fail(http.StatusNotFound, apiError{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest/git/" + doc})
}

func (h handler) internal(err error) {
	h.s.t.Errorf("githubtest: git data: %v", err)
	h.fail(http.StatusInternalServerError, apiError{Message: "Server Error", DocumentationURL: "https://docs.github.com/rest"})
}

// gitData serves the Git Data API: blobs, trees, commits and refs.
func (h handler) gitData(route string) {
	g := h.s.gitRepo()
	st := g.storage()
	switch route {
	case "GET /repos/{owner}/{repo}/git/blobs/{sha}":
		sha := h.params[2]
		var blob *object.Blob
		var err error
		if plumbing.IsHash(sha) {
			blob, err = object.GetBlob(st, plumbing.NewHash(sha))
		}
		if blob == nil || err != nil {
			h.notFound("blobs#get-a-blob")
			return
		}
		r, err := blob.Reader()
		if err != nil {
			h.internal(err)
			return
		}
		content, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			h.internal(err)
			return
		}
		h.cacheable(map[string]any{"sha": sha, "node_id": "B_" + sha, "size": blob.Size, "url": h.gitURL("blobs", sha),
			"content": base64.StdEncoding.EncodeToString(content), "encoding": "base64"}, "")

	case "POST /repos/{owner}/{repo}/git/blobs":
		var req struct {
			Content  *string `json:"content"`
			Encoding string  `json:"encoding"`
		}
		if !h.decode(&req) {
			return
		}
		if req.Content == nil {
			h.unprocessable("Invalid request.\n\n\"content\" wasn't supplied.", "blobs#create-a-blob")
			return
		}
		content := []byte(*req.Content)
		if req.Encoding == "base64" {
			var err error
			if content, err = base64.StdEncoding.DecodeString(*req.Content); err != nil {
				h.unprocessable("Invalid request.\n\ncontent is not valid Base64.", "blobs#create-a-blob")
				return
			}
		} else if req.Encoding != "" && req.Encoding != "utf-8" {
			h.unprocessable("Invalid request.\n\nencoding must be utf-8 or base64.", "blobs#create-a-blob")
			return
		}
		sha, err := putBlob(st, content)
		if err != nil {
			h.internal(err)
			return
		}
		h.json(http.StatusCreated, map[string]string{"sha": sha.String(), "url": h.gitURL("blobs", sha.String())})

	case "GET /repos/{owner}/{repo}/git/trees/{sha}":
		sha := h.params[2]
		var tree *object.Tree
		var err error
		if plumbing.IsHash(sha) {
			tree, err = object.GetTree(st, plumbing.NewHash(sha))
		}
		if tree == nil || err != nil {
			h.notFound("trees#get-a-tree")
			return
		}
		r := h.r.URL.Query().Get("recursive")
		h.cacheable(h.treeJSON(st, tree, r != "" && r != "0" && r != "false"), "")

	case "POST /repos/{owner}/{repo}/git/trees":
		h.createTree(st)

	case "GET /repos/{owner}/{repo}/git/commits/{sha}":
		c, ok := g.commit(h.params[2])
		if !ok {
			h.notFound("commits#get-a-commit-object")
			return
		}
		h.cacheable(h.commitJSON(c), "")

	case "POST /repos/{owner}/{repo}/git/commits":
		h.createCommit(g, st)

	case "GET /repos/{owner}/{repo}/compare/{basehead}":
		h.compare(g)

	case "GET /repos/{owner}/{repo}/git/ref/{ref}":
		ref := "refs/" + h.params[2]
		sha := h.s.ref(ref)
		if sha == "" {
			h.notFound("refs#get-a-reference")
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
		if _, err := h.s.git1("", "check-ref-format", req.Ref); err != nil {
			h.unprocessable(req.Ref+" is not a valid ref name.", "refs#create-a-reference")
			return
		}
		if _, ok := g.commit(req.SHA); !ok {
			h.unprocessable("Object does not exist", "refs#create-a-reference")
			return
		}
		// The zero old value makes update-ref refuse a ref that exists, even one pushed just now.
		if _, err := h.s.git1(g.dir, "update-ref", req.Ref, req.SHA, plumbing.ZeroHash.String()); err != nil {
			h.unprocessable("Reference already exists", "refs#create-a-reference")
			return
		}
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
		cur := h.s.ref(ref)
		if cur == "" {
			h.unprocessable("Reference does not exist", "refs#update-a-reference")
			return
		}
		if _, ok := g.commit(req.SHA); !ok {
			h.unprocessable("Object does not exist", "refs#update-a-reference")
			return
		}
		if !req.Force {
			if _, err := h.s.git1(g.dir, "merge-base", "--is-ancestor", cur, req.SHA); err != nil {
				h.unprocessable("Update is not a fast forward", "refs#update-a-reference")
				return
			}
		}
		// cur as the old value: a push that landed since is not overwritten.
		if _, err := h.s.git1(g.dir, "update-ref", ref, req.SHA, cur); err != nil {
			h.unprocessable("Update is not a fast forward", "refs#update-a-reference")
			return
		}
		h.s.syncBranch(ref, req.SHA)
		h.json(http.StatusOK, h.refJSON(ref, req.SHA))
	}
}

// createTree serves POST git/trees: base_tree's entries (when given) with the listed paths added,
// replaced or, with "sha": null, deleted.
func (h handler) createTree(st *filesystem.Storage) {
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
	const doc = "trees#create-a-tree"
	entries := map[string]object.TreeEntry{}
	if req.BaseTree != "" {
		var base *object.Tree
		var err error
		if plumbing.IsHash(req.BaseTree) {
			base, err = object.GetTree(st, plumbing.NewHash(req.BaseTree))
		}
		if base == nil || err != nil {
			h.unprocessable("Invalid tree info", doc)
			return
		}
		if entries, err = flatten(base); err != nil {
			h.internal(err)
			return
		}
	}
	for i, e := range req.Tree {
		mode := map[string]filemode.FileMode{"100644": filemode.Regular, "100755": filemode.Executable}[e.Mode]
		if e.Type != "blob" || mode == filemode.Empty || e.Path == "" || strings.HasPrefix(e.Path, "/") {
			h.unprocessable("Invalid tree info", doc)
			return
		}
		_, hasSHA := raw.Tree[i]["sha"]
		switch {
		case e.Content != nil && e.SHA == nil:
			sha, err := putBlob(st, []byte(*e.Content))
			if err != nil {
				h.internal(err)
				return
			}
			entries[e.Path] = object.TreeEntry{Mode: mode, Hash: sha}
		case e.SHA != nil && e.Content == nil:
			if !plumbing.IsHash(*e.SHA) {
				h.unprocessable("Invalid tree info: sha "+*e.SHA+" is not a blob", doc)
				return
			}
			if _, err := object.GetBlob(st, plumbing.NewHash(*e.SHA)); err != nil {
				h.unprocessable("Invalid tree info: sha "+*e.SHA+" is not a blob", doc)
				return
			}
			entries[e.Path] = object.TreeEntry{Mode: mode, Hash: plumbing.NewHash(*e.SHA)}
		case hasSHA && e.SHA == nil && e.Content == nil:
			// "sha": null deletes the file, or everything under a directory.
			for p := range entries {
				if p == e.Path || strings.HasPrefix(p, e.Path+"/") {
					delete(entries, p)
				}
			}
		default:
			h.unprocessable("Must supply either tree.sha or tree.content", doc)
			return
		}
	}
	sha, err := writeTree(st, entries)
	if errors.Is(err, errTreeShape) {
		h.unprocessable("Invalid tree info: "+err.Error(), doc)
		return
	}
	if err != nil {
		h.internal(err)
		return
	}
	tree, err := object.GetTree(st, sha)
	if err != nil {
		h.internal(err)
		return
	}
	h.json(http.StatusCreated, h.treeJSON(st, tree, false))
}

// createCommit serves POST git/commits. The author and committer default to the token's account
// (BotEmail). A commit given no author, committer or signature is GitHub's own: authored by the
// token's account, committed by GitHub <noreply@github.com> and signed with the server's key.
func (h handler) createCommit(g *gitData, st *filesystem.Storage) {
	var req struct {
		Message string   `json:"message"`
		Tree    string   `json:"tree"`
		Parents []string `json:"parents"`
		Author  *struct {
			Name  string `json:"name"`
			Email string `json:"email"`
			Date  string `json:"date"`
		} `json:"author"`
		Committer *struct {
			Name  string `json:"name"`
			Email string `json:"email"`
			Date  string `json:"date"`
		} `json:"committer"`
		Signature string `json:"signature"`
	}
	if !h.decode(&req) {
		return
	}
	const doc = "commits#create-a-commit"
	if !plumbing.IsHash(req.Tree) || req.Message == "" {
		h.unprocessable("Invalid request.\n\n\"tree\" and \"message\" are required.", doc)
		return
	}
	if _, err := object.GetTree(st, plumbing.NewHash(req.Tree)); err != nil {
		h.unprocessable("Tree SHA does not exist", doc)
		return
	}
	now := h.s.Now()
	bot := object.Signature{Name: botLogin, Email: BotEmail, When: now}
	c := &object.Commit{Message: req.Message, TreeHash: plumbing.NewHash(req.Tree), Author: bot, Committer: bot,
		PGPSignature: req.Signature}
	for _, p := range req.Parents {
		if _, ok := g.commit(p); !ok {
			h.unprocessable("Parent SHA does not exist or is not a commit object", doc)
			return
		}
		c.ParentHashes = append(c.ParentHashes, plumbing.NewHash(p))
	}
	for _, who := range []struct {
		in *struct {
			Name  string `json:"name"`
			Email string `json:"email"`
			Date  string `json:"date"`
		}
		out *object.Signature
	}{{req.Author, &c.Author}, {req.Committer, &c.Committer}} {
		if who.in == nil {
			continue
		}
		*who.out = object.Signature{Name: who.in.Name, Email: who.in.Email, When: now}
		if who.in.Date != "" {
			when, err := time.Parse(time.RFC3339, who.in.Date)
			if err != nil {
				h.unprocessable("Invalid request.\n\n"+who.in.Date+" is not a valid date-time.", doc)
				return
			}
			who.out.When = when
		}
	}
	if req.Author != nil && req.Committer == nil {
		c.Committer = c.Author
	}
	if req.Author == nil && req.Committer == nil && req.Signature == "" {
		// GitHub signs as itself: the committer is GitHub, the owner of the web-flow key.
		c.Committer = object.Signature{Name: "GitHub", Email: "noreply@github.com", When: now}
		plain := &plumbing.MemoryObject{}
		var sig bytes.Buffer
		err := c.EncodeWithoutSignature(plain)
		if err == nil {
			r, _ := plain.Reader()
			err = openpgp.ArmoredDetachSign(&sig, g.signer, r, &packet.Config{Time: h.s.Now})
		}
		if err != nil {
			h.internal(err)
			return
		}
		c.PGPSignature = sig.String()
	}
	sha, err := put(st, plumbing.CommitObject, c.Encode)
	if err != nil {
		h.internal(err)
		return
	}
	c, _ = g.commit(sha.String())
	h.json(http.StatusCreated, h.commitJSON(c))
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

// account is the user GitHub maps a commit email to, nil (JSON null) for none.
func (s *Server) account(email string) any {
	switch login := s.Logins[email]; {
	case login != "":
		return user{Login: login, ID: 1, Type: "User"}
	case email == BotEmail:
		return user{Login: botLogin, ID: 149000001, Type: "Bot"}
	case email == "noreply@github.com":
		return user{Login: "web-flow", ID: 19864447, Type: "User"}
	}
	return nil
}

// compare serves GET compare/{base}...{head}: the commits head has that base has not, oldest first,
// as repository commits (the git commit under "commit", the accounts beside it).
func (h handler) compare(g *gitData) {
	base, head, ok := strings.Cut(h.params[2], "...")
	resolve := func(rev string) string {
		out, err := h.s.git1(g.dir, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
		if err != nil {
			return ""
		}
		return out
	}
	var baseSHA, headSHA string
	if ok {
		baseSHA, headSHA = resolve(base), resolve(head)
	}
	if baseSHA == "" || headSHA == "" {
		h.notFound("../commits/commits#compare-two-commits")
		return
	}
	list := func(from, to string) []string {
		out, err := h.s.git1(g.dir, "rev-list", "--reverse", from+".."+to)
		if err != nil || out == "" {
			return nil
		}
		return strings.Split(out, "\n")
	}
	ahead, behind := list(baseSHA, headSHA), list(headSHA, baseSHA)
	status := map[[2]bool]string{{false, false}: "identical", {true, false}: "ahead", {false, true}: "behind", {true, true}: "diverged"}[[2]bool{len(ahead) > 0, len(behind) > 0}]
	repoCommit := func(sha string) map[string]any {
		c, _ := g.commit(sha)
		inner := h.commitJSON(c)
		parents := inner["parents"]
		delete(inner, "parents")
		delete(inner, "sha")
		delete(inner, "node_id")
		delete(inner, "html_url")
		return map[string]any{"sha": sha, "node_id": "C_" + sha, "commit": inner, "parents": parents,
			"author": h.s.account(c.Author.Email), "committer": h.s.account(c.Committer.Email),
			"url":      fmt.Sprintf("%s/repos/%s/%s/commits/%s", h.s.URL, h.s.Owner, h.s.Repo, sha),
			"html_url": fmt.Sprintf("%s/%s/%s/commit/%s", h.s.URL, h.s.Owner, h.s.Repo, sha)}
	}
	mergeBase, err := h.s.git1(g.dir, "merge-base", baseSHA, headSHA)
	if err != nil {
		mergeBase = baseSHA
	}
	commits := []map[string]any{}
	for _, sha := range ahead {
		if len(commits) == 250 { // GitHub lists at most 250 commits; total_commits says how many there are
			break
		}
		commits = append(commits, repoCommit(sha))
	}
	h.cacheable(map[string]any{"url": fmt.Sprintf("%s/repos/%s/%s/compare/%s", h.s.URL, h.s.Owner, h.s.Repo, h.params[2]), "status": status,
		"ahead_by": len(ahead), "behind_by": len(behind), "total_commits": len(ahead),
		"base_commit": repoCommit(baseSHA), "merge_base_commit": repoCommit(mergeBase), "commits": commits,
		"files": []any{}}, "")
}
