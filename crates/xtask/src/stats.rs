//! Latency statistics: nearest-rank percentiles over a sorted vector of durations.
//!
//! A histogram crate would save memory the benchmark does not need to save: a
//! minute of requests at 20,000 per second is a few megabytes of `Duration`s, and a
//! sorted vector gives exact percentiles rather than bucketed ones.

use std::time::Duration;

use serde::Serialize;

/// The nearest-rank percentile of `sorted` (ascending): the smallest sample such
/// that at least `p` percent of the samples are at or below it. `None` when there
/// are no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).copied()
}

/// Milliseconds as a float, the unit of every latency in the report.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Dist {
    pub n: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Dist {
    /// Sorts `samples` in place and summarises them; `None` when there are none.
    pub fn of(samples: &mut [Duration]) -> Option<Self> {
        samples.sort_unstable();
        let p50 = percentile(samples, 50.0)?;
        let p99 = percentile(samples, 99.0)?;
        let max = *samples.last()?;
        let total: Duration = samples.iter().sum();
        Some(Self {
            n: samples.len(),
            p50_ms: ms(p50),
            p99_ms: ms(p99),
            max_ms: ms(max),
            mean_ms: ms(total) / samples.len() as f64,
        })
    }
}

/// What the gateway adds at a percentile: its figure minus the direct one.
pub fn added(gateway: Option<f64>, direct: Option<f64>) -> Option<f64> {
    Some(gateway? - direct?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn nearest_rank_on_one_to_a_hundred() {
        let sorted = millis(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&sorted, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&sorted, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&sorted, 0.0), Some(Duration::from_millis(1)));
    }

    #[test]
    fn few_samples_give_the_worst_as_p99() {
        let sorted = millis(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(percentile(&sorted, 99.0), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&sorted, 50.0), Some(Duration::from_millis(5)));
        assert_eq!(
            percentile(&millis(&[7]), 50.0),
            Some(Duration::from_millis(7))
        );
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn a_distribution_sorts_its_samples_first() {
        let mut samples = millis(&[9, 1, 5, 3, 7]);
        let dist = Dist::of(&mut samples).unwrap();
        assert_eq!(dist.n, 5);
        assert_eq!(dist.p50_ms, 5.0);
        assert_eq!(dist.p99_ms, 9.0);
        assert_eq!(dist.max_ms, 9.0);
        assert_eq!(dist.mean_ms, 5.0);
        assert_eq!(Dist::of(&mut []), None);
    }

    #[test]
    fn added_needs_both_sides() {
        assert_eq!(added(Some(1.5), Some(1.0)), Some(0.5));
        assert_eq!(added(None, Some(1.0)), None);
        assert_eq!(added(Some(1.0), None), None);
    }
}
