package rollouts

import (
	"crypto/sha256"
	"encoding/hex"
)

// Fingerprint is a short, stable hash of a canary block. A status whose canary fingerprint differs
// from the spec's current canary belongs to an earlier canary, so the rollout starts over.
// A nil canary has the empty fingerprint.
func Fingerprint(c *Variant) string {
	if c == nil {
		return ""
	}
	h := sha256.New()
	h.Write([]byte("model\x00" + c.Model + "\x00prompt\x00" + c.Prompt))
	return hex.EncodeToString(h.Sum(nil))[:8]
}
