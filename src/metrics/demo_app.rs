//! What `demo` serves next to the deployment metrics: the request, error and
//! latency figures of the simulated application behind each deployment group
//! ([`crate::simulator::Application`]), named `demo_app_*` so that nobody
//! takes them for the exporter's own. They carry the group's `application`
//! and `deployment_group` labels, which is how the impact rules join them to
//! the deployment series.

use crate::ledger::histogram::Histogram;

/// The figures of every simulated service at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoApp {
    /// Sorted by (application, deployment group).
    pub services: Vec<ServiceFigures>,
}

/// One service: cumulative counters since `demo` started, and the build it serves.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceFigures {
    pub application: &'static str,
    pub deployment_group: &'static str,
    /// Exact, not rounded to whole requests: rates over short windows keep no rounding noise.
    pub requests: f64,
    pub errors: f64,
    /// Request durations (layout [`crate::ledger::histogram::Buckets::DemoLatency`]).
    pub latency: Histogram,
    /// The build serving now, and what the simulator made of it: `none`,
    /// `errors` or `latency` (the truth the impact alerts are checked against).
    pub build: u32,
    pub regression: &'static str,
}
