//! `mmdnn convert` (MMdnn's `mmconvert`): source model → target model in one step.
use super::args::{source_parser, target_parser, usage_error, OnnxFlags, ParserFlags, TargetFlags};
use crate::backends::pytorch::saver::Format;
use crate::{backends, frontends};
use anyhow::{bail, Result};
use clap::builder::PossibleValuesParser;
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
    /// Keep the source's input and output layout (default: image tensors become channels-first)
    #[arg(long = "keep-layout")]
    pub keep_layout: bool,
    /// [PyTorch] model file format: state_dict (no Python needed), torchscript, export (.pt2)
    /// or pickle (the whole module, as MMdnn saved it)
    #[arg(long, default_value = "state_dict", value_parser = PossibleValuesParser::new(Format::NAMES))]
    pub format: String,
    /// Python interpreter for the formats that run PyTorch (default: MMDNN_PYTHON, the active
    /// virtual environment, else python3)
    #[arg(long)]
    pub python: Option<PathBuf>,
    #[command(flatten)]
    pub parser: ParserFlags,
    #[command(flatten)]
    pub target: TargetFlags,
    #[command(flatten)]
    pub onnx: OnnxFlags,
}

pub fn run(a: Args) -> Result<i32> {
    if let Err(msg) = a
        .target
        .check_for(&a.dst_framework)
        .and_then(|_| a.onnx.check_for(&a.dst_framework))
    {
        return Ok(usage_error(&msg));
    }
    // Fail before the (possibly slow) parse when the target cannot be written.
    let fw = backends::require(&a.dst_framework)?;
    let format = Format::parse(&a.format)?;
    let source = a.parser.source_args(a.input_network, a.input_weight);
    let loaded = frontends::load(&a.src_framework, &source)?;
    match fw.name {
        "pytorch" => backends::pytorch::saver::convert(
            &loaded.graph,
            loaded.weights.as_ref(),
            &a.output_model,
            a.keep_layout,
            format,
            a.python.as_deref(),
        )?,
        "onnx" => backends::onnx::save(
            &loaded.graph,
            loaded.weights.as_ref(),
            &a.output_model,
            a.onnx.options(a.keep_layout),
        )?,
        other => bail!("internal: no backend is wired for {other}"),
    }
    Ok(0)
}
