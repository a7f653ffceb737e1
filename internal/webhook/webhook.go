// Package webhook posts a JSON payload to a URL that may itself be a secret: a Slack incoming webhook, a
// gate hook with a token in its path or query. Nothing it returns holds the URL, its path or its query,
// so callers can put its errors and answers in logs, commits and pull requests.
//
// It is a leaf helper of internal: it imports nothing of rollout's rooms, so policy/gate and
// reconcile/notify can both use it.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/internal/redact"
)

// Answer is what the server said.
type Answer struct {
	// Status is the status line, such as "503 Service Unavailable", redacted as Text is.
	Status string
	// OK is true for a 2xx status.
	OK bool
	// Text is the first line of the body (at most 200 bytes) with the URL, its path and query replaced
	// by <redacted>; empty when the body is not text.
	Text string
}

// ErrInvalidURL is returned for a URL that cannot be requested.
var ErrInvalidURL = errors.New("the URL is not valid")

// Post sends payload as JSON to rawURL and waits at most timeout for the answer. A request that gets no
// answer returns an error naming only the cause ("no answer within 10s", "connect: connection refused").
func Post(ctx context.Context, client *http.Client, rawURL string, payload any, timeout time.Duration) (Answer, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return Answer{}, fmt.Errorf("encode request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return Answer{}, ErrInvalidURL
	}
	req.Header.Set("Content-Type", "application/json")
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, errors.New(cause(err, timeout))
	}
	defer resp.Body.Close()
	start, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	// The reason phrase of the status line is free text, which a server may fill with the URL as it
	// may its body.
	ans := Answer{Status: firstLine(redactAnswer(resp.Status, req.URL), 200), OK: resp.StatusCode/100 == 2}
	if text := redactAnswer(strings.TrimSpace(string(start)), req.URL); isText(text) {
		ans.Text = firstLine(text, 200)
	}
	return ans, nil
}

// cause says why a request failed without the URL, which *url.Error and some dial errors carry.
func cause(err error, timeout time.Duration) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Sprintf("no answer within %s", timeout)
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + ": " + op.Err.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "host not found"
	}
	return "the request failed"
}

// redactAnswer removes every secret piece of u from a server's answer: the URL, its path and each of
// its segments, its query and each of its values (redact.URL), which an answer may echo one at a time.
func redactAnswer(s string, u *url.URL) string {
	return strings.ToValidUTF8(redact.URL(s, u.String()), "")
}

func isText(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
	}
	return true
}

func firstLine(s string, max int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
