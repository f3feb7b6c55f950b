//! The dead-letter stream: what a dead letter holds, storing one, and selecting them for
//! `hardal dlq`.

use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::Subject;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream;

use super::batch::event_seq;
use super::worker::Worker;
use super::{NatsBacklog, io, unix_now};
use crate::backlog::{BacklogError, DeadLetter, DeadLetterFilter};

impl NatsBacklog {
    fn dead_subject(&self, destination: &str) -> String {
        format!("{}.dead.{destination}", self.config.subject_prefix)
    }

    /// Dead letters the filter selects, with their stream sequence.
    pub(super) async fn select_dead(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, BacklogError> {
        Ok(self
            .select_dead_with_text(filter)
            .await?
            .into_iter()
            .map(|(letter, _)| letter)
            .collect())
    }

    /// Dead letters the filter selects, each with its event's text as it was accepted: a
    /// replay publishes that text (the letter's `event` is a JSON string instead when the text
    /// is not JSON).
    pub(super) async fn select_dead_with_text(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<(DeadLetter, String)>, BacklogError> {
        let subject = match &filter.destination {
            Some(destination) => self.dead_subject(destination),
            None => format!("{}.dead.*", self.config.subject_prefix),
        };
        let mut found = Vec::new();
        let mut next = filter.id.unwrap_or(1);
        loop {
            if filter.limit.is_some_and(|limit| found.len() >= limit) {
                break;
            }
            let message = match self
                .dead
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
                Err(error) => return Err(io("reading dead letters")(&error)),
            };
            if filter.id.is_some_and(|id| id != message.sequence) {
                break;
            }
            next = message.sequence + 1;
            let Ok(envelope) = serde_json::from_slice::<Envelope>(&message.payload) else {
                continue;
            };
            if !selected(filter, &envelope) {
                if filter.id.is_some() {
                    break;
                }
                continue;
            }
            let event = DeadLetter::event_from_text(&envelope.event);
            found.push((
                DeadLetter {
                    id: message.sequence,
                    destination: envelope.destination,
                    at: envelope.at,
                    ending: envelope.ending,
                    reasons: envelope.reasons,
                    event,
                },
                envelope.event,
            ));
            if filter.id.is_some() {
                break;
            }
        }
        Ok(found)
    }
}

/// A dead letter as the dead-letter stream holds it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Envelope {
    pub(super) destination: String,
    pub(super) at: u64,
    pub(super) ending: String,
    pub(super) reasons: Vec<String>,
    /// The event's text as it was accepted.
    pub(super) event: String,
}

fn selected(filter: &DeadLetterFilter, envelope: &Envelope) -> bool {
    let seconds = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    filter
        .reason
        .as_ref()
        .is_none_or(|text| envelope.reasons.iter().any(|r| r.contains(text.as_str())))
        && filter
            .since
            .is_none_or(|since| envelope.at >= seconds(since))
        && filter
            .until
            .is_none_or(|until| envelope.at <= seconds(until))
}

impl Worker {
    /// Stores a dead letter for each of `texts` (events of the message at stream sequence `seq`,
    /// by index) for one reason, then acknowledges the message; when one cannot be stored, the
    /// message stays in NATS (delivered again after the ack wait; its dead letters already
    /// stored are recognised as repeated by JetStream within the dead-letter stream's window).
    pub(super) async fn dead_letter_now(
        &self,
        lane: usize,
        reply: Subject,
        seq: u64,
        texts: Vec<(usize, String)>,
        reason: String,
    ) {
        for (index, text) in texts {
            let envelope = Envelope {
                destination: self.destinations[lane].clone(),
                at: unix_now(),
                ending: "dead_lettered".into(),
                reasons: vec![reason.clone()],
                event: text,
            };
            if let Err(error) = self.publish_dead(envelope, event_seq(seq, index)).await {
                tracing::error!(%error, "A dead letter could not be stored; the event stays in NATS.");
                return;
            }
        }
        let _ = self.client.publish(reply, "+ACK".into()).await;
    }

    pub(super) async fn publish_dead(
        &self,
        envelope: Envelope,
        seq: u64,
    ) -> Result<(), BacklogError> {
        let subject = format!("{}.{}", self.dead_prefix, envelope.destination);
        let id = format!("dead-{}-{seq}", envelope.destination);
        let payload = serde_json::to_vec(&envelope).expect("an envelope serializes");
        self.js
            .send_publish(
                subject,
                PublishMessage::build()
                    .payload(payload.into())
                    .message_id(id),
            )
            .await
            .map_err(|e| io("storing a dead letter")(&e))?
            .await
            .map_err(|e| io("storing a dead letter")(&e))?;
        Ok(())
    }
}
