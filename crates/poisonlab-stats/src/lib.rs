//! poisonlab-stats: every statistic the tool reports, in one place, below every other crate —
//! the data passes, the detectors and the probes all compute their intervals here (re-exported as
//! `poisonlab_eval::stats`). Every rate carries its interval and n.

pub mod detection;
pub mod rate;
pub mod resample;

pub use detection::{AtK, AtThreshold, Auroc, at_threshold, at_top_k, auroc, percentiles};
pub use rate::{Rate, wilson, z95};
pub use resample::{
    Interval, Tail, bootstrap_clustered_rate, bootstrap_difference, bootstrap_mean,
    bootstrap_ratio, empirical_p, quantile,
};
