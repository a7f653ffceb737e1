package policy

import "math"

// The confidence sequences of the judge.
//
// Every verdict comes from a one-sided always-valid confidence sequence: a bound that holds, with
// probability at least 1-alpha, at every tick at once, so re-evaluating a rollout every 15 minutes for
// days does not inflate the error rate the way a fixed-horizon test re-checked does.
//
// The bound is the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas,
// "Time-uniform central limit theory and asymptotic confidence sequences" (2023), the one GrowthBook
// uses, in its one-sided form: a Robbins normal mixture over a half-normal prior of variance rho²
// (Howard, Ramdas, McAuliffe and Sekhon 2021). After t observations of a standardized sum S_t the
// mixture martingale is
//
//	M_t = 2/sqrt(t rho² + 1) · exp(rho² S_t² / (2(t rho² + 1))) · Φ(rho S_t / sqrt(t rho² + 1))
//
// and by Ville's inequality it exceeds 1/alpha at some t with probability at most alpha. Solving
// M_t = 1/alpha for S_t/sqrt(t) gives the multiplier z(t) of the standard error: the bound on a mean is
// estimate ± z(t)·SE, with SE estimated from the data (the "asymptotic" part). Unlike the fixed-horizon
// 1.645, z(t) grows slowly (like sqrt(log t)), which is the price of peeking for free.
//
// Two-arm comparisons use the information-equivalent count t = n_c·n_s/(n_c+n_s) and the variance of
// the estimator V: with a traffic split fixed within a stage, t is the arms' sum times a constant
// (π(1-π)), so the half-width z(t)·sqrt(V) is GrowthBook's (which counts n_stable + n_canary) with its
// prior rescaled by that constant; see twoArmTime for why this keeps the bound valid.

// The tuning constants: the number of units at which each bound is tightest (GrowthBook's "sequential
// tuning parameter"). Validity holds for any value fixed in advance; each is set where its bound is
// used, so that a one-arm bound (the canary alone against an absolute limit) is not tuned for the size
// of two arms together, nor a count of users for a count of requests. Far below its tuning point a
// mixture bound is loose (the multiplier grows like 1/sqrt(t·rho²)); far above it, slowly looser too.
const (
	// tuningTwoArm: two-arm comparisons counting requests, on the information-equivalent clock
	// n_c·n_s/(n_c+n_s) (twoArmTime), which at a small weight is about the canary's count: the same
	// count as the one-arm bounds', so a relative limit and an absolute one on the same canary are
	// tightest at the same canary size.
	tuningTwoArm = tuningOneArm
	// tuningTwoArmKeys: two-arm comparisons counting keys (users), on the same clock.
	tuningTwoArmKeys = tuningOneArmKeys
	// tuningOneArm: one-arm bounds count the canary's requests alone.
	tuningOneArm = 2000
	// tuningOneArmKeys: one-arm bounds counting the canary's keys: a stage decides on hundreds.
	tuningOneArmKeys = 300
	// tuningBetaBinomial: the exact beta-binomial mixture for a proportion of independent requests
	// (see betaBinomialBound) is tightest near this many canary requests.
	tuningBetaBinomial = 2000
)

// tuningObservations is the two-arm tuning constant, kept for its callers.
const tuningObservations = tuningTwoArm

// mixtureRho2 returns the mixture's prior variance rho² that makes the bound tightest at n observations for
// level alpha, as GrowthBook computes it from its sequential tuning parameter.
func mixtureRho2(alpha float64, n float64) float64 {
	l := -2 * math.Log(alpha)
	return (l + math.Log(l+1)) / n
}

// csMultiplier returns z such that estimate - z·SE is a one-sided (1-alpha) lower confidence sequence
// (and estimate + z·SE an upper one) after t observations.
func csMultiplier(t float64, alpha float64) float64 {
	return csMultiplierTuned(t, alpha, tuningTwoArm)
}

// csMultiplierTuned is csMultiplier for a bound tuned to be tightest at tuning units.
func csMultiplierTuned(t, alpha, tuning float64) float64 {
	if t < 1 {
		t = 1
	}
	u := t * mixtureRho2(alpha, tuning) // t·rho²: the only way t enters
	target := math.Log(1 / alpha)
	half := 0.5 * math.Log(u+1)
	shrink := u / (u + 1)
	// f(z) = log M_t at S_t = z·sqrt(t); increasing in z.
	f := func(z float64) float64 {
		return math.Ln2 - half + z*z*shrink/2 + logNormalCDF(z*math.Sqrt(shrink))
	}
	// Φ ≤ 1 and Φ ≥ 1/2 for z ≥ 0 bracket the root between the two-sided bounds at 2·alpha and alpha.
	lo := math.Sqrt(math.Max(0, 2*(target-math.Ln2+half)/shrink))
	hi := math.Sqrt(2 * (target + half) / shrink)
	for range 60 {
		mid := (lo + hi) / 2
		if f(mid) < target {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo < 1e-7 {
			break
		}
	}
	return hi
}

// logNormalCDF is log Φ(x).
func logNormalCDF(x float64) float64 {
	return math.Log(0.5 * math.Erfc(-x/math.Sqrt2))
}

// bounds is a one-sided lower and upper bound of one quantity, each at level alpha.
type bounds struct {
	estimate, low, high float64
}

// contrastBounds bounds D = mean(canary) - r·mean(stable) from two arms' estimates and the variances
// of those estimates (vc = s²_c/n_c), after t observations in all.
func contrastBounds(mc, vc, ms, vs, r, t, alpha float64) bounds {
	return contrastBoundsZ(mc, vc, ms, vs, r, csMultiplier(t, alpha))
}

// contrastBoundsZ is contrastBounds with the multiplier z already computed.
func contrastBoundsZ(mc, vc, ms, vs, r, z float64) bounds {
	est := mc - r*ms
	hw := z * math.Sqrt(vc+r*r*vs)
	return bounds{estimate: est, low: est - hw, high: est + hw}
}

// ratioBounds inverts contrastBounds over r (Fieller's method): the set of ratios mean(canary) /
// mean(stable) that the confidence sequence does not reject. The ends are ±Inf when the stable mean is
// too close to zero to bound the ratio.
func ratioBounds(mc, vc, ms, vs, t, alpha float64) (low, high float64) {
	return ratioBoundsZ(mc, vc, ms, vs, csMultiplier(t, alpha))
}

// ratioBoundsZ is ratioBounds with the multiplier z already computed.
func ratioBoundsZ(mc, vc, ms, vs, z float64) (low, high float64) {
	z2 := z * z
	a := ms*ms - z2*vs
	b := -2 * mc * ms
	c := mc*mc - z2*vc
	if a <= 0 {
		// The stable mean is too close to zero to bound the ratio from above. For the usual
		// non-negative metrics the lower bound still exists: the smallest r at which the lower bound
		// of mean(canary) - r·mean(stable) reaches zero, which decreases in r.
		low = math.Inf(-1)
		if mc >= 0 && ms >= 0 {
			lowD := func(r float64) float64 { return mc - r*ms - z*math.Sqrt(vc+r*r*vs) }
			switch {
			case lowD(0) <= 0:
				low = 0
			default:
				lo, hi := 0.0, 1.0
				for lowD(hi) > 0 && hi < 1e12 {
					lo, hi = hi, hi*2
				}
				for range 100 {
					mid := (lo + hi) / 2
					if lowD(mid) > 0 {
						lo = mid
					} else {
						hi = mid
					}
				}
				low = lo
			}
		}
		return low, math.Inf(1)
	}
	disc := b*b - 4*a*c
	if disc < 0 {
		disc = 0
	}
	sq := math.Sqrt(disc)
	return (-b - sq) / (2 * a), (-b + sq) / (2 * a)
}

// logRatioBound is one end of the confidence sequence for the ratio mean(canary) / mean(stable) of two
// positive means, from the delta method on the log scale: log(mc/ms) ± z·sqrt(vc/mc² + vs/ms²),
// exponentiated. upper selects the upper end. The judge uses it for the end of a relative limit that can
// show a breach. Fieller's bound (ratioBounds) divides by the variance observed, which grows with a
// rate: for a canary failing 3% of requests against a limit of 1.5% it needs a z about a third larger
// than the log bound does for the same evidence, and under the null (the canary at the limit) the two
// agree. On the log scale the test is close to the score test, whose variance is the limit's.
func logRatioBound(mc, vc, ms, vs, z float64, upper bool) float64 {
	se := math.Sqrt(vc/(mc*mc) + vs/(ms*ms))
	if upper {
		return mc / ms * math.Exp(z*se)
	}
	return mc / ms * math.Exp(-z*se)
}

// clampRatio restricts a ratio bound to the ratios a non-negative metric can have: a relative change
// never reaches below -100%.
func clampRatio(r, mc, ms float64) float64 {
	if mc >= 0 && ms >= 0 && r < 0 {
		return 0
	}
	return r
}

// betaBinomialConcentration is the prior concentration a+b of the beta-binomial mixture: its prior
// spread of the rate, sqrt(p(1-p)/(a+b+1)), matches the normal mixture tuned to tuningBetaBinomial
// observations at alpha 0.025 ((l + log(l+1)) / n with l = -2 log alpha). It is a constant, fixed in
// advance, as a mixture's prior must be for the bound to hold at every tick.
const betaBinomialConcentration = tuningBetaBinomial / 9.5

// betaBinomialBound is one end of the exact confidence sequence for a rate from k events in n
// independent trials (Howard, Ramdas, McAuliffe and Sekhon 2021, the beta-binomial mixture): the set
// of rates p whose mixture martingale
//
//	M_n(p) = B(a+k, b+n-k) / B(a, b) / (p^k (1-p)^(n-k))
//
// stays below 1/alpha. By Ville's inequality the true rate leaves it at some tick with probability at
// most alpha, with no normal approximation: this is what lets a handful of events bound a small rate
// from below. The prior Beta(a, b) is centred on center (the rule's limit, known in advance). The set
// is an interval around k/n; upper selects its upper end. Each end used alone is one-sided at alpha
// or better.
func betaBinomialBound(k, n, alpha, center float64, upper bool) float64 {
	return betaBinomialBoundConc(k, n, alpha, center, upper, betaBinomialConcentration)
}

// betaBinomialBoundConc is betaBinomialBound with the prior concentration a+b given.
func betaBinomialBoundConc(k, n, alpha, center float64, upper bool, conc float64) float64 {
	if n <= 0 {
		if upper {
			return 1
		}
		return 0
	}
	center = math.Min(math.Max(center, 1e-4), 1-1e-4)
	a, b := conc*center, conc*(1-center)
	logMix := lbeta(a+k, b+n-k) - lbeta(a, b)
	target := math.Log(1 / alpha)
	logM := func(p float64) float64 {
		lp := 0.0
		if k > 0 {
			lp -= k * math.Log(p)
		}
		if n-k > 0 {
			lp -= (n - k) * math.Log1p(-p)
		}
		return logMix + lp
	}
	phat := k / n
	lo, hi := 0.0, phat
	if upper {
		if k >= n {
			return 1
		}
		lo, hi = phat, 1
	} else if k <= 0 {
		return 0
	}
	// logM is convex with its minimum at phat: bisect on the side asked for.
	for range 50 {
		mid := (lo + hi) / 2
		inside := logM(mid) < target
		if upper == inside {
			lo = mid
		} else {
			hi = mid
		}
	}
	if upper {
		return hi
	}
	return lo
}

func lbeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// tuningShareEvents: the conditional two-arm bound for rates of independent requests (see
// rateRatioBound) counts events of both arms together; a day of a 5% stage at 1–2% errors holds a few
// hundred.
const tuningShareEvents = 200

// rateRatioBound is one end of the exact confidence sequence for the ratio r = p_canary / p_stable of
// two rates of independent requests, by the conditional-binomial argument for a ratio of rates: each
// request goes to the canary with probability π and fails with its arm's rate, so each failure, in the
// order they arrive, is the canary's with probability s = r·w / (r·w + 1), w = π/(1-π), independently
// of the others. The canary's kc of the kc+ks events are then a Bernoulli(s) sequence, and the
// beta-binomial mixture (betaBinomialBound, its prior spread set for tuningShareEvents events and
// centred on the share of the limit's ratio r0) bounds s at every tick at once with no approximation;
// r = s / (w(1-s)) is increasing in s, so the bound carries over. w is estimated by the arms' request
// counts nc/ns, which converge to π; the burn-in of MinObservations per arm keeps early ticks honest.
func rateRatioBound(kc, nc, ks, ns, alpha, r0 float64, upper bool) float64 {
	if nc <= 0 || ns <= 0 {
		if upper {
			return math.Inf(1)
		}
		return 0
	}
	w := nc / ns
	center := r0 * w / (r0*w + 1)
	s := betaBinomialBoundConc(kc, kc+ks, alpha, center, upper, tuningShareEvents/9.5)
	if s >= 1 {
		return math.Inf(1)
	}
	return s / (w * (1 - s))
}
