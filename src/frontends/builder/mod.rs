//! The graph builder every frontend builds its IR graph with: unique node names from the
//! source's names, nodes typed by the catalogue's shape rules as they are added (so a frontend
//! sees static shapes while it converts), constant folding through the reference interpreter
//! with a size cap, dead-node removal, and every problem collected for one error. Every
//! frontend ends with [`GraphBuilder::finish`] (the problems) and [`finish_model`] (validation,
//! constant folding, dead-node removal).
//!
//! A frontend keeps only what is its own (how a source name maps to a tensor, the ONNX
//! reader's probed values, the Keras reader's weight sources) on top of this.
mod fold;
mod indices;

pub use fold::{finish_model, fold_constants};

use super::Unconverted;
use crate::interp::{self, Value};
use crate::ir::ops::{Attrs, InferCtx};
use crate::ir::{Graph, Node, TensorRef, TensorType};
use crate::weights::WeightReader;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{HashMap, HashSet};

/// The most bytes one folded value may take: a constant computation whose outputs are larger
/// (a `ConstantOfShape` of 10 GB, say) stays a node of the graph, computed at run time.
pub const FOLD_CAP_BYTES: u64 = 64 << 20;

/// A graph under construction.
#[derive(Default)]
pub struct GraphBuilder {
    pub graph: Graph,
    /// Node names in use.
    used: HashSet<String>,
    /// Source names kept for the nodes that produce them (only those may claim them).
    reserved: HashSet<String>,
    /// Output types of each node, by node name.
    types: HashMap<String, Vec<TensorType>>,
    /// Problems found so far; [`GraphBuilder::finish`] reports them all at once.
    problems: Vec<String>,
}

impl GraphBuilder {
    /// Keeps `name` for the node that produces the source value of that name.
    pub fn reserve(&mut self, name: &str) {
        self.reserved.insert(name.to_string());
    }

    /// A unique node name from `hint` (`hint_1`, `hint_2`, … when taken; "node" when empty).
    /// `own_name`: the hint is the source name of the value this node produces, so a
    /// reserved hint may be taken.
    pub fn claim(&mut self, hint: &str, own_name: bool) -> String {
        let free = |s: &Self, n: &str| !s.used.contains(n) && (own_name || !s.reserved.contains(n));
        let name = if !hint.is_empty() && free(self, hint) {
            hint.to_string()
        } else {
            let base = if hint.is_empty() { "node" } else { hint };
            (1..)
                .map(|i| format!("{base}_{i}"))
                .find(|n| !self.used.contains(n) && !self.reserved.contains(n))
                .expect("an unused name exists")
        };
        self.used.insert(name.clone());
        name
    }

    /// Adds `node` under exactly its name (already claimed or fresh), typing its outputs from
    /// its inputs' types. Returns its first output.
    pub fn push(&mut self, mut node: Node) -> Result<TensorRef> {
        if node.outputs.is_empty() {
            let inputs = node
                .inputs
                .iter()
                .map(|r| self.ty(r).cloned())
                .collect::<Result<Vec<_>>>()?;
            node.outputs = infer(&node, &inputs)?;
        }
        self.used.insert(node.name.clone());
        self.types.insert(node.name.clone(), node.outputs.clone());
        let r = node.output(0);
        self.graph.nodes.push(node);
        Ok(r)
    }

    /// Adds `node` under a unique name made from its name; returns its first output.
    pub fn add(&mut self, mut node: Node) -> Result<TensorRef> {
        node.name = self.claim(&node.name, false);
        let name = node.name.clone();
        let op = node.op.clone();
        self.push(node)
            .with_context(|| format!("{op} node '{name}'"))
    }

    /// Adds a graph input: a `DataInput` node named `name` (which must be free).
    pub fn add_input(&mut self, node: Node) -> Result<TensorRef> {
        let name = node.name.clone();
        if self.claim(&name, true) != name {
            bail!("graph input '{name}' is named twice");
        }
        let r = self.push(node)?;
        self.graph.inputs.push(name);
        Ok(r)
    }

    /// The type of a tensor already in the graph.
    pub fn ty(&self, r: &TensorRef) -> Result<&TensorType> {
        self.types
            .get(&r.node)
            .and_then(|t| t.get(r.index))
            .ok_or_else(|| anyhow!("internal: tensor '{r}' is not typed"))
    }

    /// Records a problem; conversion goes on so that every problem is found.
    pub fn problem(&mut self, message: String) {
        self.problems.push(message);
    }

    /// Whether a problem has been recorded.
    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// The graph with `outputs`, or every recorded problem in one error. The model is finished
    /// by [`finish_model`] (validation, folding, dead-node removal).
    pub fn finish(mut self, outputs: Vec<TensorRef>) -> Result<Graph> {
        self.graph.outputs = outputs;
        if !self.problems.is_empty() {
            let n = self.problems.len();
            return Err(Unconverted {
                message: format!(
                    "the model could not be converted ({n} problem{}):\n  - {}",
                    if n == 1 { "" } else { "s" },
                    self.problems.join("\n  - ")
                ),
                problems: self.problems,
                partial: Some(Box::new(self.graph)),
            }
            .into());
        }
        Ok(self.graph)
    }

    /// The graph as far as it is built (for a reader that stops on problems of its own).
    pub fn into_partial(self) -> Graph {
        self.graph
    }
}

/// Graph output names as a source model gives them, made unique (a repeated name gets `_1`,
/// `_2`, …, as Keras and ONNX exporters number their duplicates).
pub fn unique_names<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    names
        .iter()
        .map(|n| {
            let base = n.as_ref();
            let mut name = base.to_string();
            let mut k = 0;
            while !seen.insert(name.clone()) {
                k += 1;
                name = format!("{base}_{k}");
            }
            name
        })
        .collect()
}

/// Output types of `node` for inputs of `types` (the op's shape rule).
pub fn infer(node: &Node, types: &[TensorType]) -> Result<Vec<TensorType>> {
    let ctx = InferCtx {
        attrs: Attrs::of(node)?,
        inputs: types.iter().collect(),
    };
    crate::ir::ops::infer(&ctx)
}

/// Bytes of tensors of `types`; `None` when a dim is unknown.
fn bytes(types: &[TensorType]) -> Option<u64> {
    let mut total: u64 = 0;
    for t in types {
        let mut n: u64 = t.dtype.size() as u64;
        for &d in &t.shape {
            n = n.saturating_mul(u64::try_from(d).ok()?);
        }
        total = total.saturating_add(n);
    }
    Some(total)
}

/// Whether a node on constant inputs of `inputs` types, making outputs of `outputs` types, is
/// folded: when its outputs take at most [`FOLD_CAP_BYTES`], or at most twice what its inputs
/// take (a weight transposed or cast is always folded; a `ConstantOfShape` of 10 GB from a
/// shape is not). Unknown dims count as too large.
pub fn fits_fold_cap(inputs: &[TensorType], outputs: &[TensorType]) -> bool {
    let Some(out) = bytes(outputs) else {
        return false;
    };
    let consumed = bytes(inputs).unwrap_or(0);
    out <= FOLD_CAP_BYTES.max(consumed.saturating_mul(2))
}

/// Folds `node` on constant `inputs` (and its weights) through the reference interpreter.
pub fn fold(node: &Node, weights: &dyn WeightReader, inputs: Vec<Value>) -> Result<Vec<Value>> {
    interp::run_op(node, weights, inputs)
        .with_context(|| format!("folding {} '{}'", node.op, node.name))
}

/// Removes the nodes that no graph output depends on (graph inputs stay); returns their names.
pub fn remove_dead_nodes(graph: &mut Graph) -> HashSet<String> {
    let index = graph.index();
    let mut live: HashSet<String> = HashSet::new();
    let mut stack: Vec<&str> = graph.outputs.iter().map(|r| r.node.as_str()).collect();
    while let Some(name) = stack.pop() {
        if live.insert(name.to_string()) {
            if let Some(&i) = index.get(name) {
                stack.extend(graph.nodes[i].inputs.iter().map(|r| r.node.as_str()));
            }
        }
    }
    live.extend(graph.inputs.iter().cloned());
    let mut dead = HashSet::new();
    graph.nodes.retain(|n| {
        let keep = live.contains(&n.name);
        if !keep {
            dead.insert(n.name.clone());
        }
        keep
    });
    dead
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{AttrValue, DType};

    fn input(name: &str, shape: Vec<i64>) -> Node {
        Node::new(name, "DataInput")
            .with_attr("dtype", AttrValue::Type(DType::F32))
            .with_attr("shape", AttrValue::Shape(shape))
    }

    #[test]
    fn names_are_unique_and_reserved_names_wait_for_their_owner() {
        let mut b = GraphBuilder::default();
        b.reserve("y");
        assert_eq!(b.claim("x", false), "x");
        assert_eq!(b.claim("x", false), "x_1");
        assert_eq!(b.claim("y", false), "y_1");
        assert_eq!(b.claim("y", true), "y");
        assert_eq!(b.claim("", false), "node_1");
        assert_eq!(b.claim("", false), "node_2");
    }

    #[test]
    fn nodes_are_typed_as_added_and_dead_ones_removed() {
        let mut b = GraphBuilder::default();
        let x = b.add_input(input("x", vec![-1, 3, 8, 8])).unwrap();
        let used = b
            .add(Node::new("relu", "Relu").with_inputs([x.clone()]))
            .unwrap();
        b.add(Node::new("relu", "Sigmoid").with_inputs([x]))
            .unwrap();
        assert_eq!(b.ty(&used).unwrap().shape, vec![-1, 3, 8, 8]);
        let mut g = b.finish(vec![used]).unwrap();
        let dead = remove_dead_nodes(&mut g);
        let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["x", "relu"]);
        assert_eq!(dead, HashSet::from(["relu_1".to_string()]));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut b = GraphBuilder::default();
        b.problem("node 'a' (Foo): unsupported".into());
        b.problem("node 'b' (Bar): unsupported".into());
        assert!(b.has_problems());
        let err = format!("{:#}", b.finish(vec![]).unwrap_err());
        assert!(err.contains("(2 problems)") && err.contains("'a'") && err.contains("'b'"));
    }

    #[test]
    fn the_fold_cap_counts_bytes_and_refuses_unknown_dims() {
        let shape = TensorType::new(DType::I64, vec![2]);
        let small = TensorType::new(DType::F32, vec![1024, 1024]);
        let large = TensorType::new(DType::F32, vec![1 << 20, 1 << 10]);
        let large_f16 = TensorType::new(DType::F16, vec![1 << 20, 1 << 10]);
        let unknown = TensorType::new(DType::F32, vec![-1, 4]);
        // A small result always folds; a 4 GB one made from a shape does not.
        assert!(fits_fold_cap(std::slice::from_ref(&shape), &[small]));
        assert!(!fits_fold_cap(&[shape], std::slice::from_ref(&large)));
        // A large weight transformed (same size, or cast to twice the size) folds.
        assert!(fits_fold_cap(
            std::slice::from_ref(&large),
            std::slice::from_ref(&large)
        ));
        assert!(fits_fold_cap(&[large_f16], std::slice::from_ref(&large)));
        assert!(!fits_fold_cap(&[], &[unknown]));
    }
}
