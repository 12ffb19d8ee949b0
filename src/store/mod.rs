//! Durable state: the ledger's records and counters and the exporter's own
//! counters, so that a restart continues every counter where it stood, keeps
//! deduplication, and needs no AWS call to serve correct metrics.
//!
//! The store is behind the small [`Store`] trait; [`RedbStore`] is the embedded
//! default. redb because it is pure Rust (no C toolchain), ACID with
//! copy-on-write B-trees, and crash-safe: a commit that returned is on disk
//! (fsync), and a crash mid-commit leaves the previous commit intact.
//!
//! # On-disk format (version 5)
//!
//! Version 2 changed the histograms of the group counters: fewer buckets
//! (the series budget), lifecycle-hook histograms keyed by hook alone, and no
//! per-bucket sums. Version 3 dropped the copies of the observations that a
//! record without account or region kept. Version 4 keeps each group's
//! recovery runs that may still change (instead of the last success and
//! the open run) and a flag for a time to rollback still to observe.
//! Version 5 adds the `group_info` table and the `tag_value` bound.
//!
//! One file, `<storage.path>/ledger.redb`, with these tables:
//! - `meta`: `format_version` (u32, little endian), `ledger` (the
//!   [`LedgerMeta`]) and `exporter` (the [`ExporterMetrics`]);
//! - `records`: one entry per deployment not counted yet, keyed by its [`DeploymentKey`];
//! - `settled`: one compact entry per counted deployment, keyed by [`SettledKey`];
//! - `groups`: one entry per deployment group's counters, keyed by [`GroupKey`];
//! - `group_info`: one entry per deployment group read from AWS (compute
//!   platform, deployment configuration, the tags asked for, when it was read),
//!   keyed by [`GroupKey`] (see [`crate::group_info`]);
//! - `messages`: the identities of the messages applied lately (see
//!   [`crate::identity`]), keyed by the hour each was first seen (u32, big
//!   endian, so that forgetting the old ones is one range) followed by the
//!   16-byte identity, with no value. A version-3 store written before this
//!   table existed simply has it empty: no version change, nothing to migrate.
//!
//! Keys and values are `postcard` encodings of the Rust types. postcard is not
//! self-describing, so any change to those types is a new format version: a
//! store of another version is refused with a clear message, never misread.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::group_info::GroupInfo;
use crate::identity::{Hour, LogChanges, MessageId};
use crate::ledger::{Changes, DeploymentKey, GroupKey, GroupStats, LedgerMeta, Record, Settled, SettledKey};
use crate::metrics::ExporterMetrics;

/// The on-disk format this build reads and writes.
///
/// 2: settled entries no longer carry their location (24 bytes; the location
/// is the group's); histograms keep fewer buckets and no per-bucket sums.
/// 3: a record without account or region no longer keeps copies of its
/// observations: its facts are merged into its identified twin instead.
/// 4: groups keep the tail of their recovery timeline; settled entries have
/// 16 flag bits (a rollback's time to rollback may wait for its target).
/// 5: the `group_info` table; the ledger's bounds count `tag_value`.
/// 6: deployment kinds have a deployment configuration, rollbacks a cause,
/// groups count alarm stops; records keep the config and the alarms a stop
/// names; settled entries keep why they ended; rollbacks waiting for the
/// deployment they undid are kept in the meta.
pub const FORMAT_VERSION: u32 = 6;
/// redb's page cache. The ledger lives in memory and the store is only
/// written to (and read once, at start-up), so the cache needs to hold little
/// more than the pages a commit rewrites; redb's default (1 GiB) would let it
/// grow to the whole file, which at 10k groups is larger than the ledger.
const CACHE_BYTES: usize = 4 * 1024 * 1024;
/// The store's file name inside `--storage.path`.
pub const FILE_NAME: &str = "ledger.redb";

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records");
const SETTLED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("settled");
const GROUPS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("groups");
const GROUP_INFO: TableDefinition<&[u8], &[u8]> = TableDefinition::new("group_info");
const MESSAGES: TableDefinition<&[u8], ()> = TableDefinition::new("messages");
/// A `messages` key: the hour, then the identity.
const MESSAGE_KEY_BYTES: usize = 4 + 16;

const VERSION_KEY: &str = "format_version";
const LEDGER_KEY: &str = "ledger";
const EXPORTER_KEY: &str = "exporter";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // The cause is part of each message and deliberately not a `source`:
    // `{:#}` would print it a second time.
    #[error("cannot create the storage directory {path}: {error}")]
    Directory { path: PathBuf, error: std::io::Error },
    #[error("the store {path} is in use by another process (one exporter per --storage.path)")]
    InUse { path: PathBuf },
    #[error(
        "the store {path} has format version {found}; this exporter reads version {FORMAT_VERSION}. \
         Run the exporter version that wrote it, or move the directory aside and backfill (docs/operations.md)"
    )]
    Format { path: PathBuf, found: u32 },
    #[error("the store {path} holds an entry that cannot be decoded ({what}): {detail}")]
    Corrupt { path: PathBuf, what: &'static str, detail: String },
    #[error("the store {path} is corrupt: table `{table}`: {detail}")]
    Invalid { path: PathBuf, table: &'static str, detail: String },
    #[error("cannot encode {what} for the store: {detail}")]
    Encode { what: &'static str, detail: String },
    #[error("store operation failed on {path}: {error}")]
    Database { path: PathBuf, error: Box<redb::Error> },
}

impl StoreError {
    /// A bounded label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::Directory { .. } => "directory",
            StoreError::InUse { .. } => "in_use",
            StoreError::Format { .. } => "format",
            StoreError::Corrupt { .. } | StoreError::Invalid { .. } => "corrupt",
            StoreError::Encode { .. } => "encode",
            StoreError::Database { .. } => "database",
        }
    }
}

/// Everything a store holds, as loaded at start.
#[derive(Debug, Default)]
pub struct Stored {
    pub meta: LedgerMeta,
    pub exporter: ExporterMetrics,
    pub records: Vec<(DeploymentKey, Record)>,
    pub settled: Vec<(SettledKey, Settled)>,
    pub groups: Vec<(GroupKey, GroupStats)>,
    /// The identities of recent messages, with the hour each was first seen.
    pub messages: Vec<(Hour, MessageId)>,
    /// The deployment groups read from AWS.
    pub group_info: Vec<(GroupKey, GroupInfo)>,
}

/// One atomic commit: the ledger's changes and, when they changed, the
/// exporter's own counters.
#[derive(Debug)]
pub struct Commit<'a> {
    pub ledger: Changes<'a>,
    pub messages: LogChanges<'a>,
    /// Groups read from AWS since the last commit.
    pub group_info: Vec<(&'a GroupKey, &'a GroupInfo)>,
    pub exporter: Option<&'a ExporterMetrics>,
}

impl Commit<'_> {
    pub fn is_empty(&self) -> bool {
        self.ledger.records.is_empty()
            && self.ledger.settled.is_empty()
            && self.ledger.groups.is_empty()
            && self.messages.is_empty()
            && self.group_info.is_empty()
            && self.exporter.is_none()
    }
}

fn message_key(hour: Hour, id: &MessageId) -> [u8; MESSAGE_KEY_BYTES] {
    let mut key = [0; MESSAGE_KEY_BYTES];
    key[..4].copy_from_slice(&hour.to_be_bytes());
    key[4..].copy_from_slice(&id.0);
    key
}

/// Where state survives restarts.
pub trait Store: Send {
    /// Everything committed so far (empty for a new store).
    fn load(&self) -> Result<Stored, StoreError>;
    /// Writes `commit` atomically and durably: when this returns `Ok`, a crash
    /// loses none of it; when it fails, none of it is visible.
    fn commit(&mut self, commit: &Commit<'_>) -> Result<(), StoreError>;
}

/// The embedded default store.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").field("path", &self.path).finish()
    }
}

impl RedbStore {
    /// Opens (or creates) the store in `directory`, refusing another format version.
    pub fn open(directory: &Path) -> Result<RedbStore, StoreError> {
        std::fs::create_dir_all(directory)
            .map_err(|error| StoreError::Directory { path: directory.to_owned(), error })?;
        let path = directory.join(FILE_NAME);
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse { path: path.clone() },
            other => StoreError::Database { path: path.clone(), error: Box::new(other.into()) },
        })?;
        let store = RedbStore { db, path };
        store.check_version()?;
        Ok(store)
    }

    fn fail(&self) -> impl Fn(redb::Error) -> StoreError + '_ {
        |error| StoreError::Database { path: self.path.clone(), error: Box::new(error) }
    }

    /// Stamps a new store with [`FORMAT_VERSION`]; checks an existing one.
    fn check_version(&self) -> Result<(), StoreError> {
        let fail = self.fail();
        let txn = self.db.begin_write().map_err(|e| fail(e.into()))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| fail(e.into()))?;
            let found = meta.get(VERSION_KEY).map_err(|e| fail(e.into()))?.map(|v| {
                let bytes = v.value();
                bytes.try_into().map(u32::from_le_bytes).unwrap_or(u32::MAX)
            });
            match found {
                Some(FORMAT_VERSION) => {}
                Some(found) => return Err(StoreError::Format { path: self.path.clone(), found }),
                None => {
                    meta.insert(VERSION_KEY, FORMAT_VERSION.to_le_bytes().as_slice())
                        .map_err(|e| fail(e.into()))?;
                }
            }
            txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
            txn.open_table(SETTLED).map_err(|e| fail(e.into()))?;
            txn.open_table(GROUPS).map_err(|e| fail(e.into()))?;
            txn.open_table(GROUP_INFO).map_err(|e| fail(e.into()))?;
            txn.open_table(MESSAGES).map_err(|e| fail(e.into()))?;
        }
        txn.commit().map_err(|e| fail(e.into()))
    }

    fn load_messages(&self, txn: &redb::ReadTransaction) -> Result<Vec<(Hour, MessageId)>, StoreError> {
        let fail = self.fail();
        let table = txn.open_table(MESSAGES).map_err(|e| fail(e.into()))?;
        let mut entries = Vec::new();
        for entry in table.iter().map_err(|e| fail(e.into()))? {
            let (key, _) = entry.map_err(|e| fail(e.into()))?;
            let key: [u8; MESSAGE_KEY_BYTES] = key.value().try_into().map_err(|_| StoreError::Corrupt {
                path: self.path.clone(),
                what: "message identity",
                detail: format!("a key of {} bytes, not {MESSAGE_KEY_BYTES}", key.value().len()),
            })?;
            let (hour, id) = key.split_at(4);
            let hour = Hour::from_be_bytes(hour.try_into().unwrap_or_default());
            entries.push((hour, MessageId(id.try_into().unwrap_or_default())));
        }
        Ok(entries)
    }

    fn decode<T: DeserializeOwned>(&self, what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
        postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            what,
            detail: e.to_string(),
        })
    }

    fn load_table<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
        txn: &redb::ReadTransaction,
        table: TableDefinition<&[u8], &[u8]>,
        what: &'static str,
    ) -> Result<Vec<(K, V)>, StoreError> {
        let fail = self.fail();
        let table = txn.open_table(table).map_err(|e| fail(e.into()))?;
        let mut entries = Vec::new();
        for entry in table.iter().map_err(|e| fail(e.into()))? {
            let (key, value) = entry.map_err(|e| fail(e.into()))?;
            entries.push((self.decode(what, key.value())?, self.decode(what, value.value())?));
        }
        Ok(entries)
    }
}

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Encode { what, detail: e.to_string() })
}

impl Stored {
    /// Refuses what the ledger never writes, before it is restored from:
    /// group ids that are not the dense numbering the ledger hands out (an
    /// id is an index, so a crafted one would size a table), counted
    /// deployments of groups that do not exist, histograms whose buckets do
    /// not fit their layout. Returns the table and what is wrong.
    fn check(&self) -> Result<(), (&'static str, String)> {
        let groups = self.groups.len();
        let mut seen = vec![false; groups];
        for (key, stats) in &self.groups {
            let id = stats.id as usize;
            match seen.get_mut(id) {
                Some(taken) if !*taken => *taken = true,
                Some(_) => return Err(("groups", format!("group id {id} is used twice"))),
                None => return Err(("groups", format!("group id {id} is out of range: the table holds {groups} groups"))),
            }
            stats.check().map_err(|detail| ("groups", format!("group {key:?}: {detail}")))?;
        }
        if let Some((_, entry)) = self.settled.iter().find(|(_, entry)| entry.group as usize >= groups) {
            return Err(("settled", format!("a counted deployment refers to group id {}, of {groups} groups", entry.group)));
        }
        Ok(())
    }
}

impl Store for RedbStore {
    fn load(&self) -> Result<Stored, StoreError> {
        let fail = self.fail();
        let txn = self.db.begin_read().map_err(|e| fail(e.into()))?;
        let meta = txn.open_table(META).map_err(|e| fail(e.into()))?;
        let blob = |key: &str| -> Result<Option<Vec<u8>>, StoreError> {
            Ok(meta.get(key).map_err(|e| fail(e.into()))?.map(|v| v.value().to_vec()))
        };
        let ledger_meta = match blob(LEDGER_KEY)? {
            Some(bytes) => self.decode("ledger meta", &bytes)?,
            None => LedgerMeta::default(),
        };
        let exporter = match blob(EXPORTER_KEY)? {
            Some(bytes) => self.decode("exporter metrics", &bytes)?,
            None => ExporterMetrics::default(),
        };
        let stored = Stored {
            meta: ledger_meta,
            exporter,
            records: self.load_table(&txn, RECORDS, "deployment record")?,
            settled: self.load_table(&txn, SETTLED, "counted deployment")?,
            groups: self.load_table(&txn, GROUPS, "group counters")?,
            messages: self.load_messages(&txn)?,
            group_info: self.load_table(&txn, GROUP_INFO, "group info")?,
        };
        stored.check().map_err(|(table, detail)| StoreError::Invalid { path: self.path.clone(), table, detail })?;
        Ok(stored)
    }

    fn commit(&mut self, commit: &Commit<'_>) -> Result<(), StoreError> {
        let fail = self.fail();
        let txn = self.db.begin_write().map_err(|e| fail(e.into()))?;
        {
            let mut records = txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
            for (key, record) in &commit.ledger.records {
                let key = encode("a deployment key", key)?;
                match record {
                    Some(record) => records.insert(key.as_slice(), encode("a deployment record", record)?.as_slice()).map(drop),
                    None => records.remove(key.as_slice()).map(drop),
                }
                .map_err(|e| fail(e.into()))?;
            }
            let mut settled = txn.open_table(SETTLED).map_err(|e| fail(e.into()))?;
            for (key, entry) in &commit.ledger.settled {
                let key = encode("a counted deployment's key", key)?;
                match entry {
                    Some(entry) => settled.insert(key.as_slice(), encode("a counted deployment", entry)?.as_slice()).map(drop),
                    None => settled.remove(key.as_slice()).map(drop),
                }
                .map_err(|e| fail(e.into()))?;
            }
            let mut groups = txn.open_table(GROUPS).map_err(|e| fail(e.into()))?;
            for (key, stats) in &commit.ledger.groups {
                let (key, stats) = (encode("a group key", key)?, encode("group counters", stats)?);
                groups.insert(key.as_slice(), stats.as_slice()).map_err(|e| fail(e.into()))?;
            }
            let mut group_info = txn.open_table(GROUP_INFO).map_err(|e| fail(e.into()))?;
            for (key, info) in &commit.group_info {
                let (key, info) = (encode("a group key", key)?, encode("group info", info)?);
                group_info.insert(key.as_slice(), info.as_slice()).map_err(|e| fail(e.into()))?;
            }
            let mut messages = txn.open_table(MESSAGES).map_err(|e| fail(e.into()))?;
            if let Some(cutoff) = commit.messages.forget_before {
                let end = message_key(cutoff, &MessageId([0; 16]));
                messages.retain_in::<&[u8], _>(..end.as_slice(), |_, ()| false).map_err(|e| fail(e.into()))?;
            }
            for (hour, id) in commit.messages.added {
                messages.insert(message_key(*hour, id).as_slice(), ()).map_err(|e| fail(e.into()))?;
            }
            let mut meta = txn.open_table(META).map_err(|e| fail(e.into()))?;
            meta.insert(LEDGER_KEY, encode("the ledger's meta", commit.ledger.meta)?.as_slice()).map_err(|e| fail(e.into()))?;
            if let Some(exporter) = commit.exporter {
                meta.insert(EXPORTER_KEY, encode("the exporter's counters", exporter)?.as_slice()).map_err(|e| fail(e.into()))?;
            }
        }
        txn.commit().map_err(|e| fail(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Exporter;
    use crate::metrics::{Format, Source};

    const SAMPLES: [&str; 4] = [
        include_str!("../../tests/fixtures/samples/eventbridge-deployment-success.json"),
        include_str!("../../tests/fixtures/samples/api-batch-get-deployments-output-awscli-example.json"),
        include_str!("../../tests/fixtures/samples/sns-lambda-event-deployment-succeeded-2016.json"),
        include_str!("../../tests/fixtures/samples/sns-trigger-message-deployment-failed-docs-sample.json"),
    ];

    fn fed_exporter() -> Exporter {
        let mut exporter = Exporter::new(120_000);
        exporter.register(Source::Webhook);
        for sample in SAMPLES {
            exporter.ingest(Source::Webhook, sample.as_bytes(), 1_000).expect("samples decode");
        }
        exporter.settle(1_000, true);
        exporter
    }

    fn rendered(exporter: &Exporter) -> String {
        exporter.exposition(1_700_000_000_000).render(Format::Text)
    }

    #[test]
    fn what_is_committed_is_what_is_restored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut exporter = fed_exporter();
        {
            let mut store = RedbStore::open(dir.path()).expect("opens");
            exporter.commit_to(&mut store).expect("commits");
        }
        let store = RedbStore::open(dir.path()).expect("reopens");
        let restored = Exporter::restore(120_000, store.load().expect("loads"));
        assert_eq!(rendered(&restored), rendered(&exporter));
        assert!(restored.pending_commit().is_empty(), "nothing to write right after a restore");
    }

    #[test]
    fn deduplication_survives_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = RedbStore::open(dir.path()).expect("opens");
        fed_exporter().commit_to(&mut store).expect("commits");
        let mut restored = Exporter::restore(120_000, store.load().expect("loads"));
        let before = rendered(&restored);
        for sample in SAMPLES {
            let outcome = restored.ingest(Source::Webhook, sample.as_bytes(), 2_000).expect("decodes");
            assert_eq!(outcome, crate::metrics::Outcome::Duplicate);
        }
        restored.settle(2_000, true);
        let domain = |text: &str| -> Vec<String> {
            // What a re-delivery legitimately moves: the message counters and the source's last success.
            let moves = ["codedeploy_exporter_events_total", "codedeploy_exporter_source_last_success"];
            text.lines().filter(|l| !moves.iter().any(|m| l.starts_with(m))).map(str::to_owned).collect()
        };
        let (after, before) = (domain(&rendered(&restored)), domain(&before));
        let changed: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
        assert!(changed.is_empty(), "re-delivery changed {changed:#?}");
    }

    /// Writes `entries` into `table` of the store in `dir`, behind its back.
    fn tamper(dir: &Path, table: TableDefinition<&[u8], &[u8]>, entries: &[(Vec<u8>, Vec<u8>)]) {
        let db = Database::create(dir.join(FILE_NAME)).expect("raw open");
        let txn = db.begin_write().expect("txn");
        {
            let mut table = txn.open_table(table).expect("table");
            for (key, value) in entries {
                table.insert(key.as_slice(), value.as_slice()).expect("insert");
            }
        }
        txn.commit().expect("commit");
    }

    #[test]
    fn a_crafted_group_id_fails_start_up_naming_the_file_and_table() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(RedbStore::open(dir.path()).expect("creates"));
        let key = GroupKey { application: "app".into(), ..GroupKey::default() };
        let stats = GroupStats::new(u32::MAX);
        tamper(dir.path(), GROUPS, &[(encode("k", &key).expect("k"), encode("v", &stats).expect("v"))]);
        let error = RedbStore::open(dir.path()).expect("opens").load().expect_err("refused");
        let message = error.to_string();
        assert_eq!(error.reason(), "corrupt");
        assert!(message.contains("ledger.redb") && message.contains("table `groups`"), "{message}");
        assert!(message.contains("group id 4294967295 is out of range"), "{message}");
    }

    #[test]
    fn counted_deployments_of_unknown_groups_and_misshapen_histograms_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = RedbStore::open(dir.path()).expect("creates");
        let mut exporter = fed_exporter();
        exporter.commit_to(&mut store).expect("commit");
        let groups = store.load().expect("loads").groups;
        let (key, mut stats) = groups.into_iter().next().expect("a group");
        drop(store);

        stats.time_to_restore.bucket_counts.push(7);
        tamper(dir.path(), GROUPS, &[(encode("k", &key).expect("k"), encode("v", &stats).expect("v"))]);
        let error = RedbStore::open(dir.path()).expect("opens").load().expect_err("refused");
        assert!(error.to_string().contains("table `groups`") && error.to_string().contains("Recovery histogram"), "{error}");

        stats.time_to_restore.bucket_counts.pop();
        tamper(dir.path(), GROUPS, &[(encode("k", &key).expect("k"), encode("v", &stats).expect("v"))]);
        let store = RedbStore::open(dir.path()).expect("opens");
        let (settled_key, mut entry) = store.load().expect("whole again").settled.into_iter().next().expect("a counted one");
        entry.group = 1_000;
        drop(store);
        tamper(dir.path(), SETTLED, &[(encode("k", &settled_key).expect("k"), encode("v", &entry).expect("v"))]);
        let error = RedbStore::open(dir.path()).expect("opens").load().expect_err("refused");
        assert!(error.to_string().contains("table `settled`") && error.to_string().contains("group id 1000"), "{error}");
    }

    #[test]
    fn message_identities_are_kept_until_forgotten() {
        const HOUR: i64 = 3_600_000;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = RedbStore::open(dir.path()).expect("opens");
        let mut exporter = Exporter::new(120_000);
        let (early, late) = (SAMPLES[0].as_bytes(), SAMPLES[2].as_bytes());
        exporter.ingest(Source::Webhook, early, HOUR).expect("decodes");
        exporter.ingest(Source::Webhook, late, 3 * HOUR).expect("decodes");
        exporter.commit_to(&mut store).expect("commits");
        assert_eq!(exporter.forget_messages(2 * HOUR), 1);
        exporter.commit_to(&mut store).expect("commits the forgetting");

        let mut restored = Exporter::restore(120_000, store.load().expect("loads"));
        let outcome = |e: &mut Exporter, body| e.ingest(Source::Webhook, body, 4 * HOUR).expect("decodes");
        assert_eq!(outcome(&mut restored, late), crate::metrics::Outcome::Duplicate);
        assert_eq!(outcome(&mut restored, early), crate::metrics::Outcome::Applied, "forgotten on disk too");
    }

    #[test]
    fn another_format_version_is_refused_not_misread() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(RedbStore::open(dir.path()).expect("creates"));
        {
            let db = Database::create(dir.path().join(FILE_NAME)).expect("raw open");
            let txn = db.begin_write().expect("txn");
            txn.open_table(META)
                .expect("meta")
                .insert(VERSION_KEY, 1u32.to_le_bytes().as_slice())
                .expect("insert");
            txn.commit().expect("commit");
        }
        let error = RedbStore::open(dir.path()).expect_err("a store of version 1 is refused");
        assert_eq!(error.reason(), "format");
        let expected = format!("has format version 1; this exporter reads version {FORMAT_VERSION}");
        assert!(error.to_string().contains(&expected), "{error}");
    }

    #[test]
    fn a_store_is_used_by_one_exporter_at_a_time() {
        let dir = tempfile::tempdir().expect("temp dir");
        let _first = RedbStore::open(dir.path()).expect("opens");
        let error = RedbStore::open(dir.path()).expect_err("second open fails");
        assert_eq!(error.reason(), "in_use", "{error}");
    }
}
