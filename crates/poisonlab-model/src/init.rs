//! Seeded weight initialisation: normal(0, 0.02) matrices drawn from our own ChaCha stream, so the
//! same seed gives the same model whatever else runs in the process (burn's device RNG is shared).

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct Init {
    rng: ChaCha8Rng,
    device: Device,
    std: f64,
}

impl Init {
    pub fn new(seed: u64, device: &Device) -> Init {
        Init {
            rng: ChaCha8Rng::seed_from_u64(seed),
            device: device.clone(),
            std: 0.02,
        }
    }

    /// Normal(0, std) values by Box–Muller.
    pub fn normal<const D: usize>(&mut self, shape: [usize; D]) -> Tensor<D> {
        let n: usize = shape.iter().product();
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
            let u2: f64 = self.rng.random();
            let r = (-2.0 * u1.ln()).sqrt() * self.std;
            let a = std::f64::consts::TAU * u2;
            v.push((r * a.cos()) as f32);
            if v.len() < n {
                v.push((r * a.sin()) as f32);
            }
        }
        Tensor::from_data(TensorData::new(v, shape), &self.device)
    }

    pub fn zeros<const D: usize>(&self, shape: [usize; D]) -> Tensor<D> {
        Tensor::zeros(shape, &self.device)
    }

    pub fn ones<const D: usize>(&self, shape: [usize; D]) -> Tensor<D> {
        Tensor::ones(shape, &self.device)
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A Linear `[in, out]` with normal weights and zero bias.
    pub fn linear(&mut self, i: usize, o: usize, bias: bool) -> Linear {
        Linear {
            weight: Param::from_tensor(self.normal([i, o])),
            bias: bias.then(|| Param::from_tensor(self.zeros([o]))),
        }
    }

    pub fn embedding(&mut self, n: usize, d: usize) -> Embedding {
        Embedding {
            weight: Param::from_tensor(self.normal([n, d])),
        }
    }
}
