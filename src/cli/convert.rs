//! `mmdnn convert` (MMdnn's `mmconvert`): source model → target model in one step.
use super::args::{source_parser, target_parser, IoFlags, ParserFlags};
use super::paths::{check_model_extension, Paths};
use super::summary::{self, Outcome, Progress, ReportFlags, Summary};
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
    #[command(flatten)]
    pub io: IoFlags,
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
    #[command(flatten)]
    pub report: ReportFlags,
}

pub fn run(a: Args) -> Result<i32> {
    let report = a.report.clone();
    summary::conversion("convert", &report, |progress| convert(a, progress))
}

/// The pipeline, stage by stage: read (frontend, through the graph builder) → passes (what the
/// backend wants) → write (backend).
fn convert(a: Args, progress: &Progress) -> Result<Outcome> {
    let opts = match a
        .target
        .options(&a.dst_framework, a.format.as_deref(), a.python)
    {
        Ok(opts) => opts,
        Err(msg) => return Ok(Outcome::Usage(msg)),
    };
    // Fail before the (possibly slow) read when the target cannot be written.
    let backend = backends::find(&a.dst_framework)?;
    let frontend = frontends::find(&a.src_framework)?;
    if a.input_network.is_none() && a.input_weight.is_none() {
        return Ok(Outcome::Usage(no_source(
            "-iw/--inputWeight",
            "-in/--inputNetwork",
            "-iw/--inputWeight",
        )));
    }
    let checked =
        check_model_extension(backend, "-om/--outputModel", &a.output_model).and_then(|()| {
            Paths::new()
                .input("-in/--inputNetwork", a.input_network.as_deref())
                .input("-iw/--inputWeight", a.input_weight.as_deref())
                .output("-om/--outputModel", Some(&a.output_model))
                .check()
        });
    if let Err(msg) = checked {
        return Ok(Outcome::Usage(msg));
    }
    let source = a.parser.source_args(a.input_network, a.input_weight);
    let loaded = frontend.load(&source)?;
    progress.stage("preparing");
    if let Err(msg) = passes::check_io_names(&loaded.graph, &a.io.io()) {
        return Ok(Outcome::Usage(msg));
    }
    let wants = Wants {
        layout: backend.layout(),
        io: a.io.io(),
    };
    let prepared = passes::prepare(&loaded.graph, loaded.weights.as_ref(), wants)
        .with_context(|| format!("preparing the graph for the {} target", backend.name()))?;
    // The source graph is not needed past here (the prepared one reads only its weights).
    drop(loaded.graph);
    let summary = Summary::prepared(&prepared, backend.layout());
    progress.stage("writing");
    let written = backend.save_model(prepared, &a.output_model, &opts)?;
    Ok(Outcome::Done(Box::new(summary.wrote(written))))
}

/// The usage error of a command given no source model: names the flags it takes.
pub fn no_source(model_flag: &str, network_flag: &str, weights_flag: &str) -> String {
    format!(
        "no source model given: pass the model file with {model_flag} (for a model saved as \
         two files, the network with {network_flag} and the weights with {weights_flag})"
    )
}
