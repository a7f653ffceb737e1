package reconcile

import "strings"

// ParseTrailers reads the trailers of a commit message as git interpret-trailers does: the "Key: value"
// lines of its last paragraph, when every line of that paragraph is one. A message of one paragraph
// (the subject alone) has none, and a "Key: value" line anywhere else (a body that quotes another
// commit's trailers, a paragraph that explains them) is text: the bot acts on what its own trailer
// block says, never on a line a person wrote above it.
func ParseTrailers(message string) map[string]string {
	paragraphs := strings.Split(strings.TrimSpace(strings.ReplaceAll(message, "\r\n", "\n")), "\n\n")
	if len(paragraphs) < 2 {
		return nil
	}
	return trailerLines(strings.Split(paragraphs[len(paragraphs)-1], "\n"))
}

// trailerLines parses lines that must all be "Key: value" trailers; nil when one is not.
func trailerLines(lines []string) map[string]string {
	out := map[string]string{}
	for _, line := range lines {
		key, value, ok := strings.Cut(line, ":")
		if !ok || !isTrailerKey(key) {
			return nil // not a trailer block
		}
		out[key] = strings.TrimSpace(value)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func isTrailerKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
