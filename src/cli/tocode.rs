//! `mmdnn tocode` (MMdnn's `mmtocode`): IR → readable target-framework Python code.
use super::args::{target_parser, usage_error, OnnxFlags, TargetFlags};
use crate::backends;
use crate::frontends::mmdnn;
use anyhow::{bail, Result};
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
    /// Keep the source's input and output layout (default: image tensors become channels-first)
    #[arg(long = "keep-layout")]
    pub keep_layout: bool,
    #[command(flatten)]
    pub target: TargetFlags,
    #[command(flatten)]
    pub onnx: OnnxFlags,
}

pub fn run(a: Args) -> Result<i32> {
    if let Err(msg) = a
        .target
        .check_for(&a.framework)
        .and_then(|_| a.onnx.check_for(&a.framework))
    {
        return Ok(usage_error(&msg));
    }
    let fw = backends::require(&a.framework)?;
    // The code needs the weights' shapes: -w, else <prefix>.npz / .npy beside the graph.
    let weights = a
        .ir_weights
        .clone()
        .or_else(|| mmdnn::sibling_weights(&a.ir_model));
    if weights.is_none() {
        bail!(
            "no weights for {}: pass -w <prefix>.npz",
            a.ir_model.display()
        );
    }
    let loaded = mmdnn::load_ir(&a.ir_model, weights.as_deref())?;
    match fw.name {
        "pytorch" => backends::pytorch::saver::tocode(
            &loaded.graph,
            loaded.weights.as_ref(),
            a.keep_layout,
            &a.dst_model,
            a.dst_weights.as_deref(),
        )?,
        "onnx" => backends::onnx::code::tocode(
            &loaded.graph,
            loaded.weights.as_ref(),
            weights.as_deref().expect("checked above"),
            &a.dst_model,
            a.onnx.options(a.keep_layout),
        )?,
        other => bail!("internal: no code emitter is wired for {other}"),
    }
    Ok(0)
}
