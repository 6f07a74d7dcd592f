//! `mmdnn tomodel` (MMdnn's `mmtomodel`): generated code + weights → target model file.
use super::args::{target_parser, usage_error, OnnxFlags, TargetFlags};
use crate::backends;
use crate::backends::pytorch::saver::Format;
use anyhow::{bail, Result};
use clap::builder::PossibleValuesParser;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Target framework
    #[arg(short = 'f', long = "framework", value_parser = target_parser())]
    pub framework: String,
    /// Generated code (.py, extension optional); for ONNX, the IR graph (.pb) or the script
    /// written by `tocode -f onnx`
    #[arg(short = 'n', long = "inputNetwork")]
    pub input_network: PathBuf,
    /// Weights written by tocode (-dw), or the IR weights
    #[arg(short = 'w', long = "inputWeight")]
    pub input_weight: PathBuf,
    /// Output model path
    #[arg(short = 'o', long = "outputModel")]
    pub output_model: PathBuf,
    /// [PyTorch] model file format: state_dict (no Python needed), torchscript, export (.pt2)
    /// or pickle (the whole module, as MMdnn saved it)
    #[arg(long, default_value = "state_dict", value_parser = PossibleValuesParser::new(Format::NAMES))]
    pub format: String,
    /// Python interpreter for the formats that run PyTorch (default: MMDNN_PYTHON, the active
    /// virtual environment, else python3)
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// [ONNX, from an IR] keep the source's input and output layout
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
        .and_then(|_| match a.keep_layout && a.framework != "onnx" {
            true => Err("--keep-layout applies to tomodel -f onnx only".to_string()),
            false => Ok(()),
        })
    {
        return Ok(usage_error(&msg));
    }
    let fw = backends::require(&a.framework)?;
    match fw.name {
        "pytorch" => backends::pytorch::saver::tomodel(
            &a.input_network,
            &a.input_weight,
            &a.output_model,
            Format::parse(&a.format)?,
            a.python.as_deref(),
        )?,
        "onnx" => backends::onnx::tomodel(
            &a.input_network,
            &a.input_weight,
            &a.output_model,
            a.onnx.options(a.keep_layout),
            a.python.as_deref(),
        )?,
        other => bail!("internal: no model saver is wired for {other}"),
    }
    Ok(0)
}
