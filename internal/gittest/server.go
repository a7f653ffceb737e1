package gittest

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Server serves every bare repository under a root folder over git's smart HTTP protocol, with the
// real `git http-backend` behind net/http/cgi on a loopback httptest server. Pushes are enabled.
//
// It can demand basic auth and inject faults into the next requests, to test what a client does when
// the network fails.
type Server struct {
	// URL is the server's base URL; a repository at root/NAME is served at URL + "/" + NAME.
	URL string

	mu       sync.Mutex
	user     string
	password string
	faults   []fault
	requests int
	release  chan struct{}
}

type fault struct {
	status int  // the status to answer with, when not hanging
	hang   bool // block until the client gives up or the test ends
}

// NewServer starts a smart-HTTP git server for the bare repositories under root. It stops when the
// test ends. Each of config, "key=value", sets one more git configuration value of the server, after
// the defaults (so "uploadpack.allowFilter=false" serves a server without partial clone).
func NewServer(t testing.TB, root string, config ...string) *Server {
	t.Helper()
	execPath := Git(t, ".", "--exec-path")
	// receive.autogc=false: no `git gc --auto` after every push, in a repository that lives seconds.
	settings := append([]string{"http.receivepack=true", "uploadpack.allowFilter=true", "uploadpack.allowAnySHA1InWant=true",
		"receive.autogc=false"}, config...)
	env := []string{
		"GIT_PROJECT_ROOT=" + root,
		"GIT_HTTP_EXPORT_ALL=1",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_COUNT=" + strconv.Itoa(len(settings)),
	}
	for i, kv := range settings {
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, k), fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, v))
	}
	backend := &cgi.Handler{
		Path:       filepath.Join(execPath, "git-http-backend"),
		Root:       "/",
		Env:        env,
		InheritEnv: []string{"PATH"},
		Stderr:     testLogWriter{t},
	}
	s := &Server{release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, backend)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(s.release) }) // runs first: frees hanging handlers so Close can return
	s.URL = srv.URL
	return s
}

// RequireAuth makes the server answer 401 to any request without these basic-auth credentials.
func (s *Server) RequireAuth(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.password = user, password
}

// FailNext makes the next n requests fail with the HTTP status code.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status: status})
	}
}

// HangNext makes the next n requests hang until the client gives up or the test ends.
func (s *Server) HangNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{hang: true})
	}
}

// Heal drops every fault still pending.
func (s *Server) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Requests returns how many requests the server has received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, backend http.Handler) {
	s.mu.Lock()
	s.requests++
	var f *fault
	if len(s.faults) > 0 {
		f = &s.faults[0]
		s.faults = s.faults[1:]
	}
	user, password := s.user, s.password
	s.mu.Unlock()

	if f != nil && f.hang {
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
		return
	}
	if f != nil {
		http.Error(w, http.StatusText(f.status), f.status)
		return
	}
	if user != "" {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
	}
	if strings.Contains(r.URL.Path, "..") {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	backend.ServeHTTP(w, r)
}

// testLogWriter sends the backend's standard error to the test log, where a lost race's "cannot lock
// ref" belongs.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Logf("git http-backend: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}
