package prom

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
)

// An unreachable Prometheus is named by its URL; the error does not quote the (long) query (issue 15).
func TestUnreachableServerNamesTheURLNotTheQuery(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s, err := New("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	long := "sum by (variant) (rate(llm_requests_total{rollout=\"summarizer\"}[5m]))" + strings.Repeat(" + 0", 200)
	_, err = s.query(context.Background(), long, time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC))
	if !errors.Is(err, policy.ErrSourceUnavailable) || !strings.Contains(err.Error(), "http://"+addr) {
		t.Fatalf("error %v, want the source unavailable, naming its URL", err)
	}
	if msg := err.Error(); strings.Contains(msg, "llm_requests_total") || len(msg) > 300 {
		t.Errorf("the error quotes the query (%d characters): %s", len(msg), msg)
	}
}
