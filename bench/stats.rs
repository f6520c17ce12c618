//! Medians, percentiles and ratios.

use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    pub fn push_duration(&mut self, duration: Duration) {
        self.0.push(duration.as_secs_f64() * 1000.0);
    }

    /// The value below which `fraction` of the samples fall (nearest rank).
    pub fn percentile(&self, fraction: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        let mut sorted = self.0.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        Some(sorted[rank - 1])
    }

    pub fn median(&self) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        let mut sorted = self.0.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let middle = sorted.len() / 2;
        Some(if sorted.len().is_multiple_of(2) { (sorted[middle - 1] + sorted[middle]) / 2.0 } else { sorted[middle] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        let samples = Samples(vec![5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(samples.median(), Some(3.0));
        assert_eq!(samples.percentile(0.95), Some(5.0));
        assert_eq!(Samples(vec![1.0, 2.0]).median(), Some(1.5));
        assert_eq!(Samples::default().median(), None);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let hundred = Samples((1..=100).rev().map(f64::from).collect());
        assert_eq!(hundred.percentile(0.5), Some(50.0));
        assert_eq!(hundred.percentile(0.95), Some(95.0));
        assert_eq!(hundred.percentile(1.0), Some(100.0));
        assert_eq!(hundred.percentile(0.0), Some(1.0));
        // With few samples the p95 is the largest: no value is made up.
        let few = Samples(vec![40.0, 10.0, 30.0, 20.0]);
        assert_eq!(few.percentile(0.95), Some(40.0));
        assert_eq!(few.percentile(0.5), Some(20.0));
        assert_eq!(Samples::default().percentile(0.95), None);
    }
}
