//! Input lists: files on the command line or a manifest (`id`, `path` columns).
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Input {
    pub id: String,
    pub path: PathBuf,
}

/// Files given directly, plus the rows of `manifest` (paths relative to `root`, or to the
/// manifest's folder when no root is given).
pub fn collect(
    files: &[PathBuf],
    manifest: Option<&Path>,
    root: Option<&Path>,
    limit: Option<usize>,
) -> Result<Vec<Input>> {
    let mut inputs: Vec<Input> = files
        .iter()
        .map(|p| Input {
            id: p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: p.clone(),
        })
        .collect();
    if let Some(m) = manifest {
        inputs.extend(read_manifest(m, root)?);
    }
    if let Some(n) = limit {
        inputs.truncate(n);
    }
    if inputs.is_empty() {
        bail!("no input: give audio files or --manifest");
    }
    Ok(inputs)
}

/// `--shard I/N`: the inputs at positions I, I+N, I+2N, ... (0-based) of the ordered input
/// list. The N shards of one list are disjoint and together cover it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || {
            format!(
                "`{s}` is not a shard: give I/N with 0 <= I < N, e.g. `0/4` .. `3/4` \
                 (Kubernetes Indexed Job: `$JOB_COMPLETION_INDEX/N`)"
            )
        };
        let (i, n) = s.trim().split_once('/').ok_or_else(err)?;
        let index: usize = i.trim().parse().map_err(|_| err())?;
        let count: usize = n.trim().parse().map_err(|_| err())?;
        if count == 0 || index >= count {
            return Err(err());
        }
        Ok(Self { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Keeps this shard's inputs, in their order.
    pub fn select(&self, inputs: Vec<Input>) -> Vec<Input> {
        inputs
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index)
            .map(|(_, input)| input)
            .collect()
    }
}

fn read_manifest(path: &Path, root: Option<&Path>) -> Result<Vec<Input>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading manifest {}", path.display()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .context("empty manifest")?
        .split('\t')
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(id_col), Some(path_col)) = (col("id"), col("path")) else {
        bail!("manifest {} needs `id` and `path` columns", path.display());
    };
    let base = root
        .map(Path::to_path_buf)
        .unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")).to_path_buf());
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            let (Some(id), Some(p)) = (cells.get(id_col), cells.get(path_col)) else {
                bail!("manifest row without id/path: {l}");
            };
            Ok(Input {
                id: id.to_string(),
                path: base.join(p),
            })
        })
        .collect()
}
