//! Output files that appear whole or not at all, and nothing left behind.
//!
//! Each output is written to a temporary `.mmdnn-<pid>-<random>.partial` in its destination's
//! directory and renamed over the destination on commit; outputs written together (`.py` +
//! `.pth`, IR `.pb` + `.json` + `.npz`, `.onnx` + `.onnx.data`) are committed as one set
//! ([`commit_all`]), so the files on disk are always one writer's whole set, old or new, also
//! with two writers at once or a writer killed at any point (how: `commit.rs`). Dropping an
//! uncommitted file removes its temporary; a signal removes every registered temporary
//! (`registry.rs`); the temporaries of a killed run are removed by the next run that writes in
//! that directory. A destination that exists must be a regular file (renaming over a device,
//! a FIFO or a socket would replace the node itself); a symbolic link is followed, and the
//! regular file it names is replaced, keeping the link.
mod commit;
mod registry;

pub use commit::recover;
pub use registry::{install_signal_handler, run_child};

use anyhow::{bail, Context, Result};
use registry::Registered;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being written; becomes visible at `path` on `commit`.
pub struct AtomicFile {
    /// The path as given, for messages.
    path: PathBuf,
    /// Where the file goes: absolute, symbolic links followed.
    dest: PathBuf,
    file: std::fs::File,
    tmp: Registered,
}

/// Why an existing `path` cannot be an output, if it cannot: a directory, or no regular file
/// (a device, FIFO or socket), or a symbolic link to one of these or to nothing.
pub fn unwritable(path: &Path) -> Option<String> {
    let link = std::fs::symlink_metadata(path).ok()?;
    let is_link = link.file_type().is_symlink();
    let meta = if is_link {
        match std::fs::metadata(path) {
            Ok(m) => m,
            Err(_) => return Some("is a symbolic link to nothing".into()),
        }
    } else {
        link
    };
    let what = if meta.is_file() {
        return None;
    } else if meta.is_dir() {
        "is a directory"
    } else {
        "is not a regular file (a device, a FIFO or a socket): mmdnn writes a file and renames \
         it into place, which would replace it"
    };
    Some(if is_link {
        format!("is a symbolic link to a file that {what}")
    } else {
        what.into()
    })
}

/// The absolute path an output at `path` is renamed to (a symbolic link is followed), after
/// checking it can be written there.
fn destination(path: &Path) -> Result<PathBuf> {
    if let Some(why) = unwritable(path) {
        bail!("cannot write {}: it {why}", path.display());
    }
    let target = if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::canonicalize(path).with_context(|| format!("cannot resolve {}", path.display()))?
    } else {
        path.to_path_buf()
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        match dir
            .ancestors()
            .find(|a| a.exists() && !a.as_os_str().is_empty())
        {
            Some(file) if !file.is_dir() => bail!(
                "cannot write {}: {} is a file, not a directory",
                path.display(),
                file.display()
            ),
            _ => bail!(
                "cannot write {}: directory {} does not exist",
                path.display(),
                dir.display()
            ),
        }
    }
    let dir = std::fs::canonicalize(&dir)
        .with_context(|| format!("cannot resolve directory {}", dir.display()))?;
    let name = target
        .file_name()
        .with_context(|| format!("cannot write {}: it names no file", path.display()))?;
    Ok(dir.join(name))
}

/// The start of the names of this process's temporaries: `.mmdnn-<pid>-` (then random
/// characters and `.partial`).
fn own_prefix() -> String {
    format!(".mmdnn-{}-", std::process::id())
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let dest = destination(path)?;
        let dir = dest.parent().unwrap_or(Path::new("."));
        recover(dir);
        let prefix = own_prefix();
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".partial");
        // Like any created file: 0666 less the umask (a temporary file would be 0600).
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let mut reg = registry::lock();
        let (file, tmp) = builder
            .tempfile_in(dir)
            .and_then(|t| t.keep().map_err(|e| e.error))
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        let tmp = reg.register(tmp);
        Ok(AtomicFile {
            path: path.to_path_buf(),
            dest,
            file,
            tmp,
        })
    }

    pub fn file(&mut self) -> &mut std::fs::File {
        &mut self.file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames into place. The rename is what makes the file appear whole: a failure or a kill
    /// before it leaves only the temporary, removed on drop, on a signal, or by the next run.
    /// Like `cp`, and like the frameworks' own savers, the data is not forced to disk (no
    /// fsync): that would cost seconds per gigabyte and protects only against a power loss.
    pub fn commit(self) -> Result<()> {
        commit_all(vec![self])
    }
}

/// Writes `bytes` to a temporary file that appears at `path` on commit.
pub fn stage(path: &Path, bytes: &[u8]) -> Result<AtomicFile> {
    let mut f = AtomicFile::create(path)?;
    {
        let mut w = BufWriter::new(f.file());
        w.write_all(bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        w.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(f)
}

/// Commits files together: all are fully written before the first becomes visible, and they
/// appear as one set (see the module doc).
pub fn commit_all(files: Vec<AtomicFile>) -> Result<()> {
    let pairs: Vec<(PathBuf, PathBuf)> = files
        .iter()
        .map(|f| (f.tmp.path().to_path_buf(), f.dest.clone()))
        .collect();
    let guards = files.into_iter().map(|f| f.tmp).collect();
    commit::commit(&pairs, guards)
}

/// Moves files made elsewhere (by Python, into a [`TempDir`] in the destinations' directory)
/// into place as one set: `(made, destination)` pairs.
pub fn commit_made(files: &[(PathBuf, &Path)]) -> Result<()> {
    let pairs = files
        .iter()
        .map(|(made, to)| Ok((made.clone(), destination(to)?)))
        .collect::<Result<Vec<_>>>()?;
    commit::commit(&pairs, vec![])
}

/// A temporary directory, removed when dropped or on a signal.
pub struct TempDir(Registered);

impl TempDir {
    /// A new directory in the system's temporary directory (mode 0700).
    pub fn new() -> Result<TempDir> {
        TempDir::new_in(&std::env::temp_dir())
    }

    /// A new directory `.mmdnn-<pid>-<random>.partial` in `dir` (mode 0700), for files that
    /// will be renamed into `dir`.
    pub fn new_in(dir: &Path) -> Result<TempDir> {
        // Absolute, so that a commit journal naming files in it holds from any directory.
        let dir = &std::fs::canonicalize(dir)
            .with_context(|| format!("cannot resolve directory {}", dir.display()))?;
        recover(dir);
        let mut reg = registry::lock();
        let prefix = own_prefix();
        let path = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".partial")
            .tempdir_in(dir)
            .map(|d| d.keep())
            .with_context(|| format!("cannot create a temporary directory in {}", dir.display()))?;
        Ok(TempDir(reg.register(path)))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
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

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A link is written through (the link stays, its target gets the bytes); a link to a
    /// device and a link to nothing are refused, and the device stays.
    #[test]
    fn a_symbolic_link_is_written_through_and_a_device_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (target, link) = (dir.path().join("t.bin"), dir.path().join("l.bin"));
        std::fs::write(&target, "old").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");

        let null = dir.path().join("null");
        std::os::unix::fs::symlink("/dev/null", &null).unwrap();
        let err = write(&null, b"x").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = write(Path::new("/dev/null"), b"x").unwrap_err().to_string();
        assert!(
            err.contains("/dev/null") && err.contains("not a regular file"),
            "{err}"
        );
        assert!(!std::fs::metadata("/dev/null").unwrap().is_file());

        let dangling = dir.path().join("gone");
        std::os::unix::fs::symlink(dir.path().join("nothing"), &dangling).unwrap();
        let err = write(&dangling, b"x").unwrap_err().to_string();
        assert!(err.contains("symbolic link to nothing"), "{err}");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 4, "{names:?}");
    }

    fn write(path: &Path, bytes: &[u8]) -> Result<()> {
        stage(path, bytes)?.commit()
    }

    /// Members of a set in two directories: both appear, no journal or temporary is left.
    #[test]
    fn a_set_across_two_directories_commits_whole() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let files = vec![
            stage(&a.path().join("m.py"), b"code").unwrap(),
            stage(&b.path().join("w.pth"), b"weights").unwrap(),
        ];
        commit_all(files).unwrap();
        assert_eq!(std::fs::read(a.path().join("m.py")).unwrap(), b"code");
        assert_eq!(std::fs::read(b.path().join("w.pth")).unwrap(), b"weights");
        for d in [a.path(), b.path()] {
            assert_eq!(std::fs::read_dir(d).unwrap().count(), 1);
        }
    }
}
