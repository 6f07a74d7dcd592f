//! `mmdnn convert` (MMdnn's `mmconvert`): source model → target model in one step.
use super::args::{source_parser, target_parser, usage_error, ParserFlags};
use crate::ir::passes::{self, Wants};
use crate::{backends, frontends};
use anyhow::{Context, Result};
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
    /// [PyTorch] model file format: state_dict (default; no Python needed), torchscript,
    /// export (.pt2) or pickle (the whole module, as MMdnn saved it)
    #[arg(long, value_parser = PossibleValuesParser::new(crate::backends::model_format_names()))]
    pub format: Option<String>,
    /// Python interpreter for the formats that run PyTorch (default: MMDNN_PYTHON, the active
    /// virtual environment, else python3)
    #[arg(long)]
    pub python: Option<PathBuf>,
    #[command(flatten)]
    pub parser: ParserFlags,
    #[command(flatten)]
    pub target: crate::backends::TargetFlags,
}

/// The pipeline, stage by stage: read (frontend, through the graph builder) → passes (what the
/// backend wants) → write (backend).
pub fn run(a: Args) -> Result<i32> {
    let opts = match a.target.options(
        &a.dst_framework,
        a.format.as_deref(),
        a.keep_layout,
        a.python,
    ) {
        Ok(opts) => opts,
        Err(msg) => return Ok(usage_error(&msg)),
    };
    // Fail before the (possibly slow) read when the target cannot be written.
    let backend = backends::find(&a.dst_framework)?;
    let frontend = frontends::find(&a.src_framework)?;
    let source = a.parser.source_args(a.input_network, a.input_weight);
    let loaded = frontend.read(&source)?;
    let wants = Wants {
        layout: backend.layout(),
        keep_io: opts.keep_layout,
    };
    let prepared = passes::prepare(&loaded.graph, loaded.weights.as_ref(), wants)
        .with_context(|| format!("preparing the graph for the {} target", backend.name()))?;
    backend.save_model(prepared, &a.output_model, &opts)?;
    Ok(0)
}
