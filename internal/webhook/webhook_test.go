package webhook

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const secretPath = "/services/T000/B000/s3cr3t"

// The answer comes back with the URL, path and query redacted, and the JSON went out as sent.
func TestPostRedactsTheAnswer(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = r.Header.Get("Content-Type") + " " + string(body)
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("no hook at " + r.URL.RequestURI() + "\nsecond line"))
	}))
	defer srv.Close()
	ans, err := Post(context.Background(), srv.Client(), srv.URL+secretPath+"?token=abc123", map[string]int{"stage": 1}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ans.OK || ans.Status != "403 Forbidden" || ans.Text != "no hook at <redacted>" {
		t.Errorf("answer = %+v", ans)
	}
	if got != `application/json {"stage":1}` {
		t.Errorf("server got %q", got)
	}
}

// A request with no answer fails with its cause only: never the URL.
func TestPostErrorsHoldNoURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + secretPath
	ln.Close()

	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)

	for _, tc := range []struct{ url, want string }{
		{closed, "connection refused"},
		{slow.URL + secretPath, "no answer within 50ms"},
		{"http://[::1" + secretPath, ErrInvalidURL.Error()},
	} {
		_, err := Post(context.Background(), nil, tc.url, nil, 50*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("Post(%s) error = %v, want %q without the path", tc.url, err, tc.want)
		}
	}
}

// A server whose status line echoes the URL (its reason phrase is free text) has it redacted too: the
// status goes into errors, logs and pull requests as the text does.
func TestPostRedactsTheStatusLine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 502 no route to "+req.URL.RequestURI()+" (s3cr3t)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}()
		}
	}()
	ans, err := Post(context.Background(), nil, "http://"+ln.Addr().String()+secretPath+"?token=abc123", nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ans.OK || !strings.HasPrefix(ans.Status, "502 ") || strings.Contains(ans.Status, "s3cr3t") || strings.Contains(ans.Status, "abc123") {
		t.Errorf("status = %q, want 502 without the URL's secret pieces", ans.Status)
	}
}
