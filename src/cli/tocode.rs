//! `mmdnn tocode` (MMdnn's `mmtocode`): IR → readable target-framework Python code.
use super::args::{target_parser, IoFlags};
use super::paths::Paths;
use super::summary::{self, Outcome, Progress, ReportFlags, Summary};
use crate::backends;
use crate::frontends::ir_files;
use crate::ir::passes::{self, Wants};
use crate::weights::resolve_path;
use anyhow::{Context, Result};
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
    pub io: IoFlags,
    #[command(flatten)]
    pub target: crate::backends::TargetFlags,
    #[command(flatten)]
    pub report: ReportFlags,
}

pub fn run(a: Args) -> Result<i32> {
    let report = a.report.clone();
    summary::conversion("tocode", &report, |progress| tocode(a, progress))
}

fn tocode(a: Args, progress: &Progress) -> Result<Outcome> {
    let opts = match a.target.options(&a.framework, None, None) {
        Ok(opts) => opts,
        Err(msg) => return Ok(Outcome::Usage(msg)),
    };
    let backend = backends::find(&a.framework)?;
    // The code needs the weights' shapes: -w, else <prefix>.npz / .npy beside the graph.
    let Some(weights) = a
        .ir_weights
        .clone()
        .or_else(|| ir_files::sibling_weights(&a.ir_model))
    else {
        return Ok(Outcome::Usage(format!(
            "no weights for {}: pass -w/--IRWeightPath <prefix>.npz",
            a.ir_model.display()
        )));
    };
    let checked = Paths::new()
        .input("-n/--IRModelPath", Some(&a.ir_model))
        .input("-w/--IRWeightPath", Some(&weights))
        .output("-d/--dstModelPath", Some(&a.dst_model))
        .output("-dw/--dstWeightPath", a.dst_weights.as_deref())
        .check();
    if let Err(msg) = checked {
        return Ok(Outcome::Usage(msg));
    }
    let weights = resolve_path(&weights);
    let loaded = ir_files::load_ir(&a.ir_model, Some(&weights))?;
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
    let summary = Summary::prepared(&prepared, backend.layout());
    progress.stage("writing");
    let written = backend.emit_code(
        prepared,
        &weights,
        &a.dst_model,
        a.dst_weights.as_deref(),
        &opts,
    )?;
    Ok(Outcome::Done(Box::new(summary.wrote(written))))
}
