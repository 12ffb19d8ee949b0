//! Where messages come from. Every source hands raw message bytes to
//! [`crate::ingest`] and learns the outcome; none of them decodes or counts.

pub mod aws;
pub mod commits;
pub mod demo;
pub mod replay;
pub mod sns;
pub mod webhook;
