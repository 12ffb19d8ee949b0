//! codedeploy-exporter: AWS CodeDeploy deployment lifecycle events in,
//! deployment SLIs and DORA metrics out.
//!
//! # Data flow
//!
//! ```text
//!  POST /events (webhook) ─┐
//!  replay FILE... ─────────┤  raw message bytes
//!  demo simulator ─────────┘        │
//!                                   ▼
//!                   decode::decode ── auto-detects EventBridge / SNS / trigger / API
//!                                   │  Vec<domain::Observation>   (or Ignored / DecodeError)
//!                                   ▼
//!   ingest::Writer (single writer, batches) ── Ledger::apply: a lattice join per
//!                                   │          field (idempotent, order-independent)
//!                                   ▼
//!                          Ledger::settle ── terminal + (API details complete | settle time)
//!                                   │        → counted once into per-group counters
//!                                   ▼
//!                  store::Store::commit (one fsync'd transaction per batch)
//!                                   │        → only then: webhook 2xx
//!                                   ▼
//!    GET /metrics ─▶ Ledger::snapshot (under the lock) ─▶ metrics::Exposition::scrape
//!                    (windows computed exactly)             (64 KiB chunks, gzip if asked)
//!                    (both on the blocking pool, two scrapes at a time, one locking; the writer has
//!                     its own thread: no fsync and no lock wait on a runtime worker)
//!                    (nothing of the ledger while the latest commit failed)
//! ```
//!
//! Deployment groups take the same path beside the messages: the poller's
//! scopes read each group they see (GetDeploymentGroup, ListTagsForResource),
//! the writer keeps it in the exporter's group table and commits it, and a
//! scrape renders one `codedeploy_deployment_group_info` series per group of
//! the snapshot ([`group_info`]).
//!
//! # Layout
//!
//! - [`domain`]: the vocabulary every format decodes into (no I/O, no formats).
//! - [`decode`]: one module per input format, each producing observations.
//! - [`ledger`]: deployment records, settling, per-group counters, snapshots.
//! - [`group_info`]: what is known of each group besides its deployments (compute
//!   platform, deployment configuration, tags), the info series and which groups are production.
//! - [`metrics`]: the metrics contract rendered from a snapshot; exporter self-metrics.
//! - [`ingest`]: decode → fold → count → commit → acknowledge, the one path every message takes.
//! - [`identity`]: what makes two messages the same message (applied or duplicate).
//! - [`store`]: the durable, versioned on-disk state behind a small trait.
//! - [`sources`]: where messages come from (webhook, files, the demo, and under
//!   [`sources::aws`] the SQS queues and the API poller), and the commit-time
//!   resolver that reads S3 metadata and git for lead time.
//! - [`http`], [`config`], [`app`]: the server, the validated flags, start-up and shutdown.
//! - [`logging`]: the log on stderr, logfmt or JSON lines.
//! - [`heap`]: freed memory handed back after a scrape and after start-up.
//! - [`simulator`]: a deterministic fleet for `demo`.

pub mod app;
pub mod config;
pub mod decode;
pub mod domain;
pub mod group_info;
pub mod heap;
pub mod http;
pub mod identity;
pub mod ingest;
pub mod ledger;
pub mod logging;
pub mod metrics;
pub mod setup;
pub mod simulator;
pub mod sources;
pub mod store;
