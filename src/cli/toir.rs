//! `mmdnn toir` (MMdnn's `mmtoir`): source model → `<prefix>.pb`, `<prefix>.json`, `<prefix>.npz`.
use super::args::{source_parser, ParserFlags};
use super::convert::no_source;
use super::paths::Paths;
use super::summary::{self, Facts, Outcome, Progress, ReportFlags, Summary};
use crate::backends::Written;
use crate::frontends;
use crate::ir::serialize::{with_suffix, write_ir};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Source framework
    #[arg(short = 'f', long = "srcFramework", value_parser = source_parser())]
    pub framework: String,
    /// Network (structure) file; MMdnn's -in
    #[arg(short = 'n', long = "network", visible_alias = "inputNetwork")]
    pub network: Option<PathBuf>,
    /// Weights file; MMdnn's -iw
    #[arg(short = 'w', long = "weights", visible_alias = "inputWeight")]
    pub weights: Option<PathBuf>,
    /// Output prefix: writes <prefix>.pb, <prefix>.json and <prefix>.npz
    #[arg(short = 'd', short_alias = 'o', long = "dstPath")]
    pub dst_path: PathBuf,
    #[command(flatten)]
    pub parser: ParserFlags,
    #[command(flatten)]
    pub report: ReportFlags,
}

pub fn run(a: Args) -> Result<i32> {
    let report = a.report.clone();
    summary::conversion("toir", &report, |progress| toir(a, progress))
}

fn toir(a: Args, progress: &Progress) -> Result<Outcome> {
    let frontend = frontends::find(&a.framework)?;
    if a.network.is_none() && a.weights.is_none() {
        return Ok(Outcome::Usage(no_source(
            "-n/--network",
            "-n/--network",
            "-w/--weights",
        )));
    }
    let outputs: Vec<PathBuf> = ["pb", "json", "npz"]
        .iter()
        .map(|ext| with_suffix(&a.dst_path, ext))
        .collect();
    let checked = outputs
        .iter()
        .fold(
            Paths::new()
                .input("-n/--network", a.network.as_deref())
                .input("-w/--weights", a.weights.as_deref()),
            |paths, p| paths.output("-o/--dstPath", Some(p)),
        )
        .check();
    if let Err(msg) = checked {
        return Ok(Outcome::Usage(msg));
    }
    let source = a.parser.source_args(a.network, a.weights);
    let mut loaded = frontend.load(&source)?;
    let graph = &mut loaded.graph;
    graph.producer = match graph.producer.as_str() {
        "" => format!(
            "mmdnn {} ({} frontend)",
            env!("CARGO_PKG_VERSION"),
            a.framework
        ),
        from => format!(
            "mmdnn {} ({} frontend, from {from})",
            env!("CARGO_PKG_VERSION"),
            a.framework
        ),
    };
    progress.stage("writing");
    let summary = Summary {
        facts: Some(Facts::of(graph, Some(loaded.weights.as_ref()))),
        ..Summary::default()
    };
    let mut written = Written::default();
    for p in write_ir(graph, loaded.weights.as_ref(), &a.dst_path)? {
        let what = match p.extension().and_then(|e| e.to_str()) {
            Some("pb") => "IR graph",
            Some("json") => "IR graph as JSON",
            _ => "IR weights",
        };
        written = written.file(what, &p);
    }
    Ok(Outcome::Done(Box::new(summary.wrote(written))))
}
