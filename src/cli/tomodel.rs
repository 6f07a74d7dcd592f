//! `mmdnn tomodel` (MMdnn's `mmtomodel`): generated code + weights → target model file.
use super::args::{target_parser, usage_error};
use crate::backends::{self, CodeWeights};
use crate::frontends::ir_files;
use crate::ir::passes::{self, Wants};
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
    /// [From an IR graph given with -n] keep the source's input and output layout
    #[arg(long = "keep-layout")]
    pub keep_layout: bool,
    #[command(flatten)]
    pub target: crate::backends::TargetFlags,
}

pub fn run(a: Args) -> Result<i32> {
    let from_ir = is_ir_graph(&a.input_network);
    if a.keep_layout && !from_ir {
        return Ok(usage_error(
            "--keep-layout applies to tomodel from an IR graph (-n <prefix>.pb) only",
        ));
    }
    let opts = match a
        .target
        .options(&a.framework, a.format.as_deref(), a.keep_layout, a.python)
    {
        Ok(opts) => opts,
        Err(msg) => return Ok(usage_error(&msg)),
    };
    let backend = backends::find(&a.framework)?;
    let wants = Wants {
        layout: backend.layout(),
        keep_io: opts.keep_layout,
    };
    let prepare = |graph: &Path| {
        let loaded = ir_files::load_ir(graph, Some(&a.input_weight))?;
        Ok::<_, anyhow::Error>(loaded)
    };
    if from_ir {
        // The model straight from the IR: the same pipeline as `convert`.
        let loaded = prepare(&a.input_network)?;
        let prepared = passes::prepare(&loaded.graph, loaded.weights.as_ref(), wants)
            .with_context(|| format!("preparing the graph for the {} target", backend.name()))?;
        backend.save_model(prepared, &a.output_model, &opts)?;
        return Ok(0);
    }
    if backend.reads_weights(&a.input_network, &a.input_weight)? {
        let weights = CodeWeights::Native(&a.input_weight);
        backend.code_to_model(&a.input_network, weights, &a.output_model, &opts)?;
        return Ok(0);
    }
    // IR weights: the code's weights are made from them and the graph beside them.
    let graph_path = ir_files::graph_beside(&a.input_weight);
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
    let weights = CodeWeights::Ir(Box::new(prepared));
    backend.code_to_model(&a.input_network, weights, &a.output_model, &opts)?;
    Ok(0)
}

/// Whether `-n` names an IR graph rather than generated code.
fn is_ir_graph(path: &Path) -> bool {
    ir_files::is_ir_file(path)
}
