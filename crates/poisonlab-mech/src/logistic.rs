//! L2-regularised logistic regression, the linear probe of interpretability work: features
//! standardised on the training set, the convex loss minimised by gradient descent with a
//! backtracking (Armijo) line search. Deterministic: no randomness, a fixed order of sums.

/// A fitted probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    mean: Vec<f64>,
    scale: Vec<f64>,
    w: Vec<f64>,
    b: f64,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `log(1 + e^z)` without overflow.
fn softplus(z: f64) -> f64 {
    if z > 30.0 { z } else { z.exp().ln_1p() }
}

impl Logistic {
    /// Fits `P(y | x) = σ(w·x̃ + b)` on standardised `x̃` by minimising the mean log-loss plus
    /// `l2 / 2 · ‖w‖²`, for at most `iters` steps. `None` without both classes or with rows of
    /// different widths.
    pub fn fit(x: &[Vec<f32>], y: &[bool], l2: f64, iters: usize) -> Option<Logistic> {
        let n = x.len();
        let d = x.first()?.len();
        if n != y.len()
            || x.iter().any(|r| r.len() != d)
            || !y.contains(&true)
            || !y.contains(&false)
        {
            return None;
        }
        let nf = n as f64;
        let mut mean = vec![0.0; d];
        for r in x {
            for (m, &v) in mean.iter_mut().zip(r) {
                *m += v as f64 / nf;
            }
        }
        let mut scale = vec![0.0; d];
        for r in x {
            for ((s, &v), m) in scale.iter_mut().zip(r).zip(&mean) {
                *s += (v as f64 - m).powi(2) / nf;
            }
        }
        for s in &mut scale {
            *s = if *s > 1e-24 { s.sqrt() } else { 1.0 };
        }
        let z: Vec<Vec<f64>> = x
            .iter()
            .map(|r| {
                r.iter()
                    .zip(&mean)
                    .zip(&scale)
                    .map(|((&v, m), s)| (v as f64 - m) / s)
                    .collect()
            })
            .collect();
        let t: Vec<f64> = y.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
        let objective = |w: &[f64], b: f64| -> f64 {
            let loss: f64 = z
                .iter()
                .zip(&t)
                .map(|(r, &ti)| {
                    let s = dot(r, w) + b;
                    softplus(s) - ti * s
                })
                .sum::<f64>()
                / nf;
            loss + l2 / 2.0 * dot(w, w)
        };
        let mut w = vec![0.0; d];
        let mut b = 0.0;
        let mut f = objective(&w, b);
        let mut step: f64 = 1.0;
        for _ in 0..iters {
            let mut gw: Vec<f64> = w.iter().map(|wi| l2 * wi).collect();
            let mut gb = 0.0;
            for (r, &ti) in z.iter().zip(&t) {
                let e = (sigmoid(dot(r, &w) + b) - ti) / nf;
                for (g, v) in gw.iter_mut().zip(r) {
                    *g += e * v;
                }
                gb += e;
            }
            let g2 = dot(&gw, &gw) + gb * gb;
            if g2 < 1e-16 {
                break;
            }
            step = (step * 2.0).min(64.0);
            loop {
                let nw: Vec<f64> = w.iter().zip(&gw).map(|(wi, g)| wi - step * g).collect();
                let nb = b - step * gb;
                let nf_ = objective(&nw, nb);
                if nf_ <= f - 0.5 * step * g2 || step < 1e-12 {
                    w = nw;
                    b = nb;
                    f = nf_;
                    break;
                }
                step /= 2.0;
            }
        }
        Some(Logistic { mean, scale, w, b })
    }

    /// `P(y = 1 | x)`.
    pub fn predict(&self, x: &[f32]) -> f64 {
        let s: f64 = x
            .iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .zip(&self.w)
            .map(|(((&v, m), sc), w)| (v as f64 - m) / sc * w)
            .sum();
        sigmoid(s + self.b)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_one_dimensional_model() {
        // Data at x ∈ {−2, −1, 0, 1, 2}, each 1,000 times, positive with probability σ(1.5 x − 0.5):
        // the (unregularised) maximum-likelihood fit is the generating model, so the predicted
        // probabilities match it.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for xi in [-2.0f64, -1.0, 0.0, 1.0, 2.0] {
            let p = sigmoid(1.5 * xi - 0.5);
            let pos = (p * 1000.0).round() as usize;
            for k in 0..1000 {
                x.push(vec![xi as f32]);
                y.push(k < pos);
            }
        }
        let m = Logistic::fit(&x, &y, 0.0, 5000).unwrap();
        for xi in [-2.0f64, 0.0, 1.0, 2.0] {
            let want = sigmoid(1.5 * xi - 0.5);
            assert!((m.predict(&[xi as f32]) - want).abs() < 2e-3, "{xi}");
        }
    }

    #[test]
    fn separates_classes_that_one_direction_of_many_tells_apart() {
        // 40 dimensions of noise; the class is the sign of dimension 7.
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut row = |pos: bool| -> Vec<f32> {
            let mut r: Vec<f32> = (0..40).map(|_| rng.random_range(-1.0..1.0)).collect();
            r[7] = if pos { 1.0 } else { -1.0 } + rng.random_range(-0.5..0.5);
            r
        };
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..200 {
            x.push(row(i % 2 == 0));
            y.push(i % 2 == 0);
        }
        let m = Logistic::fit(&x, &y, 1e-2, 300).unwrap();
        let correct = (0..200)
            .filter(|&i| {
                let pos = i % 2 == 0;
                (m.predict(&row(pos)) > 0.5) == pos
            })
            .count();
        assert!(correct >= 195, "{correct}/200");
        assert!(Logistic::fit(&x, &[true; 200], 1e-2, 10).is_none());
    }
}
