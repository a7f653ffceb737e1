package githubforge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// retryTransport sits under go-github. It retries what GitHub asks to retry (5xx, 429, primary and
// secondary rate limits), waiting with the injected sleep as long as GitHub says, within a total budget.
// It also sends writes one at a time, as GitHub's guidance against secondary rate limits asks.
//
// Retrying here, below go-github, keeps go-github's own client-side rate-limit memory (which counts
// in wall-clock time) out of the way of an injected clock; when the budget runs out, the last answer
// goes up unchanged and go-github turns it into *github.RateLimitError or *github.AbuseRateLimitError.
type retryTransport struct {
	base     http.RoundTripper
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
	budget   time.Duration
	attempts int
	// writeGap is the least time between two writes (GitHub asks for a second); 0 for none.
	writeGap time.Duration

	writeMu   sync.Mutex
	lastWrite time.Time
}

// Backoff bounds for answers that name no wait.
const (
	firstBackoff = time.Second
	maxBackoff   = 30 * time.Second
)

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	write := req.Method != http.MethodGet && req.Method != http.MethodHead
	if write {
		t.writeMu.Lock()
		defer t.writeMu.Unlock()
		if !t.lastWrite.IsZero() && t.writeGap > 0 {
			if wait := t.writeGap - t.now().Sub(t.lastWrite); wait > 0 {
				if err := t.sleep(req.Context(), wait); err != nil {
					return nil, err
				}
			}
		}
		defer func() { t.lastWrite = t.now() }()
	}
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		try := req
		if attempt > 1 && req.Body != nil {
			if req.GetBody == nil {
				return nil, errNoReplay
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			try = req.Clone(req.Context())
			try.Body = body
		}
		resp, err := t.base.RoundTrip(try)
		wait, retry := t.retryAfter(resp, err, write, attempt)
		if !retry || attempt >= t.attempts || waited+wait > t.budget {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err := t.sleep(req.Context(), wait); err != nil {
			return nil, err
		}
		waited += wait
	}
}

// retryAfter says whether an answer is worth retrying, and after how long.
func (t *retryTransport) retryAfter(resp *http.Response, err error, write bool, attempt int) (time.Duration, bool) {
	backoff := min(firstBackoff<<(attempt-1), maxBackoff)
	if err != nil {
		// A write that failed in transit may have landed; Propose and UpsertComment look before they
		// write again, so only reads are retried here.
		return backoff, !write && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	switch {
	case resp.StatusCode >= 500:
		return backoff, true
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusForbidden:
		if s := resp.Header.Get("Retry-After"); s != "" {
			if secs, err := strconv.Atoi(s); err == nil && secs >= 0 {
				return time.Duration(secs) * time.Second, true
			}
		}
		if resp.Header.Get("X-RateLimit-Remaining") == "0" {
			if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
				return max(time.Unix(reset, 0).Sub(t.now())+time.Second, time.Second), true
			}
		}
		if resp.StatusCode == http.StatusTooManyRequests || secondaryLimit(resp) {
			// GitHub: without Retry-After, wait at least a minute before retrying.
			return max(time.Minute, backoff), true
		}
	}
	return 0, false
}

// errNoReplay is a request whose body cannot be sent twice.
var errNoReplay = errors.New("request body cannot be replayed for a retry")

// secondaryLimit peeks at a 403 body for GitHub's secondary-rate-limit message, leaving the body
// readable.
func secondaryLimit(resp *http.Response) bool {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return false
	}
	low := strings.ToLower(string(body))
	return strings.Contains(low, "secondary rate limit") || strings.Contains(low, "abuse")
}

// sleepContext waits d or until ctx ends.
func sleepContext(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// revalidate asks httpcache to check every cached GET with GitHub (If-None-Match) instead of serving it
// while GitHub's max-age lasts: a tick must see a pull request merged a second ago. The 304 answers it
// gets cost no rate limit.
type revalidate struct{ base http.RoundTripper }

func (t revalidate) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		return t.base.RoundTrip(req)
	}
	if req.Header.Get("Cache-Control") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("Cache-Control", "max-age=0")
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	// httpcache stores a body when it is read to EOF; go-github's JSON decoder stops at the end of the
	// value, so read it all here.
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
