//! The dead-letter file: one JSON line per event that was not delivered — with its input line,
//! the destination, every reason (each attempt's, for retried events) and the original event —
//! so nothing accepted is ever lost and everything can be replayed (`jq -c .event`).
//!
//! Every line is one valid JSON object: an input line that is not JSON is kept as a string under
//! `raw`. A line torn by a crash or a full disk is cut off when the file is opened again (its
//! event was never marked resolved, so the run writes it again). A dead letter counts as written
//! only once it is on disk.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One event that was not delivered.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub line: u64,
    /// `None` for a line that is not an event (it failed for every destination).
    pub destination: Option<String>,
    pub reasons: Vec<String>,
    /// The input line as read (lossy text for bytes that were not UTF-8).
    pub raw: Arc<str>,
}

pub struct DeadLetters {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    /// Written but not yet made durable.
    unsynced: u64,
}

impl DeadLetters {
    /// Appends to `path`, which is opened (and repaired) on the first dead letter.
    pub fn new(path: &Path) -> DeadLetters {
        DeadLetters {
            path: path.to_owned(),
            writer: None,
            unsynced: 0,
        }
    }

    fn fail(&self, e: std::io::Error) -> String {
        format!(
            "cannot write the dead-letter file {}: {e}",
            self.path.display()
        )
    }

    fn open(&mut self) -> Result<&mut BufWriter<File>, String> {
        if self.writer.is_none() {
            let mut file = OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| self.fail(e))?;
            repair_torn_end(&mut file).map_err(|e| self.fail(e))?;
            self.writer = Some(BufWriter::new(file));
        }
        Ok(self.writer.as_mut().expect("opened above"))
    }

    /// Writes one dead letter (durable after [`DeadLetters::sync`]).
    pub fn write(&mut self, letter: &DeadLetter) -> Result<(), String> {
        let entry = entry(letter);
        let result = self.open()?.write_all(entry.as_bytes());
        result.map_err(|e| self.fail(e))?;
        self.unsynced += 1;
        Ok(())
    }

    /// Makes what was written durable; returns how many dead letters that was. Called before the
    /// checkpoint marks those events resolved.
    pub fn sync(&mut self) -> Result<u64, String> {
        if let Some(writer) = &mut self.writer {
            let result = writer.flush().and_then(|()| writer.get_ref().sync_data());
            result.map_err(|e| self.fail(e))?;
        }
        Ok(std::mem::take(&mut self.unsynced))
    }
}

/// The dead letter as one JSON line: an event under `event`, a line that is not one (it has no
/// destination) as text under `raw`, so `jq -c 'select(.event) | .event'` replays exactly the
/// events.
fn entry(letter: &DeadLetter) -> String {
    let raw = letter.raw.trim();
    let is_json =
        letter.destination.is_some() && serde_json::from_str::<serde::de::IgnoredAny>(raw).is_ok();
    let (key, event) = if is_json {
        ("event", raw.to_owned())
    } else {
        (
            "raw",
            serde_json::to_string(raw).expect("a string serializes"),
        )
    };
    format!(
        "{{\"line\":{},\"destination\":{},\"reasons\":{},\"{key}\":{event}}}\n",
        letter.line,
        serde_json::to_string(&letter.destination).expect("serializes"),
        serde_json::to_string(&letter.reasons).expect("serializes"),
    )
}

/// Cuts a file that does not end with a line break back to its last complete line.
fn repair_torn_end(file: &mut File) -> std::io::Result<()> {
    let length = file.metadata()?.len();
    if length == 0 {
        return Ok(());
    }
    // Look back in blocks for the last line break.
    let mut end = length;
    let mut block = vec![0u8; 64 * 1024];
    let mut last_break = None;
    while end > 0 && last_break.is_none() {
        let start = end.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if end == length && chunk.last() == Some(&b'\n') {
            return Ok(());
        }
        last_break = chunk
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| start + i as u64 + 1);
        end = start;
    }
    file.set_len(last_break.unwrap_or(0))?;
    file.seek(SeekFrom::End(0))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{DeadLetter, DeadLetters};

    /// A dead letter of an event for `insider`.
    fn letter(line: u64, raw: &str) -> DeadLetter {
        DeadLetter {
            line,
            destination: Some("insider".into()),
            reasons: vec!["because \"quoted\"".into()],
            raw: Arc::from(raw),
        }
    }

    #[test]
    fn every_line_is_json_even_for_input_that_is_not() {
        let dir = std::env::temp_dir().join(format!("hardal-dl-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dead.ndjson");
        let _ = std::fs::remove_file(&path);
        let mut letters = DeadLetters::new(&path);
        letters.write(&letter(1, "{\"a\":1}")).unwrap();
        // Lines that are not events have no destination.
        for (i, raw) in ["not json \"at all", "{\"a\":", "{\"b\":\"\u{fffd}\"}", ""]
            .iter()
            .enumerate()
        {
            let mut not_an_event = letter(i as u64 + 2, raw);
            not_an_event.destination = None;
            letters.write(&not_an_event).unwrap();
        }
        assert_eq!(letters.sync().unwrap(), 5);
        assert_eq!(letters.sync().unwrap(), 0);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("every dead letter is JSON"))
            .collect();
        assert_eq!(lines[0]["event"]["a"], 1);
        assert_eq!(lines[1]["raw"], "not json \"at all");
        assert_eq!(lines[2]["raw"], "{\"a\":");
        assert_eq!(lines[3]["raw"], "{\"b\":\"\u{fffd}\"}");
        assert_eq!(lines[4]["raw"], "");
    }

    #[test]
    fn a_torn_last_line_is_cut_off_when_the_file_is_opened_again() {
        let dir = std::env::temp_dir().join(format!("hardal-dl-torn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dead.ndjson");
        std::fs::write(&path, "{\"line\":1}\n{\"line\":2,\"desti").unwrap();
        let mut letters = DeadLetters::new(&path);
        letters.write(&letter(3, "{}")).unwrap();
        letters.sync().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0], "{\"line\":1}");
        assert!(lines[1].starts_with("{\"line\":3,"));
        // A file that is one torn line is emptied; an intact file is left alone.
        std::fs::write(&path, "{\"line\":1,").unwrap();
        let mut letters = DeadLetters::new(&path);
        letters.write(&letter(4, "{}")).unwrap();
        letters.sync().unwrap();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("{\"line\":4,")
        );
    }
}
