//! The `mmdnn` command line: one file per subcommand. Invoked as `mmconvert`, `mmtoir`,
//! `mmtocode`, `mmtomodel` or `mmdownload` (symlinks made by `mmdnn install-aliases`) it
//! behaves as that MMdnn command. MMdnn's flag spellings are accepted with MMdnn's meaning,
//! including its single-dash long flags (`-sf`, `-iw`, ...); an unknown flag or framework is a
//! usage error (exit 2). A failed conversion exits 1.
mod args;
mod convert;
mod download;
mod inputs;
mod inspect;
mod install_aliases;
mod layout;
mod ops;
mod run;
mod tocode;
mod toir;
mod tomodel;
mod verify;

use clap::{Parser, Subcommand};
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
    run(std::env::args_os().collect())
}

/// Runs the CLI on `argv` (argv[0] included) and returns the exit code.
pub fn run(argv: Vec<OsString>) -> i32 {
    let argv = args::normalize(argv);
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let result = match cli.command {
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}
