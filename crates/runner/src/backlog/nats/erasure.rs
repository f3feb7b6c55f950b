//! Erasure on NATS: the suppression list in the key-value bucket `<stream>_SUPPRESS` (one key
//! per identifier hash; every node reads it, see `serve`'s poller), erasure jobs' audit records
//! in `<stream>_ERASURES`, a pending job's identifiers in the stream `<stream>_ERASING` (one
//! message per job, written once and erased — overwritten in JetStream's files, as a message
//! delete does — when the job completes: a key-value update would only drop the old revision,
//! leaving its bytes), and removing an erased user's waiting events and dead letters.
//!
//! JetStream cannot edit a message: a batch message holding only the user's events is deleted
//! (gone for every consumer; a worker holding it has its acknowledgement ignored); one shared
//! with other users stays, for rewriting it would put those users' events after their later
//! ones. Its events of the user are skipped as workers take them (the suppression check before
//! mapping), and the message goes once every destination acknowledged it. Dead letters hold one
//! event each and are deleted.

use std::time::Duration;

use async_nats::jetstream::{kv, stream};
use futures_util::StreamExt;

use super::batch::unpack;
use super::leases::open_bucket;
use super::{NatsBacklog, io};
use crate::backlog::{
    BacklogError, DeadLetterFilter, ErasedMatcher, ErasureRecord, ErasureState, PendingErasure,
    SuppressionEntry,
};

/// The buckets of erasure.
pub(super) struct Buckets {
    suppress: kv::Store,
    jobs: kv::Store,
    /// One message per pending job, on `<prefix>.erasing.<job id>`.
    identifiers: stream::Stream,
}

/// Keys and entries live until deleted (the suppression list's retention is applied by
/// `prune_suppressions`).
const FOR_EVER: Duration = Duration::from_secs(100 * 365 * 86_400);

impl NatsBacklog {
    /// The buckets, made the first time erasure needs them.
    async fn erasure_buckets(&self) -> Result<&Buckets, BacklogError> {
        self.erasure
            .get_or_try_init(|| async {
                let bucket = |name: &str, description: &'static str| {
                    let name = format!("{}_{name}", self.config.stream);
                    async move {
                        open_bucket(&self.js, &name, description, FOR_EVER, self.config.replicas)
                            .await
                    }
                };
                let identifiers = self
                    .js
                    .get_or_create_stream(stream::Config {
                        name: format!("{}_ERASING", self.config.stream),
                        description: Some("hardal: identifiers of pending erasure jobs".into()),
                        subjects: vec![format!("{}.erasing.*", self.config.subject_prefix)],
                        max_messages_per_subject: 1,
                        allow_direct: true,
                        num_replicas: self.config.replicas,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| io("creating the erasure identifiers' stream")(&e))?;
                Ok(Buckets {
                    suppress: bucket("SUPPRESS", "hardal: hashes of erased users' identifiers")
                        .await?,
                    jobs: bucket("ERASURES", "hardal: erasure jobs' audit records").await?,
                    identifiers,
                })
            })
            .await
    }

    async fn put_job(&self, record: &ErasureRecord) -> Result<(), BacklogError> {
        let buckets = self.erasure_buckets().await?;
        let value = serde_json::to_vec(record).expect("a record serializes");
        buckets
            .jobs
            .put(&record.id, value.into())
            .await
            .map_err(|e| io("writing an erasure job")(&e))?;
        if record.state == ErasureState::Complete
            && let Some((sequence, _)) = self.identifiers_of(&record.id).await?
        {
            // A message delete overwrites the message in JetStream's files.
            buckets
                .identifiers
                .delete_message(sequence)
                .await
                .map_err(|e| io("erasing an erasure job's identifiers")(&e))?;
        }
        Ok(())
    }

    fn erasing_subject(&self, id: &str) -> String {
        format!("{}.erasing.{id}", self.config.subject_prefix)
    }

    /// A pending job's identifiers and the sequence of their message.
    async fn identifiers_of(&self, id: &str) -> Result<Option<(u64, String)>, BacklogError> {
        let buckets = self.erasure_buckets().await?;
        match buckets
            .identifiers
            .get_last_raw_message_by_subject(&self.erasing_subject(id))
            .await
        {
            Ok(message) => Ok(String::from_utf8(message.payload.to_vec())
                .ok()
                .map(|text| (message.sequence, text))),
            Err(error) if error.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                Ok(None)
            }
            Err(error) => Err(io("reading an erasure job's identifiers")(&error)),
        }
    }

    async fn jobs(&self) -> Result<Vec<ErasureRecord>, BacklogError> {
        let buckets = self.erasure_buckets().await?;
        let mut keys = buckets
            .jobs
            .keys()
            .await
            .map_err(|e| io("listing erasure jobs")(&e))?;
        let mut found = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| io("listing erasure jobs")(&e))?;
            if let Some(value) = buckets
                .jobs
                .get(&key)
                .await
                .map_err(|e| io("reading an erasure job")(&e))?
                && let Ok(record) = serde_json::from_slice::<ErasureRecord>(&value)
            {
                found.push(record);
            }
        }
        found.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(found)
    }

    pub(super) async fn nats_begin_erasure(
        &self,
        record: ErasureRecord,
        identifiers: String,
        suppress: Vec<SuppressionEntry>,
    ) -> Result<(), BacklogError> {
        // The suppression first: a job recorded without it would let the user's events through
        // until it resumed; suppression without a job (a crash in between) is not answered 202,
        // and the request sent again makes the job.
        let buckets = self.erasure_buckets().await?;
        for entry in &suppress {
            let value = serde_json::to_vec(entry).expect("an entry serializes");
            buckets
                .suppress
                .put(&entry.hash, value.into())
                .await
                .map_err(|e| io("writing the suppression list")(&e))?;
        }
        self.js
            .publish(
                self.erasing_subject(&record.id),
                identifiers.into_bytes().into(),
            )
            .await
            .map_err(|e| io("writing an erasure job's identifiers")(&e))?
            .await
            .map_err(|e| io("writing an erasure job's identifiers")(&e))?;
        self.put_job(&record).await
    }

    pub(super) async fn nats_suppressions(&self) -> Result<Vec<SuppressionEntry>, BacklogError> {
        let bucket = &self.erasure_buckets().await?.suppress;
        let mut keys = bucket
            .keys()
            .await
            .map_err(|e| io("listing the suppression list")(&e))?;
        let mut entries = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| io("listing the suppression list")(&e))?;
            if let Some(value) = bucket
                .get(&key)
                .await
                .map_err(|e| io("reading the suppression list")(&e))?
                && let Ok(entry) = serde_json::from_slice::<SuppressionEntry>(&value)
            {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    pub(super) async fn nats_prune_suppressions(&self, before: u64) -> Result<u64, BacklogError> {
        let bucket = &self.erasure_buckets().await?.suppress;
        let mut pruned = 0;
        for entry in self.nats_suppressions().await? {
            if entry.created < before {
                bucket
                    .purge(&entry.hash)
                    .await
                    .map_err(|e| io("pruning the suppression list")(&e))?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    pub(super) async fn nats_remove_erased(
        &self,
        mut record: ErasureRecord,
        erased: ErasedMatcher,
    ) -> Result<ErasureRecord, BacklogError> {
        let subject = format!("{}.events.*", self.config.subject_prefix);
        let (mut events, mut next) = (0u64, 1u64);
        loop {
            let message = match self
                .events
                .raw_message_builder()
                .sequence(next)
                .next_by_subject(subject.clone())
                .send()
                .await
            {
                Ok(message) => message,
                Err(error) if error.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                    break;
                }
                Err(error) => return Err(io("reading events to erase")(&error)),
            };
            next = message.sequence + 1;
            let Ok(texts) = unpack(Some(&message.headers), &message.payload) else {
                continue;
            };
            let theirs = texts
                .iter()
                .filter(|t| std::str::from_utf8(t).is_ok_and(|t| erased(t)))
                .count();
            if theirs > 0 && theirs == texts.len() {
                match self.events.delete_message(message.sequence).await {
                    Ok(_) => events += theirs as u64,
                    // Acknowledged by every destination meanwhile: gone already.
                    Err(error) => {
                        tracing::debug!(%error, "An erased user's message could not be deleted.")
                    }
                }
            }
        }
        let mut letters = 0u64;
        for (letter, text) in self
            .select_dead_with_text(&DeadLetterFilter::default())
            .await?
        {
            if erased(&text) && self.dead.delete_message(letter.id).await.is_ok() {
                letters += 1;
            }
        }
        if record.state == ErasureState::Suppressed {
            record.state = ErasureState::Removed;
        }
        record.removed_events = Some(record.removed_events.unwrap_or(0) + events);
        record.removed_dead_letters = Some(record.removed_dead_letters.unwrap_or(0) + letters);
        self.put_job(&record).await?;
        Ok(record)
    }

    pub(super) async fn nats_record_erasure(
        &self,
        record: ErasureRecord,
    ) -> Result<(), BacklogError> {
        self.put_job(&record).await
    }

    pub(super) async fn nats_pending_erasures(&self) -> Result<Vec<PendingErasure>, BacklogError> {
        let mut pending = Vec::new();
        for record in self.jobs().await? {
            if record.state == ErasureState::Complete {
                continue;
            }
            if let Some((_, identifiers)) = self.identifiers_of(&record.id).await? {
                pending.push(PendingErasure {
                    record,
                    identifiers,
                });
            }
        }
        Ok(pending)
    }

    pub(super) async fn nats_erasures(
        &self,
        id: Option<&str>,
    ) -> Result<Vec<ErasureRecord>, BacklogError> {
        Ok(self
            .jobs()
            .await?
            .into_iter()
            .filter(|record| id.is_none_or(|id| record.id == id))
            .collect())
    }
}
