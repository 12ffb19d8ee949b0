//! Cumulative histograms kept by the ledger, with exact integer sums.
//!
//! The sum is kept in integer milliseconds rather than `f64` seconds: float
//! addition is not associative, and the same set of deployments settled in a
//! different order must render byte-identical output.

use serde::{Deserialize, Serialize};

use crate::domain::Millis;

/// The bucket layouts in use. Stored by name, so a store written with one
/// layout is never read with another without a format change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Buckets {
    DeploymentDuration,
    Recovery,
    LifecycleEvent,
    Lag,
    /// The simulated application's request durations (`demo` only, never stored).
    DemoLatency,
}

impl Buckets {
    pub const ALL: [Buckets; 5] = [
        Buckets::DeploymentDuration,
        Buckets::Recovery,
        Buckets::LifecycleEvent,
        Buckets::Lag,
        Buckets::DemoLatency,
    ];

    pub fn bounds(self) -> &'static [f64] {
        match self {
            Buckets::DeploymentDuration => DEPLOYMENT_DURATION_BUCKETS,
            Buckets::Recovery => RECOVERY_BUCKETS,
            Buckets::LifecycleEvent => LIFECYCLE_EVENT_BUCKETS,
            Buckets::Lag => LAG_BUCKETS,
            Buckets::DemoLatency => DEMO_LATENCY_BUCKETS,
        }
    }
}

// The per-group layouts are sized for the series budget of 150 per group
// (docs/performance.md): six buckets each, and none for lifecycle hooks.

/// Deployment durations run from seconds (a Lambda all-at-once) to hours
/// (EC2 blue/green with a termination wait; CodeDeploy allows up to 109 h):
/// six buckets, 3 statuses × (6 + `+Inf`, `_sum`, `_count`) = 27 series per group.
pub const DEPLOYMENT_DURATION_BUCKETS: &[f64] = &[60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];

/// Recovery, rollback and lead times run from minutes to weeks: 5 min, 30 min,
/// 1 h, 4 h, 1 day, 1 week, near the DORA tiers' edges (an hour, a day, a week).
pub const RECOVERY_BUCKETS: &[f64] = &[300.0, 1800.0, 3600.0, 14400.0, 86400.0, 604800.0];

/// Lifecycle hooks have no buckets, only `+Inf`, `_sum` and `_count`: the
/// family multiplies by the hooks of a group (13 for EC2 in place behind a
/// load balancer), and what it is read for is the mean hook duration,
/// `rate(_sum) / rate(_count)`.
pub const LIFECYCLE_EVENT_BUCKETS: &[f64] = &[];

/// Ingest lag from event time to applied: sub-second for a healthy webhook,
/// minutes for a backed-up queue.
pub const LAG_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];

/// The demo application's request durations: the client libraries' default
/// layout up to 2.5 s, fine enough around its p95 (tens to hundreds of
/// milliseconds) that `histogram_quantile` sees a +15 % latency regression.
pub const DEMO_LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// The deployment that last landed in a bucket, shown as an OpenMetrics exemplar
/// so that a slow bucket links to a deployment id without making it a label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exemplar {
    pub deployment_id: String,
    pub value_ms: Millis,
    /// When the deployment completed (the exemplar timestamp).
    pub at: Millis,
}

/// A Prometheus histogram: per-bucket counts (not cumulative), the sum and the
/// count, and the latest deployment of each bucket for OpenMetrics exemplars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub buckets: Buckets,
    /// One entry per bound plus a final `+Inf` bucket.
    pub bucket_counts: Vec<u64>,
    /// One slot per bucket once the first exemplar is observed; empty for the
    /// histograms that never take one (all but deployment durations), which
    /// keeps them small at rest and in every snapshot.
    pub exemplars: Vec<Option<Exemplar>>,
    pub count: u64,
    pub sum_ms: i64,
}

impl Histogram {
    /// Whether its buckets fit its layout (what a store may have been tampered with).
    pub fn check(&self) -> Result<(), String> {
        let buckets = self.buckets.bounds().len() + 1;
        if self.bucket_counts.len() != buckets || !(self.exemplars.is_empty() || self.exemplars.len() == buckets) {
            return Err(format!(
                "a {:?} histogram has {} bucket counts and {} exemplars, its layout {buckets} buckets",
                self.buckets,
                self.bucket_counts.len(),
                self.exemplars.len()
            ));
        }
        Ok(())
    }

    pub fn new(buckets: Buckets) -> Histogram {
        let slots = buckets.bounds().len() + 1;
        Histogram {
            buckets,
            bucket_counts: vec![0; slots],
            exemplars: Vec::new(),
            count: 0,
            sum_ms: 0,
        }
    }

    /// Index of the bucket a value falls in: the first bound ≥ value (`le` is inclusive).
    pub fn bucket_of(&self, value_ms: Millis) -> usize {
        let seconds = value_ms as f64 / 1000.0;
        self.bounds().partition_point(|bound| *bound < seconds)
    }

    pub fn bounds(&self) -> &'static [f64] {
        self.buckets.bounds()
    }

    pub fn observe(&mut self, value_ms: Millis) {
        let bucket = self.bucket_of(value_ms);
        self.bucket_counts[bucket] += 1;
        self.count += 1;
        self.sum_ms += value_ms;
    }

    /// Observes and keeps the deployment as the bucket's exemplar when it is the
    /// latest one there (latest completion, then highest id), so the exemplar too
    /// is independent of the order deployments settle in.
    pub fn observe_with_exemplar(&mut self, value_ms: Millis, exemplar: Exemplar) {
        self.observe(value_ms);
        let bucket = self.bucket_of(value_ms);
        if self.exemplars.is_empty() {
            self.exemplars = vec![None; self.bucket_counts.len()];
        }
        let slot = &mut self.exemplars[bucket];
        let newer = match slot {
            Some(current) => {
                (exemplar.at, &exemplar.deployment_id) > (current.at, &current.deployment_id)
            }
            None => true,
        };
        if newer {
            *slot = Some(exemplar);
        }
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_ms as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_overflow_goes_to_inf() {
        let mut h = Histogram::new(Buckets::DeploymentDuration);
        h.observe(60_000);
        h.observe(60_001);
        h.observe(9_000_000);
        assert_eq!(h.bucket_counts, vec![1, 1, 0, 0, 0, 0, 1]);
        assert_eq!(h.count, 3);
        assert_eq!(h.sum_ms, 9_120_001);
        assert_eq!(h.sum_seconds(), 9120.001);
    }

    #[test]
    fn lifecycle_histograms_have_only_the_inf_bucket() {
        let mut h = Histogram::new(Buckets::LifecycleEvent);
        h.observe(1);
        h.observe(7_200_000);
        assert_eq!((h.bucket_counts.clone(), h.count, h.sum_ms), (vec![2], 2, 7_200_001));
    }

    #[test]
    fn exemplar_choice_ignores_observation_order() {
        let a = Exemplar { deployment_id: "d-A".into(), value_ms: 2000, at: 10 };
        let b = Exemplar { deployment_id: "d-B".into(), value_ms: 3000, at: 20 };
        let mut forward = Histogram::new(Buckets::DeploymentDuration);
        forward.observe_with_exemplar(2000, a.clone());
        forward.observe_with_exemplar(3000, b.clone());
        let mut backward = Histogram::new(Buckets::DeploymentDuration);
        backward.observe_with_exemplar(3000, b.clone());
        backward.observe_with_exemplar(2000, a);
        assert_eq!(forward, backward);
        assert_eq!(forward.exemplars[0], Some(b));
    }
}
