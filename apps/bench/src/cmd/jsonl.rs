//! `transcribe --output FILE.jsonl [--resume]`: a crash-safe log of finished inputs.
//!
//! Each finished input appends one line, built whole in memory and written with a single
//! `write_all` on a file opened in append mode (`O_APPEND`), then synced with `sync_data`.
//! The newline is the line's last byte, so a crash (or `SIGKILL`) at any point leaves the
//! complete lines before it and at most one torn last line without a newline. `--resume`
//! cuts that torn line off (truncating the file to the end of its last complete line)
//! before anything is appended, and skips the ids of the complete lines.
use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub struct JsonlOutput {
    file: File,
    path: PathBuf,
}

/// What an opened output file already holds.
pub struct Existing {
    /// The ids of its complete lines.
    pub ids: HashSet<String>,
    /// Bytes of a torn last line that were cut off.
    pub torn_bytes: u64,
}

impl JsonlOutput {
    /// Opens (or creates) `path` for appending and takes an exclusive advisory lock on it,
    /// so that a second process (a scheduler's retry while the first still runs) cannot
    /// interleave lines. A non-empty file is refused unless `resume`; with `resume` a torn
    /// last line is cut off and the ids already present are returned.
    pub fn open(path: &Path, resume: bool) -> Result<(Self, Existing)> {
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .with_context(|| format!("opening --output {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => bail!(
                "{} is locked by another process writing to it; wait for it to finish, or give \
                 each process its own --output (e.g. one per --shard)",
                path.display()
            ),
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                eprintln!(
                    "warning: {} cannot be locked on this file system; make sure only one \
                     process writes to it",
                    path.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
        if created {
            sync_parent(path);
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        if !bytes.is_empty() && !resume {
            bail!(
                "--output {} already exists and is not empty: pass --resume to skip the inputs \
                 it already holds and append the rest, or remove the file to start over",
                path.display()
            );
        }
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let torn_bytes = (bytes.len() - complete) as u64;
        if torn_bytes > 0 {
            file.set_len(complete as u64)
                .and_then(|()| file.sync_data())
                .with_context(|| format!("cutting the torn last line off {}", path.display()))?;
        }
        let mut ids = HashSet::new();
        for (n, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let id = serde_json::from_slice::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string));
            let Some(id) = id else {
                bail!(
                    "{} line {} is complete but not a JSON object with a string `id`; this file \
                     was not written by `transcribe --output`, or was edited: fix or remove that \
                     line and resume",
                    path.display(),
                    n + 1
                );
            };
            ids.insert(id);
        }
        Ok((
            Self {
                file,
                path: path.to_path_buf(),
            },
            Existing { ids, torn_bytes },
        ))
    }

    /// Appends `value` as one line: one `write_all` of the whole line, then `sync_data`.
    pub fn append(&mut self, value: &serde_json::Value) -> Result<()> {
        let mut line = serde_json::to_string(value)?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("appending to {}", self.path.display()))
    }
}

/// Makes a newly created file's directory entry durable (best effort; Unix only).
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
