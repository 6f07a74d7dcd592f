//! Committing a set of outputs, and recovering from a writer killed before or during its commit.
//!
//! - Names: every temporary this process makes beside an output is `.mmdnn-<pid>-<random>.partial`
//!   (a file, or a directory for Python's output), and a commit journal is
//!   `.mmdnn-<pid>-<random>.commit`; the pid says whose it is.
//! - Commit: all members are complete temporaries first. The committer takes an exclusive
//!   `flock` on each destination directory (in a fixed order; the lock is on the directory
//!   itself, so no lock file is left), rolls forward any journal a dead writer left there, and,
//!   for more than one member, writes a journal listing every temporary → destination pair into
//!   each destination directory (written aside and renamed, so a journal is whole or absent),
//!   renames the members into place and removes the journals. Two writers' commits thus never
//!   interleave, and a writer killed between renames leaves a journal whose temporaries are all
//!   complete.
//! - Recovery ([`recover`], run for a directory before this process first writes there, and by
//!   the CLI's path checks): under the same lock, a journal whose pid is no live process is
//!   rolled forward (the temporaries it lists that still exist are renamed into place), then
//!   every `.mmdnn-<pid>-*.partial` whose pid is no live process is removed.
//!
//! So the outputs on disk are one writer's whole set, old or new, once any later run has touched
//! the directory. A process in another pid namespace writing to the same directory at the same
//! time would look dead; its temporary could then be removed and its run fail (never a mixed set).
use super::registry::{self, Registered};
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const PREFIX: &str = ".mmdnn-";
const PARTIAL: &str = ".partial";
const JOURNAL: &str = ".commit";

/// A unique name for a file of this process in `dir`: `.mmdnn-<pid>-<unique><suffix>`.
fn own_name(dir: &Path, suffix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(
        "{PREFIX}{}-{nanos:08x}{n:x}{suffix}",
        std::process::id()
    ))
}

/// The pid in a name of ours with `suffix` (`.mmdnn-<pid>-…<suffix>`).
fn pid_of(name: &str, suffix: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(suffix)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

/// Whether a process with this id exists (a process we may not signal exists too).
#[cfg(target_os = "linux")]
fn is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(target_os = "linux"))]
fn is_alive(_pid: u32) -> bool {
    true
}

/// An exclusive lock on a directory, held until dropped.
struct DirLock {
    _file: Option<std::fs::File>,
}

#[cfg(target_os = "linux")]
fn lock_dir(dir: &Path) -> DirLock {
    use std::os::fd::AsRawFd;
    // A directory we cannot open for reading is written without the lock (as before it).
    let Ok(file) = std::fs::File::open(dir) else {
        return DirLock { _file: None };
    };
    // SAFETY: flock on a descriptor we own; it is released when the file closes.
    while unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return DirLock { _file: None };
        }
    }
    DirLock { _file: Some(file) }
}

#[cfg(not(target_os = "linux"))]
fn lock_dir(_dir: &Path) -> DirLock {
    DirLock { _file: None }
}

/// Our files in `dir` with `suffix`, with their pid.
fn ours(dir: &Path, suffix: &str) -> Vec<(PathBuf, u32)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let pid = pid_of(name.to_str()?, suffix)?;
            Some((e.path(), pid))
        })
        .collect()
}

/// Cleans up after dead writers in `dir` (see the module doc), once per directory and process.
pub fn recover(dir: &Path) {
    static DONE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !DONE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(dir.clone())
    {
        return;
    }
    let _lock = lock_dir(&dir);
    roll_forward(&dir);
    for (path, pid) in ours(&dir, PARTIAL) {
        if !is_alive(pid) {
            registry::remove_path(&path);
        }
    }
}

/// Completes the commits of dead writers in `dir` (the caller holds its lock).
fn roll_forward(dir: &Path) {
    for (journal, pid) in ours(dir, JOURNAL) {
        if is_alive(pid) {
            continue;
        }
        let Ok(text) = std::fs::read(&journal) else {
            continue;
        };
        let (pairs, copies) = parse_journal(&text).unwrap_or_default();
        for (from, to) in pairs {
            if std::fs::symlink_metadata(&from).is_ok() {
                let _ = std::fs::rename(&from, &to);
            }
        }
        for copy in copies {
            let _ = std::fs::remove_file(copy);
        }
        let _ = std::fs::remove_file(&journal);
    }
}

/// Renames every `(temporary, destination)` pair into place as one set (see the module doc);
/// `guards`, the temporaries' registrations, are disarmed once they are in place. Destinations
/// are absolute paths in existing directories.
pub(super) fn commit(pairs: &[(PathBuf, PathBuf)], guards: Vec<Registered>) -> Result<()> {
    let dirs: BTreeSet<PathBuf> = pairs
        .iter()
        .filter_map(|(_, to)| to.parent().map(Path::to_path_buf))
        .collect();
    let _locks: Vec<DirLock> = dirs.iter().map(|d| lock_dir(d)).collect();
    let mut reg = registry::lock();
    for d in &dirs {
        roll_forward(d);
    }
    let journals: Vec<PathBuf> = if pairs.len() > 1 {
        dirs.iter().map(|d| own_name(d, JOURNAL)).collect()
    } else {
        vec![]
    };
    let text = journal_text(pairs, &journals);
    for journal in &journals {
        let dir = journal.parent().unwrap_or(Path::new("."));
        let aside = own_name(dir, PARTIAL);
        let written = std::fs::write(&aside, &text).and_then(|_| std::fs::rename(&aside, journal));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&aside);
            for j in &journals {
                let _ = std::fs::remove_file(j);
            }
            return Err(e).with_context(|| format!("cannot write to {}", dir.display()));
        }
    }
    let mut result = Ok(());
    for (i, (from, to)) in pairs.iter().enumerate() {
        if let Err(e) = std::fs::rename(from, to) {
            result = Err(anyhow::anyhow!("cannot write {}: {e}", to.display()));
            break;
        }
        if i == 0 && pairs.len() > 1 {
            test_pause();
        }
    }
    for journal in &journals {
        let _ = std::fs::remove_file(journal);
    }
    if result.is_ok() {
        for g in guards {
            g.disarm(&mut reg);
        }
    }
    result
}

/// A test hook: `MMDNN_TEST_COMMIT_PAUSE_MS` widens the window between a set's first rename and
/// the next (the kill and concurrent-writer tests in `tests/outputs_kill.rs` aim at it).
fn test_pause() {
    if let Some(ms) = std::env::var("MMDNN_TEST_COMMIT_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// A journal: `mmdnn-commit 1`, one `rename <from> <to>` line per pair and one `journal <path>`
/// line per copy, each path as the hex of its bytes, then `end`.
fn journal_text(pairs: &[(PathBuf, PathBuf)], copies: &[PathBuf]) -> String {
    let mut text = String::from("mmdnn-commit 1\n");
    for (from, to) in pairs {
        text += &format!("rename {} {}\n", hex(from), hex(to));
    }
    for c in copies {
        text += &format!("journal {}\n", hex(c));
    }
    text + "end\n"
}

type Journal = (Vec<(PathBuf, PathBuf)>, Vec<PathBuf>);

fn parse_journal(bytes: &[u8]) -> Option<Journal> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.lines();
    if lines.next()? != "mmdnn-commit 1" {
        return None;
    }
    let (mut pairs, mut copies) = (vec![], vec![]);
    for line in lines {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["rename", from, to] => pairs.push((unhex(from)?, unhex(to)?)),
            ["journal", path] => copies.push(unhex(path)?),
            ["end"] => return Some((pairs, copies)),
            _ => return None,
        }
    }
    None
}

#[cfg(unix)]
fn path_bytes(p: &Path) -> Vec<u8> {
    std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec()
}

#[cfg(not(unix))]
fn path_bytes(p: &Path) -> Vec<u8> {
    p.to_string_lossy().into_owned().into_bytes()
}

fn hex(p: &Path) -> String {
    path_bytes(p).iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<PathBuf> {
    if s.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    #[cfg(unix)]
    return Some(PathBuf::from(
        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes),
    ));
    #[cfg(not(unix))]
    return String::from_utf8(bytes).ok().map(PathBuf::from);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_reads_back_and_a_cut_one_does_not() {
        let pairs = vec![(
            PathBuf::from("/d/.mmdnn-1-a.partial"),
            PathBuf::from("/d/m n\n.pb"),
        )];
        let copies = vec![PathBuf::from("/d/.mmdnn-1-b.commit")];
        let text = journal_text(&pairs, &copies);
        assert_eq!(parse_journal(text.as_bytes()), Some((pairs, copies)));
        assert_eq!(parse_journal(&text.as_bytes()[..text.len() - 4]), None);
    }

    #[test]
    fn names_say_whose_they_are() {
        let name = own_name(Path::new("/x"), PARTIAL);
        let name = name.file_name().unwrap().to_str().unwrap();
        assert_eq!(pid_of(name, PARTIAL), Some(std::process::id()));
        assert_eq!(pid_of(".mmdnn-abc-1.partial", PARTIAL), None);
        assert_eq!(pid_of(".mmdnn-12-1.partial", JOURNAL), None);
        assert!(is_alive(std::process::id()));
    }

    /// A writer killed between its renames: the next run in the directory completes its set,
    /// and removes the temporaries of dead writers, keeping a live one's.
    #[test]
    fn a_dead_writers_journal_is_rolled_forward_and_its_partials_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = std::fs::canonicalize(dir.path()).unwrap();
        let dead = dead_pid();
        let tmp = |n: &str| d.join(format!(".mmdnn-{dead}-{n}.partial"));
        std::fs::write(d.join("m.pb"), "new").unwrap(); // renamed before the kill
        std::fs::write(d.join("m.json"), "old").unwrap();
        std::fs::write(tmp("json"), "new").unwrap();
        std::fs::write(tmp("stray"), "x").unwrap();
        let live = d.join(format!(".mmdnn-{}-x.partial", std::process::id()));
        std::fs::write(&live, "mine").unwrap();
        let journal = d.join(format!(".mmdnn-{dead}-j.commit"));
        let pairs = vec![(tmp("pb"), d.join("m.pb")), (tmp("json"), d.join("m.json"))];
        std::fs::write(
            &journal,
            journal_text(&pairs, std::slice::from_ref(&journal)),
        )
        .unwrap();
        recover(&d);
        assert_eq!(std::fs::read_to_string(d.join("m.json")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(d.join("m.pb")).unwrap(), "new");
        let mut left: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        left.sort();
        assert_eq!(left, vec![live, d.join("m.json"), d.join("m.pb")]);
    }

    /// The id of a process that has ended.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!is_alive(pid));
        pid
    }
}
