//! `mmdnn tomodel` (MMdnn's `mmtomodel`): generated code + weights → target model file.
use super::args::{target_parser, usage_error, TargetFlags};
use crate::backends;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Target framework
    #[arg(short = 'f', long = "framework", value_parser = target_parser())]
    pub framework: String,
    /// Generated code (.py, extension optional)
    #[arg(long = "inputNetwork")]
    pub input_network: PathBuf,
    /// Weights written by tocode (-dw), or the IR weights
    #[arg(long = "inputWeight")]
    pub input_weight: PathBuf,
    /// Output model path
    #[arg(short = 'o', long = "outputModel")]
    pub output_model: PathBuf,
    #[command(flatten)]
    pub target: TargetFlags,
}

pub fn run(a: Args) -> Result<i32> {
    if let Err(msg) = a.target.check_for(&a.framework) {
        return Ok(usage_error(&msg));
    }
    backends::require(&a.framework)?;
    unreachable!("no target backend is available yet")
}
