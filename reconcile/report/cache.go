package report

import (
	"os"
	"path/filepath"
)

// Cache keeps the ticks already judged, by an opaque key (hex). Get and Put never fail the report: a
// cache that cannot be read or written only makes the next report slower.
type Cache interface {
	Get(key string) ([]byte, bool)
	Put(key string, value []byte)
}

// DirCache is a Cache of one file per key in a directory (created on first Put), such as
// $XDG_CACHE_HOME/rollout/report.
type DirCache struct {
	Dir string
}

var _ Cache = DirCache{}

// Get returns the value stored under key, if any.
func (c DirCache) Get(key string) ([]byte, bool) {
	if c.Dir == "" || !safeKey(key) {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, key+".json"))
	return b, err == nil
}

// Put stores value under key, atomically: a report killed halfway leaves the old value or none.
func (c DirCache) Put(key string, value []byte) {
	if c.Dir == "" || !safeKey(key) {
		return
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(c.Dir, key+".*.tmp")
	if err != nil {
		return
	}
	_, werr := tmp.Write(value)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), filepath.Join(c.Dir, key+".json")) != nil {
		os.Remove(tmp.Name())
	}
}

// safeKey accepts the keys this package makes (hex), so that no key names a path outside Dir.
func safeKey(key string) bool {
	if key == "" || len(key) > 128 {
		return false
	}
	for _, r := range key {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}
