//! Rates: k successes in n trials with their Wilson 95 % interval.

use serde::Serialize;

/// A rate with its Wilson 95 % interval and n.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub k: u64,
    pub n: u64,
    pub rate: f64,
    pub ci95: [f64; 2],
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.n == 0 {
            return write!(f, "n/a (n = 0)");
        }
        write!(
            f,
            "{:.1}% [{:.1}, {:.1}] ({}/{})",
            100.0 * self.rate,
            100.0 * self.ci95[0],
            100.0 * self.ci95[1],
            self.k,
            self.n
        )
    }
}

const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval for k successes in n trials (95 %).
pub fn wilson(k: u64, n: u64) -> Rate {
    if n == 0 {
        return Rate {
            k,
            n,
            rate: f64::NAN,
            ci95: [0.0, 1.0],
        };
    }
    let z = Z95;
    let (kf, nf) = (k as f64, n as f64);
    let p = kf / nf;
    let den = 1.0 + z * z / nf;
    let centre = (p + z * z / (2.0 * nf)) / den;
    let half = z * (p * (1.0 - p) / nf + z * z / (4.0 * nf * nf)).sqrt() / den;
    Rate {
        k,
        n,
        rate: p,
        ci95: [
            if k == 0 {
                0.0
            } else {
                (centre - half).max(0.0)
            },
            if k == n {
                1.0
            } else {
                (centre + half).min(1.0)
            },
        ],
    }
}

/// The normal 95 % quantile, for intervals built from a standard error.
pub fn z95() -> f64 {
    Z95
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        // 8 of 10: Wilson 95 % interval ≈ [0.490, 0.943].
        let r = wilson(8, 10);
        assert!((r.ci95[0] - 0.4902).abs() < 1e-3, "{:?}", r);
        assert!((r.ci95[1] - 0.9433).abs() < 1e-3, "{:?}", r);
        let z = wilson(0, 50);
        assert_eq!(z.ci95[0], 0.0);
        assert!((z.ci95[1] - 0.0713).abs() < 1e-3);
        assert_eq!(wilson(5, 5).ci95[1], 1.0);
    }
}
