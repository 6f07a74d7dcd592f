//! MMdnn's command names as executables of their own, for installs that cannot make symlinks
//! (a wheel, `cargo install`): each replaces itself with the `mmdnn` binary beside it, run
//! under the alias's name, so the program name selects the command (`mmdnn::cli::ALIASES`). No
//! converter code is linked in: each is a few hundred kilobytes, not a copy of `mmdnn`.
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Runs `mmdnn` as `name` with this process's arguments. Returns only when that fails.
pub fn exec(name: &str) -> i32 {
    let mmdnn = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name("mmdnn"),
        Err(e) => {
            eprintln!("error: {name}: cannot locate its own executable: {e}");
            return 1;
        }
    };
    let err = Command::new(&mmdnn)
        .arg0(name)
        .args(std::env::args_os().skip(1))
        .exec();
    eprintln!(
        "error: {name} runs the mmdnn binary installed beside it, {}, which cannot be run: \
         {err}. Reinstall mmdnn, or make {name} a link to mmdnn with `mmdnn install-aliases DIR`.",
        mmdnn.display()
    );
    1
}
