//! What a signal must clean up: every temporary file and directory this process made (output
//! temporaries, work directories, an extracted `.keras` weights file) and every child process
//! it runs, in one process-wide registry. On Linux, [`install_signal_handler`] blocks SIGINT,
//! SIGTERM and SIGHUP in every thread and waits for them on a thread of its own (`sigwait`, so
//! nothing runs in signal context); on one it stops the children, removes the registered paths
//! and exits with 128 + the signal's number (130, 143, 129). A blocked mask survives exec, so
//! [`run_child`] empties it in the child: Python runners still react to signals.
//!
//! The registry's lock is also what makes a set of outputs appear together: a commit holds it
//! for its renames (see `commit.rs`), so a signal during a commit waits for the set to be in
//! place, and once the handler holds it no new temporary can be made.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub(super) struct Registry {
    next: u64,
    temps: BTreeMap<u64, PathBuf>,
    children: BTreeSet<u32>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    temps: BTreeMap::new(),
    children: BTreeSet::new(),
});

/// The registry, locked (a panic elsewhere does not make it unusable).
pub(super) fn lock() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// Registers `path` for removal on a signal; removed when the returned guard drops unless
    /// it was disarmed.
    pub(super) fn register(&mut self, path: PathBuf) -> Registered {
        self.next += 1;
        self.temps.insert(self.next, path.clone());
        Registered {
            id: self.next,
            path,
            armed: true,
        }
    }
}

/// A registered temporary path: removed (file or directory) when dropped while armed.
pub(super) struct Registered {
    id: u64,
    path: PathBuf,
    armed: bool,
}

impl Registered {
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The path is no temporary any more (it was renamed into place): forget it, with the
    /// registry already locked by the caller.
    pub(super) fn disarm(mut self, reg: &mut Registry) {
        self.armed = false;
        reg.temps.remove(&self.id);
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut reg = lock();
        remove_path(&self.path);
        reg.temps.remove(&self.id);
    }
}

/// Removes a file, or a directory with its contents; a path already gone is fine.
pub(super) fn remove_path(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// Runs `cmd` to completion like [`std::process::Command::output`], registered so that a signal
/// stops it (SIGTERM, then SIGKILL after two seconds) before the temporaries go.
pub fn run_child(cmd: &mut std::process::Command) -> std::io::Result<std::process::Output> {
    use std::process::Stdio;
    // The handler thread's mask is inherited across exec: the child starts with none.
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (sigemptyset, pthread_sigmask).
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = {
        let mut reg = lock();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        reg.children.insert(child.id());
        child
    };
    let id = child.id();
    let out = child.wait_with_output();
    lock().children.remove(&id);
    out
}

/// Blocks SIGINT, SIGTERM and SIGHUP and starts the thread that handles them. Call it first
/// in `main`, before any other thread starts, so every thread inherits the mask.
#[cfg(target_os = "linux")]
pub fn install_signal_handler() {
    // SAFETY: plain libc calls on a local signal set.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new()
        .name("mmdnn-signals".into())
        .spawn(move || loop {
            let mut sig = 0;
            // SAFETY: `set` is a valid signal set; `sig` receives the signal taken.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                on_signal(sig);
            }
        });
    if spawned.is_err() {
        // No handler thread: leave the signals' default action in place.
        // SAFETY: as above.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn install_signal_handler() {}

/// Stops the children, removes every registered temporary and exits; the registry stays
/// locked, so no new temporary appears and a commit under way finishes first.
#[cfg(target_os = "linux")]
fn on_signal(sig: i32) -> ! {
    let reg = lock();
    stop_children(&reg.children);
    for path in reg.temps.values() {
        remove_path(path);
    }
    // SAFETY: ends the process at once: no destructor may run after the cleanup.
    unsafe { libc::_exit(128 + sig) }
}

/// SIGTERM to each child, then up to two seconds for them to end, then SIGKILL.
#[cfg(target_os = "linux")]
fn stop_children(children: &BTreeSet<u32>) {
    let pids: Vec<libc::pid_t> = children
        .iter()
        .filter_map(|&p| libc::pid_t::try_from(p).ok())
        .collect();
    // SAFETY: signals and non-blocking waits on our own children's ids.
    unsafe {
        for &pid in &pids {
            libc::kill(pid, libc::SIGTERM);
        }
        let mut left = pids.clone();
        for _ in 0..200 {
            left.retain(|&pid| libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) == 0);
            if left.is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for &pid in &left {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The handler's mask must not reach the Python runners (the standard library keeps a
    /// blocked mask across spawn; `run_child` empties it).
    #[test]
    fn a_child_starts_with_no_blocked_signal() {
        let child = std::thread::spawn(|| {
            // SAFETY: blocks SIGTERM in this test thread only.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                let mut now: libc::sigset_t = std::mem::zeroed();
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut now);
                assert_eq!(libc::sigismember(&now, libc::SIGTERM), 1);
            }
            let out = super::run_child(std::process::Command::new("cat").arg("/proc/self/status"))
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        });
        let status = child.join().unwrap();
        let blocked = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .unwrap()
            .trim();
        assert_eq!(u64::from_str_radix(blocked, 16).unwrap(), 0);
    }
}
