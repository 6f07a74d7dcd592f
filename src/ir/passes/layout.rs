//! Layout conversion: rewrites a graph from channels_first to channels_last or back, exactly.
//!
//! Every tensor of the converted graph is tracked as its original permuted by some `perm`
//! (`new = transpose(original, perm)`: new axis i is original axis `perm[i]`). Ops with a
//! `data_format` switch to the target format (input wanted in the target layout, kernel weights
//! permuted); layout-agnostic ops pass the permutation through; ops with axis attributes get them
//! renamed; constants broadcast against a permuted tensor are permuted themselves; Flatten (or a
//! flattening Reshape) feeding only FullyConnected layers leaves its columns permuted and
//! permutes the layers' weight rows instead. A Transpose is inserted only where no rewrite exists,
//! and always from a tensor's tracked form, so inverse pairs cancel and consecutive ones merge by
//! construction (a source Transpose is absorbed into the tracked permutation). Weights are
//! transformed lazily, per tensor, on read ([`TransformedWeights`]).
use crate::ir::ops::{self, shape_rules::norm_axis, Attrs, Layout};
use crate::ir::{validate, AttrValue, Graph, Node, TensorRef};
use crate::weights::derived::{Derived, DerivedWeights, Source, Step};
use crate::weights::WeightReader;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;

/// The layout a graph is converted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    ChannelsFirst,
    ChannelsLast,
}

impl Target {
    /// The `data_format` value of this layout.
    pub fn data_format(self) -> &'static str {
        match self {
            Target::ChannelsFirst => "channels_first",
            Target::ChannelsLast => "channels_last",
        }
    }

    fn is_last(self) -> bool {
        self == Target::ChannelsLast
    }
}

/// An axis permutation: output axis i is input axis `perm[i]` (as the Transpose op).
pub type Perm = Vec<usize>;

/// The converted graph and what the conversion did.
pub struct LayoutResult<'w> {
    pub graph: Graph,
    pub weights: TransformedWeights<'w>,
    /// One line per decision (node rewrites, inserted Transposes, boundary changes).
    pub log: Vec<String>,
    /// Per graph input: the permutation its tensor now has (feed `transpose(x, perm)`), or
    /// `None` when it is unchanged.
    pub input_perms: Vec<Option<Perm>>,
    /// Per graph output: the permutation its tensor now has (`transpose(original, perm)`), or
    /// `None` when it is unchanged.
    pub output_perms: Vec<Option<Perm>>,
}

/// Converts `graph` to the `target` layout. With `keep_io`, graph inputs and outputs keep their
/// layout (Transposes are inserted at the boundary); otherwise image inputs and outputs (rank 3
/// to 5) take the target layout and `input_perms` / `output_perms` say how.
pub fn convert_layout<'w>(
    graph: &Graph,
    weights: &'w dyn WeightReader,
    target: Target,
    keep_io: bool,
) -> Result<LayoutResult<'w>> {
    let mut src = graph.clone();
    validate::infer_types(&mut src).context("layout conversion needs a valid graph")?;
    let mut c = Converter::new(&src, weights, target, keep_io);
    for node in &src.nodes {
        c.rewrite(node)
            .with_context(|| format!("layout: node '{}' ({})", node.name, node.op))?;
    }
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// Permutation helpers.

fn identity(rank: usize) -> Perm {
    (0..rank).collect()
}

fn is_identity(p: &[usize]) -> bool {
    p.iter().enumerate().all(|(i, &v)| i == v)
}

fn inverse(p: &[usize]) -> Perm {
    let mut inv = vec![0; p.len()];
    for (i, &v) in p.iter().enumerate() {
        inv[v] = i;
    }
    inv
}

/// `a` then `b`: `transpose(transpose(x, a), b) == transpose(x, compose(a, b))`.
fn compose(a: &[usize], b: &[usize]) -> Perm {
    b.iter().map(|&i| a[i]).collect()
}

fn permute<T: Copy>(values: &[T], p: &[usize]) -> Vec<T> {
    p.iter().map(|&i| values[i]).collect()
}

/// `p` extended to `rank` axes by leading axes that stay in place (broadcasting's left padding).
fn lift(p: &[usize], rank: usize) -> Perm {
    let extra = rank - p.len();
    (0..extra).chain(p.iter().map(|&v| v + extra)).collect()
}

/// `p` after the original axes `removed` are dropped from both sides.
fn drop_axes(p: &[usize], removed: &[usize]) -> Perm {
    p.iter()
        .filter(|v| !removed.contains(v))
        .map(|&v| v - removed.iter().filter(|&&r| r < v).count())
        .collect()
}

/// The permutation taking a tensor of `rank` from one data format to the other.
fn switch_perm(rank: usize, from_last: bool) -> Perm {
    if from_last {
        [0, rank - 1].into_iter().chain(1..rank - 1).collect()
    } else {
        [0].into_iter().chain(2..rank).chain([1]).collect()
    }
}

/// The permutation from a data format to the target (identity when they agree).
fn format_perm(rank: usize, from_last: bool, target: Target) -> Perm {
    if from_last == target.is_last() {
        identity(rank)
    } else {
        switch_perm(rank, from_last)
    }
}

/// Calls `f` with the flat index in `x` (of shape `dims`) of each element of `transpose(x, perm)`,
/// in C order.
fn visit_permuted(dims: &[usize], perm: &[usize], mut f: impl FnMut(usize)) {
    let mut strides = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * dims[i + 1];
    }
    let out_dims = permute(dims, perm);
    let out_strides = permute(&strides, perm);
    let total: usize = dims.iter().product();
    let mut index = vec![0; dims.len()];
    let mut offset = 0;
    for _ in 0..total {
        f(offset);
        for k in (0..index.len()).rev() {
            index[k] += 1;
            offset += out_strides[k];
            if index[k] < out_dims[k] {
                break;
            }
            offset -= out_strides[k] * index[k];
            index[k] = 0;
        }
    }
}

/// Whether `transpose(x, p)` has `x`'s elements in the same order (only size-1 axes move).
fn same_data_order(shape: &[i64], p: &[usize]) -> bool {
    p.iter().filter(|&&a| shape[a] != 1).is_sorted()
}

/// The contiguous blocks a Reshape maps onto each other: (input axes, output axes) with equal
/// products. `None` when unknown or zero dims make the grouping ambiguous.
fn reshape_blocks(s: &[i64], o: &[i64]) -> Option<Vec<(Range<usize>, Range<usize>)>> {
    let (mut i, mut j) = (0, 0);
    let mut blocks: Vec<(Range<usize>, Range<usize>)> = vec![];
    while i < s.len() && j < o.len() {
        let (i0, j0) = (i, j);
        if s[i] < 0 && o[j] < 0 {
            i += 1;
            j += 1;
        } else {
            if s[i] <= 0 || o[j] <= 0 {
                return None;
            }
            let (mut pi, mut pj) = (s[i], o[j]);
            i += 1;
            j += 1;
            while pi != pj {
                let (p, dims, k) = if pi < pj {
                    (&mut pi, s, &mut i)
                } else {
                    (&mut pj, o, &mut j)
                };
                let d = *dims.get(*k).filter(|&&d| d > 0)?;
                *p *= d;
                *k += 1;
            }
        }
        blocks.push((i0..i, j0..j));
    }
    let last = blocks.last_mut()?;
    if s[i..].iter().chain(&o[j..]).any(|&d| d != 1) {
        return None;
    }
    last.0.end = s.len();
    last.1.end = o.len();
    Some(blocks)
}

/// The output permutation of a Reshape whose input is permuted by `p`, when `p` moves whole
/// blocks and keeps each block's axes in order.
fn block_perm(blocks: &[(Range<usize>, Range<usize>)], p: &[usize]) -> Option<Perm> {
    let mut q = vec![];
    let mut k = 0;
    while k < p.len() {
        let (ins, outs) = blocks.iter().find(|(ins, _)| ins.contains(&p[k]))?;
        if p.get(k..k + ins.len())?.iter().copied().ne(ins.clone()) {
            return None;
        }
        q.extend(outs.clone());
        k += ins.len();
    }
    Some(q)
}

/// The output dims of a Reshape of `shape` to `target`, carrying one unknown input dim (the
/// batch) symbolically: `[-1, 4, 4, 2]` to `[0, -1]` gives `[-1, 32]`, where the type rule can
/// only say `[-1, -1]`. `None` when that symbol would be split or scaled.
fn resolve_reshape(shape: &[i64], target: &[i64]) -> Option<Vec<i64>> {
    let unknown = shape.iter().filter(|&&d| d < 0).count();
    if unknown > 1 {
        return None;
    }
    let known: i64 = shape.iter().filter(|&&d| d >= 0).product();
    let mut carried = unknown == 0;
    let mut fill = None;
    let mut out = Vec::with_capacity(target.len());
    for (i, &t) in target.iter().enumerate() {
        let d = match t {
            0 => *shape.get(i)?,
            -1 => {
                fill = Some(i);
                -1
            }
            d => d,
        };
        carried |= t == 0 && d < 0;
        out.push(d);
    }
    let literal: i64 = out.iter().filter(|&&d| d >= 0).product();
    if let Some(f) = fill {
        if literal == 0 || known % literal != 0 {
            return None;
        }
        out[f] = match known / literal {
            q if carried => q,
            1 => -1,
            _ => return None,
        };
    }
    Some(out)
}

/// A Reshape target for the resolved output `dims`: at most one unknown dim, written -1.
fn reshape_target(dims: &[i64]) -> Option<Vec<i64>> {
    (dims.iter().filter(|&&d| d < 0).count() <= 1).then(|| dims.to_vec())
}

fn fmt_perm(p: &[usize]) -> String {
    format!("{p:?}")
}

// ---------------------------------------------------------------------------------------------
// Lazily transformed weights.

/// The weights of a converted graph: the source weights, with kernel and constant permutations
/// and FullyConnected row reorderings applied per tensor when it is read.
pub type TransformedWeights<'w> = DerivedWeights<'w>;

/// How a weight of the converted graph is made from the source weights (for generated code
/// that recomputes it from the source weights file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Derivation<'a> {
    /// The source weight of the same key, unchanged.
    Same,
    /// Source weight (node, param), left-padded with size-1 axes to `perm`'s length and
    /// transposed by `perm`.
    Permute(&'a str, &'a str, &'a [usize]),
    /// Source weight (node, param) with its rows (axis 0) reordered: new row i is `rows[i]`.
    Rows(&'a str, &'a str, &'a [usize]),
}

/// How weight (node, param) of the converted graph is made, or `None` when it has no such
/// weight.
pub fn derivation<'a>(
    weights: &'a TransformedWeights,
    node: &str,
    param: &str,
) -> Option<Derivation<'a>> {
    let d = weights.get(node, param)?;
    let [Source::Weight {
        node: src_node,
        param: src_param,
    }] = &d.sources[..]
    else {
        return None;
    };
    match &d.steps[..] {
        [] if src_node == node && src_param == param => Some(Derivation::Same),
        [Step::Permute(p)] => Some(Derivation::Permute(src_node, src_param, p)),
        [Step::Rows(r)] => Some(Derivation::Rows(src_node, src_param, r)),
        _ => None,
    }
}

/// Source weight (node, param) permuted by `perm` (left-padded to its length).
fn permuted(node: &str, param: &str, perm: Perm) -> Derived {
    Derived::weight(node, param).then(Step::Permute(perm))
}

// ---------------------------------------------------------------------------------------------
// The conversion.

/// Same-rank ops through which a graph input's axes keep their identity (used to pick the
/// layout of graph inputs).
const AXIS_PRESERVING: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Mod",
    "Maximum",
    "Minimum",
    "Where",
    "Concat",
    "Softmax",
    "LogSoftmax",
    "Pad",
    "Slice",
    "Tile",
    "BatchNorm",
    "LRN",
    "InstanceNorm",
    "GroupNorm",
    "LpNormalize",
    "PRelu",
    "Split",
    "Cast",
];

const ELEMENTWISE: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Mod",
    "Maximum",
    "Minimum",
    "Equal",
    "Greater",
    "GreaterOrEqual",
    "Less",
    "LessOrEqual",
    "And",
    "Or",
    "Xor",
    "Where",
];

struct Converter<'a, 'w> {
    src: &'a Graph,
    index: HashMap<&'a str, usize>,
    /// Consuming nodes of each source tensor.
    consumers: HashMap<TensorRef, Vec<usize>>,
    /// Number of uses of each source tensor, graph outputs included.
    uses: HashMap<TensorRef, usize>,
    weights: &'w dyn WeightReader,
    target: Target,
    keep_io: bool,
    nodes: Vec<Node>,
    used: HashSet<String>,
    /// Tracked form of each source tensor: the new tensor and its permutation.
    tracked: HashMap<TensorRef, (TensorRef, Perm)>,
    /// Every materialised form: (source tensor, permutation) → new tensor.
    forms: HashMap<(TensorRef, Perm), TensorRef>,
    /// Flatten outputs whose columns are permuted: the source column of each new column.
    columns: HashMap<TensorRef, Vec<usize>>,
    /// Names of absorbed source Transposes, free for the Transpose that materialises them.
    absorbed: HashSet<String>,
    sources: HashMap<(String, String), Derived>,
    inserted: HashSet<String>,
    input_perms: HashMap<String, Perm>,
    /// Whether a graph input or a data_format op switched layout. Without a switch the graph
    /// is already in the target layout, and an output whose permutation merely looks like a
    /// layout switch (a source Transpose) is transposed back, not left permuted.
    switched: bool,
    transposes: usize,
    log: Vec<String>,
}

impl<'a, 'w> Converter<'a, 'w> {
    fn new(src: &'a Graph, weights: &'w dyn WeightReader, target: Target, keep_io: bool) -> Self {
        let mut consumers: HashMap<TensorRef, Vec<usize>> = HashMap::new();
        for (i, n) in src.nodes.iter().enumerate() {
            for r in &n.inputs {
                consumers.entry(r.clone()).or_default().push(i);
            }
        }
        Converter {
            src,
            index: src.index(),
            consumers,
            uses: src.consumers(),
            weights,
            target,
            keep_io,
            nodes: vec![],
            used: src.nodes.iter().map(|n| n.name.clone()).collect(),
            tracked: HashMap::new(),
            forms: HashMap::new(),
            columns: HashMap::new(),
            absorbed: HashSet::new(),
            sources: HashMap::new(),
            inserted: HashSet::new(),
            input_perms: HashMap::new(),
            switched: false,
            transposes: 0,
            log: vec![],
        }
    }

    fn src_node(&self, name: &str) -> Result<&'a Node> {
        let src = self.src;
        self.index
            .get(name)
            .map(|&i| &src.nodes[i])
            .ok_or_else(|| anyhow!("no node is named '{name}'"))
    }

    fn shape(&self, r: &TensorRef) -> Result<Vec<i64>> {
        self.src_node(&r.node)?
            .outputs
            .get(r.index)
            .map(|t| t.shape.clone())
            .ok_or_else(|| anyhow!("tensor '{r}' has no type"))
    }

    fn rank(&self, r: &TensorRef) -> Result<usize> {
        Ok(self.shape(r)?.len())
    }

    fn perm_of(&self, r: &TensorRef) -> Result<Perm> {
        match self.tracked.get(r) {
            Some((_, p)) => Ok(p.clone()),
            None => Ok(identity(self.rank(r)?)),
        }
    }

    fn fresh(&mut self, base: &str) -> String {
        let name = if self.used.contains(base) {
            (1..)
                .map(|i| format!("{base}_{i}"))
                .find(|n| !self.used.contains(n))
                .expect("an unused name exists")
        } else {
            base.to_string()
        };
        self.used.insert(name.clone());
        name
    }

    fn push(&mut self, node: Node) -> TensorRef {
        let r = node.output(0);
        self.used.insert(node.name.clone());
        self.nodes.push(node);
        r
    }

    /// Emits the rewrite of a source node and tracks its outputs with `perms`.
    fn emit(&mut self, mut node: Node, perms: Vec<Perm>) {
        node.outputs.clear();
        if perms.iter().any(|p| !is_identity(p)) {
            node.attrs.remove("_output_shapes");
        }
        for (k, p) in perms.into_iter().enumerate() {
            let r = TensorRef::new(node.name.clone(), k);
            self.forms.insert((r.clone(), p.clone()), r.clone());
            self.tracked.insert(r.clone(), (r, p));
        }
        self.push(node);
    }

    fn transpose(&mut self, producer: &str, input: TensorRef, perm: Perm) -> TensorRef {
        let name = if self.absorbed.remove(producer) {
            producer.to_string()
        } else {
            self.fresh(&format!("{producer}_transpose"))
        };
        self.transposes += 1;
        self.inserted.insert(name.clone());
        self.push(
            Node::new(name, "Transpose")
                .with_inputs([input])
                .with_attr("perm", ints(&perm)),
        )
    }

    /// Source tensor `r` as `transpose(r, perm)`, left-padded with size-1 axes when `perm` is
    /// longer than `r`'s rank (for broadcasting). Reuses an existing form, permutes a Constant's
    /// value, or inserts an Unsqueeze and/or a Transpose.
    fn get(&mut self, r: &TensorRef, perm: &[usize]) -> Result<TensorRef> {
        let key = (r.clone(), perm.to_vec());
        if let Some(t) = self.forms.get(&key) {
            return Ok(t.clone());
        }
        let producer = self.src_node(&r.node)?;
        let rank = self.rank(r)?;
        let new = if producer.op == "Constant" {
            self.constant(producer, perm)?
        } else {
            let (mut base, mut p) =
                self.tracked.get(r).cloned().ok_or_else(|| {
                    anyhow!("internal: tensor '{r}' is used before it is computed")
                })?;
            if perm.len() > rank {
                let lifted = lift(&p, perm.len());
                base = match self.forms.get(&(r.clone(), lifted.clone())) {
                    Some(t) => t.clone(),
                    None => {
                        let name = self.fresh(&format!("{}_unsqueeze", r.node));
                        self.inserted.insert(name.clone());
                        let axes: Vec<usize> = (0..perm.len() - rank).collect();
                        let t = self.push(
                            Node::new(name, "Unsqueeze")
                                .with_inputs([base])
                                .with_attr("axes", ints(&axes)),
                        );
                        self.forms.insert((r.clone(), lifted.clone()), t.clone());
                        t
                    }
                };
                p = lifted;
            }
            let t = compose(&inverse(&p), perm);
            if is_identity(&t) {
                base
            } else {
                self.transpose(&r.node, base, t)
            }
        };
        self.forms.insert(key, new.clone());
        Ok(new)
    }

    /// A Constant as `transpose(value, perm)` (left-padded to `perm`'s rank): the source node
    /// itself for the identity, otherwise a copy whose value is permuted on read.
    fn constant(&mut self, node: &Node, perm: &[usize]) -> Result<TensorRef> {
        let shape = Attrs::of(node)?.ints("shape")?;
        let rank = shape.len();
        let trivial = shape.iter().product::<i64>() == 1;
        if (perm.len() == rank && is_identity(perm)) || trivial {
            let key = (node.output(0), identity(rank));
            if let Some(t) = self.forms.get(&key) {
                return Ok(t.clone());
            }
            let mut copy = node.clone();
            copy.outputs.clear();
            let t = self.push(copy);
            self.forms.insert(key, t.clone());
            return Ok(t);
        }
        let name = if self.uses.get(&node.output(0)) == Some(&1) {
            node.name.clone()
        } else {
            self.fresh(&format!("{}_permuted", node.name))
        };
        let mut lifted = vec![1; perm.len() - rank];
        lifted.extend(&shape);
        let new_shape = permute(&lifted, perm);
        self.sources.insert(
            (name.clone(), "value".into()),
            permuted(&node.name, "value", perm.to_vec()),
        );
        self.log.push(format!(
            "{}: constant value {:?} → {new_shape:?}{}",
            node.name,
            shape,
            if name == node.name {
                String::new()
            } else {
                format!(" as '{name}'")
            }
        ));
        let mut copy = node.clone();
        copy.name = name;
        copy.outputs.clear();
        copy.attrs
            .insert("shape".into(), AttrValue::Shape(new_shape));
        copy.attrs.remove("_output_shapes");
        Ok(self.push(copy))
    }

    /// The tracked form of a node's input `i` (constants in their own layout).
    fn primary(&mut self, node: &Node, i: usize) -> Result<(TensorRef, Perm)> {
        let r = &node.inputs[i];
        match self.tracked.get(r) {
            Some(t) => Ok(t.clone()),
            None => {
                let rank = self.rank(r)?;
                Ok((self.get(r, &identity(rank))?, identity(rank)))
            }
        }
    }

    /// A copy of `node` reading `first` as input 0 and every other input unpermuted.
    fn derived(&mut self, node: &Node, first: TensorRef) -> Result<Node> {
        let mut new = node.clone();
        new.inputs[0] = first;
        for i in 1..node.inputs.len() {
            let rank = self.rank(&node.inputs[i])?;
            new.inputs[i] = self.get(&node.inputs[i], &identity(rank))?;
        }
        Ok(new)
    }

    fn note(&mut self, node: &Node, before: usize, what: String) {
        let inserted = if self.transposes > before {
            "; Transpose inserted"
        } else {
            ""
        };
        self.log.push(format!("{}: {what}{inserted}", node.name));
    }

    fn rewrite(&mut self, node: &Node) -> Result<()> {
        let def = ops::lookup(node)?;
        match node.op.as_str() {
            "DataInput" => self.data_input(node),
            "Constant" => self.source_constant(node),
            "Transpose" => self.transpose_op(node),
            "Flatten" => self.flatten(node),
            "Reshape" => self.reshape(node),
            "FullyConnected" => self.fully_connected(node),
            "Concat" => self.concat(node),
            "Softmax" | "LogSoftmax" | "ArgMax" | "ArgMin" | "Gather" | "Split" | "BatchNorm"
            | "GroupNorm" | "InstanceNorm" | "LRN" | "LpNormalize" => self.axis_op(node),
            "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL2" => {
                self.reduce(node)
            }
            "Squeeze" => self.squeeze(node),
            "Unsqueeze" => self.unsqueeze(node),
            "Slice" => self.slice(node),
            "Pad" | "Tile" => self.per_axis_list(node),
            "Expand" => self.expand(node),
            "LayerNorm" => self.layer_norm(node),
            "PRelu" => self.prelu(node),
            "Cast" => self.pass_through(node),
            op if ELEMENTWISE.contains(&op) => self.elementwise(node),
            _ => match def.layout {
                Layout::Agnostic => self.pass_through(node),
                Layout::DataFormat => self.data_format_op(node),
                Layout::Axes => self.keep(node),
            },
        }
    }

    /// Emits the node reading every input unpermuted (the fallback).
    fn keep(&mut self, node: &Node) -> Result<()> {
        let before = self.transposes;
        let mut new = node.clone();
        for (i, r) in node.inputs.iter().enumerate() {
            let rank = self.rank(r)?;
            new.inputs[i] = self.get(r, &identity(rank))?;
        }
        let perms = self.output_identities(node)?;
        self.emit(new, perms);
        let what = if self.transposes > before {
            "Transpose inserted"
        } else {
            "unchanged"
        };
        self.log.push(format!("{}: {what}", node.name));
        Ok(())
    }

    fn output_identities(&self, node: &Node) -> Result<Vec<Perm>> {
        (0..node.outputs.len())
            .map(|k| Ok(identity(self.rank(&node.output(k))?)))
            .collect()
    }

    fn pass_through(&mut self, node: &Node) -> Result<()> {
        let (x, p) = self.primary(node, 0)?;
        if is_identity(&p) {
            return self.keep(node);
        }
        let new = self.derived(node, x)?;
        self.emit(new, vec![p.clone()]);
        self.log.push(format!(
            "{}: layout-agnostic, stays permuted {}",
            node.name,
            fmt_perm(&p)
        ));
        Ok(())
    }

    /// The layout a graph input should take: the permutation the first data-format op reached
    /// through axis-preserving ops wants, when that is the standard switch to the target.
    fn preferred_input_perm(&self, node: &Node) -> Result<Option<Perm>> {
        let rank = self.rank(&node.output(0))?;
        if !(3..=5).contains(&rank) {
            return Ok(None);
        }
        let mut queue = VecDeque::from([(node.output(0), identity(rank))]);
        let mut seen = HashSet::new();
        while let Some((r, m)) = queue.pop_front() {
            if !seen.insert(r.clone()) {
                continue;
            }
            for &i in self.consumers.get(&r).into_iter().flatten() {
                let user = &self.src.nodes[i];
                let def = ops::lookup(user)?;
                if def.layout == Layout::DataFormat {
                    let q = format_perm(rank, Attrs::of(user)?.channels_last()?, self.target);
                    let want = compose(&m, &q);
                    let standard = switch_perm(rank, !self.target.is_last());
                    return Ok((want == standard).then_some(want));
                }
                let next = if user.op == "Transpose" {
                    compose(&m, &transpose_perm(user, rank)?)
                } else if def.layout == Layout::Agnostic
                    || AXIS_PRESERVING.contains(&user.op.as_str())
                {
                    m.clone()
                } else {
                    continue;
                };
                for k in 0..user.outputs.len() {
                    if self.rank(&user.output(k))? == rank {
                        queue.push_back((user.output(k), next.clone()));
                    }
                }
            }
        }
        Ok(None)
    }

    fn data_input(&mut self, node: &Node) -> Result<()> {
        let Some(p) = self.preferred_input_perm(node)? else {
            return self.keep(node);
        };
        let r = node.output(0);
        if self.keep_io {
            self.emit(node.clone(), vec![identity(p.len())]);
            let t = self.transpose(&node.name, r.clone(), p.clone());
            self.forms.insert((r.clone(), p.clone()), t.clone());
            self.tracked.insert(r, (t, p.clone()));
            self.log.push(format!(
                "{}: graph input keeps its layout; Transpose {} to {}",
                node.name,
                fmt_perm(&p),
                self.target.data_format()
            ));
            return Ok(());
        }
        let shape = self.shape(&r)?;
        let new_shape = permute(&shape, &p);
        let mut new = node.clone();
        new.attrs
            .insert("shape".into(), AttrValue::Shape(new_shape.clone()));
        self.emit(new, vec![p.clone()]);
        self.input_perms.insert(node.name.clone(), p);
        self.switched = true;
        self.log.push(format!(
            "{}: graph input shape {shape:?} → {new_shape:?} ({})",
            node.name,
            self.target.data_format()
        ));
        Ok(())
    }

    /// Constants are emitted where used, in the form each use needs; unused ones stay as they
    /// are.
    fn source_constant(&mut self, node: &Node) -> Result<()> {
        if self.uses.get(&node.output(0)).copied().unwrap_or(0) == 0 {
            self.constant(node, &identity(self.rank(&node.output(0))?))?;
        }
        Ok(())
    }

    fn data_format_op(&mut self, node: &Node) -> Result<()> {
        let before = self.transposes;
        let rank = self.rank(&node.inputs[0])?;
        let from_last = Attrs::of(node)?.channels_last()?;
        let q = format_perm(rank, from_last, self.target);
        let x = self.get(&node.inputs[0], &q)?;
        let mut new = self.derived(node, x)?;
        let target = self.target.data_format();
        self.switched |= !is_identity(&q);
        let mut what = if is_identity(&q) {
            format!("already {target}")
        } else {
            let from = if from_last {
                "channels_last"
            } else {
                "channels_first"
            };
            format!("data_format {from}→{target}")
        };
        new.attrs
            .insert("data_format".into(), AttrValue::Str(target.into()));
        if !is_identity(&q) && matches!(node.op.as_str(), "Conv" | "ConvTranspose") {
            what += &self.kernel_weights(node, rank - 2, from_last)?;
        }
        let out_rank = self.rank(&node.output(0))?;
        let out = if out_rank == rank {
            q
        } else {
            identity(out_rank)
        };
        self.emit(new, vec![out]);
        self.note(node, before, what);
        Ok(())
    }

    /// Registers the kernel permutation of a Conv/ConvTranspose switching format.
    fn kernel_weights(&mut self, node: &Node, spatial: usize, from_last: bool) -> Result<String> {
        let rank = spatial + 2;
        if let Some(info) = self.weights.info(&node.name, "weights") {
            if info.shape.len() != rank {
                bail!(
                    "weight 'weights' has shape {:?}; expected rank {rank}",
                    info.shape
                );
            }
        }
        let (a, b) = if node.op == "Conv" {
            ("out", "in")
        } else {
            ("in", "out")
        };
        let (perm, text): (Perm, _) = if from_last {
            (
                [spatial + 1, spatial]
                    .into_iter()
                    .chain(0..spatial)
                    .collect(),
                format!(", weights [*k,{b},{a}]→[{a},{b},*k]"),
            )
        } else {
            (
                (2..rank).chain([1, 0]).collect(),
                format!(", weights [{a},{b},*k]→[*k,{b},{a}]"),
            )
        };
        self.sources.insert(
            (node.name.clone(), "weights".into()),
            permuted(&node.name, "weights", perm),
        );
        Ok(text)
    }

    fn transpose_op(&mut self, node: &Node) -> Result<()> {
        let (x, p) = self.primary(node, 0)?;
        let t = transpose_perm(node, p.len())?;
        // x = transpose(in, p) and out = transpose(in, t), so x = transpose(out, t⁻¹ ∘ p).
        let q = compose(&inverse(&t), &p);
        let out = node.output(0);
        self.forms.insert((out.clone(), q.clone()), x.clone());
        self.tracked.insert(out, (x, q.clone()));
        self.absorbed.insert(node.name.clone());
        self.log.push(format!(
            "{}: Transpose {} absorbed (output tracked as permuted {})",
            node.name,
            fmt_perm(&t),
            fmt_perm(&q)
        ));
        Ok(())
    }

    fn elementwise(&mut self, node: &Node) -> Result<()> {
        let out_rank = self.rank(&node.output(0))?;
        let mut lead = None;
        for r in &node.inputs {
            let p = self.perm_of(r)?;
            if p.len() == out_rank && !is_identity(&p) {
                lead = Some(p);
                break;
            }
        }
        let Some(lead) = lead else {
            return self.keep(node);
        };
        let before = self.transposes;
        let mut new = node.clone();
        for (i, r) in node.inputs.iter().enumerate() {
            new.inputs[i] = self.get(r, &lead)?;
        }
        self.emit(new, vec![lead.clone()]);
        self.note(
            node,
            before,
            format!("elementwise, operands taken permuted {}", fmt_perm(&lead)),
        );
        Ok(())
    }

    fn concat(&mut self, node: &Node) -> Result<()> {
        let mut lead = None;
        for r in &node.inputs {
            let p = self.perm_of(r)?;
            if !is_identity(&p) {
                lead = Some(p);
                break;
            }
        }
        let Some(lead) = lead else {
            return self.keep(node);
        };
        let before = self.transposes;
        let mut new = node.clone();
        for (i, r) in node.inputs.iter().enumerate() {
            new.inputs[i] = self.get(r, &lead)?;
        }
        let axis = norm_axis(Attrs::of(node)?.int("axis")?, lead.len())?;
        let new_axis = inverse(&lead)[axis];
        new.attrs
            .insert("axis".into(), AttrValue::Int(new_axis as i64));
        self.emit(new, vec![lead]);
        self.note(node, before, format!("axis {axis}→{new_axis}"));
        Ok(())
    }

    /// Ops with one `axis` attribute: the axis is renamed.
    fn axis_op(&mut self, node: &Node) -> Result<()> {
        let (x, p) = self.primary(node, 0)?;
        let batch_bound = matches!(node.op.as_str(), "GroupNorm" | "InstanceNorm");
        if is_identity(&p) || (batch_bound && p[0] != 0) {
            return self.keep(node);
        }
        let attrs = Attrs::of(node)?;
        let axis = norm_axis(attrs.int("axis")?, p.len())?;
        let new_axis = inverse(&p)[axis];
        let outs = match node.op.as_str() {
            "ArgMax" | "ArgMin" if !attrs.bool("keepdims")? => vec![drop_axes(&p, &[axis])],
            "Gather" => {
                let k = self.rank(&node.inputs[1])?;
                let data = |d: usize| if d < axis { d } else { d - 1 + k };
                let mut q: Perm = p[..new_axis].iter().map(|&d| data(d)).collect();
                q.extend(axis..axis + k);
                q.extend(p[new_axis + 1..].iter().map(|&d| data(d)));
                vec![q]
            }
            _ => vec![p.clone(); node.outputs.len()],
        };
        let mut new = self.derived(node, x)?;
        new.attrs
            .insert("axis".into(), AttrValue::Int(new_axis as i64));
        self.emit(new, outs);
        self.log
            .push(format!("{}: axis {axis}→{new_axis}", node.name));
        Ok(())
    }

    fn reduce(&mut self, node: &Node) -> Result<()> {
        let (x, p) = self.primary(node, 0)?;
        if is_identity(&p) {
            return self.keep(node);
        }
        let attrs = Attrs::of(node)?;
        let listed = attrs.ints("axes")?;
        let axes: Vec<usize> = if listed.is_empty() {
            identity(p.len())
        } else {
            listed
                .iter()
                .map(|&a| norm_axis(a, p.len()))
                .collect::<Result<_>>()?
        };
        let inv = inverse(&p);
        let mut new_axes: Vec<usize> = axes.iter().map(|&a| inv[a]).collect();
        new_axes.sort_unstable();
        new_axes.dedup();
        let out = if attrs.bool("keepdims")? {
            p.clone()
        } else {
            drop_axes(&p, &axes)
        };
        let mut new = self.derived(node, x)?;
        if !listed.is_empty() {
            new.attrs.insert("axes".into(), ints(&new_axes));
        }
        self.emit(new, vec![out]);
        self.log
            .push(format!("{}: axes {axes:?}→{new_axes:?}", node.name));
        Ok(())
    }

    fn squeeze(&mut self, node: &Node) -> Result<()> {
        let (x, p) = self.primary(node, 0)?;
        if is_identity(&p) {
            return self.keep(node);
        }
        let shape = self.shape(&node.inputs[0])?;
        let listed = Attrs::of(node)?.ints("axes")?;
        if listed.is_empty() && shape.contains(&-1) {
            // Which axes go depends on the data.
            return self.keep(node);
        }
        let axes: Vec<usize> = if listed.is_empty() {
            (0..shape.len()).filter(|&a| shape[a] == 1).collect()
        } else {
            listed
                .iter()
                .map(|&a| norm_axis(a, p.len()))
                .collect::<Result<_>>()?
        };
        let inv = inverse(&p);
        let mut new_axes: Vec<usize> = axes.iter().map(|&a| inv[a]).collect();
        new_axes.sort_unstable();
        let mut new = self.derived(node, x)?;
        new.attrs.insert("axes".into(), ints(&new_axes));
        self.emit(new, vec![drop_axes(&p, &axes)]);
        self.log
            .push(format!("{}: axes {axes:?}→{new_axes:?}", node.name));
        Ok(())
    }

    fn unsqueeze(&mut self, node: &Node) -> Result<()> {
        let (x, p) = self.primary(node, 0)?;
        if is_identity(&p) {
            return self.keep(node);
        }
        let out_rank = self.rank(&node.output(0))?;
        let inserted: Vec<usize> = Attrs::of(node)?
            .ints("axes")?
            .iter()
            .map(|&a| norm_axis(a, out_rank))
            .collect::<Result<_>>()?;
        let kept: Vec<usize> = (0..out_rank).filter(|a| !inserted.contains(a)).collect();
        let mut q = identity(out_rank);
        for (i, &pos) in kept.iter().enumerate() {
            q[pos] = kept[p[i]];
        }
        let new = self.derived(node, x)?;
        self.emit(new, vec![q.clone()]);
        self.log.push(format!(
            "{}: inserted axes kept, output permuted {}",
            node.name,
            fmt_perm(&q)
        ));
        Ok(())
    }

    fn slice(&mut self, node: &Node) -> Result<()> {
        let (x, p) = self.primary(node, 0)?;
        if is_identity(&p) {
            return self.keep(node);
        }
        let attrs = Attrs::of(node)?;
        let n = attrs.ints("starts")?.len();
        let axes: Vec<usize> = match attrs.opt_ints("axes")? {
            Some(a) => a
                .iter()
                .map(|&a| norm_axis(a, p.len()))
                .collect::<Result<_>>()?,
            None => (0..n).collect(),
        };
        let inv = inverse(&p);
        let new_axes: Vec<usize> = axes.iter().map(|&a| inv[a]).collect();
        let mut new = self.derived(node, x)?;
        new.attrs.insert("axes".into(), ints(&new_axes));
        self.emit(new, vec![p]);
        self.log
            .push(format!("{}: axes {axes:?}→{new_axes:?}", node.name));
        Ok(())
    }

    /// Pad (`pads`, begins then ends) and Tile (`repeats`): one entry per axis, reordered.
    fn per_axis_list(&mut self, node: &Node) -> Result<()> {
        let (x, p) = self.primary(node, 0)?;
        if is_identity(&p) {
            return self.keep(node);
        }
        let name = if node.op == "Pad" { "pads" } else { "repeats" };
        let list = Attrs::of(node)?.ints(name)?;
        let r = p.len();
        let new_list: Vec<i64> = if node.op == "Pad" {
            let mut v = permute(&list[..r], &p);
            v.extend(permute(&list[r..], &p));
            v
        } else {
            permute(&list, &p)
        };
        let mut new = self.derived(node, x)?;
        new.attrs
            .insert(name.into(), AttrValue::Ints(new_list.clone()));
        self.emit(new, vec![p]);
        self.log
            .push(format!("{}: {name} {list:?}→{new_list:?}", node.name));
        Ok(())
    }

    fn expand(&mut self, node: &Node) -> Result<()> {
        let (x, p) = self.primary(node, 0)?;
        if is_identity(&p) {
            return self.keep(node);
        }
        let shape = Attrs::of(node)?.ints("shape")?;
        let rank = shape.len().max(p.len());
        let q = lift(&p, rank);
        let mut padded = vec![1; rank - shape.len()];
        padded.extend(&shape);
        let new_shape = permute(&padded, &q);
        let mut new = self.derived(node, x)?;
        new.attrs
            .insert("shape".into(), AttrValue::Ints(new_shape.clone()));
        self.emit(new, vec![q]);
        self.log
            .push(format!("{}: shape {shape:?}→{new_shape:?}", node.name));
        Ok(())
    }

    fn layer_norm(&mut self, node: &Node) -> Result<()> {
        let (x, p) = self.primary(node, 0)?;
        if is_identity(&p) {
            return self.keep(node);
        }
        let mut axes: Vec<usize> = Attrs::of(node)?
            .ints("axes")?
            .iter()
            .map(|&a| norm_axis(a, p.len()))
            .collect::<Result<_>>()?;
        axes.sort_unstable();
        axes.dedup();
        let inv = inverse(&p);
        let mut new_axes: Vec<usize> = axes.iter().map(|&a| inv[a]).collect();
        new_axes.sort_unstable();
        // New normalised axis k is source axis p[new_axes[k]]: its place in `axes`.
        let wperm: Perm = new_axes
            .iter()
            .map(|&a| axes.iter().position(|&s| s == p[a]).expect("same axis set"))
            .collect();
        let mut what = format!("axes {axes:?}→{new_axes:?}");
        if !is_identity(&wperm) {
            let present: Vec<&str> = ["scale", "bias"]
                .into_iter()
                .filter(|w| self.weights.info(&node.name, w).is_some())
                .collect();
            let fits = |w: &&str| {
                self.weights
                    .info(&node.name, w)
                    .is_some_and(|i| i.shape.len() == axes.len())
            };
            if !present.iter().all(fits) {
                return self.keep(node);
            }
            for w in present {
                self.sources.insert(
                    (node.name.clone(), w.into()),
                    permuted(&node.name, w, wperm.clone()),
                );
            }
            what += &format!(", scale/bias permuted {}", fmt_perm(&wperm));
        }
        let mut new = self.derived(node, x)?;
        new.attrs.insert("axes".into(), ints(&new_axes));
        self.emit(new, vec![p]);
        self.log.push(format!("{}: {what}", node.name));
        Ok(())
    }

    fn prelu(&mut self, node: &Node) -> Result<()> {
        let (x, p) = self.primary(node, 0)?;
        let Some(info) = self.weights.info(&node.name, "slope") else {
            return self.keep(node);
        };
        if is_identity(&p) || info.shape.len() > p.len() {
            return self.keep(node);
        }
        let mut what = format!("stays permuted {}", fmt_perm(&p));
        if info.numel() != 1 {
            self.sources.insert(
                (node.name.clone(), "slope".into()),
                permuted(&node.name, "slope", p.clone()),
            );
            what += ", slope permuted";
        }
        let new = self.derived(node, x)?;
        self.emit(new, vec![p]);
        self.log.push(format!("{}: {what}", node.name));
        Ok(())
    }

    fn fully_connected(&mut self, node: &Node) -> Result<()> {
        if let Some(cols) = self.columns.get(&node.inputs[0]).cloned() {
            let (x, _) = self.primary(node, 0)?;
            self.sources.insert(
                (node.name.clone(), "weights".into()),
                Derived::weight(&node.name, "weights").then(Step::Rows(cols)),
            );
            let new = self.derived(node, x)?;
            self.emit(new, vec![identity(2)]);
            self.log.push(format!(
                "{}→{}: FullyConnected weight rows permuted",
                node.inputs[0].node, node.name
            ));
            return Ok(());
        }
        let (x, p) = self.primary(node, 0)?;
        if is_identity(&p) || p[p.len() - 1] != p.len() - 1 {
            return self.keep(node);
        }
        let new = self.derived(node, x)?;
        self.emit(new, vec![p.clone()]);
        self.log.push(format!(
            "{}: over the last axis, stays permuted {}",
            node.name,
            fmt_perm(&p)
        ));
        Ok(())
    }

    /// For a flatten of a tensor permuted by `p` at `axis` whose only consumers are
    /// FullyConnected layers: the source column of each new column.
    fn fc_columns(
        &self,
        node: &Node,
        shape: &[i64],
        p: &[usize],
        axis: usize,
    ) -> Option<Vec<usize>> {
        let out = node.output(0);
        let consumers = self.consumers.get(&out)?;
        let only_fc = consumers
            .iter()
            .all(|&i| self.src.nodes[i].op == "FullyConnected");
        let fixed = (0..axis).all(|i| p[i] == i);
        if !only_fc || !fixed || self.uses.get(&out) != Some(&consumers.len()) {
            return None;
        }
        let dims: Vec<usize> = shape[axis..]
            .iter()
            .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
            .collect::<Option<_>>()?;
        let inner: Perm = p[axis..].iter().map(|&a| a - axis).collect();
        let mut cols = Vec::with_capacity(dims.iter().product());
        visit_permuted(&dims, &inner, |o| cols.push(o));
        Some(cols)
    }

    fn flatten(&mut self, node: &Node) -> Result<()> {
        let (x, p) = self.primary(node, 0)?;
        if is_identity(&p) {
            return self.keep(node);
        }
        let shape = self.shape(&node.inputs[0])?;
        let a = Attrs::of(node)?.int("axis")?;
        let axis = if a < 0 { a + p.len() as i64 } else { a } as usize;
        let non_unit = |axes: &[usize]| axes.iter().filter(|&&i| shape[i] != 1).count();
        let split_kept = non_unit(&p[..axis]) == non_unit(&identity(axis));
        if same_data_order(&shape, &p) && split_kept {
            let new = self.derived(node, x)?;
            self.emit(new, vec![identity(2)]);
            self.log.push(format!(
                "{}: only size-1 axes moved, data order unchanged",
                node.name
            ));
            return Ok(());
        }
        if let Some(cols) = self.fc_columns(node, &shape, &p, axis) {
            let new = self.derived(node, x)?;
            self.emit(new, vec![identity(2)]);
            self.columns.insert(node.output(0), cols);
            self.log.push(format!(
                "{}: columns permuted, absorbed by the FullyConnected weights",
                node.name
            ));
            return Ok(());
        }
        self.keep(node)
    }

    fn reshape(&mut self, node: &Node) -> Result<()> {
        let (x, p) = self.primary(node, 0)?;
        if is_identity(&p) {
            return self.keep(node);
        }
        let shape = self.shape(&node.inputs[0])?;
        let target = Attrs::of(node)?.ints("shape")?;
        let out = match resolve_reshape(&shape, &target) {
            Some(out) => out,
            None => self.shape(&node.output(0))?,
        };
        let blocks = reshape_blocks(&shape, &out);
        let (q, cols) = if same_data_order(&shape, &p) {
            (identity(out.len()), None)
        } else if let Some(q) = blocks.as_deref().and_then(|b| block_perm(b, &p)) {
            (q, None)
        } else {
            match blocks.as_deref() {
                Some([first, _]) if out.len() == 2 => {
                    match self.fc_columns(node, &shape, &p, first.0.len()) {
                        Some(cols) => (identity(2), Some(cols)),
                        None => return self.keep(node),
                    }
                }
                _ => return self.keep(node),
            }
        };
        let new_out = permute(&out, &q);
        let Some(target) = reshape_target(&new_out) else {
            return self.keep(node);
        };
        let mut new = self.derived(node, x)?;
        new.attrs.insert("shape".into(), AttrValue::Ints(target));
        self.emit(new, vec![q.clone()]);
        let what = match cols {
            Some(cols) => {
                self.columns.insert(node.output(0), cols);
                "columns permuted, absorbed by the FullyConnected weights".to_string()
            }
            None if is_identity(&q) => format!("shape → {new_out:?}, data order unchanged"),
            None => format!("shape → {new_out:?}, output permuted {}", fmt_perm(&q)),
        };
        self.log.push(format!("{}: {what}", node.name));
        Ok(())
    }

    fn finish(mut self) -> Result<LayoutResult<'w>> {
        let src = self.src;
        let mut outputs = vec![];
        let mut output_perms = vec![];
        for r in &src.outputs {
            let p = self.perm_of(r)?;
            let rank = p.len();
            let standard = self.switched
                && (3..=5).contains(&rank)
                && p == switch_perm(rank, !self.target.is_last());
            let before = self.transposes;
            if !self.keep_io && standard {
                outputs.push(self.get(r, &p)?);
                output_perms.push(Some(p.clone()));
                self.log.push(format!(
                    "output '{r}': {} (permuted {})",
                    self.target.data_format(),
                    fmt_perm(&p)
                ));
            } else {
                outputs.push(self.get(r, &identity(rank))?);
                output_perms.push(None);
                if self.transposes > before {
                    self.log
                        .push(format!("output '{r}': Transpose back to its source layout"));
                }
            }
        }
        let input_perms = src
            .inputs
            .iter()
            .map(|n| self.input_perms.get(n).cloned())
            .collect();
        let mut graph = Graph {
            nodes: std::mem::take(&mut self.nodes),
            inputs: src.inputs.clone(),
            outputs,
            producer: src.producer.clone(),
        };
        prune(&mut graph, &self.inserted);
        validate::infer_types(&mut graph)
            .context("internal: the layout-converted graph does not validate")?;
        let names: HashSet<&str> = graph.nodes.iter().map(|n| n.name.as_str()).collect();
        let mut keys: Vec<(String, String)> = self
            .weights
            .keys()
            .into_iter()
            .filter(|(n, _)| names.contains(n.as_str()) || !self.index.contains_key(n.as_str()))
            .collect();
        let mut extra: Vec<(String, String)> = self
            .sources
            .keys()
            .filter(|k| !keys.contains(k) && names.contains(k.0.as_str()))
            .cloned()
            .collect();
        extra.sort();
        keys.extend(extra);
        let mut weights = DerivedWeights::over(self.weights);
        for (node, param) in keys {
            let derived = self.sources.remove(&(node.clone(), param.clone()));
            let derived = derived.unwrap_or_else(|| Derived::weight(&node, &param));
            weights.insert(&node, &param, derived);
        }
        Ok(LayoutResult {
            graph,
            weights,
            log: self.log,
            input_perms,
            output_perms,
        })
    }
}

fn ints(values: &[usize]) -> AttrValue {
    AttrValue::Ints(values.iter().map(|&v| v as i64).collect())
}

/// The normalised `perm` of a Transpose node on a tensor of `rank`.
fn transpose_perm(node: &Node, rank: usize) -> Result<Perm> {
    Attrs::of(node)?
        .ints("perm")?
        .iter()
        .map(|&a| norm_axis(a, rank))
        .collect()
}

/// Removes inserted nodes nobody reads (e.g. a boundary Transpose no consumer needed).
fn prune(graph: &mut Graph, inserted: &HashSet<String>) {
    loop {
        let uses = graph.consumers();
        let before = graph.nodes.len();
        graph
            .nodes
            .retain(|n| !inserted.contains(&n.name) || uses.contains_key(&n.output(0)));
        if graph.nodes.len() == before {
            return;
        }
    }
}
