//! The statistics behind recommendations: Gamma posteriors for results per unit of spend
//! (Poisson results, a Jeffreys prior), Thompson sampling between channels, and an
//! always-valid sequential test (mSPRT) for A/B variants, so checking at every poll does not
//! inflate false winners.

use rand::Rng;
use rand_distr::{Distribution, Gamma};

/// ln Γ(x) for x > 0 (Lanczos, g = 7).
pub fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularised lower incomplete gamma function P(a, x) (series below a + 1, continued
/// fraction above; Numerical Recipes §6.2).
pub fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 || a <= 0.0 {
        return 0.0;
    }
    let gln = ln_gamma(a);
    if x < a + 1.0 {
        let (mut ap, mut sum) = (a, 1.0 / a);
        let mut del = sum;
        for _ in 0..1000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (sum.ln() - x + a * x.ln() - gln).exp().clamp(0.0, 1.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (1.0 - (-x + a * x.ln() - gln).exp() * h).clamp(0.0, 1.0)
    }
}

/// Posterior of a channel's results per unit of spend: Gamma(results + ½, spend).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Yield {
    pub shape: f64,
    pub rate: f64,
}

impl Yield {
    pub fn new(results: f64, spend: f64) -> Option<Yield> {
        (spend > 0.0 && results >= 0.0).then_some(Yield { shape: results + 0.5, rate: spend })
    }

    pub fn mean(&self) -> f64 {
        self.shape / self.rate
    }

    /// P(yield < y), i.e. P(cost per result > 1 / y).
    pub fn p_below(&self, y: f64) -> f64 {
        gamma_p(self.shape, self.rate * y)
    }

    /// The `q` quantile, by bisection.
    pub fn quantile(&self, q: f64) -> f64 {
        let (mut lo, mut hi) = (0.0, self.mean() * 10.0 + 10.0 / self.rate);
        // 40 halvings: far finer than any figure shown.
        for _ in 0..40 {
            let mid = (lo + hi) / 2.0;
            if self.p_below(mid) < q { lo = mid } else { hi = mid }
        }
        (lo + hi) / 2.0
    }

    /// A credible interval of the cost per result (1 / yield) at `level`.
    pub fn cost_interval(&self, level: f64) -> (f64, f64) {
        let tail = (1.0 - level) / 2.0;
        (1.0 / self.quantile(1.0 - tail), 1.0 / self.quantile(tail).max(f64::MIN_POSITIVE))
    }

    pub fn sample(&self, rng: &mut impl Rng) -> f64 {
        Gamma::new(self.shape, 1.0 / self.rate).map_or(self.mean(), |g| g.sample(rng))
    }
}

/// Thompson sampling: P(b's yield > a's yield) from `draws` paired draws.
pub fn p_better(a: &Yield, b: &Yield, draws: usize, rng: &mut impl Rng) -> f64 {
    let wins = (0..draws).filter(|_| b.sample(rng) > a.sample(rng)).count();
    wins as f64 / draws.max(1) as f64
}

/// The mixture sequential probability ratio for the difference of two proportions (Johari et
/// al., "Always valid inference"), normal approximation: Λ ≥ 1/α rejects "no difference"
/// with type I error at most α however often it is checked. `tau` is the prior's standard
/// deviation of the difference (the size of effect the test is tuned for).
pub fn msprt(successes_a: f64, n_a: f64, successes_b: f64, n_b: f64, tau: f64) -> Option<f64> {
    if n_a < 1.0 || n_b < 1.0 {
        return None;
    }
    let (pa, pb) = (successes_a / n_a, successes_b / n_b);
    // Per-observation variance of the difference with n = the paired sample size.
    let n = n_a.min(n_b);
    let sigma2 = pa * (1.0 - pa) * n / n_a + pb * (1.0 - pb) * n / n_b;
    if sigma2 <= 0.0 {
        return None;
    }
    let theta = pb - pa;
    let t2 = tau * tau;
    let log_lambda =
        0.5 * (sigma2 / (sigma2 + n * t2)).ln() + n * n * t2 * theta * theta / (2.0 * sigma2 * (sigma2 + n * t2));
    Some(log_lambda.min(700.0).exp())
}

/// P(b's rate > a's rate) from Beta(1 + s, 1 + f) posteriors, normal approximation.
pub fn p_rate_better(successes_a: f64, n_a: f64, successes_b: f64, n_b: f64) -> f64 {
    let post = |s: f64, n: f64| {
        let (al, be) = (1.0 + s, 1.0 + n - s);
        let m = al / (al + be);
        (m, al * be / ((al + be).powi(2) * (al + be + 1.0)))
    };
    let (ma, va) = post(successes_a, n_a);
    let (mb, vb) = post(successes_b, n_b);
    let z = (mb - ma) / (va + vb).sqrt().max(f64::MIN_POSITIVE);
    1.0 - 0.5 * crate::alert::detect::erfc(z / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::Binomial;

    #[test]
    fn incomplete_gamma_matches_known_values() {
        // P(1, x) = 1 − e^−x; P(0.5, x) = erf(√x).
        for x in [0.1, 1.0, 3.0, 10.0] {
            assert!((gamma_p(1.0, x) - (1.0 - (-x).exp())).abs() < 1e-10, "x {x}");
        }
        assert!((gamma_p(0.5, 2.0) - 0.954_499_736_1).abs() < 1e-8);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((gamma_p(30.0, 30.0) - 0.524_2).abs() < 1e-3);
    }

    #[test]
    fn yield_posterior_intervals_cover_the_truth() {
        // 40 leads for 4,000 spent: CPL 100, a 90 % interval around it.
        let y = Yield::new(40.0, 4_000.0).unwrap();
        let (lo, hi) = y.cost_interval(0.9);
        assert!(lo < 100.0 && hi > 100.0 && lo > 70.0 && hi < 140.0, "{lo}..{hi}");
        assert!(y.p_below(1.0 / 200.0) < 0.001, "CPL above 200 is implausible");
        // No results after twice the limit: probably worse than the limit.
        let none = Yield::new(0.0, 240.0).unwrap();
        assert!(none.p_below(1.0 / 120.0) > 0.95);
    }

    #[test]
    fn thompson_sampling_prefers_the_cheaper_channel() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = Yield::new(20.0, 4_000.0).unwrap();
        let b = Yield::new(60.0, 4_000.0).unwrap();
        assert!(p_better(&a, &b, 4_000, &mut rng) > 0.99);
        assert!((p_better(&a, &a, 4_000, &mut rng) - 0.5).abs() < 0.05);
    }

    #[test]
    fn msprt_finds_a_real_lift_and_grows_with_evidence() {
        let weak = msprt(100.0, 5_000.0, 125.0, 5_000.0, 0.004).unwrap();
        let strong = msprt(1_000.0, 50_000.0, 1_250.0, 50_000.0, 0.004).unwrap();
        assert!(weak < 20.0 && strong > 20.0, "{weak} {strong}");
        assert!(p_rate_better(1_000.0, 50_000.0, 1_250.0, 50_000.0) > 0.99);
    }

    /// A/A tests checked at every poll: the always-valid test keeps false winners at or under
    /// α = 5 %. The figure is printed.
    #[test]
    fn a_a_tests_with_peeking_every_poll_rarely_declare_a_winner() {
        let mut rng = StdRng::seed_from_u64(2026);
        let (tests, polls, per_poll, p) = (400, 200, 500u64, 0.02);
        let mut false_winners = 0;
        for _ in 0..tests {
            let (mut sa, mut sb, mut n) = (0.0, 0.0, 0.0);
            for _ in 0..polls {
                sa += Binomial::new(per_poll, p).unwrap().sample(&mut rng) as f64;
                sb += Binomial::new(per_poll, p).unwrap().sample(&mut rng) as f64;
                n += per_poll as f64;
                if msprt(sa, n, sb, n, 0.2 * p).is_some_and(|l| l >= 20.0) {
                    false_winners += 1;
                    break;
                }
            }
        }
        let rate = false_winners as f64 / tests as f64;
        println!("A/A false-winner rate with a look at every one of {polls} polls: {:.1} %", rate * 100.0);
        assert!(rate <= 0.05, "{rate}");
    }
}
