//! Layout conversion: rewrites a graph from channels_first to channels_last or back, exactly.
//!
//! Every tensor of the converted graph is tracked as its original permuted by some `perm`
//! (`new = transpose(original, perm)`: new axis i is original axis `perm[i]`). How each op
//! follows a permutation of its inputs is declared with the op in the catalogue
//! ([`crate::ir::ops::Layout`]); the pass dispatches on that declaration and implements each
//! rule once. Ops with a `data_format` switch to the target format (input wanted in the target
//! layout, kernel weights permuted); layout-agnostic ops pass the permutation through; ops with
//! axis attributes get them renamed; constants broadcast against a permuted tensor are permuted
//! themselves; Flatten (or a flattening Reshape) feeding only FullyConnected layers leaves its
//! columns permuted and permutes the layers' weight rows instead. A Transpose is inserted only
//! where no rewrite exists, and always from a tensor's tracked form, so inverse pairs cancel and
//! consecutive ones merge by construction (a source Transpose is absorbed into the tracked
//! permutation). Weights are transformed lazily, per tensor, on read ([`TransformedWeights`]).
//!
//! Parts: `perm` (permutation algebra), `convert` (the converter: tracked forms, inserted
//! Transposes, the dispatch, the result), `formats` (graph inputs, constants, `data_format` ops,
//! source Transposes), `rules` (the axis-renaming rules), `reshape` (Reshape, Flatten,
//! FullyConnected).
use crate::ir::{validate, Graph};
use crate::weights::derived::{DerivedWeights, Source, Step};
use crate::weights::WeightReader;
use anyhow::{Context, Result};
use convert::Converter;

mod convert;
mod formats;
mod perm;
mod reshape;
mod rules;

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
    /// Inputs and outputs named by `--io-layout` whose layout is not known (left as they are).
    pub io_unknown: Vec<String>,
}

/// What layout the graph's inputs and outputs take (`--io-layout`). By default (`layout` is
/// `None`) every input and output keeps the source's layout, Transposes being inserted inside
/// the graph where the target layout differs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IoLayout {
    /// The layout asked for at the interface; `None` keeps the source's.
    pub layout: Option<Target>,
    /// The inputs and outputs it applies to, by name; empty: all of them.
    pub names: Vec<String>,
}

impl IoLayout {
    /// Every input and output in `layout` (where its layout is known).
    pub fn all(layout: Target) -> IoLayout {
        IoLayout {
            layout: Some(layout),
            names: vec![],
        }
    }

    /// Parses `--io-layout`'s value: `channels_first` or `channels_last`, optionally followed
    /// by `:NAME,NAME,…` (the inputs and outputs it applies to), or `keep`.
    pub fn parse(value: &str) -> Result<IoLayout, String> {
        let (layout, names) = match value.split_once(':') {
            Some((l, n)) => (l, Some(n)),
            None => (value, None),
        };
        let layout = match layout {
            "channels_first" => Some(Target::ChannelsFirst),
            "channels_last" => Some(Target::ChannelsLast),
            "keep" if names.is_none() => None,
            _ => {
                return Err(format!(
                    "--io-layout takes keep, channels_first or channels_last, optionally \
                     followed by :NAME,NAME… (got '{value}')"
                ))
            }
        };
        let names: Vec<String> = names
            .map(|n| n.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        if names.iter().any(String::is_empty) {
            return Err(format!("--io-layout '{value}' has an empty name"));
        }
        Ok(IoLayout { layout, names })
    }

    /// The layout input or output `name` should take, if any.
    pub fn wants(&self, name: &str) -> Option<Target> {
        self.layout
            .filter(|_| self.names.is_empty() || self.names(name))
    }

    /// Whether `name` is named explicitly.
    pub fn names(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The names given that are none of `graph`'s inputs or outputs.
    pub fn unknown_names(&self, graph: &Graph) -> Vec<String> {
        let outputs: Vec<String> = (0..graph.outputs.len())
            .map(|i| graph.output_name(i))
            .collect();
        self.names
            .iter()
            .filter(|n| !graph.inputs.contains(n) && !outputs.contains(n))
            .cloned()
            .collect()
    }
}

/// Converts `graph` to the `target` layout. With `keep_io`, graph inputs and outputs keep their
/// layout (Transposes are inserted inside the graph); otherwise image inputs and outputs (rank
/// 3 to 5) take the target layout and `input_perms` / `output_perms` say how.
pub fn convert_layout<'w>(
    graph: &Graph,
    weights: &'w dyn WeightReader,
    target: Target,
    keep_io: bool,
) -> Result<LayoutResult<'w>> {
    let io = if keep_io {
        IoLayout::default()
    } else {
        IoLayout::all(target)
    };
    convert_layout_io(graph, weights, target, &io)
}

/// Converts `graph` to the `target` layout, its inputs and outputs taking the layout `io` asks
/// (`input_perms` / `output_perms` say how they changed).
pub fn convert_layout_io<'w>(
    graph: &Graph,
    weights: &'w dyn WeightReader,
    target: Target,
    io: &IoLayout,
) -> Result<LayoutResult<'w>> {
    let mut src = graph.clone();
    validate::infer_types(&mut src).context("layout conversion needs a valid graph")?;
    let mut c = Converter::new(&src, weights, target, io);
    for node in &src.nodes {
        c.rewrite(node)
            .with_context(|| format!("layout: node '{}' ({})", node.name, node.op))?;
    }
    c.finish()
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
