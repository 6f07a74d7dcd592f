//! `mmdnn tocode` (MMdnn's `mmtocode`): IR → readable target-framework Python code.
use super::args::{target_parser, usage_error, TargetFlags};
use crate::backends;
use crate::frontends::mmdnn_ir;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Target framework
    #[arg(short = 'f', long = "dstFramework", value_parser = target_parser())]
    pub framework: String,
    /// IR graph (.pb); MMdnn's -in
    #[arg(short = 'n', long = "IRModelPath", visible_alias = "inputNetwork")]
    pub ir_model: PathBuf,
    /// IR weights (.npz, or MMdnn's .npy); MMdnn's -iw
    #[arg(short = 'w', long = "IRWeightPath", visible_alias = "inputWeight")]
    pub ir_weights: Option<PathBuf>,
    /// Generated code path; MMdnn's -o
    #[arg(short = 'd', short_alias = 'o', long = "dstModelPath")]
    pub dst_model: PathBuf,
    /// Converted weights path; MMdnn's -dw / -ow
    #[arg(long = "dstWeightPath")]
    pub dst_weights: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetFlags,
}

pub fn run(a: Args) -> Result<i32> {
    if let Err(msg) = a.target.check_for(&a.framework) {
        return Ok(usage_error(&msg));
    }
    backends::require(&a.framework)?;
    let _loaded = mmdnn_ir::load_ir(&a.ir_model, a.ir_weights.as_deref())?;
    unreachable!("no target backend is available yet")
}
