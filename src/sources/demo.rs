//! The `demo` source: the simulated fleet of [`crate::simulator`] fed through
//! the same ingest path as real messages, on the wall clock.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::Millis;
use crate::ingest::{now_ms, Exporter, IngestHandle};
use crate::metrics::Source;
use crate::simulator::Fleet;

/// How often the simulation advances; fine enough that lag stays sub-second.
const TICK: Duration = Duration::from_millis(250);

/// Loads `history_days` of finished history up to `now`, ingested at
/// `preloaded_at` and counted under the `replay` source, since it is a backlog
/// and not live traffic; and the fleet's groups as AWS would describe them
/// (compute platform, deployment configuration, tags).
pub fn preload(exporter: &mut Exporter, fleet: &mut Fleet, history_days: u32, now: Millis, preloaded_at: Millis) -> usize {
    let messages = fleet.history(now, history_days);
    for message in &messages {
        // The simulator only produces valid messages; a rejection would be a
        // simulator bug and is counted like any other.
        let _ = exporter.ingest(Source::Replay, message.as_bytes(), preloaded_at);
    }
    for (key, info) in Fleet::group_info(&exporter.info_tag_keys(), now) {
        exporter.apply_group_info(key, info);
    }
    messages.len()
}

/// Advances the fleet on every tick until `shutdown`.
pub async fn run(ingest: IngestHandle, mut fleet: Fleet, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {
                for message in fleet.advance(now_ms()) {
                    if let Err(error) = ingest.submit(Source::Demo, message.into_bytes()).await {
                        tracing::warn!(%error, "simulated message not applied");
                    }
                }
            }
        }
    }
}
