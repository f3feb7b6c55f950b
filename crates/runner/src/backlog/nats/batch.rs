//! The shape of the messages in the event stream: since issue 17, one message holds the events
//! of one ingestion request that share a partition (a batch), in the order they came; before,
//! each message was one event's text. Both shapes are read, so that a stream that holds old
//! messages at an upgrade is delivered in full.
//!
//! A batch message carries the header `Hardal-Batch: 1`; its payload is, per event, in order:
//! the identity (8 bytes, big-endian), the user's length (4 bytes, big-endian; `u32::MAX` when
//! the event names no user) and bytes, the text's length (4 bytes) and bytes. Its
//! `Nats-Msg-Id` is a hash of its events' identities, sorted: a retried request groups the same
//! events into the same messages, which JetStream stores once, whichever node they reach.
//!
//! An event in the stream is addressed by one number, `seq`: the stream sequence of its message
//! shifted left by [`INDEX_BITS`], plus its index in the message (0 for an old message), so
//! that the order of `seq` is the order of acceptance.

use async_nats::HeaderMap;
use bytes::{BufMut, Bytes, BytesMut};

use super::partition_of;
use crate::backlog::Incoming;

/// The header naming a batch message (its value is the format's version).
pub(super) const BATCH: &str = "Hardal-Batch";

/// The bits of an event's `seq` that hold its index in its message.
pub(super) const INDEX_BITS: u32 = 12;

/// The most events one message holds (a request with more for one partition makes several).
const MAX_EVENTS: usize = 1 << INDEX_BITS;

/// The size a message grows to at most, unless one event alone is larger (NATS refuses
/// messages above its `max_payload`, 1 MiB by default).
const MAX_BYTES: usize = 256 * 1024;

const NO_USER: u32 = u32::MAX;

/// A message to publish: the events of one request in one partition.
pub(super) struct Outgoing {
    pub(super) partition: u32,
    /// Its `Nats-Msg-Id`.
    pub(super) id: String,
    pub(super) payload: Bytes,
    /// The identities of its events.
    pub(super) identities: Vec<u64>,
}

/// Groups a request's events into messages, per partition in the order they came.
pub(super) fn pack(events: Vec<Incoming>, partitions: u32) -> Vec<Outgoing> {
    let mut open: Vec<Option<(BytesMut, Vec<u64>)>> = (0..partitions).map(|_| None).collect();
    let mut out = Vec::new();
    let finish = |partition: u32, (payload, identities): (BytesMut, Vec<u64>)| {
        let mut sorted = identities.clone();
        sorted.sort_unstable();
        let bytes: Vec<u8> = sorted.iter().flat_map(|i| i.to_be_bytes()).collect();
        Outgoing {
            partition,
            id: format!("b{:016x}", xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, 4)),
            payload: payload.freeze(),
            identities,
        }
    };
    let framed =
        |event: &Incoming| 16 + event.user.as_ref().map_or(0, String::len) + event.body.len();
    // Each message's payload is allocated once, at the size its events need: grown event by
    // event, it was copied again and again (about 5 % of an ingestion node's CPU).
    let mut placed = Vec::with_capacity(events.len());
    let mut left = vec![0usize; partitions as usize];
    for event in &events {
        let partition = partition_of(event.user.as_deref(), event.identity, partitions);
        left[partition as usize] += framed(event);
        placed.push(partition);
    }
    for (event, partition) in events.into_iter().zip(placed) {
        let user = event.user.as_deref().unwrap_or_default().as_bytes();
        let size = framed(&event);
        let slot = &mut open[partition as usize];
        if let Some((payload, identities)) = slot
            && (identities.len() == MAX_EVENTS
                || (!payload.is_empty() && payload.len() + size > MAX_BYTES))
        {
            let full = (std::mem::take(payload), std::mem::take(identities));
            out.push(finish(partition, full));
        }
        let left = &mut left[partition as usize];
        let (payload, identities) = slot.get_or_insert_with(Default::default);
        if payload.is_empty() {
            payload.reserve((*left).min(MAX_BYTES).max(size));
        }
        *left -= size;
        payload.put_u64(event.identity);
        match &event.user {
            Some(_) => {
                payload.put_u32(user.len() as u32);
                payload.put_slice(user);
            }
            None => payload.put_u32(NO_USER),
        }
        payload.put_u32(event.body.len() as u32);
        payload.put_slice(event.body.as_bytes());
        identities.push(event.identity);
    }
    for (partition, slot) in open.into_iter().enumerate() {
        if let Some(batch) = slot.filter(|(_, identities)| !identities.is_empty()) {
            out.push(finish(partition as u32, batch));
        }
    }
    out
}

/// The headers of a batch message.
pub(super) fn headers(id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(BATCH, "1");
    headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
    headers
}

/// The texts of the events of a message of either shape, in order. (Each event's identity and
/// user are framed too, for whoever needs them without parsing the text.)
pub(super) fn unpack(headers: Option<&HeaderMap>, payload: &Bytes) -> Result<Vec<Bytes>, String> {
    let version = headers.and_then(|h| h.get(BATCH)).map(|v| v.as_str());
    match version {
        None => Ok(vec![payload.clone()]),
        Some("1") => {
            let mut events = Vec::new();
            let mut at = 0;
            let take = |at: &mut usize, n: usize| -> Result<Bytes, String> {
                let end = at
                    .checked_add(n)
                    .filter(|end| *end <= payload.len())
                    .ok_or_else(|| {
                        format!("a batch message ends inside an event (at byte {at})")
                    })?;
                let slice = payload.slice(*at..end);
                *at = end;
                Ok(slice)
            };
            let number = |bytes: Bytes| bytes.iter().fold(0u64, |n, b| n << 8 | u64::from(*b));
            while at < payload.len() {
                take(&mut at, 8)?;
                match number(take(&mut at, 4)?) as u32 {
                    NO_USER => {}
                    length => {
                        take(&mut at, length as usize)?;
                    }
                }
                let length = number(take(&mut at, 4)?) as usize;
                events.push(take(&mut at, length)?);
                if events.len() > MAX_EVENTS {
                    return Err(format!(
                        "a batch message holds more than {MAX_EVENTS} events"
                    ));
                }
            }
            Ok(events)
        }
        Some(other) => Err(format!(
            "a batch message of version {other}, which this hardal does not know (a newer hardal wrote it)"
        )),
    }
}

/// The `seq` of the event at `index` in the message at `stream_seq`.
pub(super) fn event_seq(stream_seq: u64, index: usize) -> u64 {
    stream_seq << INDEX_BITS | index as u64
}

/// The stream sequence of an event's message, and its index in it.
pub(super) fn message_of(seq: u64) -> (u64, usize) {
    (seq >> INDEX_BITS, (seq & ((1 << INDEX_BITS) - 1)) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(body: &str, identity: u64, user: Option<&str>) -> Incoming {
        Incoming {
            body: body.into(),
            identity,
            user: user.map(Into::into),
        }
    }

    #[test]
    fn a_request_becomes_one_message_per_partition_read_back_in_order() {
        let events = vec![
            incoming(r#"{"id":"a"}"#, 1, Some("ada")),
            incoming("{\n\"id\": \"b\"}", 2, None),
            incoming(r#"{"id":"c"}"#, 3, Some("ada")),
        ];
        let partitions = 4;
        let messages = pack(events.clone(), partitions);
        let mut read = Vec::new();
        for message in &messages {
            let bodies = unpack(Some(&headers(&message.id)), &message.payload).unwrap();
            assert_eq!(message.identities.len(), bodies.len());
            for (identity, body) in message.identities.iter().zip(bodies) {
                read.push((message.partition, *identity, body));
            }
        }
        // Each event in its user's partition (the one without a user placed by its identity),
        // its text as it came; Ada's two share a message, in their order.
        for event in &events {
            let found = read.iter().find(|(_, i, _)| *i == event.identity).unwrap();
            assert_eq!(
                found.0,
                partition_of(event.user.as_deref(), event.identity, partitions)
            );
            assert_eq!(found.2, event.body.as_bytes());
        }
        let ada = partition_of(Some("ada"), 0, partitions);
        let order: Vec<u64> = read
            .iter()
            .filter(|(p, i, _)| *p == ada && *i != 2)
            .map(|(_, i, _)| *i)
            .collect();
        assert_eq!(order, [1, 3]);
    }

    #[test]
    fn the_message_id_depends_on_the_events_not_their_order() {
        let a = incoming("{}", 10, Some("u"));
        let b = incoming("{ }", 11, Some("u"));
        let c = incoming("{  }", 12, Some("u"));
        let id = |events: Vec<Incoming>| {
            let messages = pack(events, 1);
            assert_eq!(messages.len(), 1);
            messages[0].id.clone()
        };
        assert_eq!(
            id(vec![a.clone(), b.clone()]),
            id(vec![b.clone(), a.clone()])
        );
        assert_ne!(id(vec![a.clone(), b.clone()]), id(vec![a, b, c]));
    }

    #[test]
    fn an_old_single_event_message_is_one_event() {
        let payload = Bytes::from_static(br#"{"id":"old"}"#);
        assert_eq!(unpack(None, &payload).unwrap(), [payload]);
    }

    #[test]
    fn large_requests_are_split_and_broken_messages_are_refused() {
        let body = "x".repeat(100_000);
        let events: Vec<Incoming> = (0..5).map(|i| incoming(&body, i, Some("u"))).collect();
        let messages = pack(events, 1);
        assert_eq!(messages.len(), 3, "at most 256 KiB each");
        let many: Vec<Incoming> = (0..5000).map(|i| incoming("{}", i, Some("u"))).collect();
        assert_eq!(
            pack(many, 1)
                .iter()
                .map(|m| m.identities.len())
                .collect::<Vec<_>>(),
            [4096, 904]
        );
        let message = &pack(vec![incoming("{}", 1, None)], 1)[0];
        let cut = message.payload.slice(..message.payload.len() - 1);
        assert!(
            unpack(Some(&headers(&message.id)), &cut)
                .unwrap_err()
                .contains("ends inside")
        );
        let mut future = HeaderMap::new();
        future.insert(BATCH, "2");
        assert!(
            unpack(Some(&future), &message.payload)
                .unwrap_err()
                .contains("version 2")
        );
    }

    #[test]
    fn seq_orders_messages_then_events() {
        assert!(event_seq(7, 4095) < event_seq(8, 0));
        assert_eq!(message_of(event_seq(7, 3)), (7, 3));
    }
}
