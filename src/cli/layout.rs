//! `mmdnn layout`: converts an IR between channels-first and channels-last (the pass every
//! emitter uses), writing a new IR; `--verbose` prints the decision taken at each node.
use super::args::usage_error;
use super::paths::Paths;
use crate::frontends::ir_files;
use crate::ir::passes::layout::{convert_layout, Target};
use crate::ir::serialize::{with_suffix, write_ir};
use anyhow::Result;
use clap::builder::PossibleValuesParser;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// IR graph (.pb)
    #[arg(short = 'n', long = "network")]
    pub network: PathBuf,
    /// IR weights (default: next to the graph)
    #[arg(short = 'w', long = "weights")]
    pub weights: Option<PathBuf>,
    /// Target layout
    #[arg(long, value_parser = PossibleValuesParser::new(["channels_first", "channels_last"]))]
    pub to: String,
    /// Keep the graph inputs and outputs in their original layout (Transposes at the boundary)
    #[arg(long = "keep-io")]
    pub keep_io: bool,
    /// Output prefix: writes <prefix>.pb, <prefix>.json and <prefix>.npz
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Print the decision taken at each node
    #[arg(short, long)]
    pub verbose: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let weights = a.weights.or_else(|| ir_files::sibling_weights(&a.network));
    let outputs: Vec<PathBuf> = ["pb", "json", "npz"]
        .iter()
        .map(|ext| with_suffix(&a.output, ext))
        .collect();
    let paths = Paths::new()
        .input("-n/--network", Some(&a.network))
        .input("-w/--weights", weights.as_deref());
    let checked = outputs
        .iter()
        .fold(paths, |paths, p| paths.output("-o/--output", Some(p)))
        .check();
    if let Err(msg) = checked {
        return Ok(usage_error(&msg));
    }
    let loaded = ir_files::load_ir(&a.network, weights.as_deref())?;
    let target = if a.to == "channels_first" {
        Target::ChannelsFirst
    } else {
        Target::ChannelsLast
    };
    let result = convert_layout(&loaded.graph, loaded.weights.as_ref(), target, a.keep_io)?;
    if a.verbose {
        for line in &result.log {
            eprintln!("{line}");
        }
    }
    for (name, perm) in result.graph.inputs.iter().zip(&result.input_perms) {
        if let Some(p) = perm {
            eprintln!("input {name}: now fed transposed by {p:?}");
        }
    }
    for (r, perm) in result.graph.outputs.iter().zip(&result.output_perms) {
        if let Some(p) = perm {
            eprintln!("output {r}: now produced transposed by {p:?}");
        }
    }
    for p in write_ir(&result.graph, &result.weights, &a.output)? {
        eprintln!("wrote {}", p.display());
    }
    Ok(0)
}
