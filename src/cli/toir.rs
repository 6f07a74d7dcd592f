//! `mmdnn toir` (MMdnn's `mmtoir`): source model → `<prefix>.pb`, `<prefix>.json`, `<prefix>.npz`.
use super::args::{source_parser, ParserFlags};
use crate::frontends;
use crate::ir::serialize::write_ir;
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
}

pub fn run(a: Args) -> Result<i32> {
    let source = a.parser.source_args(a.network, a.weights);
    let mut loaded = frontends::load(&a.framework, &source)?;
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
    let written = write_ir(graph, loaded.weights.as_ref(), &a.dst_path)?;
    for p in written {
        eprintln!("wrote {}", p.display());
    }
    Ok(0)
}
