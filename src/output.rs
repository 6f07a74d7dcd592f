//! Output files that appear whole or not at all: each is written to a temporary file in the
//! destination's directory and renamed over the destination on success. Dropping an uncommitted
//! file removes the temporary, so a failed conversion leaves nothing behind.
use anyhow::{Context, Result};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// A file being written; becomes visible at `path` on `commit`.
pub struct AtomicFile {
    path: PathBuf,
    tmp: NamedTempFile,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if path.is_dir() {
            anyhow::bail!("cannot write {}: it is a directory", path.display());
        }
        if !dir.is_dir() {
            match dir
                .ancestors()
                .find(|a| a.exists() && !a.as_os_str().is_empty())
            {
                Some(file) if !file.is_dir() => anyhow::bail!(
                    "cannot write {}: {} is a file, not a directory",
                    path.display(),
                    file.display()
                ),
                _ => anyhow::bail!(
                    "cannot write {}: directory {} does not exist",
                    path.display(),
                    dir.display()
                ),
            }
        }
        let mut builder = tempfile::Builder::new();
        builder.prefix(".mmdnn-").suffix(".partial");
        // Like any created file: 0666 less the umask (a temporary file would be 0600).
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let tmp = builder
            .tempfile_in(&dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
        })
    }

    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames into place. The rename is what makes the file appear whole: a failure or a kill
    /// before it leaves only the temporary, removed on drop. Like `cp`, and like the frameworks'
    /// own savers, the data is not forced to disk (no fsync): that would cost seconds per
    /// gigabyte and protects only against a power loss.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        // The rename's own error, once (the persist error repeats it as its source).
        self.tmp
            .persist(&path)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error))?;
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    stage(path, bytes)?.commit()
}

/// Writes `bytes` to a temporary file that appears at `path` on commit.
pub fn stage(path: &Path, bytes: &[u8]) -> Result<AtomicFile> {
    let mut f = AtomicFile::create(path)?;
    {
        let mut w = BufWriter::new(f.file());
        w.write_all(bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        w.flush()?;
    }
    Ok(f)
}

/// Commits files together: all are fully written before the first becomes visible.
pub fn commit_all(files: Vec<AtomicFile>) -> Result<()> {
    for f in files {
        f.commit()?;
    }
    Ok(())
}

/// `name` with every character but ASCII letters, digits, `.`, `_` and `-` replaced by `_`: a
/// plain file name (for `run`'s output files and the file names shown in generated code).
pub fn plain_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
