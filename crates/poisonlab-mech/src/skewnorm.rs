//! The skew-normal distribution (Azzalini): density `2/ω φ(z) Φ(αz)`, `z = (x − ξ)/ω`. Carlini et
//! al. fit it to the log-perplexities of sampled candidates to estimate a canary's exposure when the
//! randomness space is too large to enumerate. Fitted by the method of moments; its CDF is
//! `Φ(z) − 2 T(z, α)` with Owen's T function.

use std::f64::consts::PI;

/// A skew-normal with location `xi`, scale `omega` and shape `alpha`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkewNormal {
    pub xi: f64,
    pub omega: f64,
    pub alpha: f64,
}

/// The standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Owen's T function, `T(h, a) = 1/(2π) ∫₀ᵃ exp(−h²(1 + x²)/2) / (1 + x²) dx`, computed as
/// `1/(2π) ∫₀^{atan a} exp(−h² / (2 cos² θ)) dθ` (the substitution `x = tan θ` makes the range
/// finite and the integrand smooth) by composite Simpson's rule on 2,000 intervals.
pub fn owens_t(h: f64, a: f64) -> f64 {
    if a == 0.0 {
        return 0.0;
    }
    if a < 0.0 {
        return -owens_t(h, -a);
    }
    let top = a.atan();
    let n = 2000;
    let step = top / n as f64;
    let f = |theta: f64| {
        let c = theta.cos();
        (-h * h / (2.0 * c * c)).exp()
    };
    let mut sum = f(0.0) + f(top);
    for i in 1..n {
        let w = if i % 2 == 1 { 4.0 } else { 2.0 };
        sum += w * f(i as f64 * step);
    }
    sum * step / 3.0 / (2.0 * PI)
}

/// The largest skewness a skew-normal reaches (as α → ∞).
pub const MAX_SKEWNESS: f64 = 0.995_271_746_431_156;

impl SkewNormal {
    pub fn cdf(&self, x: f64) -> f64 {
        let z = (x - self.xi) / self.omega;
        (normal_cdf(z) - 2.0 * owens_t(z, self.alpha)).clamp(0.0, 1.0)
    }

    fn delta(&self) -> f64 {
        self.alpha / (1.0 + self.alpha * self.alpha).sqrt()
    }

    pub fn mean(&self) -> f64 {
        self.xi + self.omega * self.delta() * (2.0 / PI).sqrt()
    }

    pub fn variance(&self) -> f64 {
        let d = self.delta();
        self.omega * self.omega * (1.0 - 2.0 * d * d / PI)
    }

    pub fn skewness(&self) -> f64 {
        let m = self.delta() * (2.0 / PI).sqrt();
        (4.0 - PI) / 2.0 * m.powi(3) / (1.0 - m * m).powf(1.5)
    }

    /// The method-of-moments fit: the sample's mean, variance and skewness matched (a skewness
    /// beyond what a skew-normal reaches is clamped to just inside [`MAX_SKEWNESS`]). `None` for
    /// fewer than three values or no spread.
    pub fn fit(values: &[f64]) -> Option<SkewNormal> {
        let n = values.len();
        if n < 3 {
            return None;
        }
        let nf = n as f64;
        let mean = values.iter().sum::<f64>() / nf;
        let m2 = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / nf;
        let m3 = values.iter().map(|v| (v - mean).powi(3)).sum::<f64>() / nf;
        if m2 <= 0.0 || !m2.is_finite() {
            return None;
        }
        let g = (m3 / m2.powf(1.5)).clamp(-0.99 * MAX_SKEWNESS, 0.99 * MAX_SKEWNESS);
        let c = ((4.0 - PI) / 2.0).powf(2.0 / 3.0);
        let g23 = g.abs().powf(2.0 / 3.0);
        let delta = g.signum() * (PI / 2.0 * g23 / (g23 + c)).sqrt();
        let omega = (m2 / (1.0 - 2.0 * delta * delta / PI)).sqrt();
        let xi = mean - omega * delta * (2.0 / PI).sqrt();
        let alpha = delta / (1.0 - delta * delta).sqrt();
        Some(SkewNormal { xi, omega, alpha })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owens_t_and_the_cdf_at_values_known_in_closed_form() {
        // T(0, a) = atan(a) / 2π; T(h, 1) = Φ(h)(1 − Φ(h)) / 2.
        for a in [0.3, 1.0, 5.0, 80.0] {
            assert!(
                (owens_t(0.0, a) - a.atan() / (2.0 * PI)).abs() < 1e-12,
                "{a}"
            );
        }
        for h in [-1.5, 0.2, 0.7, 2.5] {
            let p = normal_cdf(h);
            assert!((owens_t(h, 1.0) - p * (1.0 - p) / 2.0).abs() < 1e-10, "{h}");
        }
        assert!((normal_cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-12);
        // α = 0 is the normal; α = 1 puts a quarter of the mass below ξ; α → ∞ is the half-normal.
        let n = SkewNormal {
            xi: 2.0,
            omega: 3.0,
            alpha: 0.0,
        };
        assert!((n.cdf(5.0) - normal_cdf(1.0)).abs() < 1e-12);
        let one = SkewNormal {
            xi: 0.0,
            omega: 1.0,
            alpha: 1.0,
        };
        assert!((one.cdf(0.0) - 0.25).abs() < 1e-10);
        let half = SkewNormal {
            xi: 0.0,
            omega: 1.0,
            alpha: 1e4,
        };
        assert!((half.cdf(1.0) - (2.0 * normal_cdf(1.0) - 1.0)).abs() < 1e-4);
        assert!(half.cdf(-0.5) < 1e-9);
    }

    #[test]
    fn the_moment_fit_recovers_the_moments_and_a_known_distribution() {
        use rand::{RngExt, SeedableRng};
        // Draws by the representation X = ξ + ω (δ |Z₀| + √(1 − δ²) Z₁).
        let truth = SkewNormal {
            xi: 1.0,
            omega: 2.0,
            alpha: 4.0,
        };
        let d = truth.delta();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut normal = || {
            // Box–Muller.
            let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random::<f64>());
            (-2.0 * u.ln()).sqrt() * (2.0 * PI * v).cos()
        };
        let xs: Vec<f64> = (0..200_000)
            .map(|_| {
                let (z0, z1) = (normal(), normal());
                truth.xi + truth.omega * (d * z0.abs() + (1.0 - d * d).sqrt() * z1)
            })
            .collect();
        let fit = SkewNormal::fit(&xs).unwrap();
        assert!((fit.mean() - truth.mean()).abs() < 0.02, "{fit:?}");
        assert!((fit.variance() - truth.variance()).abs() < 0.05, "{fit:?}");
        assert!((fit.skewness() - truth.skewness()).abs() < 0.05, "{fit:?}");
        for x in [0.0, 1.0, 2.5, 5.0] {
            let emp = xs.iter().filter(|&&v| v <= x).count() as f64 / xs.len() as f64;
            assert!(
                (fit.cdf(x) - emp).abs() < 0.01,
                "x = {x}: {} vs {emp}",
                fit.cdf(x)
            );
        }
        assert!(SkewNormal::fit(&[1.0, 1.0, 1.0]).is_none());
        assert!(SkewNormal::fit(&[1.0, 2.0]).is_none());
    }
}
