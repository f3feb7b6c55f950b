//! Erasure on NATS: the suppression list in the key-value bucket `<stream>_SUPPRESS` (one key
//! per identifier hash; every node reads it, see `serve`'s poller), erasure jobs in
//! `<stream>_ERASURES` (the audit record, and the identifiers while the job is pending), and
//! removing an erased user's waiting events and dead letters.
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

/// What the jobs bucket keeps per job.
#[derive(serde::Serialize, serde::Deserialize)]
struct Job {
    record: ErasureRecord,
    /// Only while the job is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identifiers: Option<String>,
}

/// Keys and entries live until deleted (the suppression list's retention is applied by
/// `prune_suppressions`).
const FOR_EVER: Duration = Duration::from_secs(100 * 365 * 86_400);

impl NatsBacklog {
    /// The suppression and jobs buckets, made the first time erasure needs them.
    async fn erasure_buckets(&self) -> Result<&(kv::Store, kv::Store), BacklogError> {
        self.erasure
            .get_or_try_init(|| async {
                let suppress = open_bucket(
                    &self.js,
                    &format!("{}_SUPPRESS", self.config.stream),
                    "hardal: hashes of erased users' identifiers",
                    FOR_EVER,
                    self.config.replicas,
                )
                .await?;
                let jobs = open_bucket(
                    &self.js,
                    &format!("{}_ERASURES", self.config.stream),
                    "hardal: erasure jobs",
                    FOR_EVER,
                    self.config.replicas,
                )
                .await?;
                Ok((suppress, jobs))
            })
            .await
    }

    async fn put_job(
        &self,
        record: &ErasureRecord,
        identifiers: Option<String>,
    ) -> Result<(), BacklogError> {
        let (_, jobs) = self.erasure_buckets().await?;
        let identifiers = identifiers.filter(|_| record.state != ErasureState::Complete);
        let value = serde_json::to_vec(&Job {
            record: record.clone(),
            identifiers,
        })
        .expect("a job serializes");
        jobs.put(&record.id, value.into())
            .await
            .map_err(|e| io("writing an erasure job")(&e))?;
        Ok(())
    }

    async fn jobs(&self) -> Result<Vec<Job>, BacklogError> {
        let (_, jobs) = self.erasure_buckets().await?;
        let mut keys = jobs
            .keys()
            .await
            .map_err(|e| io("listing erasure jobs")(&e))?;
        let mut found = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| io("listing erasure jobs")(&e))?;
            if let Some(value) = jobs
                .get(&key)
                .await
                .map_err(|e| io("reading an erasure job")(&e))?
                && let Ok(job) = serde_json::from_slice::<Job>(&value)
            {
                found.push(job);
            }
        }
        found.sort_by(|a, b| {
            (a.record.created, &a.record.id).cmp(&(b.record.created, &b.record.id))
        });
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
        let (bucket, _) = self.erasure_buckets().await?;
        for entry in &suppress {
            let value = serde_json::to_vec(entry).expect("an entry serializes");
            bucket
                .put(&entry.hash, value.into())
                .await
                .map_err(|e| io("writing the suppression list")(&e))?;
        }
        self.put_job(&record, Some(identifiers)).await
    }

    pub(super) async fn nats_suppressions(&self) -> Result<Vec<SuppressionEntry>, BacklogError> {
        let (bucket, _) = self.erasure_buckets().await?;
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
        let (bucket, _) = self.erasure_buckets().await?;
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
        let identifiers = self
            .jobs()
            .await?
            .into_iter()
            .find(|job| job.record.id == record.id)
            .and_then(|job| job.identifiers);
        self.put_job(&record, identifiers).await?;
        Ok(record)
    }

    pub(super) async fn nats_record_erasure(
        &self,
        record: ErasureRecord,
    ) -> Result<(), BacklogError> {
        let identifiers = if record.state == ErasureState::Complete {
            None
        } else {
            self.jobs()
                .await?
                .into_iter()
                .find(|job| job.record.id == record.id)
                .and_then(|job| job.identifiers)
        };
        self.put_job(&record, identifiers).await
    }

    pub(super) async fn nats_pending_erasures(&self) -> Result<Vec<PendingErasure>, BacklogError> {
        Ok(self
            .jobs()
            .await?
            .into_iter()
            .filter(|job| job.record.state != ErasureState::Complete)
            .filter_map(|job| {
                Some(PendingErasure {
                    identifiers: job.identifiers?,
                    record: job.record,
                })
            })
            .collect())
    }

    pub(super) async fn nats_erasures(
        &self,
        id: Option<&str>,
    ) -> Result<Vec<ErasureRecord>, BacklogError> {
        Ok(self
            .jobs()
            .await?
            .into_iter()
            .map(|job| job.record)
            .filter(|record| id.is_none_or(|id| record.id == id))
            .collect())
    }
}
