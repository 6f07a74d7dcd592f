//! The ONNX reader (`-sf onnx`): decodes a `.onnx` file natively (proto/onnx/onnx.proto, the
//! model memory-mapped so raw tensor data is never copied; external data mapped on first read)
//! and maps the default-domain operators of opsets 7 to 28 onto IR ops, one small function per
//! ONNX op (`ops/`); older opsets only for ops defined there as at opset 7. Initializers and `Constant` nodes become weights or `Constant` nodes;
//! computations on constants, shape computations included, are folded (`builder`). Every
//! unsupported op is listed in one error (with the graph converted up to them, for `inspect`);
//! every other problem is reported per node, all at once.
mod builder;
mod dims;
mod node;
mod ops;
mod tensor;

use super::{Loaded, SourceArgs, Unconverted};
use crate::ir::{dim, DType, TensorType};
use crate::proto::onnx::{type_proto, GraphProto, ModelProto, NodeProto, ValueInfoProto};
use crate::weights::derived::DerivedWeights;
use crate::weights::mapped::FileMap;
use anyhow::{bail, Context, Result};
use builder::{Builder, Val};
use node::Ctx;
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use tensor::ModelDir;

/// Oldest and newest default-domain opset the reader maps.
pub const MIN_OPSET: i64 = 7;
pub const MAX_OPSET: i64 = 28;

/// Loads the `.onnx` model named by `-n` (or `-w`/`-iw`).
/// ONNX models (any opset from 1, external data beside the file).
pub struct Onnx;

impl super::Frontend for Onnx {
    fn name(&self) -> &'static str {
        "onnx"
    }
    fn formats(&self) -> &'static str {
        ".onnx (+ external data)"
    }
    /// `.onnx`, or a protobuf whose first field is ModelProto's `ir_version` (field 1, varint:
    /// byte 0x08) under an extension no other frontend claims.
    fn detects(&self, path: &Path, head: &[u8]) -> bool {
        let ext = super::extension(path);
        ext == "onnx" || (ext != "pb" && head.first() == Some(&0x08))
    }
    fn read(&self, args: &SourceArgs) -> Result<Loaded> {
        load(args)
    }
}

pub fn load(args: &SourceArgs) -> Result<Loaded> {
    let path = match (&args.network, &args.weights) {
        (Some(n), Some(w)) if n != w => bail!(
            "an ONNX model is one .onnx file (its external data is found next to it): pass it \
             once, with -n or -w, not both ({} and {})",
            n.display(),
            w.display()
        ),
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) => bail!("reading an ONNX model needs its file: pass -n model.onnx"),
    };
    load_file(path, args).with_context(|| format!("reading ONNX model {}", path.display()))
}

fn load_file(path: &Path, args: &SourceArgs) -> Result<Loaded> {
    let model = ModelProto::decode(FileMap::open(path)?.bytes())
        .context("not an ONNX model (the protobuf does not decode as onnx.ModelProto)")?;
    convert(&model, &ModelDir::new(path), args)
}

/// Converts a decoded model; `dir` resolves its external data.
fn convert(model: &ModelProto, dir: &ModelDir, args: &SourceArgs) -> Result<Loaded> {
    let graph = model.graph.as_ref().context("the model has no graph")?;
    // A model of other domains only (ai.onnx.ml, training) is reported by its ops.
    let opset = match default_opset(model) {
        Ok(v) => v,
        Err(e) => {
            check_supported(model, graph, &vec![true; graph.node.len()], 0)?;
            return Err(e);
        }
    };
    let opset = read_as(graph, opset)?;
    check_single_assignment(graph)?;
    let mut b = Builder::default();
    let from = format!("{} {}", model.producer_name, model.producer_version);
    b.core.graph.producer = format!(
        "mmdnn {} onnx reader (from {}, opset {opset})",
        env!("CARGO_PKG_VERSION"),
        match from.trim() {
            "" => "an unnamed producer",
            named => named,
        }
    );
    if !args.in_nodes.is_empty() {
        bail!("--inNodeName is not supported for ONNX models: the graph inputs are the model's");
    }
    // --dstNodeName picks the outputs (ONNX value names); only the nodes they need are read.
    let outputs: Vec<&str> = if args.dst_nodes.is_empty() {
        graph.output.iter().map(|o| o.name.as_str()).collect()
    } else {
        args.dst_nodes.iter().map(String::as_str).collect()
    };
    let mut wanted = wanted_nodes(graph, (!args.dst_nodes.is_empty()).then_some(&outputs))?;
    // Unsupported ops stop the conversion; the nodes before them are still converted (and
    // those after skipped) for the partial graph `inspect` reports on.
    let unsupported = check_supported(model, graph, &wanted, opset).err();
    if unsupported.is_some() {
        wanted = supported(graph, &wanted);
    }
    for n in &graph.node {
        n.output.iter().for_each(|o| b.reserve(o));
    }
    let mut broken = bind_initializers(&mut b, graph, dir);
    if let Some(mut e) = unsupported {
        for (n, _) in graph.node.iter().zip(&wanted).filter(|(_, w)| !**w) {
            for o in &n.output {
                broken.insert(o.clone(), None);
            }
        }
        if add_inputs(&mut b, graph, &args.input_shapes).is_ok() {
            convert_nodes(&mut b, graph, &wanted, opset, dir, &mut broken);
            e.partial = Some(Box::new(b.core.into_partial()));
        }
        return Err(e.into());
    }
    add_inputs(&mut b, graph, &args.input_shapes)?;
    let problems = convert_nodes(&mut b, graph, &wanted, opset, dir, &mut broken);
    problems.into_iter().for_each(|p| b.core.problem(p));
    // Graph outputs: a constant one gets a Constant node named after it.
    let (mut refs, mut names) = (vec![], vec![]);
    for name in outputs {
        match output_ref(&mut b, name, &broken) {
            Ok(Some(r)) => {
                refs.push(r);
                names.push(name.to_string());
            }
            Ok(None) => {}
            Err(e) => b.core.problem(format!("graph output '{name}': {e:#}")),
        }
    }
    let mut graph = b.core.finish(refs)?;
    graph.output_names = super::builder::unique_names(&names);
    let weights: DerivedWeights = b.weights.into_iter().collect();
    super::builder::finish_model(graph, Box::new(weights), true)
        .context("the converted graph is invalid")
}

/// Fails, listing every value written twice, when the graph is not in single-assignment form: a
/// value is a graph input, an initializer (which may double as an input's default) or one node's
/// output, never two of these (ONNX IR spec, "Names Within a Graph").
fn check_single_assignment(graph: &GraphProto) -> Result<()> {
    let mut writer: HashMap<&str, String> = HashMap::new();
    let mut clashes = vec![];
    for t in &graph.initializer {
        if writer.insert(&t.name, "an initializer".into()).is_some() {
            clashes.push(format!("value '{}' is two initializers", t.name));
        }
    }
    for i in &graph.input {
        if let Some(w) = writer.insert(&i.name, "a graph input".into()) {
            if w != "an initializer" {
                clashes.push(format!("value '{}' is two graph inputs", i.name));
            }
        }
    }
    for n in &graph.node {
        let this = format!("node '{}' ({})", n.name, n.op_type);
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            if let Some(w) = writer.insert(o, this.clone()) {
                clashes.push(format!("value '{o}' is written by {w} and by {this}"));
            }
        }
    }
    if clashes.is_empty() {
        return Ok(());
    }
    bail!(
        "the graph is not in single-assignment form (each value must have one writer):\n  - {}",
        clashes.join("\n  - ")
    )
}

/// Binds every initializer to a constant. Returns the ones that cannot be read (sparse ones,
/// unsupported element types), with the reason, reported only if a node reads them.
fn bind_initializers(
    b: &mut Builder,
    graph: &GraphProto,
    dir: &ModelDir,
) -> HashMap<String, Option<String>> {
    let mut broken = HashMap::new();
    for t in &graph.initializer {
        b.reserve(&t.name);
        match tensor::decode(t, dir) {
            Ok(data) => {
                let v = b.constant(&t.name, data);
                b.bind(&t.name, v);
            }
            Err(e) => {
                broken.insert(t.name.clone(), Some(format!("{e:#}")));
            }
        }
    }
    for t in &graph.sparse_initializer {
        let name = t.values.as_ref().map_or("", |v| v.name.as_str());
        let why = format!("initializer '{name}' is sparse, which is not supported");
        broken.insert(name.to_string(), Some(why));
    }
    broken
}

/// The version of the default ONNX operator set the model imports.
fn default_opset(model: &ModelProto) -> Result<i64> {
    let v = model
        .opset_import
        .iter()
        .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .max()
        .with_context(|| {
            format!(
                "the model imports no default-domain opset (IR version {}; mmdnn reads IR \
                 version 3 and later)",
                model.ir_version
            )
        })?;
    if !(1..=MAX_OPSET).contains(&v) {
        bail!("the model uses opset {v}; mmdnn reads opsets {MIN_OPSET} to {MAX_OPSET}");
    }
    Ok(v)
}

/// Default-domain ops whose definition at opset 7 dates from an older opset (the version it
/// dates from, per the ONNX operator changelog): in a model of an opset from that version to 6
/// they mean what they mean at 7.
const SAME_AT_7: &[(&str, i64)] = &[
    ("Abs", 6),
    ("ArgMax", 1),
    ("ArgMin", 1),
    ("Cast", 6),
    ("Ceil", 6),
    ("Clip", 6),
    ("Concat", 4),
    ("Constant", 1),
    ("Conv", 1),
    ("ConvTranspose", 1),
    ("DepthToSpace", 1),
    ("Elu", 6),
    ("Exp", 6),
    ("Flatten", 1),
    ("Floor", 6),
    ("Gather", 1),
    ("GlobalAveragePool", 1),
    ("GlobalMaxPool", 1),
    ("HardSigmoid", 6),
    ("Identity", 1),
    ("InstanceNormalization", 6),
    ("LRN", 1),
    ("LeakyRelu", 6),
    ("Log", 6),
    ("LogSoftmax", 1),
    ("LpNormalization", 1),
    ("MatMul", 1),
    ("Max", 6),
    ("MaxPool", 1),
    ("Mean", 6),
    ("Min", 6),
    ("Neg", 6),
    ("Not", 1),
    ("Pad", 2),
    ("Reciprocal", 6),
    ("ReduceL1", 1),
    ("ReduceL2", 1),
    ("ReduceLogSum", 1),
    ("ReduceMax", 1),
    ("ReduceMean", 1),
    ("ReduceMin", 1),
    ("ReduceProd", 1),
    ("ReduceSum", 1),
    ("ReduceSumSquare", 1),
    ("Relu", 6),
    ("Reshape", 5),
    ("Selu", 6),
    ("Shape", 1),
    ("Sigmoid", 6),
    ("Size", 1),
    ("Slice", 1),
    ("Softmax", 1),
    ("Softplus", 1),
    ("Softsign", 1),
    ("SpaceToDepth", 1),
    ("Split", 2),
    ("Sqrt", 6),
    ("Squeeze", 1),
    ("Sum", 6),
    ("Tanh", 6),
    ("Tile", 6),
    ("Transpose", 1),
    ("Unsqueeze", 1),
];

/// The opset the nodes are read at: the model's, or 7 for a model of opset 1 to 6 whose
/// default-domain ops all have their opset-7 definition already (`SAME_AT_7`).
fn read_as(graph: &GraphProto, opset: i64) -> Result<i64> {
    if opset >= MIN_OPSET {
        return Ok(opset);
    }
    let mut changed: Vec<&str> = graph
        .node
        .iter()
        .filter(|n| n.domain.is_empty() || n.domain == "ai.onnx")
        .map(|n| n.op_type.as_str())
        .filter(|op| !SAME_AT_7.iter().any(|(o, v)| o == op && *v <= opset))
        .collect();
    changed.sort_unstable();
    changed.dedup();
    if !changed.is_empty() {
        bail!(
            "the model uses opset {opset}; mmdnn reads opsets {MIN_OPSET} to {MAX_OPSET}, and \
             older ones only when every op is defined as at opset {MIN_OPSET}, which {} {} not",
            changed.join(", "),
            if changed.len() == 1 { "is" } else { "are" }
        );
    }
    Ok(MIN_OPSET)
}

/// Which nodes to convert: all, or (for chosen outputs) those the outputs depend on.
fn wanted_nodes(graph: &GraphProto, outputs: Option<&Vec<&str>>) -> Result<Vec<bool>> {
    let Some(outputs) = outputs else {
        return Ok(vec![true; graph.node.len()]);
    };
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut wanted = vec![false; graph.node.len()];
    let mut stack: Vec<usize> = vec![];
    for &o in outputs {
        match producer.get(o) {
            Some(&i) => stack.push(i),
            None if graph.input.iter().any(|i| i.name == o)
                || graph.initializer.iter().any(|t| t.name == o) => {}
            None => bail!("--dstNodeName '{o}' is not a value of the model"),
        }
    }
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut wanted[i], true) {
            continue;
        }
        stack.extend(
            graph.node[i]
                .input
                .iter()
                .filter_map(|n| producer.get(n.as_str())),
        );
    }
    Ok(wanted)
}

/// Fails listing every node whose op the reader does not map.
/// `wanted` less the nodes whose ops the reader does not support.
fn supported(graph: &GraphProto, wanted: &[bool]) -> Vec<bool> {
    graph
        .node
        .iter()
        .zip(wanted)
        .map(|(n, &w)| {
            let default = n.domain.is_empty() || n.domain == "ai.onnx";
            w && default && ops::lookup(&n.op_type).is_some()
        })
        .collect()
}

/// Every unsupported op among the `wanted` nodes, in one error.
fn check_supported(
    model: &ModelProto,
    graph: &GraphProto,
    wanted: &[bool],
    opset: i64,
) -> Result<(), Unconverted> {
    let version = |domain: &str| -> String {
        model
            .opset_import
            .iter()
            .filter(|o| o.domain == domain)
            .map(|o| o.version)
            .max()
            .map_or("no opset".to_string(), |v| format!("opset {v}"))
    };
    let local: HashSet<(&str, &str)> = model
        .functions
        .iter()
        .map(|f| (f.domain.as_str(), f.name.as_str()))
        .collect();
    // (op_type, domain) -> node names
    let mut missing: Vec<((String, String), Vec<String>)> = vec![];
    for (i, n) in graph.node.iter().enumerate() {
        let default = n.domain.is_empty() || n.domain == "ai.onnx";
        if !wanted[i] || (default && ops::lookup(&n.op_type).is_some()) {
            continue;
        }
        let key = (n.op_type.clone(), n.domain.clone());
        let name = node_label(n, i);
        match missing.iter_mut().find(|(k, _)| *k == key) {
            Some((_, names)) => names.push(name),
            None => missing.push((key, vec![name])),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let count: usize = missing.iter().map(|(_, n)| n.len()).sum();
    let lines: Vec<String> = missing
        .iter()
        .map(|((op, domain), names)| {
            let d = if domain.is_empty() { "ai.onnx" } else { domain };
            let why = if local.contains(&(domain.as_str(), op.as_str())) {
                " (a model-local function)"
            } else if ["If", "Loop", "Scan"].contains(&op.as_str()) && d == "ai.onnx" {
                " (control flow with subgraphs)"
            } else {
                ""
            };
            let v = if d == "ai.onnx" {
                format!("opset {opset}")
            } else {
                version(domain)
            };
            format!("{op} (domain {d}, {v}){why}: {}", names.join(", "))
        })
        .collect();
    Err(Unconverted {
        message: format!(
            "{count} node{} use{} ops the ONNX reader does not support:\n  - {}",
            if count == 1 { "" } else { "s" },
            if count == 1 { "s" } else { "" },
            lines.join("\n  - ")
        ),
        problems: lines,
        partial: None,
    })
}

/// How messages name a node: its name, else its position and first output.
fn node_label(n: &NodeProto, i: usize) -> String {
    if n.name.is_empty() {
        format!(
            "node #{i} (output '{}')",
            n.output.first().map_or("", |s| s.as_str())
        )
    } else {
        format!("'{}'", n.name)
    }
}

/// Adds a `DataInput` for each graph input that is not an initializer.
fn add_inputs(b: &mut Builder, graph: &GraphProto, shapes: &[Vec<i64>]) -> Result<()> {
    let inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| b.get(&i.name).is_none())
        .collect();
    if !shapes.is_empty() && shapes.len() != inputs.len() {
        bail!(
            "--inputShape gives {} shape(s) but the model has {} input(s): {}",
            shapes.len(),
            inputs.len(),
            inputs
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    // Each dim not fixed is a symbol: a `dim_param` names it (dims of one name are one symbol),
    // an unnamed one is named after its input and axis.
    for (k, input) in inputs.iter().enumerate() {
        let (dtype, dims) =
            input_type(input).with_context(|| format!("graph input '{}'", input.name))?;
        let dims = match (dims, shapes.get(k)) {
            (dims, Some(given)) => pin(&input.name, dims, given)?,
            (Some(dims), None) => dims,
            (None, None) => bail!(
                "graph input '{}' has no shape in the model; pass --inputShape",
                input.name
            ),
        };
        let shape = dims
            .iter()
            .enumerate()
            .map(|(axis, d)| match d {
                Dim::Known(n) => *n,
                Dim::Named(s) => dim::symbol(s),
                Dim::Unknown => dim::symbol(&format!("{}_{axis}", input.name)),
            })
            .collect();
        let v = b.add_input(&input.name, TensorType::new(dtype, shape))?;
        b.bind(&input.name, v);
    }
    Ok(())
}

/// One dim of a declared input shape.
#[derive(Clone, Debug, PartialEq)]
enum Dim {
    Known(i64),
    Named(String),
    Unknown,
}

/// Element type and dims (None: rank unknown) of a tensor input.
fn input_type(v: &ValueInfoProto) -> Result<(DType, Option<Vec<Dim>>)> {
    use crate::proto::onnx::tensor_shape_proto::dimension::Value as D;
    let t = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t,
        Some(_) => bail!("only tensor inputs are supported (not sequences, maps or optionals)"),
        None => bail!("the model declares no type"),
    };
    let dtype = tensor::dtype(t.elem_type)?;
    let dims = t.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(D::DimValue(n)) if *n >= 0 => Dim::Known(*n),
                Some(D::DimParam(p)) if !p.is_empty() => Dim::Named(p.clone()),
                _ => Dim::Unknown,
            })
            .collect()
    });
    Ok((dtype, dims))
}

/// Applies an `--inputShape` (batch excluded) to a declared shape.
fn pin(name: &str, declared: Option<Vec<Dim>>, given: &[i64]) -> Result<Vec<Dim>> {
    let mut dims = declared.unwrap_or_else(|| {
        std::iter::once(Dim::Unknown)
            .chain(given.iter().map(|_| Dim::Unknown))
            .collect()
    });
    if dims.len() != given.len() + 1 {
        bail!(
            "--inputShape {:?} for input '{name}' does not fit its rank {} (the shape excludes \
             the batch dim)",
            given,
            dims.len()
        );
    }
    for (d, &g) in dims[1..].iter_mut().zip(given) {
        match d {
            Dim::Known(n) if g >= 0 && *n != g => bail!(
                "--inputShape {given:?} for input '{name}' conflicts with its declared dim {n}"
            ),
            _ if g >= 0 => *d = Dim::Known(g),
            _ => {}
        }
    }
    Ok(dims)
}

/// Converts every node in dependency order; returns the problems found (one per failing node).
fn convert_nodes(
    b: &mut Builder,
    graph: &GraphProto,
    wanted: &[bool],
    opset: i64,
    dir: &ModelDir,
    broken: &mut HashMap<String, Option<String>>,
) -> Vec<String> {
    let used: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter())
        .chain(graph.output.iter().map(|o| &o.name))
        .map(String::as_str)
        .collect();
    let mut problems = vec![];
    for i in topo_order(graph).into_iter().filter(|&i| wanted[i]) {
        let n = &graph.node[i];
        let label = node_label(n, i);
        let at = |msg: String| format!("{label} ({} opset {opset}): {msg}", n.op_type);
        let mut inputs = Vec::with_capacity(n.input.len());
        let mut skip = false;
        for name in &n.input {
            if name.is_empty() {
                inputs.push(None);
            } else if let Some(v) = b.get(name) {
                inputs.push(Some(v.clone()));
            } else {
                match broken.get_mut(name) {
                    Some(reason) => {
                        if let Some(r) = reason.take() {
                            problems.push(at(r));
                        }
                    }
                    None => problems.push(at(format!("input '{name}' is produced by no node"))),
                }
                skip = true;
                break;
            }
        }
        let result = if skip {
            Err(None)
        } else {
            convert_node(b, n, opset, inputs, dir, &used).map_err(Some)
        };
        match result {
            Ok(vals) => {
                for (name, v) in n.output.iter().zip(vals) {
                    if !name.is_empty() {
                        b.bind(name, v);
                    }
                }
            }
            Err(e) => {
                if let Some(e) = e {
                    problems.push(at(format!("{e:#}")));
                }
                for o in &n.output {
                    broken.insert(o.clone(), None);
                }
            }
        }
    }
    problems
}

/// Runs the op's mapping; checks every attribute was understood and no unmapped output is used.
fn convert_node(
    b: &mut Builder,
    n: &NodeProto,
    opset: i64,
    inputs: Vec<Option<Val>>,
    dir: &ModelDir,
    used: &HashSet<&str>,
) -> Result<Vec<Val>> {
    let f = ops::lookup(&n.op_type).context("internal: op checked before conversion")?;
    let mut ctx = Ctx::new(b, n, opset, inputs, dir);
    let vals = f(&mut ctx)?;
    let unread = ctx.unread_attrs();
    if !unread.is_empty() {
        bail!(
            "unsupported attribute{} {}",
            if unread.len() == 1 { "" } else { "s" },
            unread.join(", ")
        );
    }
    for (k, name) in n.output.iter().enumerate().skip(vals.len()) {
        if used.contains(name.as_str()) && !name.is_empty() {
            bail!(
                "output {k} ('{name}') is used, but the reader maps only the first {}",
                vals.len()
            );
        }
    }
    Ok(vals)
}

/// Node indices in an order where every value is produced before it is read (the file order
/// when it already is one, as ONNX requires).
fn topo_order(graph: &GraphProto) -> Vec<usize> {
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut state = vec![0u8; graph.node.len()];
    let mut order = Vec::with_capacity(graph.node.len());
    for root in 0..graph.node.len() {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some(&mut (i, ref mut next)) = stack.last_mut() {
            if let Some(name) = graph.node[i].input.get(*next) {
                *next += 1;
                if let Some(&j) = producer.get(name.as_str()) {
                    if state[j] == 0 {
                        state[j] = 1;
                        stack.push((j, 0));
                    }
                }
            } else {
                state[i] = 2;
                order.push(i);
                stack.pop();
            }
        }
    }
    order
}

/// The IR tensor of a graph output (a constant output gets a `Constant` node named after it).
fn output_ref(
    b: &mut Builder,
    name: &str,
    broken: &HashMap<String, Option<String>>,
) -> Result<Option<crate::ir::TensorRef>> {
    match (b.get(name).cloned(), broken.get(name)) {
        (Some(v), _) => Ok(Some(b.tensor_ref(&v, Some(name))?)),
        (None, Some(Some(reason))) => bail!("{reason}"),
        (None, Some(None)) => Ok(None), // its node's failure is reported
        (None, None) => bail!("no node produces it"),
    }
}
