//! The ONNX target, written natively (no Python). [`build`] takes a graph the passes stage made
//! channels-first (ONNX's layout; the inputs and outputs keep the source's unless `--io-layout` says otherwise) and
//! lowers each IR node the outputs need to ONNX nodes at the chosen opset (`ops/`, one function
//! per op). Weights become initializers that are only referenced while building; [`writer`]
//! streams them into the file one tensor at a time, inline or as external data. Every node that
//! cannot be lowered is listed in one error before anything is written. [`code`] renders the
//! same model as a Python script that builds it with `onnx.helper` (`tocode`).
pub mod builder;
pub mod code;
mod dims;
mod ops;
mod target;
pub mod writer;

pub use ops::lowering_files;
pub use target::Onnx;

use crate::backends::{IoRename, Written};
use crate::ir::passes::layout::TransformedWeights;
use crate::ir::passes::Prepared;
use crate::ir::{validate, DType, Graph, TensorType};
use crate::output::commit_all;
use crate::proto::onnx::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, NodeProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use crate::weights::WeightReader;
use anyhow::{bail, Context, Result};
use builder::{Builder, Ctx, Init};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// The opset written unless `--opset` says otherwise.
pub const DEFAULT_OPSET: i64 = 17;
/// The opsets the writer supports.
pub const MIN_OPSET: i64 = 13;
pub const MAX_OPSET: i64 = 25;

/// The ONNX IR version that goes with an opset (the lowest that allows it, for the widest
/// runtime support).
pub fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        21..=22 => 10,
        23 => 11,
        24 => 12,
        _ => 13,
    }
}

/// What the model is made of.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// None: [`DEFAULT_OPSET`], or the first later opset that has every element type the graph
    /// uses (`ops::min_opset`) and can express every node.
    pub opset: Option<i64>,
    /// Write the weights to an external data file even when the model would fit in 2 GB.
    pub external_data: bool,
}

/// A lowered model: the graph protos and its initializers, whose weight payloads are read from
/// `weights` only when written.
pub struct Model<'w> {
    pub opset: i64,
    pub nodes: Vec<NodeProto>,
    pub inputs: Vec<ValueInfoProto>,
    pub outputs: Vec<ValueInfoProto>,
    pub inits: Vec<Init>,
    pub weights: TransformedWeights<'w>,
    /// The IR graph's producer, kept as the model's doc string.
    pub doc: String,
    /// Graph outputs the model names otherwise: (the graph's name, the model's).
    pub renamed: Vec<(String, String)>,
}

/// Lowers a graph prepared channels-first to ONNX at `opts.opset`. Fails, before anything is
/// written, with one message listing every node that cannot be lowered.
pub fn build(prepared: Prepared<'_>, opts: Options) -> Result<Model<'_>> {
    if let Some(opset) = opts.opset.filter(|o| !(MIN_OPSET..=MAX_OPSET).contains(o)) {
        bail!(
            "opset {opset} is not supported by the ONNX writer (supported: {MIN_OPSET} to \
             {MAX_OPSET})"
        );
    }
    let converted = prepared;
    let mut g = converted.graph;
    if g.nodes.iter().any(|n| n.outputs.is_empty()) {
        validate::infer_types(&mut g)?;
    }
    let first = choose_opset(&g, &converted.weights, opts.opset)?;
    // Without --opset, a graph that needs a later opset (dilated average pooling, ScatterND
    // max/min, …) is written at the first one that has everything; the error at the first
    // opset tried stands when none does.
    let (opset, (nodes, inputs, outputs, inits)) = match lower(&g, &converted.weights, first) {
        Ok(lowered) => (first, lowered),
        Err(err) if opts.opset.is_none() => (first + 1..=MAX_OPSET)
            .find_map(|o| lower(&g, &converted.weights, o).ok().map(|l| (o, l)))
            .ok_or(err)?,
        Err(err) => return Err(err),
    };
    let renamed = outputs
        .iter()
        .enumerate()
        .map(|(i, v)| (g.output_name(i), v.name.clone()))
        .filter(|(want, got)| want != got)
        .collect();
    Ok(Model {
        opset,
        nodes,
        inputs,
        outputs,
        inits,
        weights: converted.weights,
        doc: g.producer.clone(),
        renamed,
    })
}

/// The opset to write: `requested`, or the default raised to the first opset that has every
/// element type of the graph's values and weights; fails when those need a later one.
fn choose_opset(g: &Graph, weights: &dyn WeightReader, requested: Option<i64>) -> Result<i64> {
    let dtypes: BTreeSet<DType> = g
        .nodes
        .iter()
        .flat_map(|n| n.outputs.iter().map(|t| t.dtype))
        .chain(
            weights
                .keys()
                .iter()
                .filter_map(|(n, p)| weights.info(n, p).map(|i| i.dtype)),
        )
        .collect();
    let need = dtypes.iter().map(|&d| (ops::min_opset(d), d)).max();
    let opset = requested.unwrap_or(DEFAULT_OPSET);
    match need {
        Some((n, d)) if n > opset && (requested.is_some() || n > MAX_OPSET) => bail!(
            "the graph has {d} tensors, which ONNX has from opset {n}; the writer {}",
            match requested {
                Some(o) => format!("was asked for opset {o}"),
                None => format!("supports opsets {MIN_OPSET} to {MAX_OPSET}"),
            }
        ),
        Some((n, _)) => Ok(opset.max(n)),
        None => Ok(opset),
    }
}

type Lowered = (
    Vec<NodeProto>,
    Vec<ValueInfoProto>,
    Vec<ValueInfoProto>,
    Vec<Init>,
);

fn lower(g: &Graph, weights: &dyn WeightReader, opset: i64) -> Result<Lowered> {
    let mut b = Builder::new(g, weights, opset);
    let needed = super::needed_nodes(g);
    let (mut problems, mut ops) = (vec![], BTreeSet::new());
    // Nodes that failed or read from one that did (those are not reported again).
    let mut failed: HashSet<&str> = HashSet::new();
    for node in g.nodes.iter().filter(|n| needed.contains(n.name.as_str())) {
        if node.inputs.iter().any(|r| failed.contains(r.node.as_str())) {
            failed.insert(&node.name);
            continue;
        }
        let result = Ctx::new(&mut b, node).and_then(|mut c| ops::lower(&mut c));
        if let Err(err) = result {
            problems.push(format!("node '{}' ({}): {err:#}", node.name, node.op));
            ops.insert(node.op.as_str());
            failed.insert(&node.name);
        }
    }
    if !problems.is_empty() {
        bail!(
            "cannot write {} node(s) as ONNX opset {opset} (ops: {}):\n  - {}",
            problems.len(),
            ops.into_iter().collect::<Vec<_>>().join(", "),
            problems.join("\n  - ")
        );
    }
    let mut inputs = vec![];
    for name in &g.inputs {
        let node = g.node(name).context("a graph input has no node")?;
        let ty = node
            .outputs
            .first()
            .with_context(|| format!("graph input '{name}' has no type"))?;
        inputs.push(value_info(&b.value(&node.output(0))?, ty));
    }
    // A graph output must be a value of its own: an input, or a value listed twice, goes
    // through an Identity.
    let input_names: HashSet<String> = inputs.iter().map(|v| v.name.clone()).collect();
    let mut seen = HashSet::new();
    let mut outputs = vec![];
    for (i, r) in g.outputs.iter().enumerate() {
        let ty = g
            .tensor_type(r)
            .with_context(|| format!("graph output '{r}' has no type"))?;
        let mut name = b.value(r)?;
        if input_names.contains(&name) || seen.contains(&name) {
            let out = b.fresh(&g.output_name(i));
            b.nodes.push(NodeProto {
                input: vec![name],
                output: vec![out.clone()],
                name: out.clone(),
                op_type: "Identity".into(),
                ..Default::default()
            });
            name = out;
        }
        seen.insert(name.clone());
        outputs.push(value_info(&name, ty));
    }
    Ok((b.nodes, inputs, outputs, b.inits))
}

/// A value's name and tensor type (symbolic dims as `dim_param`s, unknown ones left without a
/// value).
fn value_info(name: &str, ty: &TensorType) -> ValueInfoProto {
    let dims = ty
        .shape
        .iter()
        .map(|&d| Dimension {
            value: if d >= 0 {
                Some(dimension::Value::DimValue(d))
            } else if crate::ir::dim::is_symbolic(d) {
                Some(dimension::Value::DimParam(crate::ir::dim::text(d)))
            } else {
                None
            },
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: ops::onnx_dtype(ty.dtype),
                shape: Some(TensorShapeProto { dim: dims }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The summary's notes on the outputs the model names otherwise than the graph.
fn renames(model: &Model) -> Written {
    let mut written = Written::default();
    for (want, got) in &model.renamed {
        written.renamed.push(IoRename {
            kind: "output",
            from: want.clone(),
            to: got.clone(),
            why: "an ONNX graph output is a value of its own, and that name is taken".into(),
        });
    }
    written
}

/// `convert` and `tomodel` from an IR: writes `out` (and its external data) from a prepared
/// graph.
pub fn save(prepared: Prepared<'_>, out: &Path, opts: Options) -> Result<Written> {
    let model = build(prepared, opts)?;
    let files = writer::write(&model, out, opts.external_data)?;
    let external = files.len() > 1;
    commit_all(files)?;
    let written = renames(&model).file(format!("ONNX model (opset {})", model.opset), out);
    Ok(if external {
        written.file("ONNX external data", &writer::data_path(out))
    } else {
        written
    })
}
