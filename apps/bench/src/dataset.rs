//! Benchmark inputs: LibriSpeech folders, TSV manifests, or plain audio folders.

use std::fs;
use std::path::{Path, PathBuf};

/// One audio file to transcribe, with its reference transcript when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Utterance {
    pub id: String,
    pub path: PathBuf,
    pub reference: Option<String>,
}

/// Why a data set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: no such file or directory")]
    NotFound { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: manifest header has no `{column}` column (need at least `id` and `path`)")]
    MissingColumn { path: PathBuf, column: &'static str },
    #[error("utterance {id}: audio file {path} does not exist")]
    MissingAudio { id: String, path: PathBuf },
    #[error("utterance id {id} appears more than once")]
    DuplicateId { id: String },
    #[error("{path}: no utterances found (expected LibriSpeech *.trans.txt files, a .tsv manifest, or audio files)")]
    Empty { path: PathBuf },
}

/// File extensions (lower case) taken as audio.
pub const AUDIO_EXTENSIONS: &[&str] = &["wav", "flac", "mp3", "ogg", "opus", "m4a"];

/// Column names accepted for the reference transcript in a manifest.
const TRANSCRIPT_COLUMNS: &[&str] = &["transcript", "text", "reference", "sentence"];

fn is_audio(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Load the utterances of a data set.
///
/// `path` may be:
/// * **a LibriSpeech directory** in the official layout (any directory below
///   which `<speaker>/<chapter>/<speaker>-<chapter>.trans.txt` files exist,
///   e.g. `LibriSpeech/`, `LibriSpeech/test-clean/` or one chapter); every
///   `*.trans.txt` is found recursively, each line `<id> <TRANSCRIPT>` gives
///   an utterance whose audio is `<id>.flac` (or another audio extension)
///   beside it. Sorted by id.
/// * **a TSV manifest** (any file that is not audio): a header line with at
///   least `id` and `path` columns and optionally `transcript` (also accepted:
///   `text`, `reference`, `sentence`); other columns are ignored. Relative
///   paths are resolved against `root`; without `root`, against the manifest's
///   directory, or else the first immediate subdirectory of it (in name order)
///   under which the first row's audio exists (so `eval_200.tsv` next to
///   `LibriSpeech/` works as is). Manifest order is kept.
/// * **a folder of audio files** (wav, flac, mp3, ogg, opus, m4a; searched
///   recursively) without transcripts, for timing only: ids are the paths
///   relative to the folder without extension (`/`-separated). Sorted by id.
/// * **a single audio file**: one utterance without a transcript.
///
/// `root` only matters for manifests. `limit` keeps the first `limit`
/// utterances (after sorting). Every returned path is checked to exist.
pub fn load_dataset(
    path: &Path,
    root: Option<&Path>,
    limit: Option<usize>,
) -> Result<Vec<Utterance>, DatasetError> {
    if !path.exists() {
        return Err(DatasetError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let mut utterances = if path.is_dir() {
        let mut files = Vec::new();
        walk(path, &mut files)?;
        let transcripts: Vec<&PathBuf> = files
            .iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".trans.txt"))
            })
            .collect();
        let mut list = if transcripts.is_empty() {
            audio_folder(path, &files)
        } else {
            let mut list = Vec::new();
            for t in transcripts {
                read_librispeech_transcript(t, &mut list)?;
            }
            list
        };
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    } else if is_audio(path) {
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        vec![Utterance {
            id,
            path: path.to_path_buf(),
            reference: None,
        }]
    } else {
        read_manifest(path, root, limit)?
    };

    if let Some(limit) = limit {
        utterances.truncate(limit);
    }
    if utterances.is_empty() {
        return Err(DatasetError::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for u in &utterances {
        if !seen.insert(u.id.as_str()) {
            return Err(DatasetError::DuplicateId { id: u.id.clone() });
        }
        if !u.path.is_file() {
            return Err(DatasetError::MissingAudio {
                id: u.id.clone(),
                path: u.path.clone(),
            });
        }
    }
    Ok(utterances)
}

/// All files below `dir`, recursively (symlinks followed), in no set order.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), DatasetError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let p = entry.path();
        if p.is_dir() {
            walk(&p, files)?;
        } else {
            files.push(p);
        }
    }
    Ok(())
}

fn audio_folder(dir: &Path, files: &[PathBuf]) -> Vec<Utterance> {
    files
        .iter()
        .filter(|p| is_audio(p))
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap_or(p).with_extension("");
            let id = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            Utterance {
                id,
                path: p.clone(),
                reference: None,
            }
        })
        .collect()
}

fn read_librispeech_transcript(path: &Path, out: &mut Vec<Utterance>) -> Result<(), DatasetError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (id, transcript) =
            line.split_once(char::is_whitespace)
                .ok_or_else(|| DatasetError::Parse {
                    path: path.to_path_buf(),
                    line: n + 1,
                    message: "expected `<utterance-id> <TRANSCRIPT>`".into(),
                })?;
        let audio = AUDIO_EXTENSIONS
            .iter()
            .map(|ext| dir.join(format!("{id}.{ext}")))
            .find(|p| p.is_file())
            .unwrap_or_else(|| dir.join(format!("{id}.flac")));
        out.push(Utterance {
            id: id.to_string(),
            path: audio,
            reference: Some(transcript.trim().to_string()),
        });
    }
    Ok(())
}

fn read_manifest(
    path: &Path,
    root: Option<&Path>,
    limit: Option<usize>,
) -> Result<Vec<Utterance>, DatasetError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(DatasetError::Empty {
            path: path.to_path_buf(),
        });
    };
    let columns: Vec<String> = header
        .trim_start_matches('\u{feff}')
        .split('\t')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let find = |name: &'static str| -> Result<usize, DatasetError> {
        columns
            .iter()
            .position(|c| c == name)
            .ok_or(DatasetError::MissingColumn {
                path: path.to_path_buf(),
                column: name,
            })
    };
    let id_col = find("id")?;
    let path_col = find("path")?;
    let text_col = TRANSCRIPT_COLUMNS
        .iter()
        .find_map(|name| columns.iter().position(|c| c == name));

    let mut rows: Vec<(String, String, Option<String>)> = Vec::new();
    for (n, line) in lines {
        if limit.is_some_and(|l| rows.len() >= l) {
            break;
        }
        let fields: Vec<&str> = line.trim_end_matches('\r').split('\t').collect();
        let get = |col: usize| fields.get(col).map(|f| f.trim());
        let (Some(id), Some(rel)) = (get(id_col), get(path_col)) else {
            return Err(DatasetError::Parse {
                path: path.to_path_buf(),
                line: n + 1,
                message: format!(
                    "expected at least {} tab-separated fields",
                    id_col.max(path_col) + 1
                ),
            });
        };
        if id.is_empty() || rel.is_empty() {
            return Err(DatasetError::Parse {
                path: path.to_path_buf(),
                line: n + 1,
                message: "empty `id` or `path`".into(),
            });
        }
        let reference = text_col.and_then(get).map(str::to_string);
        rows.push((id.to_string(), rel.to_string(), reference));
    }

    let base = match root {
        Some(r) => r.to_path_buf(),
        None => default_manifest_root(path, rows.first().map(|r| r.1.as_str())),
    };
    Ok(rows
        .into_iter()
        .map(|(id, rel, reference)| {
            let p = Path::new(&rel);
            let full = if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            };
            Utterance {
                id,
                path: full,
                reference,
            }
        })
        .collect())
}

/// The manifest's directory, or the first subdirectory of it (by name)
/// holding the first row's audio.
fn default_manifest_root(manifest: &Path, first_rel: Option<&str>) -> PathBuf {
    let dir = match manifest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(rel) = first_rel else { return dir };
    if Path::new(rel).is_absolute() || dir.join(rel).is_file() {
        return dir;
    }
    let mut subdirs: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    subdirs.sort();
    subdirs
        .into_iter()
        .find(|d| d.join(rel).is_file())
        .unwrap_or(dir)
}
