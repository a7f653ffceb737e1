package githubtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Release is a published release, served by GET /repos/{owner}/{repo}/releases/tags/{tag}, with its
// assets downloadable through GET /repos/{owner}/{repo}/releases/assets/{asset_id}.
type Release struct {
	Tag string
	// Commit is the commit the tag points at, listed by GET /repos/{owner}/{repo}/tags.
	Commit     string
	Prerelease bool
	// Assets maps an asset's file name to its content.
	Assets map[string][]byte
}

// releaseStore holds the releases and tags of every repository the server knows, which need not be
// the repository it serves pulls for: an Action downloads its binary from its own repository.
type releaseStore struct {
	releases map[string][]*storedRelease // by "owner/repo"
	tags     map[string][]tag            // by "owner/repo", newest first as GitHub lists them
	assets   map[int64]*storedAsset
	signed   map[string]int64 // the secret part of a download URL → asset id
}

type storedRelease struct {
	Release
	id     int64
	assets []*storedAsset
}

type storedAsset struct {
	id      int64
	name    string
	content []byte
	repo    string
	tag     string
}

type tag struct {
	Name   string `json:"name"`
	Commit struct {
		SHA string `json:"sha"`
		URL string `json:"url"`
	} `json:"commit"`
	ZipballURL string `json:"zipball_url"`
	TarballURL string `json:"tarball_url"`
	NodeID     string `json:"node_id"`
}

// AddRelease publishes a release of owner/repo and tags r.Commit with r.Tag. Publishing a tag again
// replaces the release, as deleting and re-creating it on GitHub would.
func (s *Server) AddRelease(owner, repo string, r Release) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.releaseStore()
	full := owner + "/" + repo
	s.nextID++
	rel := &storedRelease{Release: r, id: s.nextID}
	names := make([]string, 0, len(r.Assets))
	for name := range r.Assets {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s.nextID++
		a := &storedAsset{id: s.nextID, name: name, content: r.Assets[name], repo: full, tag: r.Tag}
		rel.assets = append(rel.assets, a)
		st.assets[a.id] = a
	}
	st.releases[full] = slices.DeleteFunc(st.releases[full], func(o *storedRelease) bool { return o.Tag == r.Tag })
	st.releases[full] = append(st.releases[full], rel)
	s.addTag(full, r.Tag, r.Commit)
}

// AddTag points a tag of owner/repo at a commit without a release, as a moving major tag (v1) is.
func (s *Server) AddTag(owner, repo, name, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseStore()
	s.addTag(owner+"/"+repo, name, sha)
}

func (s *Server) addTag(full, name, sha string) {
	st := s.releases
	st.tags[full] = slices.DeleteFunc(st.tags[full], func(t tag) bool { return t.Name == name })
	var t tag
	t.Name, t.Commit.SHA = name, sha
	t.Commit.URL = fmt.Sprintf("%s/repos/%s/commits/%s", s.URL, full, sha)
	t.ZipballURL = fmt.Sprintf("%s/repos/%s/zipball/refs/tags/%s", s.URL, full, name)
	t.TarballURL = fmt.Sprintf("%s/repos/%s/tarball/refs/tags/%s", s.URL, full, name)
	t.NodeID = "REF_kwFAKE" + name
	st.tags[full] = append([]tag{t}, st.tags[full]...)
}

func (s *Server) releaseStore() *releaseStore {
	if s.releases == nil {
		s.releases = &releaseStore{releases: map[string][]*storedRelease{}, tags: map[string][]tag{},
			assets: map[int64]*storedAsset{}, signed: map[string]int64{}}
	}
	return s.releases
}

// knowsRepo reports whether owner/repo has releases or tags here, so that its release endpoints are
// served although the server's pulls belong to another repository.
func (s *Server) knowsRepo(owner, repo string) bool {
	if s.releases == nil {
		return false
	}
	full := owner + "/" + repo
	return len(s.releases.releases[full]) > 0 || len(s.releases.tags[full]) > 0
}

func releaseRoute(route string) bool {
	return strings.Contains(route, "/releases/") || strings.HasSuffix(route, "/tags")
}

// The JSON shapes of GitHub's REST API documentation for releases and release assets.

type releaseJSON struct {
	URL             string      `json:"url"`
	HTMLURL         string      `json:"html_url"`
	AssetsURL       string      `json:"assets_url"`
	UploadURL       string      `json:"upload_url"`
	TarballURL      string      `json:"tarball_url"`
	ZipballURL      string      `json:"zipball_url"`
	ID              int64       `json:"id"`
	NodeID          string      `json:"node_id"`
	TagName         string      `json:"tag_name"`
	TargetCommitish string      `json:"target_commitish"`
	Name            string      `json:"name"`
	Body            string      `json:"body"`
	Draft           bool        `json:"draft"`
	Prerelease      bool        `json:"prerelease"`
	CreatedAt       string      `json:"created_at"`
	PublishedAt     string      `json:"published_at"`
	Author          user        `json:"author"`
	Assets          []assetJSON `json:"assets"`
}

type assetJSON struct {
	URL                string `json:"url"`
	BrowserDownloadURL string `json:"browser_download_url"`
	ID                 int64  `json:"id"`
	NodeID             string `json:"node_id"`
	Name               string `json:"name"`
	Label              string `json:"label"`
	State              string `json:"state"`
	ContentType        string `json:"content_type"`
	Size               int    `json:"size"`
	DigestSHA256       string `json:"digest"`
	DownloadCount      int    `json:"download_count"`
	CreatedAt          string `json:"created_at"`
	UpdatedAt          string `json:"updated_at"`
	Uploader           user   `json:"uploader"`
}

func (s *Server) assetJSON(a *storedAsset) assetJSON {
	ct := "application/octet-stream"
	switch {
	case strings.HasSuffix(a.name, ".tar.gz"):
		ct = "application/gzip"
	case strings.HasSuffix(a.name, ".zip"):
		ct = "application/zip"
	case strings.HasSuffix(a.name, ".txt"):
		ct = "text/plain"
	}
	now := *ts(s.Now())
	return assetJSON{
		URL:                fmt.Sprintf("%s/repos/%s/releases/assets/%d", s.URL, a.repo, a.id),
		BrowserDownloadURL: fmt.Sprintf("%s/%s/releases/download/%s/%s", s.URL, a.repo, a.tag, a.name),
		ID:                 a.id, NodeID: fmt.Sprintf("RA_kwFAKE%d", a.id), Name: a.name, State: "uploaded",
		ContentType: ct, Size: len(a.content), CreatedAt: now, UpdatedAt: now,
		DigestSHA256: "sha256:" + sha256Hex(a.content),
		Uploader:     user{Login: "github-actions[bot]", ID: 41898282, Type: "Bot"},
	}
}

func (s *Server) releaseJSON(full string, r *storedRelease) releaseJSON {
	now := *ts(s.Now())
	base := fmt.Sprintf("%s/repos/%s/releases/%d", s.URL, full, r.id)
	out := releaseJSON{
		URL: base, HTMLURL: fmt.Sprintf("%s/%s/releases/tag/%s", s.URL, full, r.Tag), AssetsURL: base + "/assets",
		UploadURL:  fmt.Sprintf("%s/repos/%s/releases/%d/assets{?name,label}", s.URL, full, r.id),
		TarballURL: fmt.Sprintf("%s/repos/%s/tarball/%s", s.URL, full, r.Tag),
		ZipballURL: fmt.Sprintf("%s/repos/%s/zipball/%s", s.URL, full, r.Tag),
		ID:         r.id, NodeID: fmt.Sprintf("RE_kwFAKE%d", r.id), TagName: r.Tag, TargetCommitish: "main",
		Name: r.Tag, Prerelease: r.Prerelease, CreatedAt: now, PublishedAt: now,
		Author: user{Login: "github-actions[bot]", ID: 41898282, Type: "Bot"}, Assets: []assetJSON{},
	}
	for _, a := range r.assets {
		out.Assets = append(out.Assets, s.assetJSON(a))
	}
	return out
}

// releaseByTag serves GET /repos/{owner}/{repo}/releases/tags/{tag}.
func (h handler) releaseByTag() {
	full := h.params[0] + "/" + h.params[1]
	if h.s.releases != nil {
		for _, r := range h.s.releases.releases[full] {
			if r.Tag == h.params[2] {
				h.json(http.StatusOK, h.s.releaseJSON(full, r))
				return
			}
		}
	}
	h.fail(http.StatusNotFound, apiError{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest/releases/releases#get-a-release-by-tag-name"})
}

// releaseAsset serves GET /repos/{owner}/{repo}/releases/assets/{asset_id}: the asset's JSON, or with
// Accept: application/octet-stream a 302 to a short-lived download URL that needs no token, as GitHub
// redirects to its object storage.
func (h handler) releaseAsset() {
	id, _ := strconv.ParseInt(h.params[2], 10, 64)
	var a *storedAsset
	if h.s.releases != nil {
		a = h.s.releases.assets[id]
	}
	if a == nil || a.repo != h.params[0]+"/"+h.params[1] {
		h.fail(http.StatusNotFound, apiError{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest/releases/assets#get-a-release-asset"})
		return
	}
	if !strings.Contains(h.r.Header.Get("Accept"), "application/octet-stream") {
		h.json(http.StatusOK, h.s.assetJSON(a))
		return
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	sig := hex.EncodeToString(secret)
	h.s.releases.signed[sig] = a.id
	h.s.spend()
	h.s.writeRate(h.w)
	h.w.Header().Set("Location", fmt.Sprintf("%s%s%d/%s?X-Signature=%s", h.s.URL, objectsPrefix, a.id, a.name, sig))
	h.w.WriteHeader(http.StatusFound)
}

// listTags serves GET /repos/{owner}/{repo}/tags, newest first, per_page at most 100.
func (h handler) listTags() {
	var list []tag
	if h.s.releases != nil {
		list = h.s.releases.tags[h.params[0]+"/"+h.params[1]]
	}
	perPage, _ := strconv.Atoi(h.r.URL.Query().Get("per_page"))
	if perPage <= 0 || perPage > 100 {
		perPage = 30
	}
	page, _ := strconv.Atoi(h.r.URL.Query().Get("page"))
	if page <= 0 {
		page = 1
	}
	from, to := min((page-1)*perPage, len(list)), min(page*perPage, len(list))
	out := append([]tag{}, list[from:to]...)
	link := ""
	if to < len(list) {
		u := *h.r.URL
		u.Scheme, u.Host = "http", h.r.Host
		q := u.Query()
		q.Set("page", strconv.Itoa(page+1))
		u.RawQuery = q.Encode()
		link = fmt.Sprintf(`<%s>; rel="next"`, u.String())
	}
	h.cacheable(out, link)
}

// objectsPrefix is where release downloads are redirected to: the fake's object storage.
const objectsPrefix = "/_objects/release-assets/"

// serveObjects serves a download URL handed out by releaseAsset. Like GitHub's object storage it
// takes no token, only the signature in the URL; each URL works once.
func (s *Server) serveObjects(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, objectsPrefix) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["GET "+objectsPrefix+"{asset_id}/{name}"]++
	var a *storedAsset
	if s.releases != nil {
		sig := r.URL.Query().Get("X-Signature")
		if id, ok := s.releases.signed[sig]; ok {
			delete(s.releases.signed, sig)
			a = s.releases.assets[id]
		}
	}
	if r.Method != http.MethodGet || a == nil || !strings.HasSuffix(r.URL.Path, "/"+a.name) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AuthenticationFailed</Code></Error>`)
		return true
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", "attachment; filename="+a.name)
	w.Header().Set("Content-Length", strconv.Itoa(len(a.content)))
	_, _ = w.Write(a.content)
	return true
}
