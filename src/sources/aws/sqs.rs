//! The SQS source: EventBridge (or SNS) messages from the queues that
//! `setup` creates.
//!
//! Long polls of 20 s for batches of up to 10 messages; at most
//! `--sqs.concurrency` batches in flight per queue. A message is deleted as
//! soon as its effect is durably committed (its visibility is extended while
//! the commit waits). The deployments it names are then handed to the poller
//! for enrichment, which does not hold the message: the poller may be busy
//! with a long backfill, and a crash before enrichment loses nothing, since
//! the backfill after a restart fetches every deployment of the lookback
//! whose API details the ledger lacks.
//! A message that cannot be decoded is counted `rejected` (on its first
//! receive) and left in the queue, so that the queue's redrive policy moves
//! it to the dead-letter queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::sources::aws::{error_text, Health, QueueConfig};
use crate::decode::{self, Decoded};
use crate::domain::Observation;
use crate::ingest::IngestHandle;
use crate::metrics::Source;
use crate::sources::aws::poller::Enricher;

/// Long-poll wait, the longest SQS allows.
pub const WAIT_SECONDS: i32 = 20;
/// Visibility given to received messages, and renewed while they are processed.
pub const VISIBILITY_SECONDS: i32 = 60;
/// How often visibility is renewed for messages still being processed.
pub const HEARTBEAT: Duration = Duration::from_secs(25);

/// One queue's consumer.
#[derive(Debug, Clone)]
pub struct Consumer {
    pub queue: QueueConfig,
    /// The queue's region (the fallback for messages that carry none).
    pub region: String,
    pub client: aws_sdk_sqs::Client,
    pub ingest: IngestHandle,
    pub enricher: Enricher,
    pub concurrency: usize,
    pub health: Arc<Health>,
    /// Visibility given on receive and on each renewal ([`VISIBILITY_SECONDS`]).
    pub visibility_seconds: i32,
    /// How often it is renewed while a message is processed ([`HEARTBEAT`]).
    pub heartbeat: Duration,
}

impl Consumer {
    /// Receives until `shutdown`, then waits for the batches in flight.
    pub async fn run(self, shutdown: CancellationToken) {
        let consumer = Arc::new(self);
        let permits = Arc::new(Semaphore::new(consumer.concurrency));
        let mut batches = JoinSet::new();
        let mut backoff = Duration::from_secs(1);
        loop {
            while batches.try_join_next().is_some() {}
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let received = tokio::select! {
                _ = shutdown.cancelled() => break,
                received = consumer.receive() => received,
            };
            match received {
                Ok(messages) => {
                    consumer.health.report(&consumer.queue.url, true);
                    backoff = Duration::from_secs(1);
                    if !messages.is_empty() {
                        let consumer = consumer.clone();
                        batches.spawn(async move {
                            consumer.process_batch(messages).await;
                            drop(permit);
                        });
                    }
                }
                Err(error) => {
                    tracing::warn!(queue = %consumer.queue.url, %error, retry_in = ?backoff, "ReceiveMessage failed");
                    consumer.health.report(&consumer.queue.url, false);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
        while batches.join_next().await.is_some() {}
    }

    async fn receive(&self) -> Result<Vec<Message>, String> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue.url)
            .max_number_of_messages(10)
            .wait_time_seconds(WAIT_SECONDS)
            .visibility_timeout(self.visibility_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| error_text(&e))?;
        Ok(output.messages.unwrap_or_default())
    }

    /// Processes one received batch: every message at once, visibility kept
    /// while any is unfinished, then one DeleteMessageBatch.
    pub async fn process_batch(self: &Arc<Self>, messages: Vec<Message>) {
        let in_flight: Arc<Mutex<HashMap<String, String>>> = Arc::new(Mutex::new(HashMap::new()));
        let mut work = JoinSet::new();
        for (index, message) in messages.into_iter().enumerate() {
            let Some(receipt) = message.receipt_handle.clone() else { continue };
            let id = index.to_string();
            in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), receipt.clone());
            let consumer = self.clone();
            let in_flight = in_flight.clone();
            work.spawn(async move {
                let delete = consumer.process_message(&message).await;
                in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                (id, receipt, delete)
            });
        }
        let heartbeat = {
            let consumer = self.clone();
            let in_flight = in_flight.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(consumer.heartbeat).await;
                    let entries: Vec<(String, String)> = in_flight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .map(|(id, receipt)| (id.clone(), receipt.clone()))
                        .collect();
                    if !entries.is_empty() {
                        consumer.extend_visibility(entries).await;
                    }
                }
            })
        };
        let mut deletions = Vec::new();
        while let Some(done) = work.join_next().await {
            if let Ok((id, receipt, true)) = done {
                deletions.push((id, receipt));
            }
        }
        heartbeat.abort();
        if !deletions.is_empty() {
            self.delete(deletions).await;
        }
    }

    async fn extend_visibility(&self, entries: Vec<(String, String)>) {
        let entries: Vec<_> = entries
            .into_iter()
            .filter_map(|(id, receipt)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(id)
                    .receipt_handle(receipt)
                    .visibility_timeout(self.visibility_seconds)
                    .build()
                    .ok()
            })
            .collect();
        let sent = self
            .client
            .change_message_visibility_batch()
            .queue_url(&self.queue.url)
            .set_entries(Some(entries))
            .send()
            .await;
        match sent {
            Ok(output) if !output.failed.is_empty() => {
                tracing::warn!(queue = %self.queue.url, failed = output.failed.len(), "visibility not extended for some messages");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(queue = %self.queue.url, error = %error_text(&error), "ChangeMessageVisibilityBatch failed"),
        }
    }

    async fn delete(&self, deletions: Vec<(String, String)>) {
        let entries: Vec<_> = deletions
            .into_iter()
            .filter_map(|(id, receipt)| DeleteMessageBatchRequestEntry::builder().id(id).receipt_handle(receipt).build().ok())
            .collect();
        let sent = self.client.delete_message_batch().queue_url(&self.queue.url).set_entries(Some(entries)).send().await;
        match sent {
            // A message not deleted comes back; applying it again changes nothing.
            Ok(output) => {
                for failed in &output.failed {
                    tracing::warn!(queue = %self.queue.url, code = %failed.code, message = failed.message.as_deref().unwrap_or(""),
                        "message not deleted; it will be received again");
                }
            }
            Err(error) => tracing::warn!(queue = %self.queue.url, error = %error_text(&error),
                "DeleteMessageBatch failed; the messages will be received again"),
        }
    }

    /// Whether the message is done with (to delete).
    async fn process_message(&self, message: &Message) -> bool {
        let body = message.body.as_deref().unwrap_or_default().as_bytes();
        let message_id = message.message_id.as_deref().unwrap_or_default();
        let receive_count: u32 = message
            .attributes
            .as_ref()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        match decode::decode(body) {
            Ok(Decoded::Observations(mut observations)) => {
                self.fill_location(&mut observations);
                let wanted = enrichment_targets(&observations);
                if let Err(error) = self.ingest.submit_observations(Source::Sqs, observations).await {
                    tracing::warn!(queue = %self.queue.url, message_id, %error, "message not applied; it will be received again");
                    return false;
                }
                for (account, region, deployment_id, terminal) in wanted {
                    self.enricher.request(&account, &region, &deployment_id, terminal);
                }
                true
            }
            Ok(Decoded::Ignored(_)) => match self.ingest.submit(Source::Sqs, body.to_vec()).await {
                Ok(_) => true,
                Err(error) => {
                    tracing::warn!(queue = %self.queue.url, message_id, %error, "message not applied; it will be received again");
                    false
                }
            },
            Err(reason) => {
                // Counted once, not on every redelivery before the redrive.
                if receive_count <= 1 {
                    let _ = self.ingest.submit(Source::Sqs, body.to_vec()).await;
                }
                tracing::warn!(queue = %self.queue.url, message_id, receive_count, %reason,
                    "undecodable message left in the queue for its dead-letter queue");
                false
            }
        }
    }

    /// Messages that lack account or region are from the queue's own account and region.
    fn fill_location(&self, observations: &mut [Observation]) {
        for o in observations {
            o.deployment.account.get_or_insert_with(|| self.queue.account.as_str().into());
            o.deployment.region.get_or_insert_with(|| self.region.as_str().into());
        }
    }
}

/// The distinct deployments of a message, with whether it says they finished.
fn enrichment_targets(observations: &[Observation]) -> Vec<(String, String, String, bool)> {
    let mut wanted: Vec<(String, String, String, bool)> = Vec::new();
    for o in observations {
        let (Some(account), Some(region)) = (&o.deployment.account, &o.deployment.region) else { continue };
        if o.commit_record.is_some() {
            continue;
        }
        let terminal = o.status.is_some_and(crate::domain::Status::is_terminal);
        match wanted.iter_mut().find(|w| w.0 == *account && w.1 == *region && w.2 == o.deployment.deployment_id) {
            Some(existing) => existing.3 |= terminal,
            None => wanted.push((account.to_string(), region.to_string(), o.deployment.deployment_id.to_string(), terminal)),
        }
    }
    wanted
}
