//! The `mmdnn` command line: one file per subcommand. Invoked as `mmconvert`, `mmtoir`,
//! `mmtocode`, `mmtomodel` or `mmdownload` (symlinks made by `mmdnn install-aliases`) it
//! behaves as that MMdnn command. MMdnn's flag spellings are accepted with MMdnn's meaning,
//! including its single-dash long flags (`-sf`, `-iw`, ...). Exit codes (docs/CLI.md): 0
//! success, 1 a failed conversion or a verification out of tolerance, 2 bad usage (an unknown
//! flag or framework, a path that cannot be right). An internal error is reported, exit 1,
//! never as a panic.
mod args;
mod convert;
mod download;
mod inputs;
mod inspect;
mod install_aliases;
mod layout;
mod ops;
mod paths;
mod run;
mod summary;
mod tocode;
mod toir;
mod tomodel;
mod verify;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;

#[derive(Parser)]
#[command(
    name = "mmdnn",
    version,
    about = "Convert trained deep-learning models between frameworks",
    long_about = "Convert trained deep-learning models between frameworks through a validated \
                  intermediate representation (IR). Frameworks are read natively: converting \
                  needs no source framework installed."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One-shot conversion: source model → target model (MMdnn's mmconvert)
    Convert(convert::Args),
    /// Source model → IR: <prefix>.pb, <prefix>.json, <prefix>.npz (MMdnn's mmtoir)
    Toir(toir::Args),
    /// IR → readable target-framework Python code (MMdnn's mmtocode)
    Tocode(tocode::Args),
    /// Generated code + weights → target model file (MMdnn's mmtomodel)
    Tomodel(tomodel::Args),
    /// Download a pretrained model from the catalogue, checksum verified (MMdnn's mmdownload)
    Download(download::Args),
    /// Summarise an IR or model file: inputs, outputs, ops, parameters, unsupported ops
    Inspect(inspect::Args),
    /// Run a model in the reference interpreter; write its outputs as .npy
    Run(run::Args),
    /// Compare a candidate model with a reference on the same inputs, per output and per layer
    Verify(verify::Args),
    /// Convert an IR between channels-first and channels-last
    Layout(layout::Args),
    /// List the IR op catalogue (or print docs/ops.md and the support matrix)
    Ops(ops::Args),
    /// Create mmconvert, mmtoir, mmtocode, mmtomodel and mmdownload symlinks in DIR
    InstallAliases(install_aliases::Args),
}

/// Commands reachable through their MMdnn names.
pub const ALIASES: &[(&str, &str)] = &[
    ("mmconvert", "convert"),
    ("mmtoir", "toir"),
    ("mmtocode", "tocode"),
    ("mmtomodel", "tomodel"),
    ("mmdownload", "download"),
];

pub fn main() -> i32 {
    // A panic is a bug: said as such, in one line, instead of a backtrace hint.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error (a bug in mmdnn, please report it): {info}");
    }));
    run(std::env::args_os().collect())
}

/// Runs the CLI on `argv` (argv[0] included) and returns the exit code.
pub fn run(argv: Vec<OsString>) -> i32 {
    let (alias, argv) = args::normalize(argv);
    let parsed = match alias {
        Some(sub) => parse_alias(sub, argv),
        None => Cli::try_parse_from(argv).map(|cli| cli.command),
    };
    let command = match parsed {
        Ok(command) => command,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    guarded(|| match command {
        Command::Convert(a) => convert::run(a),
        Command::Toir(a) => toir::run(a),
        Command::Tocode(a) => tocode::run(a),
        Command::Tomodel(a) => tomodel::run(a),
        Command::Download(a) => download::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Run(a) => run::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Layout(a) => layout::run(a),
        Command::Ops(a) => ops::run(a),
        Command::InstallAliases(a) => install_aliases::run(a),
    })
}

/// Parses the arguments of an MMdnn command name as that subcommand's, so its help and errors
/// read `mmconvert [OPTIONS] ...`.
fn parse_alias(sub: &'static str, argv: Vec<OsString>) -> Result<Command, clap::Error> {
    let alias = ALIASES
        .iter()
        .find(|(_, s)| *s == sub)
        .map_or(sub, |(a, _)| *a);
    let cmd = Cli::command()
        .find_subcommand(sub)
        .cloned()
        .expect("every alias names a subcommand")
        .name(alias)
        .bin_name(alias)
        .version(env!("CARGO_PKG_VERSION"));
    let m = cmd.try_get_matches_from(argv)?;
    Ok(match sub {
        "convert" => Command::Convert(convert::Args::from_arg_matches(&m)?),
        "toir" => Command::Toir(toir::Args::from_arg_matches(&m)?),
        "tocode" => Command::Tocode(tocode::Args::from_arg_matches(&m)?),
        "tomodel" => Command::Tomodel(tomodel::Args::from_arg_matches(&m)?),
        _ => Command::Download(download::Args::from_arg_matches(&m)?),
    })
}

/// Runs a command: its exit code, 1 for an error (printed) or a panic (printed by the hook).
fn guarded(command: impl FnOnce() -> anyhow::Result<i32>) -> i32 {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(command)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            1
        }
        Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_panics_exit_1() {
        assert_eq!(guarded(|| Ok(2)), 2);
        assert_eq!(guarded(|| anyhow::bail!("failed")), 1);
        assert_eq!(guarded(|| panic!("internal")), 1);
    }
}
