//! f32 matmul throughput of the default backend (1024 × 1024), for the MFU figures in BENCHMARKS.md.
//! usage: cargo run --release -p poisonlab-model --example matmul_peak [THREADS]

use std::time::Instant;

use burn::tensor::Tensor;

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .ok();
    let device = poisonlab_model::default_device();
    let a = Tensor::<2>::ones([1024, 1024], &device) * 0.5;
    let b = Tensor::<2>::ones([1024, 1024], &device) * 0.25;
    for _ in 0..3 {
        let _ = a.clone().matmul(b.clone()).into_data();
    }
    let (mut n, start) = (0u64, Instant::now());
    while start.elapsed().as_secs_f64() < 2.0 {
        let _ = a.clone().matmul(b.clone()).into_data();
        n += 1;
    }
    let gflops = 2.0 * 1024f64.powi(3) * n as f64 / start.elapsed().as_secs_f64() / 1e9;
    println!("{{\"threads\": {threads}, \"matmul_gflops\": {gflops:.1}}}");
}
