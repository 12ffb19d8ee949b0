//! The application behind each group of the simulated fleet: its traffic, errors and latency,
//! which `demo` serves as `demo_app_*` so that the post-deployment impact rules have something
//! to compare (see docs/alerts.md, *Post-deployment impact*).
//!
//! Every build a group ships has a health drawn from the seed, the group and the build alone:
//! most builds behave like the group always does, give or take a little, and a few raise the
//! error ratio or the latency. A group serves the build of its latest succeeded deployment from
//! that deployment's completion on, so a rollback brings the good build's health back and a
//! failed deployment changes nothing.
//!
//! Counters are computed, not counted: the figures at any instant are the integral of the
//! rates of the builds served until then, so a scrape is exact whatever its pace, and the same
//! seed and timeline give the same figures.

use std::sync::{Arc, Mutex, PoisonError};

use fastrand::Rng;

use super::{FLEET, SECOND};
use crate::domain::Millis;
use crate::ledger::histogram::{Buckets, Histogram, DEMO_LATENCY_BUCKETS};
use crate::metrics::demo_app::{DemoApp, ServiceFigures};

/// Share of change builds that raise the error ratio, and of those that raise the latency.
const ERROR_REGRESSION_RATE: f64 = 0.25;
const LATENCY_REGRESSION_RATE: f64 = 0.25;
/// How much a regression multiplies the error ratio or the latency (low, high).
const ERROR_REGRESSION: (f64, f64) = (4.0, 8.0);
const LATENCY_REGRESSION: (f64, f64) = (1.5, 2.0);
/// How far a healthy build strays from its group's usual error ratio and latency: well
/// inside the alerts' thresholds (2× and 1.15×).
const ERROR_JITTER: f64 = 0.15;
const LATENCY_JITTER: f64 = 0.03;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Regression {
    None,
    Errors,
    Latency,
}

impl Regression {
    fn label(self) -> &'static str {
        match self {
            Regression::None => "none",
            Regression::Errors => "errors",
            Regression::Latency => "latency",
        }
    }
}

/// How one build behaves under load.
#[derive(Clone, Copy, Debug)]
struct Health {
    build: u32,
    regression: Regression,
    requests_per_second: f64,
    error_ratio: f64,
    /// Request durations are exponentially distributed with this mean (p95 ≈ 3 × mean).
    mean_latency_seconds: f64,
}

impl Health {
    /// The health of group `g`'s build `build`, the same for every run with this seed.
    fn of(seed: u64, g: usize, build: u32) -> Health {
        let mut group = Rng::with_seed(mix(seed, g as u64, u64::MAX));
        let requests_per_second = group.f64() * 300.0 + 100.0;
        let usual_error_ratio = group.f64() * 0.008 + 0.002;
        let usual_latency = group.f64() * 0.06 + 0.02;
        let mut draw = Rng::with_seed(mix(seed, g as u64, u64::from(build)));
        let roll = draw.f64();
        let regression = if roll < ERROR_REGRESSION_RATE {
            Regression::Errors
        } else if roll < ERROR_REGRESSION_RATE + LATENCY_REGRESSION_RATE {
            Regression::Latency
        } else {
            Regression::None
        };
        let between = |rng: &mut Rng, (low, high): (f64, f64)| low + rng.f64() * (high - low);
        let error_factor = match regression {
            Regression::Errors => between(&mut draw, ERROR_REGRESSION),
            _ => between(&mut draw, (1.0 - ERROR_JITTER, 1.0 + ERROR_JITTER)),
        };
        let latency_factor = match regression {
            Regression::Latency => between(&mut draw, LATENCY_REGRESSION),
            _ => between(&mut draw, (1.0 - LATENCY_JITTER, 1.0 + LATENCY_JITTER)),
        };
        Health {
            build,
            regression,
            requests_per_second,
            error_ratio: usual_error_ratio * error_factor,
            mean_latency_seconds: usual_latency * latency_factor,
        }
    }

    /// What `seconds` of serving adds to the totals.
    fn serve(&self, seconds: f64, into: &mut Totals) {
        let requests = self.requests_per_second * seconds;
        into.requests += requests;
        into.errors += requests * self.error_ratio;
        into.latency_sum += requests * self.mean_latency_seconds;
        for (at_most, bound) in into.at_most.iter_mut().zip(DEMO_LATENCY_BUCKETS) {
            *at_most += requests * (1.0 - (-bound / self.mean_latency_seconds).exp());
        }
    }
}

/// Three inputs into one well-spread seed (splitmix64's finaliser over their combination).
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Cumulative figures as real numbers; rounded down only when shown.
#[derive(Clone, Default, Debug)]
struct Totals {
    requests: f64,
    errors: f64,
    latency_sum: f64,
    /// Requests at most each bound of [`DEMO_LATENCY_BUCKETS`] took.
    at_most: [f64; DEMO_LATENCY_BUCKETS.len()],
}

/// A build served from `from` on.
#[derive(Debug)]
struct Era {
    from: Millis,
    health: Health,
}

#[derive(Debug)]
struct Service {
    /// What the eras dropped so far served, up to the first era's start.
    served: Totals,
    /// In time order; the first has started, the later ones may lie ahead.
    eras: Vec<Era>,
}

impl Service {
    fn totals(&self, now: Millis) -> (Totals, Option<Health>) {
        let mut totals = self.served.clone();
        let mut current = None;
        for (i, era) in self.eras.iter().enumerate().take_while(|(_, era)| era.from <= now) {
            let until = self.eras.get(i + 1).map_or(now, |next| next.from.min(now));
            era.health.serve((until - era.from) as f64 / SECOND as f64, &mut totals);
            current = Some(era.health);
        }
        (totals, current)
    }
}

/// The fleet's application, shared between the simulator (which tells it what each group
/// serves) and the scrapes (which read its figures).
#[derive(Clone, Debug)]
pub struct Application {
    seed: u64,
    services: Arc<Mutex<Vec<Service>>>,
}

impl Application {
    pub(super) fn new(seed: u64) -> Application {
        let services = FLEET.iter().map(|_| Service { served: Totals::default(), eras: Vec::new() }).collect();
        Application { seed, services: Arc::new(Mutex::new(services)) }
    }

    /// Group `g` serves `build` from `from` on (the completion of the deployment that
    /// shipped it, possibly still ahead); `now` lets eras that are over be folded away.
    pub(super) fn serve(&self, g: usize, build: u32, from: Millis, now: Millis) {
        let health = Health::of(self.seed, g, build);
        let mut services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        let service = &mut services[g];
        let at = service.eras.partition_point(|era| era.from <= from);
        service.eras.insert(at, Era { from, health });
        while service.eras.len() > 1 && service.eras[1].from <= now {
            let over = service.eras.remove(0);
            let seconds = (service.eras[0].from - over.from) as f64 / SECOND as f64;
            over.health.serve(seconds, &mut service.served);
        }
    }

    /// Every service's figures at `now`; a group serving nothing yet is left out.
    pub fn figures(&self, now: Millis) -> DemoApp {
        let services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        let mut figures: Vec<ServiceFigures> = FLEET
            .iter()
            .zip(services.iter())
            .filter_map(|(spec, service)| {
                let (totals, health) = service.totals(now);
                let health = health?;
                let mut latency = Histogram::new(Buckets::DemoLatency);
                // Rounded down cumulatively, so the buckets never go down and sum to the count.
                let requests = totals.requests as u64;
                let mut below = 0;
                for (slot, at_most) in latency.bucket_counts.iter_mut().zip(&totals.at_most) {
                    let cumulative = (*at_most as u64).min(requests);
                    *slot = cumulative - below;
                    below = cumulative;
                }
                if let Some(last) = latency.bucket_counts.last_mut() {
                    *last = requests - below;
                }
                latency.count = requests;
                latency.sum_ms = (totals.latency_sum * 1000.0) as i64;
                Some(ServiceFigures {
                    application: spec.application,
                    deployment_group: spec.group,
                    requests: totals.requests,
                    errors: totals.errors,
                    latency,
                    build: health.build,
                    regression: health.regression.label(),
                })
            })
            .collect();
        figures.sort_unstable_by_key(|s| (s.application, s.deployment_group));
        DemoApp { services: figures }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_709_294_400_000;

    #[test]
    fn counters_integrate_the_rates_of_the_builds_served() {
        let app = Application::new(7);
        app.serve(0, 100, T0, T0);
        let health = Health::of(7, 0, 100);
        let minute = app.figures(T0 + 60 * SECOND);
        let web = &minute.services[0];
        assert_eq!(minute.services.len(), 1, "only the groups that serve something");
        assert!((web.requests - health.requests_per_second * 60.0).abs() < 1e-6);
        assert!((web.errors - web.requests * health.error_ratio).abs() < 1e-6);
        assert_eq!(web.latency.bucket_counts.iter().sum::<u64>(), web.latency.count);
        assert_eq!(web.latency.count, web.requests as u64);
        // Folding a finished era away changes nothing.
        app.serve(0, 101, T0 + 30 * SECOND, T0 + 60 * SECOND);
        let folded = app.figures(T0 + 60 * SECOND);
        let later = app.figures(T0 + 90 * SECOND);
        assert!(later.services[0].requests > folded.services[0].requests);
        assert_eq!(later.services[0].build, 101);
        // An era that lies ahead is not served yet.
        app.serve(0, 102, T0 + 120 * SECOND, T0 + 90 * SECOND);
        assert_eq!(app.figures(T0 + 100 * SECOND).services[0].build, 101);
        assert_eq!(app.figures(T0 + 120 * SECOND).services[0].build, 102);
    }

    #[test]
    fn the_same_seed_regresses_the_same_builds_and_some_builds_regress() {
        let kinds: Vec<Regression> = (0..200).map(|build| Health::of(3, 2, build).regression).collect();
        let again: Vec<Regression> = (0..200).map(|build| Health::of(3, 2, build).regression).collect();
        assert_eq!(kinds, again);
        for kind in [Regression::None, Regression::Errors, Regression::Latency] {
            assert!(kinds.contains(&kind), "{kind:?} never drawn");
        }
    }

    #[test]
    fn regressed_builds_cross_the_alert_thresholds_and_healthy_ones_stay_well_inside() {
        for g in 0..FLEET.len() {
            let usual = Health::of(5, g, 0);
            let pairs = (1..100).map(|build| Health::of(5, g, build)).flat_map(|a| (1..100).map(move |b| (a, Health::of(5, g, b))));
            for (before, after) in pairs.filter(|(before, _)| before.regression == Regression::None) {
                let errors = after.error_ratio / before.error_ratio;
                let latency = after.mean_latency_seconds / before.mean_latency_seconds;
                match after.regression {
                    Regression::Errors => assert!(errors > 2.5, "{errors}"),
                    Regression::Latency => assert!(latency > 1.3, "{latency}"),
                    Regression::None => assert!(errors < 1.4 && latency < 1.07, "{errors} {latency}"),
                }
                assert_eq!(usual.requests_per_second, after.requests_per_second);
            }
        }
    }

    #[test]
    fn the_error_counter_follows_the_error_ratio() {
        let app = Application::new(5);
        app.serve(4, 300, T0, T0);
        let figures = &app.figures(T0 + 600 * SECOND).services[0];
        let health = Health::of(5, 4, 300);
        let ratio = figures.errors / figures.requests;
        assert!((ratio - health.error_ratio).abs() < 1e-9, "{ratio} {health:?}");
        assert_eq!((figures.application, figures.deployment_group), (FLEET[4].application, FLEET[4].group));
    }
}
