//! The converter: tracks the new form and permutation of every source tensor, materialises the
//! forms uses need (inserted Transposes and Unsqueezes, permuted constants), dispatches every
//! node on the layout rule its op declares ([`Layout`]), and assembles the result.
use super::perm::{compose, fmt_perm, identity, ints, inverse, is_identity, lift, permute};
use super::perm::{format_perm, switch_perm};
use super::{IoLayout, LayoutResult, Perm, Target};
use crate::ir::ops::{self, Attrs, Layout};
use crate::ir::{validate, AttrValue, Graph, Node, TensorRef};
use crate::weights::derived::{Derived, DerivedWeights, Step};
use crate::weights::WeightReader;
use anyhow::{anyhow, Context, Result};
use std::collections::{HashMap, HashSet};

pub(super) struct Converter<'a, 'w> {
    pub(super) src: &'a Graph,
    index: HashMap<&'a str, usize>,
    /// Consuming nodes of each source tensor.
    pub(super) consumers: HashMap<TensorRef, Vec<usize>>,
    /// Number of uses of each source tensor, graph outputs included.
    pub(super) uses: HashMap<TensorRef, usize>,
    pub(super) weights: &'w dyn WeightReader,
    pub(super) target: Target,
    /// The layout asked for at the graph's inputs and outputs (`--io-layout`).
    pub(super) io: &'a IoLayout,
    nodes: Vec<Node>,
    used: HashSet<String>,
    /// Tracked form of each source tensor: the new tensor and its permutation.
    pub(super) tracked: HashMap<TensorRef, (TensorRef, Perm)>,
    /// Every materialised form: (source tensor, permutation) → new tensor.
    pub(super) forms: HashMap<(TensorRef, Perm), TensorRef>,
    /// Flatten outputs whose columns are permuted: the source column of each new column.
    pub(super) columns: HashMap<TensorRef, Vec<usize>>,
    /// Names of absorbed source Transposes, free for the Transpose that materialises them.
    pub(super) absorbed: HashSet<String>,
    sources: HashMap<(String, String), Derived>,
    inserted: HashSet<String>,
    pub(super) input_perms: HashMap<String, Perm>,
    /// Inputs and outputs `--io-layout` named whose layout is not known (left as they are).
    pub(super) io_unknown: Vec<String>,
    /// Whether a graph input or a data_format op switched layout. Without a switch the graph
    /// is already in the target layout, and an output whose permutation merely looks like a
    /// layout switch (a source Transpose) is not taken for an image in the other layout.
    pub(super) switched: bool,
    pub(super) transposes: usize,
    pub(super) log: Vec<String>,
}

/// What a rule makes of a node whose input is permuted: attributes to set, the permutation of
/// each output, and the text of its log line.
pub(super) struct Rewrite {
    attrs: Vec<(&'static str, AttrValue)>,
    outputs: Vec<Perm>,
    what: String,
}

impl Rewrite {
    pub(super) fn new(outputs: Vec<Perm>, what: String) -> Self {
        Rewrite {
            attrs: vec![],
            outputs,
            what,
        }
    }

    pub(super) fn with_attr(mut self, name: &'static str, value: AttrValue) -> Self {
        self.attrs.push((name, value));
        self
    }

    /// Sets the attributes on `node` and returns the output permutations and the log text.
    fn apply(self, node: &mut Node) -> (Vec<Perm>, String) {
        for (name, value) in self.attrs {
            node.attrs.insert(name.into(), value);
        }
        (self.outputs, self.what)
    }
}

impl<'a, 'w> Converter<'a, 'w> {
    pub(super) fn new(
        src: &'a Graph,
        weights: &'w dyn WeightReader,
        target: Target,
        io: &'a IoLayout,
    ) -> Self {
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
            io,
            nodes: vec![],
            used: src.nodes.iter().map(|n| n.name.clone()).collect(),
            tracked: HashMap::new(),
            forms: HashMap::new(),
            columns: HashMap::new(),
            absorbed: HashSet::new(),
            sources: HashMap::new(),
            inserted: HashSet::new(),
            input_perms: HashMap::new(),
            io_unknown: vec![],
            switched: false,
            transposes: 0,
            log: vec![],
        }
    }

    /// Rewrites one source node by the layout rule its op declares.
    pub(super) fn rewrite(&mut self, node: &Node) -> Result<()> {
        match ops::layout_of(node)? {
            Layout::GraphInput => self.data_input(node),
            Layout::Constant => self.source_constant(node),
            Layout::DataFormat { kernel } => self.data_format_op(node, kernel),
            Layout::Agnostic => self.pass_through(node),
            Layout::Elementwise { .. } => self.elementwise(node),
            Layout::Concat => self.concat(node),
            Layout::Axis(rule) => self.axis_op(node, rule),
            Layout::ReducedAxes => self.reduce(node),
            Layout::PerAxis { attr, lists } => self.per_axis_list(node, attr, lists),
            Layout::Transpose => self.transpose_op(node),
            Layout::Reshape => self.reshape(node),
            Layout::Flatten => self.flatten(node),
            Layout::FullyConnected => self.fully_connected(node),
            Layout::Squeeze => self.squeeze(node),
            Layout::Unsqueeze => self.unsqueeze(node),
            Layout::Slice => self.slice(node),
            Layout::Expand => self.expand(node),
            Layout::LayerNorm => self.layer_norm(node),
            Layout::PRelu => self.prelu(node),
            Layout::Fixed => self.keep(node),
        }
    }

    pub(super) fn src_node(&self, name: &str) -> Result<&'a Node> {
        let src = self.src;
        self.index
            .get(name)
            .map(|&i| &src.nodes[i])
            .ok_or_else(|| anyhow!("no node is named '{name}'"))
    }

    pub(super) fn shape(&self, r: &TensorRef) -> Result<Vec<i64>> {
        self.src_node(&r.node)?
            .outputs
            .get(r.index)
            .map(|t| t.shape.clone())
            .ok_or_else(|| anyhow!("tensor '{r}' has no type"))
    }

    pub(super) fn rank(&self, r: &TensorRef) -> Result<usize> {
        Ok(self.shape(r)?.len())
    }

    pub(super) fn perm_of(&self, r: &TensorRef) -> Result<Perm> {
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
    pub(super) fn emit(&mut self, mut node: Node, perms: Vec<Perm>) {
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

    pub(super) fn transpose(&mut self, producer: &str, input: TensorRef, perm: Perm) -> TensorRef {
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
    pub(super) fn get(&mut self, r: &TensorRef, perm: &[usize]) -> Result<TensorRef> {
        let key = (r.clone(), perm.to_vec());
        if let Some(t) = self.forms.get(&key) {
            return Ok(t.clone());
        }
        let producer = self.src_node(&r.node)?;
        let rank = self.rank(r)?;
        let new = if ops::layout_of(producer)? == Layout::Constant {
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
    pub(super) fn constant(&mut self, node: &Node, perm: &[usize]) -> Result<TensorRef> {
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
        self.transform_weight(&name, &node.name, "value", Step::Permute(perm.to_vec()));
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

    /// Weight `param` of converted node `node` becomes source weight (`source`, `param`)
    /// with `step` applied when it is read.
    pub(super) fn transform_weight(&mut self, node: &str, source: &str, param: &str, step: Step) {
        self.sources.insert(
            (node.to_string(), param.to_string()),
            Derived::weight(source, param).then(step),
        );
    }

    /// The tracked form of a node's input 0 (a constant in its own layout).
    pub(super) fn primary(&mut self, node: &Node) -> Result<(TensorRef, Perm)> {
        let r = &node.inputs[0];
        match self.tracked.get(r) {
            Some(t) => Ok(t.clone()),
            None => {
                let rank = self.rank(r)?;
                Ok((self.get(r, &identity(rank))?, identity(rank)))
            }
        }
    }

    /// A copy of `node` reading `first` as input 0 and every other input unpermuted.
    pub(super) fn derived(&mut self, node: &Node, first: TensorRef) -> Result<Node> {
        let mut new = node.clone();
        new.inputs[0] = first;
        for i in 1..node.inputs.len() {
            let rank = self.rank(&node.inputs[i])?;
            new.inputs[i] = self.get(&node.inputs[i], &identity(rank))?;
        }
        Ok(new)
    }

    /// Logs `what` for `node`, saying whether a Transpose was inserted since `before`.
    pub(super) fn note(&mut self, node: &Node, before: usize, what: String) {
        let inserted = if self.transposes > before {
            "; Transpose inserted"
        } else {
            ""
        };
        self.log.push(format!("{}: {what}{inserted}", node.name));
    }

    /// Emits the node reading every input unpermuted (the fallback of every rule).
    pub(super) fn keep(&mut self, node: &Node) -> Result<()> {
        let before = self.transposes;
        let mut new = node.clone();
        for (i, r) in node.inputs.iter().enumerate() {
            let rank = self.rank(r)?;
            new.inputs[i] = self.get(r, &identity(rank))?;
        }
        let perms = (0..node.outputs.len())
            .map(|k| Ok(identity(self.rank(&node.output(k))?)))
            .collect::<Result<_>>()?;
        self.emit(new, perms);
        let what = if self.transposes > before {
            "Transpose inserted"
        } else {
            "unchanged"
        };
        self.log.push(format!("{}: {what}", node.name));
        Ok(())
    }

    /// The shape shared by the rules that follow a permuted input 0: the node is kept when
    /// input 0 is unpermuted or `rule` (given its permutation) has no rewrite; otherwise it
    /// reads input 0 in its tracked form and the other inputs unpermuted, and takes the
    /// rewrite.
    pub(super) fn follow_input(
        &mut self,
        node: &Node,
        rule: impl FnOnce(&mut Self, &[usize]) -> Result<Option<Rewrite>>,
    ) -> Result<()> {
        let (x, p) = self.primary(node)?;
        if is_identity(&p) {
            return self.keep(node);
        }
        let Some(rewrite) = rule(self, &p)? else {
            return self.keep(node);
        };
        let mut new = self.derived(node, x)?;
        let (outputs, what) = rewrite.apply(&mut new);
        self.emit(new, outputs);
        self.log.push(format!("{}: {what}", node.name));
        Ok(())
    }

    /// The shape shared by the rules that take every input permuted alike: the lead is the
    /// permutation of the first permuted input of the output's rank (the node is kept when
    /// there is none); every input is taken in it, and `rule` (given the lead) renames the
    /// attributes.
    pub(super) fn follow_lead(
        &mut self,
        node: &Node,
        rule: impl FnOnce(&[usize]) -> Result<Rewrite>,
    ) -> Result<()> {
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
        let (outputs, what) = rule(&lead)?.apply(&mut new);
        self.emit(new, outputs);
        self.note(node, before, what);
        Ok(())
    }

    /// The permutation `--io-layout` asks of a graph input or output named `name` whose source
    /// layout is `layout` (`Some(channels_last)`, `None` when not known), rank `rank`.
    pub(super) fn io_perm(&mut self, name: &str, layout: Option<bool>, rank: usize) -> Perm {
        match (self.io.wants(name), layout) {
            (Some(want), Some(last)) => format_perm(rank, last, want),
            (Some(_), None) => {
                if self.io.names(name) {
                    self.io_unknown.push(name.to_string());
                }
                identity(rank)
            }
            (None, _) => identity(rank),
        }
    }

    pub(super) fn finish(mut self) -> Result<LayoutResult<'w>> {
        let src = self.src;
        let mut outputs = vec![];
        let mut output_perms = vec![];
        let output_names: Vec<String> =
            (0..src.outputs.len()).map(|i| src.output_name(i)).collect();
        for (r, name) in src.outputs.iter().zip(&output_names) {
            let rank = self.rank(r)?;
            // Its layout, found back through the source graph; else, after a layout switch, a
            // tensor the switch left permuted as an image is (e.g. through a Reshape).
            let switch = (3..=5).contains(&rank)
                && self.switched
                && self.perm_of(r)? == switch_perm(rank, !self.target.is_last());
            let layout = match self.output_layout(r)? {
                Some(last) => Some(last),
                None => switch.then_some(!self.target.is_last()),
            };
            let p = self.io_perm(name, layout, rank);
            let before = self.transposes;
            outputs.push(self.get(r, &p)?);
            if is_identity(&p) {
                output_perms.push(None);
                if self.transposes > before {
                    self.log.push(format!(
                        "output '{name}': Transpose back to its source layout"
                    ));
                }
            } else {
                self.log.push(format!(
                    "output '{name}': permuted {} (--io-layout)",
                    fmt_perm(&p)
                ));
                output_perms.push(Some(p));
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
            output_names,
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
            io_unknown: self.io_unknown,
        })
    }
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
