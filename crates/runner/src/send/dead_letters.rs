//! The dead-letter file: one NDJSON line per event that was not delivered — with its input line,
//! the destination, every reason (each attempt's, for retried events) and the original event —
//! so nothing accepted is ever lost and everything can be replayed.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct DeadLetters {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    pub written: u64,
}

impl DeadLetters {
    /// Appends to `path`, created on the first dead letter.
    pub fn new(path: &Path) -> DeadLetters {
        DeadLetters {
            path: path.to_owned(),
            writer: None,
            written: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one dead letter. `event` is the original input line: inserted as JSON when it is
    /// JSON, as a string otherwise.
    pub fn write(
        &mut self,
        line: u64,
        destination: Option<&str>,
        reasons: &[String],
        event: &str,
    ) -> Result<(), String> {
        if self.writer.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| {
                    format!(
                        "cannot open the dead-letter file {}: {e}",
                        self.path.display()
                    )
                })?;
            self.writer = Some(BufWriter::new(file));
        }
        let writer = self.writer.as_mut().expect("opened above");
        let is_json = serde_json::from_str::<serde::de::IgnoredAny>(event).is_ok();
        let event = if is_json {
            event.trim().to_owned()
        } else {
            serde_json::to_string(event).expect("a string serializes")
        };
        let entry = format!(
            "{{\"line\":{line},\"destination\":{},\"reasons\":{},\"{}\":{event}}}\n",
            serde_json::to_string(&destination).expect("serializes"),
            serde_json::to_string(reasons).expect("serializes"),
            if is_json { "event" } else { "raw" },
        );
        writer.write_all(entry.as_bytes()).map_err(|e| {
            format!(
                "cannot write the dead-letter file {}: {e}",
                self.path.display()
            )
        })?;
        self.written += 1;
        Ok(())
    }

    /// Makes what was written durable; called before the checkpoint marks those events resolved.
    pub fn sync(&mut self) -> Result<(), String> {
        if let Some(writer) = &mut self.writer {
            writer
                .flush()
                .and_then(|()| writer.get_ref().sync_data())
                .map_err(|e| {
                    format!(
                        "cannot write the dead-letter file {}: {e}",
                        self.path.display()
                    )
                })?;
        }
        Ok(())
    }
}
