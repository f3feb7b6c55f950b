//! The shape of the messages in the event stream. Since issue 17 a message holds the events of
//! one or more ingestion requests that share a partition (a batch), in the order they came;
//! before, each message was one event's text. Every shape hardal wrote is read, so that a stream
//! that holds old messages at an upgrade is delivered in full.
//!
//! A batch message carries the header `Hardal-Batch` with the format's version. Version 1's
//! payload is, per event, in order: the identity (8 bytes, big-endian), the user's length
//! (4 bytes, big-endian; `u32::MAX` when the event names no user) and bytes, the text's length
//! (4 bytes) and bytes. Version 2's is version 1's compressed as one zstd frame (which states
//! its size): nats-server's work grows with the bytes it stores, reads back and copies when an
//! acknowledgement deletes a message.
//!
//! A *part* is one request's events in one partition; its id is a hash of their identities,
//! sorted, so a retried request makes the same parts whatever their order. A message of one
//! part has the part's id as its `Nats-Msg-Id` (JetStream stores a retry that makes the same
//! message once, whichever node it reaches); a message of several parts (`group`) lists them in
//! `Hardal-Parts` as `<id>:<events>`, and the workers recognise a part they saw before
//! (`seen.rs`).
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

/// The header of a message of several parts: `<id>:<events>` for each, in order, separated
/// by spaces.
pub(super) const PARTS: &str = "Hardal-Parts";

/// The bits of an event's `seq` that hold its index in its message.
pub(super) const INDEX_BITS: u32 = 12;

/// The most events one message holds (a request with more for one partition makes several).
const MAX_EVENTS: usize = 1 << INDEX_BITS;

/// The size a message grows to at most, unless one event alone is larger (NATS refuses
/// messages above its `max_payload`, 1 MiB by default).
const MAX_BYTES: usize = 256 * 1024;

const NO_USER: u32 = u32::MAX;

/// The most a message's events take framed: its size, or one event at NATS's largest payload.
const MAX_FRAMED: usize = 64 * 1024 * 1024;

/// A message to publish: the events of one or more requests in one partition.
pub(super) struct Outgoing {
    pub(super) partition: u32,
    /// Its `Nats-Msg-Id`: its part's id, or for several parts a hash of theirs.
    pub(super) id: String,
    /// Its events, framed (version 1); compressed by [`group`].
    pub(super) payload: Bytes,
    /// Its parts, in order.
    pub(super) parts: Vec<Part>,
}

/// The events of one request in one partition (at most a message's worth): what a retry of
/// the request makes again, and so what duplicates are recognised by.
pub(super) struct Part {
    /// A hash of its events' identities, sorted.
    pub(super) id: String,
    /// Which of the grouped requests it came from.
    pub(super) request: usize,
    /// The identities of its events, in order.
    pub(super) identities: Vec<u64>,
}

/// Groups a request's events into parts, per partition in the order they came: each an
/// uncompressed message of one part.
pub(super) fn pack(events: Vec<Incoming>, partitions: u32, request: usize) -> Vec<Outgoing> {
    let mut open: Vec<Option<(BytesMut, Vec<u64>)>> = (0..partitions).map(|_| None).collect();
    let mut out = Vec::new();
    let finish = |partition: u32, (payload, identities): (BytesMut, Vec<u64>)| {
        let mut sorted = identities.clone();
        sorted.sort_unstable();
        let bytes: Vec<u8> = sorted.iter().flat_map(|i| i.to_be_bytes()).collect();
        let id = format!("b{:016x}", xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, 4));
        Outgoing {
            partition,
            id: id.clone(),
            payload: payload.freeze(),
            parts: vec![Part {
                id,
                request,
                identities,
            }],
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

/// Joins the parts of several requests that share a partition into as few messages as the
/// limits allow, in order (a part is never split), and compresses each: fewer, smaller messages
/// are what nats-server's work is counted in.
pub(super) fn group(parts: Vec<Outgoing>, partitions: u32) -> Vec<Outgoing> {
    // Per partition: the parts of the message being filled, its bytes and its events.
    let mut open: Vec<(Vec<Outgoing>, usize, usize)> =
        (0..partitions).map(|_| Default::default()).collect();
    let mut out = Vec::new();
    for part in parts {
        let (bytes, events) = (part.payload.len(), part.parts[0].identities.len());
        let (batch, batch_bytes, batch_events) = &mut open[part.partition as usize];
        if !batch.is_empty()
            && (*batch_bytes + bytes > MAX_BYTES || *batch_events + events > MAX_EVENTS)
        {
            out.push(join(std::mem::take(batch)));
            (*batch_bytes, *batch_events) = (0, 0);
        }
        batch.push(part);
        *batch_bytes += bytes;
        *batch_events += events;
    }
    out.extend(
        open.into_iter()
            .filter(|(batch, _, _)| !batch.is_empty())
            .map(|(batch, _, _)| join(batch)),
    );
    out
}

/// One compressed message of parts of one partition.
fn join(batch: Vec<Outgoing>) -> Outgoing {
    let partition = batch[0].partition;
    let mut framed = BytesMut::with_capacity(batch.iter().map(|m| m.payload.len()).sum());
    let mut parts = Vec::new();
    for message in batch {
        framed.put_slice(&message.payload);
        parts.extend(message.parts);
    }
    let id = match parts.as_slice() {
        [one] => one.id.clone(),
        many => {
            let ids: Vec<&str> = many.iter().map(|p| p.id.as_str()).collect();
            format!(
                "g{:016x}",
                xxhash_rust::xxh3::xxh3_64_with_seed(ids.join(" ").as_bytes(), 4)
            )
        }
    };
    Outgoing {
        partition,
        id,
        payload: compress(&framed),
        parts,
    }
}

/// The level of zstd's compression: its fastest positive level already shrinks a message of
/// events several times, and every byte saved is a byte nats-server need not store, read back,
/// copy when the message is deleted, and send to each replica.
const LEVEL: i32 = 1;

/// A batch's payload as the stream holds it (version 2): zstd's frame of version 1's.
fn compress(framed: &[u8]) -> Bytes {
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    COMPRESSOR.with_borrow_mut(|compressor| {
        let compressor = compressor.get_or_insert_with(|| {
            zstd::bulk::Compressor::new(LEVEL).expect("zstd's context is allocated")
        });
        // Compressing to a vector of the bound's size cannot fail for want of room.
        Bytes::from(
            compressor
                .compress(framed)
                .expect("zstd compresses into a buffer of its bound"),
        )
    })
}

/// The headers of a (grouped, compressed) batch message.
pub(super) fn headers(message: &Outgoing) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(BATCH, "2");
    headers.insert(async_nats::header::NATS_MESSAGE_ID, message.id.as_str());
    if message.parts.len() > 1 {
        let parts: Vec<String> = message
            .parts
            .iter()
            .map(|p| format!("{}:{}", p.id, p.identities.len()))
            .collect();
        headers.insert(PARTS, parts.join(" ").as_str());
    }
    headers
}

/// The parts of a message of `events` events, in order, each with the index of its first
/// event: from `Hardal-Parts`, or the whole message as one part named by its `Nats-Msg-Id`.
/// None for messages that name no parts (single events as hardal wrote them before batches,
/// and replayed dead letters, which are meant to be delivered again), or whose header does not
/// add up to their events.
pub(super) fn parts_of(headers: Option<&HeaderMap>, events: usize) -> Option<Vec<(String, usize)>> {
    let headers = headers?;
    headers.get(BATCH)?;
    let Some(listed) = headers.get(PARTS) else {
        let id = headers.get(async_nats::header::NATS_MESSAGE_ID)?;
        return Some(vec![(id.as_str().to_owned(), 0)]);
    };
    let mut parts = Vec::new();
    let mut start = 0usize;
    for part in listed.as_str().split(' ') {
        let (id, count) = part.split_once(':')?;
        parts.push((id.to_owned(), start));
        start = start.checked_add(count.parse().ok()?)?;
    }
    (start == events).then_some(parts)
}

/// The texts of the events of a message of either shape, in order. (Each event's identity and
/// user are framed too, for whoever needs them without parsing the text.)
pub(super) fn unpack(headers: Option<&HeaderMap>, payload: &Bytes) -> Result<Vec<Bytes>, String> {
    let version = headers.and_then(|h| h.get(BATCH)).map(|v| v.as_str());
    match version {
        None => Ok(vec![payload.clone()]),
        Some("2") => {
            let framed = decompress(payload)?;
            unpack_framed(&framed)
        }
        Some("1") => unpack_framed(payload),
        Some(other) => Err(format!(
            "a batch message of version {other}, which this hardal does not know (a newer hardal wrote it)"
        )),
    }
}

/// Version 2's payload back to version 1's. The size is bounded before anything is allocated:
/// a frame claiming more than a message can hold is refused.
fn decompress(payload: &Bytes) -> Result<Bytes, String> {
    let size = zstd::zstd_safe::get_frame_content_size(payload)
        .ok()
        .flatten()
        .ok_or("a compressed batch message does not say its size")?;
    if size > MAX_FRAMED as u64 {
        return Err(format!(
            "a compressed batch message claims {size} bytes, more than a message holds"
        ));
    }
    thread_local! {
        static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    DECOMPRESSOR.with_borrow_mut(|decompressor| {
        // A context costs more to make than a message of a few events to decompress.
        let decompressor = match decompressor {
            Some(decompressor) => decompressor,
            None => decompressor.insert(
                zstd::bulk::Decompressor::new()
                    .map_err(|error| format!("zstd's context cannot be made: {error}"))?,
            ),
        };
        decompressor
            .decompress(payload, size as usize)
            .map(Bytes::from)
            .map_err(|error| format!("a compressed batch message cannot be read: {error}"))
    })
}

/// The events of a version 1 payload.
fn unpack_framed(payload: &Bytes) -> Result<Vec<Bytes>, String> {
    let mut events = Vec::new();
    let mut at = 0;
    let take = |at: &mut usize, n: usize| -> Result<Bytes, String> {
        let end = at
            .checked_add(n)
            .filter(|end| *end <= payload.len())
            .ok_or_else(|| format!("a batch message ends inside an event (at byte {at})"))?;
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

    /// A message as a worker reads it back: its partition, events and parts.
    type ReadBack = (u32, Vec<Bytes>, Vec<(String, usize)>);

    fn read_back(messages: &[Outgoing]) -> Vec<ReadBack> {
        messages
            .iter()
            .map(|message| {
                let headers = headers(message);
                let bodies = unpack(Some(&headers), &message.payload).unwrap();
                let parts = parts_of(Some(&headers), bodies.len()).unwrap();
                (message.partition, bodies, parts)
            })
            .collect()
    }

    #[test]
    fn a_request_becomes_one_message_per_partition_read_back_in_order() {
        let events = vec![
            incoming(r#"{"id":"a"}"#, 1, Some("ada")),
            incoming("{\n\"id\": \"b\"}", 2, None),
            incoming(r#"{"id":"c"}"#, 3, Some("ada")),
        ];
        let partitions = 4;
        let messages = group(pack(events.clone(), partitions, 0), partitions);
        let mut read = Vec::new();
        for (message, (partition, bodies, parts)) in messages.iter().zip(read_back(&messages)) {
            // One request: each message is one part, named by its message id.
            assert_eq!(parts, [(message.id.clone(), 0)]);
            let identities = &message.parts[0].identities;
            assert_eq!(identities.len(), bodies.len());
            for (identity, body) in identities.iter().zip(bodies) {
                read.push((partition, *identity, body));
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
    fn requests_grouped_share_a_message_per_partition_and_keep_their_parts() {
        let first = vec![incoming("{1}", 1, Some("u")), incoming("{2}", 2, Some("u"))];
        let second = vec![incoming("{3}", 3, Some("u"))];
        let alone = pack(first.clone(), 1, 0);
        let mut parts = alone;
        parts.extend(pack(second.clone(), 1, 1));
        let ids: Vec<String> = parts.iter().map(|p| p.id.clone()).collect();
        let messages = group(parts, 1);
        assert_eq!(messages.len(), 1);
        let (_, bodies, read_parts) = read_back(&messages).remove(0);
        assert_eq!(bodies, [&b"{1}"[..], b"{2}", b"{3}"]);
        // The parts keep the ids their requests would have had alone, with their first events.
        assert_eq!(read_parts, [(ids[0].clone(), 0), (ids[1].clone(), 2)]);
        assert_eq!(ids[0], group(pack(first, 1, 0), 1)[0].id);
        assert!(messages[0].id.starts_with('g'));
        assert_eq!(
            messages[0]
                .parts
                .iter()
                .map(|p| p.request)
                .collect::<Vec<_>>(),
            [0, 1]
        );
        // A header that does not add up to the events names no parts: nothing is skipped.
        let mut wrong = headers(&messages[0]);
        wrong.insert(PARTS, format!("{}:2 {}:2", ids[0], ids[1]).as_str());
        assert_eq!(parts_of(Some(&wrong), 3), None);
        // Messages that name no parts: old single events, and replays.
        assert_eq!(parts_of(None, 1), None);
    }

    #[test]
    fn the_message_id_depends_on_the_events_not_their_order() {
        let a = incoming("{}", 10, Some("u"));
        let b = incoming("{ }", 11, Some("u"));
        let c = incoming("{  }", 12, Some("u"));
        let id = |events: Vec<Incoming>| {
            let messages = group(pack(events, 1, 0), 1);
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
        let messages = group(pack(events, 1, 0), 1);
        assert_eq!(messages.len(), 3, "at most 256 KiB each before compression");
        assert!(
            messages.iter().all(|m| m.payload.len() < 10_000),
            "compressed"
        );
        let many: Vec<Incoming> = (0..5000).map(|i| incoming("{}", i, Some("u"))).collect();
        assert_eq!(
            group(pack(many, 1, 0), 1)
                .iter()
                .map(|m| m.parts.iter().map(|p| p.identities.len()).sum::<usize>())
                .collect::<Vec<_>>(),
            [4096, 904]
        );
        let message = &group(pack(vec![incoming("{}", 1, None)], 1, 0), 1)[0];
        let headers = headers(message);
        let cut = message.payload.slice(..message.payload.len() - 1);
        assert!(
            unpack(Some(&headers), &cut)
                .unwrap_err()
                .contains("cannot be read")
        );
        // Version 1 (uncompressed), as hardal wrote it before: cut inside an event.
        let framed = &pack(vec![incoming("{}", 1, None)], 1, 0)[0].payload;
        let mut first = HeaderMap::new();
        first.insert(BATCH, "1");
        assert_eq!(
            unpack(Some(&first), framed).unwrap(),
            [Bytes::from_static(b"{}")]
        );
        assert!(
            unpack(Some(&first), &framed.slice(..framed.len() - 1))
                .unwrap_err()
                .contains("ends inside")
        );
        let mut future = HeaderMap::new();
        future.insert(BATCH, "3");
        assert!(
            unpack(Some(&future), &message.payload)
                .unwrap_err()
                .contains("version 3")
        );
    }

    #[test]
    fn a_compressed_message_that_claims_too_much_is_refused_before_anything_is_allocated() {
        let mut headers = HeaderMap::new();
        headers.insert(BATCH, "2");
        // A zstd frame of zeros is tiny however large they are.
        let bomb = zstd::bulk::compress(&vec![0u8; MAX_FRAMED + 1], 1).unwrap();
        assert!(bomb.len() < 10_000);
        assert!(
            unpack(Some(&headers), &Bytes::from(bomb))
                .unwrap_err()
                .contains("more than a message holds")
        );
        assert!(
            unpack(Some(&headers), &Bytes::from_static(b"not zstd"))
                .unwrap_err()
                .contains("does not say its size")
        );
    }

    #[test]
    fn seq_orders_messages_then_events() {
        assert!(event_seq(7, 4095) < event_seq(8, 0));
        assert_eq!(message_of(event_seq(7, 3)), (7, 3));
    }
}
