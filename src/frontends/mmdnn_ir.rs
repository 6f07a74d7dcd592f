//! The IR itself as a source: an mmdnn IR (`.pb` + `.npz`) or one written by MMdnn 0.3.1
//! (`.pb` + pickled `.npy`), so old MMdnn IRs can be upgraded and re-emitted.
use super::{Loaded, SourceArgs};
use crate::ir::{serialize, validate};
use crate::weights::{self, MemoryWeights, WeightReader};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The IR itself (ours or MMdnn 0.3.1's) as a source.
pub struct Mmdnn;

impl super::Frontend for Mmdnn {
    fn name(&self) -> &'static str {
        "mmdnn"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["ir"]
    }
    fn formats(&self) -> &'static str {
        "MMdnn 0.3.1 or mmdnn IR: -n graph.pb, -w weights (.npz or MMdnn's pickled .npy)"
    }
    /// An IR graph is a `.pb` (a GraphDef-like protobuf has no magic number to tell it by).
    fn detects(&self, path: &Path, _head: &[u8]) -> bool {
        super::extension(path) == "pb"
    }
    fn read(&self, args: &SourceArgs) -> Result<Loaded> {
        load(args)
    }
}

/// Loads `-n graph.pb` and its weights (`-w`, else `<prefix>.npz` / `<prefix>.npy` beside it).
pub fn load(args: &SourceArgs) -> Result<Loaded> {
    let network = args
        .network
        .as_deref()
        .or(args
            .weights
            .as_deref()
            .filter(|p| p.extension().is_some_and(|e| e == "pb")))
        .context("reading an IR needs the graph file: pass -n <prefix>.pb")?;
    let weights_path = match &args.weights {
        Some(w) if w.extension().is_none_or(|e| e != "pb") => Some(w.clone()),
        _ => sibling_weights(network),
    };
    load_ir(network, weights_path.as_deref())
}

/// Loads an IR graph and (optionally) its weights, validating both.
pub fn load_ir(network: &Path, weights_path: Option<&Path>) -> Result<Loaded> {
    let loaded = serialize::load(network)?;
    let mut graph = loaded.graph;
    let mut reader: Box<dyn WeightReader> = match weights_path {
        Some(p) => weights::open(p)?,
        None => Box::new(MemoryWeights::default()),
    };
    if let Some(map) = loaded.mmdnn_weights {
        let unused = map.unmapped(reader.as_ref());
        if weights_path.is_some() && !unused.is_empty() {
            let list: Vec<String> = unused.iter().map(|(l, k)| format!("{l}/{k}")).collect();
            eprintln!(
                "warning: {} MMdnn weight(s) are read by no node and are not carried over: {}",
                list.len(),
                list.join(", ")
            );
        }
        reader = map.wrap(reader);
    }
    validate::check(
        &mut graph,
        weights_path.is_some().then_some(reader.as_ref()),
    )
    .with_context(|| format!("checking {}", network.display()))?;
    Ok(Loaded {
        graph,
        weights: reader,
    })
}

/// `<prefix>.npz`, else `<prefix>.npy`, next to `<prefix>.pb`.
pub fn sibling_weights(network: &Path) -> Option<PathBuf> {
    ["npz", "npy"]
        .iter()
        .map(|ext| network.with_extension(ext))
        .find(|p| p.exists())
}
