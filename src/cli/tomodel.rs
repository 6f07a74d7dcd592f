//! `mmdnn tomodel` (MMdnn's `mmtomodel`): generated code + weights → target model file.
use super::args::{target_parser, IoFlags};
use super::paths::{check_model_extension, Paths};
use super::summary::{self, Outcome, Progress, ReportFlags, Summary};
use crate::backends::{self, CodeWeights};
use crate::frontends::ir_files;
use crate::ir::passes::{self, Wants};
use crate::weights::resolve_path;
use anyhow::{bail, Context, Result};
use clap::builder::PossibleValuesParser;
use std::path::{Path, PathBuf};

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
    /// [PyTorch] model file format: state_dict (default; no Python needed), torchscript,
    /// export (.pt2) or pickle (the whole module, as MMdnn saved it)
    #[arg(long, value_parser = PossibleValuesParser::new(crate::backends::model_format_names()))]
    pub format: Option<String>,
    /// Python interpreter for the formats that run PyTorch (default: MMDNN_PYTHON, the active
    /// virtual environment, else python3)
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// [From an IR graph given with -n] the layout of the inputs and outputs
    #[command(flatten)]
    pub io: IoFlags,
    #[command(flatten)]
    pub target: crate::backends::TargetFlags,
    #[command(flatten)]
    pub report: ReportFlags,
}

pub fn run(a: Args) -> Result<i32> {
    let report = a.report.clone();
    summary::conversion("tomodel", &report, |progress| tomodel(a, progress))
}

fn tomodel(a: Args, progress: &Progress) -> Result<Outcome> {
    let from_ir = ir_files::is_ir_file(&a.input_network);
    if a.io.given() && !from_ir {
        return Ok(Outcome::Usage(
            "--io-layout and --keep-layout apply to tomodel from an IR graph (-n <prefix>.pb) \
             only"
                .into(),
        ));
    }
    let opts = match a
        .target
        .options(&a.framework, a.format.as_deref(), a.python)
    {
        Ok(opts) => opts,
        Err(msg) => return Ok(Outcome::Usage(msg)),
    };
    let backend = backends::find(&a.framework)?;
    let checked =
        check_model_extension(backend, "-o/--outputModel", &a.output_model).and_then(|()| {
            Paths::new()
                .input("-n/--inputNetwork", Some(&a.input_network))
                .input("-w/--inputWeight", Some(&a.input_weight))
                .output("-o/--outputModel", Some(&a.output_model))
                .check()
        });
    if let Err(msg) = checked {
        return Ok(Outcome::Usage(msg));
    }
    // MMdnn's staged commands pass `prefix.npy` on; ours write `prefix.npz`.
    let input_weight = resolve_path(&a.input_weight);
    let wants = Wants {
        layout: backend.layout(),
        io: a.io.io(),
    };
    let prepare = |graph: &Path| {
        let loaded = ir_files::load_ir(graph, Some(&input_weight))?;
        progress.stage("preparing");
        Ok::<_, anyhow::Error>(loaded)
    };
    if from_ir {
        // The model straight from the IR: the same pipeline as `convert`.
        let loaded = prepare(&a.input_network)?;
        if let Err(msg) = passes::check_io_names(&loaded.graph, &wants.io) {
            return Ok(Outcome::Usage(msg));
        }
        let prepared = passes::prepare(&loaded.graph, loaded.weights.as_ref(), wants)
            .with_context(|| format!("preparing the graph for the {} target", backend.name()))?;
        let summary = Summary::prepared(&prepared, backend.layout());
        progress.stage("writing");
        let written = backend.save_model(prepared, &a.output_model, &opts)?;
        return Ok(Outcome::Done(Box::new(summary.wrote(written))));
    }
    if backend.reads_weights(&a.input_network, &input_weight)? {
        progress.stage("writing");
        let weights = CodeWeights::Native(&input_weight);
        let written = backend.code_to_model(&a.input_network, weights, &a.output_model, &opts)?;
        return Ok(Outcome::Done(Box::new(Summary::default().wrote(written))));
    }
    // IR weights: the code's weights are made from them and the graph beside them.
    let graph_path = ir_files::graph_beside(&input_weight);
    if !graph_path.exists() {
        bail!(
            "{} is not a weights file the {} target reads as it is; IR weights need their \
             graph {} beside them",
            a.input_weight.display(),
            backend.name(),
            graph_path.display()
        );
    }
    let loaded = prepare(&graph_path)?;
    let prepared = passes::prepare(&loaded.graph, loaded.weights.as_ref(), wants)
        .with_context(|| format!("preparing the graph for the {} target", backend.name()))?;
    let summary = Summary::prepared(&prepared, backend.layout());
    progress.stage("writing");
    let weights = CodeWeights::Ir(Box::new(prepared));
    let written = backend.code_to_model(&a.input_network, weights, &a.output_model, &opts)?;
    Ok(Outcome::Done(Box::new(summary.wrote(written))))
}
