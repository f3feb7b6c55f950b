//! Ingestion's group commit: the requests a node receives while its last publish is under way
//! go out together, one message per partition for all of them, rather than one per request and
//! partition.
//!
//! nats-server's work is counted in messages and bytes (a message is written, read back for
//! its consumer, and copied again when its acknowledgement deletes it): a request of 100
//! events over 16 partitions made messages of about 6 events; grouping makes them several times
//! larger, and larger messages compress better.
//!
//! Each request's events in a partition stay one *part*, named by the hash of their
//! identities, as their message was before: a message of several parts lists them
//! (`Hardal-Parts`), and a message of one part keeps the part's id as its `Nats-Msg-Id`. So a
//! retry that reaches a node alone is recognised by JetStream, as before; a retry grouped with
//! other requests makes a message JetStream has not seen, and the delivery side recognises its
//! part (`seen.rs`).

use std::sync::Arc;

use async_nats::Subject;
use async_nats::jetstream::{self, message::PublishMessage};
use tokio::sync::{mpsc, oneshot};

use super::batch;
use crate::backlog::{BacklogError, Incoming};

/// What became of one request's events.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) accepted: usize,
    pub(super) duplicates: usize,
    /// The identities of the events the stream holds now (stored, or found stored).
    pub(super) stored: Vec<u64>,
}

struct Request {
    events: Vec<Incoming>,
    answer: oneshot::Sender<Result<Outcome, BacklogError>>,
}

/// The handle requests are given to; the task that publishes them ends with it.
pub(super) struct Grouper {
    requests: mpsc::UnboundedSender<Request>,
}

impl Grouper {
    /// Starts the task that publishes what the node accepts, on the runtime of the caller.
    pub(super) fn start(
        js: jetstream::Context,
        subjects: Vec<Subject>,
        failed: impl Fn(&str) -> BacklogError + Send + Sync + 'static,
    ) -> Grouper {
        let (requests, waiting) = mpsc::unbounded_channel();
        tokio::spawn(publish_groups(js, subjects, Arc::new(failed), waiting));
        Grouper { requests }
    }

    /// Stores a request's events (already free of known duplicates), answering once JetStream
    /// acknowledged every message that holds them.
    pub(super) async fn store(&self, events: Vec<Incoming>) -> Result<Outcome, BacklogError> {
        let (answer, outcome) = oneshot::channel();
        let request = Request { events, answer };
        if self.requests.send(request).is_err() {
            return Err(BacklogError::Io("NATS: the publishing task ended".into()));
        }
        outcome
            .await
            .unwrap_or_else(|_| Err(BacklogError::Io("NATS: the publishing task ended".into())))
    }
}

async fn publish_groups(
    js: jetstream::Context,
    subjects: Vec<Subject>,
    failed: Arc<dyn Fn(&str) -> BacklogError + Send + Sync>,
    mut waiting: mpsc::UnboundedReceiver<Request>,
) {
    let partitions = subjects.len() as u32;
    while let Some(first) = waiting.recv().await {
        let mut requests = vec![first];
        while let Ok(more) = waiting.try_recv() {
            requests.push(more);
        }
        let mut parts = Vec::new();
        for (index, request) in requests.iter_mut().enumerate() {
            parts.extend(batch::pack(
                std::mem::take(&mut request.events),
                partitions,
                index,
            ));
        }
        let mut outcomes: Vec<Outcome> = requests.iter().map(|_| Outcome::default()).collect();
        let failure = publish(
            &js,
            &subjects,
            batch::group(parts, partitions),
            &mut outcomes,
        )
        .await;
        for (request, outcome) in requests.into_iter().zip(outcomes) {
            let answer = match &failure {
                None => Ok(outcome),
                Some(error) => Err(failed(error)),
            };
            let _ = request.answer.send(answer);
        }
    }
}

/// Publishes a group's messages and waits for every acknowledgement (so that a failure leaves
/// nothing in flight: the senders retry, and what JetStream stored already is recognised then);
/// the first error, if any.
async fn publish(
    js: &jetstream::Context,
    subjects: &[Subject],
    messages: Vec<batch::Outgoing>,
    outcomes: &mut [Outcome],
) -> Option<String> {
    let mut acks = Vec::with_capacity(messages.len());
    let mut first_error = None;
    for message in messages {
        let publish = PublishMessage::build()
            .headers(batch::headers(&message))
            .payload(message.payload);
        match js
            .send_publish(subjects[message.partition as usize].clone(), publish)
            .await
        {
            Ok(ack) => acks.push((ack, message.parts)),
            Err(error) => {
                // What was sent is still waited for, so that nothing is in flight.
                first_error = Some(error.to_string());
                break;
            }
        }
    }
    let acked = futures_util::future::join_all(
        acks.into_iter()
            .map(|(ack, parts)| async move { (ack.await, parts) }),
    )
    .await;
    for (ack, parts) in acked {
        match ack {
            Ok(ack) => {
                for part in parts {
                    let outcome = &mut outcomes[part.request];
                    if ack.duplicate {
                        outcome.duplicates += part.identities.len();
                    } else {
                        outcome.accepted += part.identities.len();
                    }
                    outcome.stored.extend(part.identities);
                }
            }
            Err(error) => {
                first_error.get_or_insert(error.to_string());
            }
        }
    }
    first_error
}
