package policy

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBinMomentsMatchBruteForce: the O(1) exceedance of binMoments equals the share and the delta-method
// variance computed cluster by cluster.
func TestBinMomentsMatchBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	cs := make([]Cluster, 40)
	for i := range cs {
		cs[i].Bins = make([]float64, QuantileBins)
		for range 1 + rng.IntN(60) {
			x := 300 * math.Exp(0.3*rng.NormFloat64()+0.5*float64(i%3))
			cs[i].Bins[QuantileBin(x)]++
			cs[i].N++
		}
	}
	m := momentsOf(cs)
	for _, x := range []float64{0.5, 1, 50, 250, 300, 333.3, 500, 1200, 5000, 1e9} {
		b := QuantileBin(x)
		f := binShareAbove(b, x)
		var above, n float64
		a := make([]float64, len(cs))
		for i, c := range cs {
			for j := b + 1; j < QuantileBins; j++ {
				a[i] += c.Bins[j]
			}
			a[i] += f * c.Bins[b]
			above += a[i]
			n += c.N
		}
		share := above / n
		var ss float64
		for i, c := range cs {
			d := a[i] - share*c.N
			ss += d * d
		}
		k := float64(len(cs))
		p := (above + 1) / (n + 2)
		wantV := math.Max(k/(k-1)*ss/(n*n), p*(1-p)/n)
		gotShare, gotV := m.exceedance(x)
		if math.Abs(gotShare-share) > 1e-9 || math.Abs(gotV-wantV) > 1e-9*math.Max(wantV, 1e-12) {
			t.Errorf("x=%g: share %g var %g, want %g %g", x, gotShare, gotV, share, wantV)
		}
	}
}

// TestRatioVariance: the delta-method variance of a ratio over clusters matches its textbook form
// (var_s/n̄² - 2·s̄·cov/n̄³ + s̄²·var_n/n̄⁴)/K, and clusters of one observation each reduce to the
// per-observation variance.
func TestRatioVariance(t *testing.T) {
	cs := []Cluster{{N: 10, Sum: 1}, {N: 40, Sum: 10}, {N: 5, Sum: 0}, {N: 25, Sum: 2}, {N: 20, Sum: 7}}
	var n, s float64
	for _, c := range cs {
		n += c.N
		s += c.Sum
	}
	k := float64(len(cs))
	nb, sb := n/k, s/k
	var vn, vs, cov float64
	for _, c := range cs {
		vn += (c.N - nb) * (c.N - nb)
		vs += (c.Sum - sb) * (c.Sum - sb)
		cov += (c.N - nb) * (c.Sum - sb)
	}
	vn, vs, cov = vn/(k-1), vs/(k-1), cov/(k-1)
	want := (vs/(nb*nb) - 2*sb*cov/(nb*nb*nb) + sb*sb*vn/(nb*nb*nb*nb)) / k
	got := ratioVariance(cs, s/n, n, func(c *Cluster) float64 { return c.Sum })
	if math.Abs(got-want) > 1e-12 {
		t.Errorf("delta-method variance %g, want %g", got, want)
	}
	// One observation per cluster: the sample variance of the values over n.
	ones := []Cluster{{N: 1, Sum: 1}, {N: 1, Sum: 0}, {N: 1, Sum: 0}, {N: 1, Sum: 1}}
	if got := ratioVariance(ones, 0.5, 4, func(c *Cluster) float64 { return c.Sum }); math.Abs(got-(1.0/3)/4) > 1e-12 {
		t.Errorf("independent observations: %g, want %g", got, (1.0/3)/4)
	}
}

// TestTwoArmClockIsInformation: a two-arm comparison counts time on the information-equivalent
// clock n_c·n_s/(n_c+n_s), so at a small weight its multiplier is the one-arm bound's on the canary's
// own keys, whatever the stable arm adds, and the stable arm's keys no longer push the bound past its
// tightest point (issue 23, item 6). Before, the clock was n_c+n_s: twenty times the canary's keys at
// 5%.
func TestTwoArmClockIsInformation(t *testing.T) {
	arm := func(keys float64) armEstimate { return armEstimate{units: keys, clustered: true} }
	for _, tc := range []struct{ canary, stable, want float64 }{
		{300, 5700, 285}, // 5%
		{300, 900, 225},  // 25%
		{300, 300, 150},  // 50%
	} {
		got := twoArmTime(arm(tc.canary), arm(tc.stable)) * tuningTwoArmKeys / float64(tuningTwoArm)
		if math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("canary %v, stable %v keys: clock %v effective keys, want %v", tc.canary, tc.stable, got, tc.want)
		}
	}
	// At 5% with 300 canary keys, the comparison's multiplier is within 1% of the one-arm bound's at
	// the same information, and at its tightest there.
	two := csMultiplier(twoArmTime(arm(300), arm(5700)), 0.2)
	one := csMultiplierTuned(285, 0.2, tuningOneArmKeys)
	if math.Abs(two/one-1) > 0.01 {
		t.Errorf("two-arm multiplier %.4f, one-arm %.4f: want the same tuning", two, one)
	}
}
