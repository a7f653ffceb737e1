package chart

import (
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)

// band is a stage of 12 hourly ticks whose interval narrows onto an estimate that crosses the limit.
func band() Band {
	b := Band{Title: "error_rate (maxIncrease 50%)", YLabel: "canary vs stable", Percent: true, From: t0, To: t0.Add(12 * time.Hour),
		Limit: 0.5, LimitLabel: "maxIncrease 50%",
		Markers: []Marker{{At: t0, Label: "start", Title: "438c6ebf start"}, {At: t0.Add(12 * time.Hour), Label: "rollback", Title: "4ab27e3c rollback", Bad: true}}}
	for i := 1; i <= 12; i++ {
		est := 0.1 * float64(i)
		w := 3 / float64(i)
		p := Point{At: t0.Add(time.Duration(i) * time.Hour), Estimate: est, Low: est - w, High: est + w, Verdict: "inconclusive"}
		if i < 3 {
			p.High = math.Inf(1)
		}
		if est-w > 0.5 {
			p.Verdict = "fail"
		}
		b.Points = append(b.Points, p)
	}
	return b
}

func weight() Weight {
	return Weight{Title: "summarizer: canary weight", From: t0.Add(-2 * time.Hour), To: t0.Add(30 * time.Hour), Steps: []Step{
		{At: t0.Add(-2 * time.Hour), Weight: 0, Label: "1", Title: "edit by Ada"},
		{At: t0, Weight: 5, Label: "2", Title: "start"},
		{At: t0.Add(9 * time.Hour), Weight: 0, Label: "3", Title: "rollback"},
	}}
}

func TestGolden(t *testing.T) {
	for name, svg := range map[string]string{
		"band.svg":   Standalone(BandSVG(band())),
		"weight.svg": Standalone(WeightSVG(weight())),
	} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, []byte(svg), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if svg != string(want) {
			t.Errorf("%s differs from the golden file; run with -update and check the diff", name)
		}
	}
}

// TestWellFormed: every chart, whatever its input, is one well-formed XML element, and no string from
// the input reaches it unescaped.
func TestWellFormed(t *testing.T) {
	hostile := `<script>alert("x")</script> & ]]>`
	empty := Band{Title: hostile, LimitLabel: hostile, From: t0, To: t0}
	nan := band()
	nan.Title, nan.Markers[0].Label, nan.Markers[1].Title = hostile, hostile, hostile
	nan.Points[4].Estimate, nan.Points[5].Low, nan.Points[6].High = math.NaN(), math.NaN(), math.Inf(-1)
	abs := band()
	abs.Percent, abs.Limit = false, 0.02
	w := weight()
	w.Title, w.Steps[1].Title, w.Steps[1].Label = hostile, hostile, hostile
	for name, svg := range map[string]string{
		"empty band": BandSVG(empty), "band with gaps": BandSVG(nan), "absolute band": BandSVG(abs),
		"weight": WeightSVG(w), "empty weight": WeightSVG(Weight{}), "standalone": Standalone(BandSVG(nan)),
	} {
		if strings.Contains(svg, "<script") {
			t.Errorf("%s: input reached the SVG unescaped", name)
		}
		if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
			t.Errorf("%s: a coordinate is not a number:\n%s", name, svg)
		}
		d := xml.NewDecoder(strings.NewReader(svg))
		depth, roots := 0, 0
		for {
			tok, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("%s: not well-formed: %v", name, err)
				break
			}
			switch tok := tok.(type) {
			case xml.StartElement:
				if depth == 0 {
					roots++
					if tok.Name.Local != "svg" {
						t.Errorf("%s: root element %s", name, tok.Name.Local)
					}
				}
				depth++
			case xml.EndElement:
				depth--
			}
		}
		if roots != 1 {
			t.Errorf("%s: %d root elements, want 1", name, roots)
		}
	}
}

func TestThin(t *testing.T) {
	var pts []Point
	for i := range 1000 {
		v := "pass"
		if i >= 500 && i < 503 {
			v = "fail"
		}
		pts = append(pts, Point{At: t0.Add(time.Duration(i) * time.Minute), Verdict: v})
	}
	got := Thin(pts, 100)
	if len(got) > 100+4 || len(got) < 100 {
		t.Errorf("thinned 1000 points to %d, want about 100", len(got))
	}
	if !got[0].At.Equal(pts[0].At) || !got[len(got)-1].At.Equal(pts[999].At) {
		t.Errorf("first or last point dropped")
	}
	fails := 0
	for i, p := range got {
		if i > 0 && !p.At.After(got[i-1].At) {
			t.Fatalf("points out of order at %d", i)
		}
		if p.Verdict == "fail" {
			fails++
		}
	}
	if fails == 0 {
		t.Errorf("the points where the verdict changed were dropped")
	}
	if short := pts[:50]; len(Thin(short, 100)) != 50 {
		t.Errorf("a short series was thinned")
	}
}

func TestFormatValue(t *testing.T) {
	for _, tt := range []struct {
		v       float64
		percent bool
		want    string
	}{
		{0.30000000000000004, false, "0.3"},
		{0.0085521, false, "0.00855"},
		{1234.5, false, "1235"},
		{0, false, "0"},
		{0.00001234, false, "1.23e-05"},
		{0.5, true, "+50%"},
		{-0.05, true, "-5%"},
		{0, true, "0%"},
		{22.791, true, "+2279.1%"},
		{math.Inf(1), true, "∞"},
		{math.NaN(), false, "—"},
	} {
		if got := FormatValue(tt.v, tt.percent); got != tt.want {
			t.Errorf("FormatValue(%v, %v) = %q, want %q", tt.v, tt.percent, got, tt.want)
		}
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tt := range []struct{ lo, hi float64 }{{-0.1, 0.31}, {-20, 22.8}, {0, 1}, {-0.5, 0.1}, {1e-6, 3e-6}} {
		ticks := niceTicks(tt.lo, tt.hi, 5)
		span := tt.hi - tt.lo
		if len(ticks) < 3 || len(ticks) > 12 || ticks[0] < tt.lo-span/2 || ticks[len(ticks)-1] > tt.hi+span/2 {
			t.Errorf("niceTicks(%v, %v) = %v: want 3 to 12 ticks across the range", tt.lo, tt.hi, ticks)
		}
		for _, v := range ticks {
			if v == 0 && math.Signbit(v) {
				t.Errorf("niceTicks(%v, %v) has -0, labelled \"-0\"", tt.lo, tt.hi)
			}
		}
	}
}
