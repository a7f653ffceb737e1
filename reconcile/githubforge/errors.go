package githubforge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/rollout-dev/rollout/internal/redact"
	"github.com/rollout-dev/rollout/reconcile"
)

// wrap names the operation, marks errors worth retrying with reconcile.ErrTransient and keeps the
// token out of the message.
func (f *Forge) wrap(op string, err error) error {
	if transient(err) {
		err = fmt.Errorf("%s: %w: %w", op, reconcile.ErrTransient, err)
	} else {
		err = fmt.Errorf("%s: %w", op, err)
	}
	return new(redact.Secrets).Token("x-access-token", f.opts.Token).Error(err)
}

// transient reports whether a later tick may not see err.
func transient(err error) bool {
	var rate *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	var resp *github.ErrorResponse
	var netErr *url.Error
	switch {
	case errors.As(err, &rate), errors.As(err, &abuse):
		return true
	case errors.As(err, &resp):
		code := resp.Response.StatusCode
		return code >= 500 || code == http.StatusTooManyRequests
	case errors.Is(err, context.Canceled):
		return false
	case errors.As(err, &netErr):
		return true
	}
	return false
}

func alreadyExists(err error) bool {
	var resp *github.ErrorResponse
	if !errors.As(err, &resp) || resp.Response.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	for _, e := range resp.Errors {
		if strings.Contains(e.Message, "already exists") {
			return true
		}
	}
	return strings.Contains(resp.Message, "already exists")
}
