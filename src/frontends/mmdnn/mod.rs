//! The `mmdnn` source: an IR as a model, so old MMdnn IRs can be upgraded and re-emitted.
//! Ours (`.pb` + `.npz`) is read as it is; one written by Microsoft MMdnn 0.3.1 (`.pb` +
//! `.npz`, or its pickled `.npy`) is imported: its op names, attributes (NHWC layout,
//! 8-element pads, Keras-style kernels) and weight keys are mapped to ours.
//!
//! Every mapped op keeps MMdnn's NHWC data flow (`data_format: channels_last`, channel axis -1),
//! so weights keep their bytes; only depthwise kernels change shape. An op that expands into
//! several nodes gives its MMdnn name to the last one, so consumers and weights still resolve.
//! Absent MMdnn attributes read as MMdnn's emitters read them (proto3 defaults: false, 0).
//! Padding is recomputed from the recorded input shape where MMdnn says SAME (its own pads
//! ignore dilation), and after mapping, the inferred shapes are checked against the
//! `_output_shapes` MMdnn recorded. Ops whose meaning MMdnn does not pin down are refused.
//!
//! `import.rs` converts the graph node by node through one mapping function per MMdnn op, in
//! the file of its family; `weights.rs` reads MMdnn's weights under our (node, param) keys.
mod activation;
mod conv;
mod dense;
mod elementwise;
mod import;
mod io;
mod node;
mod norm;
mod pool;
mod reduce;
mod resize;
mod shape;
mod weights;
mod window;

pub use import::import;
pub use weights::WeightMap;

use super::builder::finish_model;
use super::{Loaded, SourceArgs};
use crate::ir::serialize::{self, IrFile};
use crate::ir::Graph;
use crate::weights::{self as weight_files, MemoryWeights, WeightReader};
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
        is_ir_file(path)
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

/// An IR graph as loaded, with what is needed to read its weights.
pub struct LoadedGraph {
    pub graph: Graph,
    /// Set when the file was written by MMdnn: how its weights map onto ours.
    pub mmdnn_weights: Option<WeightMap>,
}

/// Loads a `.pb` IR file: ours as it is, MMdnn's imported.
pub fn load_graph(path: &Path) -> Result<LoadedGraph> {
    Ok(match serialize::load(path)? {
        IrFile::Native(graph) => LoadedGraph {
            graph,
            mmdnn_weights: None,
        },
        IrFile::Foreign(gd) => {
            let (graph, map) =
                import(&gd).with_context(|| format!("reading MMdnn IR {}", path.display()))?;
            LoadedGraph {
                graph,
                mmdnn_weights: Some(map),
            }
        }
    })
}

/// Loads an IR graph and (optionally) its weights, validating both.
pub fn load_ir(network: &Path, weights_path: Option<&Path>) -> Result<Loaded> {
    let loaded = load_graph(network)?;
    let graph = loaded.graph;
    let mut reader: Box<dyn WeightReader> = match weights_path {
        Some(p) => weight_files::open(p)?,
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
    finish_model(graph, reader, weights_path.is_some())
        .with_context(|| format!("checking {}", network.display()))
}

/// Whether `path` names an IR graph (`<prefix>.pb`, ours or MMdnn's).
pub fn is_ir_file(path: &Path) -> bool {
    super::extension(path) == "pb"
}

/// The IR graph `<prefix>.pb` beside its weights `<prefix>.npz` (or `.npy`).
pub fn graph_beside(weights: &Path) -> PathBuf {
    weights.with_extension("pb")
}

/// `<prefix>.npz`, else `<prefix>.npy`, next to `<prefix>.pb`.
pub fn sibling_weights(network: &Path) -> Option<PathBuf> {
    ["npz", "npy"]
        .iter()
        .map(|ext| network.with_extension(ext))
        .find(|p| p.exists())
}
