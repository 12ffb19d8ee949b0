//! Requests refused because they failed authentication (an SNS delivery
//! whose signature checks fail), counted in memory only.
//!
//! Anyone can send such a request, so it must cost nothing durable: no trip
//! through the writer, no store commit, nothing that survives a restart. The
//! counter sits beside the exporter's state rather than in it, and its own
//! `std::sync::Mutex` is held only to add one or copy a few rows, so a flood
//! of forged deliveries never waits on, or delays, the writer's lock.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::Source;

/// `codedeploy_exporter_unauthenticated_requests_total`, by source and reason.
#[derive(Debug, Default)]
pub struct Unauthenticated(Mutex<BTreeMap<(Source, &'static str), u64>>);

impl Unauthenticated {
    /// Declares the reasons a source can count, so their series exist at 0.
    pub fn register(&self, source: Source, reasons: &[&'static str]) {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for reason in reasons {
            counts.entry((source, reason)).or_insert(0);
        }
    }

    /// One refused request. `reason` is a bounded label (a `&'static str`).
    pub fn count(&self, source: Source, reason: &'static str) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()).entry((source, reason)).or_insert(0) += 1;
    }

    /// The counts, for a scrape.
    pub fn snapshot(&self) -> BTreeMap<(Source, &'static str), u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
