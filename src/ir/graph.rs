//! The in-memory IR graph: nodes with named ops, typed attributes and typed outputs, explicit graph
//! inputs and outputs. Weights are not stored here; they live in the weight store, keyed by node
//! name and parameter name (see `crate::weights`).
use super::types::{AttrValue, TensorType};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// A reference to one output of a node: `node` (output 0) or `node:i`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorRef {
    pub node: String,
    pub index: usize,
}

impl TensorRef {
    pub fn new(node: impl Into<String>, index: usize) -> Self {
        TensorRef {
            node: node.into(),
            index,
        }
    }

    /// Parses `node` or `node:i`. A name that itself contains ':' followed by something that is
    /// not a number is taken whole.
    pub fn parse(text: &str) -> TensorRef {
        if let Some((node, idx)) = text.rsplit_once(':') {
            if let Ok(index) = idx.parse::<usize>() {
                return TensorRef::new(node, index);
            }
        }
        TensorRef::new(text, 0)
    }
}

impl fmt::Display for TensorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.index == 0 && !self.node.contains(':') {
            write!(f, "{}", self.node)
        } else {
            write!(f, "{}:{}", self.node, self.index)
        }
    }
}

/// One operation of the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: String,
    pub inputs: Vec<TensorRef>,
    pub attrs: BTreeMap<String, AttrValue>,
    /// Type of each output, in order; empty until shape inference has run.
    pub outputs: Vec<TensorType>,
}

impl Node {
    /// The first attribute holding a symbolic dim, with that dim (see
    /// [`crate::ir::AttrValue::symbolic_dim`]).
    pub fn symbolic_attr(&self) -> Option<(&str, i64)> {
        self.attrs
            .iter()
            .find_map(|(name, v)| Some((name.as_str(), v.symbolic_dim()?)))
    }

    /// The attributes given as run-time tensors (trailing inputs, in this order; see
    /// [`crate::ir::ops::FROM_INPUTS`]).
    pub fn runtime_attrs(&self) -> impl Iterator<Item = &str> {
        let list = match self.attrs.get(crate::ir::ops::FROM_INPUTS) {
            Some(AttrValue::Strs(l)) => l.as_slice(),
            _ => &[],
        };
        list.iter().map(String::as_str)
    }

    /// How many trailing inputs give attributes (see [`Node::runtime_attrs`]).
    pub fn runtime_inputs(&self) -> usize {
        self.runtime_attrs().count()
    }

    pub fn new(name: impl Into<String>, op: impl Into<String>) -> Self {
        Node {
            name: name.into(),
            op: op.into(),
            inputs: vec![],
            attrs: BTreeMap::new(),
            outputs: vec![],
        }
    }

    pub fn with_inputs(mut self, inputs: impl IntoIterator<Item = TensorRef>) -> Self {
        self.inputs.extend(inputs);
        self
    }

    pub fn with_attr(mut self, name: &str, value: AttrValue) -> Self {
        self.attrs.insert(name.to_string(), value);
        self
    }

    /// Reference to this node's output `index`.
    pub fn output(&self, index: usize) -> TensorRef {
        TensorRef::new(self.name.clone(), index)
    }
}

/// A computation graph. Nodes are kept in topological order once `sort` has run (every
/// frontend and `Graph::load` leave them sorted).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    pub nodes: Vec<Node>,
    /// Names of the `DataInput` nodes that feed the graph, in order.
    pub inputs: Vec<String>,
    /// The graph's results, in order.
    pub outputs: Vec<TensorRef>,
    /// The source model's name of each output, in the order of `outputs` (empty: the outputs
    /// are named by their tensor references; see [`Graph::output_name`]).
    pub output_names: Vec<String>,
    /// Who wrote the graph (tool and frontend).
    pub producer: String,
}

impl Graph {
    /// The name of graph output `i`: the source model's, else its tensor reference.
    pub fn output_name(&self, i: usize) -> String {
        match (self.output_names.get(i), self.outputs.get(i)) {
            (Some(name), _) if self.output_names.len() == self.outputs.len() => name.clone(),
            (_, Some(r)) => r.to_string(),
            _ => String::new(),
        }
    }

    /// Map from node name to position in `nodes`.
    pub fn index(&self) -> HashMap<&str, usize> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect()
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Type of a tensor, if the producing node has been typed.
    pub fn tensor_type(&self, r: &TensorRef) -> Option<&TensorType> {
        self.node(&r.node).and_then(|n| n.outputs.get(r.index))
    }

    /// Number of consumers of each tensor (graph outputs count as consumers).
    pub fn consumers(&self) -> HashMap<TensorRef, usize> {
        let mut uses = HashMap::new();
        for r in self
            .nodes
            .iter()
            .flat_map(|n| &n.inputs)
            .chain(&self.outputs)
        {
            *uses.entry(r.clone()).or_insert(0) += 1;
        }
        uses
    }

    /// Puts nodes in topological order (stable: keeps the existing order where it is already
    /// valid). Fails on a cycle, naming the nodes on it, or on a dangling input.
    pub fn sort(&mut self) -> Result<()> {
        let index: HashMap<String, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let mut deps: Vec<Vec<usize>> = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let mut d = vec![];
            for r in &n.inputs {
                let &i = index.get(&r.node).ok_or_else(|| {
                    anyhow!(
                        "node '{}' ({}) reads '{}', which no node produces",
                        n.name,
                        n.op,
                        r
                    )
                })?;
                d.push(i);
            }
            deps.push(d);
        }
        // Iterative DFS post-order, visiting roots in current order.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut mark = vec![Mark::New; self.nodes.len()];
        let mut order = Vec::with_capacity(self.nodes.len());
        for root in 0..self.nodes.len() {
            if mark[root] != Mark::New {
                continue;
            }
            let mut stack = vec![(root, 0usize)];
            mark[root] = Mark::Open;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&dep) = deps[node].get(*next) {
                    *next += 1;
                    match mark[dep] {
                        Mark::New => {
                            mark[dep] = Mark::Open;
                            stack.push((dep, 0));
                        }
                        Mark::Open => {
                            let cycle: Vec<&str> = stack
                                .iter()
                                .skip_while(|(n, _)| *n != dep)
                                .map(|(n, _)| self.nodes[*n].name.as_str())
                                .collect();
                            bail!("the graph has a cycle through nodes {}", cycle.join(" -> "));
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[node] = Mark::Done;
                    order.push(node);
                    stack.pop();
                }
            }
        }
        let mut slots: Vec<Option<Node>> = std::mem::take(&mut self.nodes)
            .into_iter()
            .map(Some)
            .collect();
        self.nodes = order
            .into_iter()
            .map(|i| slots[i].take().expect("each node is placed once"))
            .collect();
        Ok(())
    }

    /// Adds a node, failing if its name is taken.
    pub fn add(&mut self, node: Node) -> Result<TensorRef> {
        if self.node(&node.name).is_some() {
            bail!("two nodes are named '{}'", node.name);
        }
        let r = node.output(0);
        self.nodes.push(node);
        Ok(r)
    }

    /// Returns a node name based on `base` that no node uses yet.
    pub fn fresh_name(&self, base: &str) -> String {
        if self.node(base).is_none() {
            return base.to_string();
        }
        (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|n| self.node(n).is_none())
            .expect("an unused name exists")
    }

    /// The node that produces `r`, with context for errors.
    pub fn producer_of(&self, r: &TensorRef) -> Result<&Node> {
        self.node(&r.node)
            .with_context(|| format!("no node produces tensor '{r}'"))
    }
}
