//! The writer of `hardal send`: a thread of its own makes dead letters durable, then records the
//! resolved lines in the checkpoint — in that order, so a crash between the two can repeat a dead
//! letter but never lose one — while the engine keeps delivering on the async runtime's threads.
//! Writes that queue up while one is under way go out together in the next (group commit).

use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::checkpoint::{Checkpoint, Progress};
use super::dead_letters::{DeadLetter, DeadLetters};

/// One write: dead letters first, then the checkpoint.
pub struct Write {
    pub dead_letters: Vec<DeadLetter>,
    pub progress: Progress,
}

/// The writer thread and its answers: per write, how many dead letters became durable, or the
/// error that stopped it (after which it writes nothing more).
pub struct Store {
    writes: Option<mpsc::Sender<Write>>,
    pub answers: UnboundedReceiver<Result<u64, String>>,
    thread: Option<JoinHandle<()>>,
    busy: bool,
}

impl Store {
    pub fn start(mut checkpoint: Checkpoint, mut dead_letters: DeadLetters) -> Store {
        let (writes, inbox) = mpsc::channel::<Write>();
        let (answer, answers) = unbounded_channel();
        let thread = std::thread::spawn(move || {
            for mut write in inbox {
                let written = write
                    .dead_letters
                    .iter()
                    .try_for_each(|letter| dead_letters.write(letter))
                    .and_then(|()| dead_letters.sync())
                    .and_then(|written| checkpoint.record(&mut write.progress).map(|()| written));
                let failed = written.is_err();
                if answer.send(written).is_err() || failed {
                    return;
                }
            }
        });
        Store {
            writes: Some(writes),
            answers,
            thread: Some(thread),
            busy: false,
        }
    }

    /// Whether a write is under way (its answer has not come back).
    pub fn busy(&self) -> bool {
        self.busy
    }

    /// Hands a write to the thread; call only when not busy.
    pub fn write(&mut self, write: Write) {
        if let Some(writes) = &self.writes
            && writes.send(write).is_ok()
        {
            self.busy = true;
        }
    }

    /// Notes that an answer came back.
    pub fn answered(&mut self) {
        self.busy = false;
    }

    /// Waits for the thread to finish what it was given.
    pub fn close(&mut self) {
        self.writes = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
