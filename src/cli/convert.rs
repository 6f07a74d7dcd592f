//! `mmdnn convert` (MMdnn's `mmconvert`): source model → target model in one step.
use super::args::{source_parser, target_parser, usage_error, ParserFlags, TargetFlags};
use crate::{backends, frontends};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Source framework
    #[arg(long = "srcFramework", value_parser = source_parser())]
    pub src_framework: String,
    /// Network (structure) file
    #[arg(long = "inputNetwork")]
    pub input_network: Option<PathBuf>,
    /// Weights file (or the whole model file)
    #[arg(long = "inputWeight")]
    pub input_weight: Option<PathBuf>,
    /// Target framework
    #[arg(long = "dstFramework", value_parser = target_parser())]
    pub dst_framework: String,
    /// Output model path
    #[arg(long = "outputModel")]
    pub output_model: PathBuf,
    #[command(flatten)]
    pub parser: ParserFlags,
    #[command(flatten)]
    pub target: TargetFlags,
}

pub fn run(a: Args) -> Result<i32> {
    if let Err(msg) = a.target.check_for(&a.dst_framework) {
        return Ok(usage_error(&msg));
    }
    // Fail before the (possibly slow) parse when the target cannot be written.
    backends::require(&a.dst_framework)?;
    let source = a.parser.source_args(a.input_network, a.input_weight);
    let _loaded = frontends::load(&a.src_framework, &source)?;
    unreachable!("no target backend is available yet")
}
