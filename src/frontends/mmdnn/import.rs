//! The importer: converts an MMdnn GraphDef node by node, each through the mapping of its op
//! (found by MMdnn's op name in the family files), then checks the inferred shapes against the
//! `_output_shapes` MMdnn recorded. Nodes are added through the shared [`GraphBuilder`]:
//! MMdnn's names are reserved for their nodes, and the nodes an op expands into get unique
//! names from it.
use super::node::MmNode;
use super::weights::{Stored, WeightMap};
use super::window::nhwc_spatial;
use super::{activation, conv, dense, elementwise, io, norm, pool, reduce, resize, shape};
use crate::frontends::builder::GraphBuilder;
use crate::ir::serialize::shape_from_proto;
use crate::ir::types::shape_string;
use crate::ir::{validate, Graph, Node, Shape, TensorRef};
use crate::proto;
use crate::proto::attr_value::Value;
use anyhow::{bail, Result};
use std::collections::{HashMap, HashSet};

/// Converts an MMdnn GraphDef into an mmdnn graph, with the map of its weights.
pub fn import(gd: &proto::GraphDef) -> Result<(Graph, WeightMap)> {
    let unsupported: Vec<String> = gd
        .node
        .iter()
        .filter(|n| mapper(&n.op).is_none())
        .map(|n| format!("'{}' ({})", n.name, n.op))
        .collect();
    match unsupported.len() {
        0 => {}
        1 => bail!(
            "MMdnn IR has 1 node with an op mmdnn cannot map: {}",
            unsupported[0]
        ),
        k => bail!(
            "MMdnn IR has {k} nodes with ops mmdnn cannot map: {}",
            unsupported.join(", ")
        ),
    }
    let mut cx = Importer::new(gd)?;
    for def in &gd.node {
        let n = MmNode::new(def);
        let map = mapper(&def.op).expect("unsupported ops were rejected above");
        if let Err(e) = map(&mut cx, &n) {
            cx.core
                .problem(format!("node '{}' ({}): {e:#}", def.name, def.op));
        }
    }
    cx.finish()
}

/// Maps one MMdnn node into the graph.
pub(super) type MapFn = fn(&mut Importer, &MmNode) -> Result<()>;

/// The mapping of each MMdnn op; `None` for ops mmdnn refuses.
fn mapper(op: &str) -> Option<MapFn> {
    io::lookup(op)
        .or_else(|| conv::lookup(op))
        .or_else(|| pool::lookup(op))
        .or_else(|| dense::lookup(op))
        .or_else(|| norm::lookup(op))
        .or_else(|| activation::lookup(op))
        .or_else(|| elementwise::lookup(op))
        .or_else(|| shape::lookup(op))
        .or_else(|| reduce::lookup(op))
        .or_else(|| resize::lookup(op))
}

/// MMdnn's recorded `_output_shapes` of a node (`None` for unknown rank).
fn recorded_shapes(def: &proto::NodeDef) -> Vec<Option<Shape>> {
    match def
        .attr
        .get("_output_shapes")
        .and_then(|a| a.value.as_ref())
    {
        Some(Value::List(l)) => l
            .shape
            .iter()
            .map(|s| (!s.unknown_rank).then(|| shape_from_proto(s)))
            .collect(),
        _ => vec![],
    }
}

/// What MMdnn said about one of its nodes.
struct Recorded {
    op: String,
    shapes: Vec<Option<Shape>>,
}

/// The graph being built.
pub(super) struct Importer {
    core: GraphBuilder,
    pub(super) weights: WeightMap,
    recorded: HashMap<String, Recorded>,
}

impl Importer {
    fn new(gd: &proto::GraphDef) -> Result<Self> {
        let mut recorded = HashMap::new();
        let mut core = GraphBuilder::default();
        for n in &gd.node {
            let r = Recorded {
                op: n.op.clone(),
                shapes: recorded_shapes(n),
            };
            if recorded.insert(n.name.clone(), r).is_some() {
                bail!("MMdnn IR has two nodes named '{}'", n.name);
            }
            core.reserve(&n.name);
        }
        Ok(Importer {
            core,
            weights: WeightMap::default(),
            recorded,
        })
    }

    /// Adds `node` under its name (an MMdnn node's own, or one from [`Importer::add_new`]),
    /// typed from its inputs' types where the builder knows them. A node it cannot type (an
    /// input MMdnn lists later, a shape rule that fails) is kept untyped: validation types the
    /// sorted graph and reports what fails, as for any IR file.
    pub(super) fn add(&mut self, node: Node) -> TensorRef {
        let r = node.output(0);
        let inputs_typed = node.inputs.iter().all(|i| self.core.ty(i).is_ok());
        if !inputs_typed || self.core.push(node.clone()).is_err() {
            self.core.graph.nodes.push(node);
        }
        r
    }

    /// Adds a node MMdnn did not have, named uniquely from its name (used by no MMdnn or
    /// generated node); returns its first output, which names it.
    pub(super) fn add_new(&mut self, mut node: Node) -> TensorRef {
        node.name = self.core.claim(&node.name, false);
        self.add(node)
    }

    /// Makes our (node, param) from an MMdnn weight.
    pub(super) fn weight(&mut self, node: &str, param: &str, stored: Stored) {
        self.weights.insert(node, param, stored);
    }

    /// Maps our (node, param) to the MMdnn weight of the same node under `keys`, unchanged.
    pub(super) fn same_weight(&mut self, n: &MmNode, param: &str, keys: &'static [&'static str]) {
        self.weight(n.name(), param, Stored::new(n.name(), keys));
    }

    pub(super) fn output_shape(&self, n: &MmNode) -> Option<&Shape> {
        self.shape_of(&TensorRef::new(n.name(), 0))
    }

    /// The shape MMdnn recorded for a tensor.
    fn shape_of(&self, r: &TensorRef) -> Option<&Shape> {
        self.recorded.get(&r.node)?.shapes.get(r.index)?.as_ref()
    }

    /// The recorded sizes of the `n` spatial axes of an NHWC tensor, if all are known.
    pub(super) fn spatial_dims(&self, r: &TensorRef, n: usize) -> Option<Vec<i64>> {
        let s = self.shape_of(r)?;
        let spatial = (s.len() == n + 2).then(|| nhwc_spatial(s))?;
        spatial.iter().all(|&d| d >= 0).then_some(spatial)
    }

    /// The sorted graph (inputs: the DataInput nodes; outputs: the nodes nothing reads),
    /// checked against the recorded shapes, and the map of its weights.
    fn finish(mut self) -> Result<(Graph, WeightMap)> {
        let nodes = &self.core.graph.nodes;
        self.core.graph.inputs = nodes
            .iter()
            .filter(|n| n.op == "DataInput")
            .map(|n| n.name.clone())
            .collect();
        let consumed: HashSet<&str> = nodes
            .iter()
            .flat_map(|n| n.inputs.iter().map(|r| r.node.as_str()))
            .collect();
        let outputs = nodes
            .iter()
            .filter(|n| !consumed.contains(n.name.as_str()))
            .map(|n| n.output(0))
            .collect();
        let mut graph = self.core.finish(outputs)?;
        graph.producer = "MMdnn 0.3.1 IR (imported)".to_string();
        graph.sort()?;
        check_recorded_shapes(&graph, &self.recorded)?;
        Ok((graph, self.weights))
    }
}

/// Checks the shapes inferred for the mapped graph against MMdnn's `_output_shapes`.
fn check_recorded_shapes(graph: &Graph, recorded: &HashMap<String, Recorded>) -> Result<()> {
    let mut typed = graph.clone();
    // Problems of the graph itself are the caller's validation's to report; this only compares
    // the shapes that could be inferred.
    let _ = validate::check(&mut typed, None);
    let mismatches: Vec<String> = typed
        .nodes
        .iter()
        .filter_map(|n| {
            let r = recorded.get(&n.name)?;
            let want = r.shapes.first()?.as_ref()?;
            let got = &n.outputs.first()?.shape;
            let agree = want.len() == got.len()
                && want
                    .iter()
                    .zip(got)
                    .all(|(&a, &b)| a < 0 || b < 0 || a == b);
            (!agree).then(|| {
                format!(
                    "node '{}' (MMdnn {}): MMdnn recorded {} but the mapped {} gives {}",
                    n.name,
                    r.op,
                    shape_string(want),
                    n.op,
                    shape_string(got)
                )
            })
        })
        .collect();
    if mismatches.is_empty() {
        return Ok(());
    }
    bail!(
        "the imported MMdnn graph disagrees with the output shapes MMdnn recorded:\n  - {}",
        mismatches.join("\n  - ")
    )
}

/// A recorded shape as tensor dims (unknown dims as 0).
pub(super) fn dims(v: &[i64]) -> Vec<usize> {
    v.iter().map(|&d| d.max(0) as usize).collect()
}
