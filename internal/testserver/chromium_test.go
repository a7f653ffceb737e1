package testserver

import (
	"strings"
	"testing"
)

func TestMissingChromiumSkipsOrFails(t *testing.T) {
	saved := chromiumBin
	chromiumBin = "/nonexistent/chromium"
	defer func() { chromiumBin = saved }()

	t.Setenv("ROLLOUT_INTEGRATION", "")
	rec := &recordingTB{TB: t}
	run(rec, func(tb testing.TB) { Chromium(tb) })
	if rec.skipped == "" || rec.failed != "" {
		t.Errorf("without ROLLOUT_INTEGRATION: skipped %q, failed %q; want a skip", rec.skipped, rec.failed)
	}

	t.Setenv("ROLLOUT_INTEGRATION", "1")
	rec = &recordingTB{TB: t}
	run(rec, func(tb testing.TB) { Chromium(tb) })
	if rec.failed == "" || !strings.Contains(rec.failed, "chromium") {
		t.Errorf("with ROLLOUT_INTEGRATION=1: skipped %q, failed %q; want a failure naming chromium", rec.skipped, rec.failed)
	}
}
