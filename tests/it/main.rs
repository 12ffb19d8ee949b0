//! Integration tests: the exporter started in-process on 127.0.0.1:0 and
//! driven over real HTTP, as a user's Prometheus and CodeDeploy would.

mod helpers;
#[path = "../common/promtool.rs"]
mod promtool;
mod lead_time;
mod metrics_endpoint;
mod restart;
mod secured;
mod webhook;
