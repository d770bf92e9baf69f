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
