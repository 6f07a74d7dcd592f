//! The op catalogue: the one place that declares every IR op — its inputs and outputs, typed
//! attributes with defaults and allowed values, weights with their layout, shape rule, whether it
//! depends on tensor layout, and a one-line doc. Ops are grouped by family, one file a family;
//! `docs/ops.md` is generated from this table (`mmdnn ops --markdown`).
use super::graph::Node;
use super::types::{AttrKind, AttrValue, DType, TensorType};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

mod activation;
mod conv;
mod dense;
mod elementwise;
mod io;
mod norm;
mod pool;
mod recurrent;
mod reduce;
mod resize;
mod runtime_rules;
mod shape;
pub mod shape_rules;
/// The pads a windowed op applies at run time (its `auto_pad` resolved), for every stage.
pub use conv::resolved_pads;

/// Families, in the order docs list them. Each has its file, named as [`Family::name`] says, in
/// every stage: `src/ir/ops/`, `src/interp/`, and each frontend and backend that maps the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Io,
    Conv,
    Pool,
    Resize,
    Dense,
    Norm,
    Activation,
    Elementwise,
    Reduce,
    Shape,
    Recurrent,
}

impl Family {
    /// The family's file name (without `.rs`) in every stage.
    pub fn name(self) -> &'static str {
        match self {
            Family::Io => "io",
            Family::Conv => "conv",
            Family::Pool => "pool",
            Family::Resize => "resize",
            Family::Dense => "dense",
            Family::Norm => "norm",
            Family::Activation => "activation",
            Family::Elementwise => "elementwise",
            Family::Reduce => "reduce",
            Family::Shape => "shape",
            Family::Recurrent => "recurrent",
        }
    }

    /// The family's section title in `docs/ops.md`.
    pub fn title(self) -> &'static str {
        match self {
            Family::Io => "Inputs and constants",
            Family::Conv => "Convolution",
            Family::Pool => "Pooling",
            Family::Resize => "Resizing",
            Family::Dense => "Dense and matrix products",
            Family::Norm => "Normalization",
            Family::Activation => "Activations and unary math",
            Family::Elementwise => "Elementwise binary, comparison and selection",
            Family::Reduce => "Reductions",
            Family::Shape => "Shape, indexing and data movement",
            Family::Recurrent => "Recurrent",
        }
    }
}

/// Default of an attribute.
#[derive(Clone, Copy, Debug)]
pub enum Default {
    /// The attribute must be given.
    Required,
    /// May be absent; the op documents what absence means.
    Optional,
    Int(i64),
    Float(f32),
    Bool(bool),
    Str(&'static str),
    Ints(&'static [i64]),
}

impl Default {
    pub fn value(self) -> Option<AttrValue> {
        Some(match self {
            Default::Required | Default::Optional => return None,
            Default::Int(v) => AttrValue::Int(v),
            Default::Float(v) => AttrValue::Float(v),
            Default::Bool(v) => AttrValue::Bool(v),
            Default::Str(v) => AttrValue::Str(v.to_string()),
            Default::Ints(v) => AttrValue::Ints(v.to_vec()),
        })
    }
}

/// One declared attribute.
#[derive(Clone, Copy, Debug)]
pub struct AttrDef {
    pub name: &'static str,
    pub kind: AttrKind,
    pub default: Default,
    /// For string attributes: the allowed values (empty = any).
    pub allowed: &'static [&'static str],
    pub doc: &'static str,
    /// When the attribute may instead be a tensor computed at run time (a trailing input named
    /// in the node's [`FROM_INPUTS`] list): the shape rule that types the outputs then.
    pub runtime: Option<InferFn>,
}

impl AttrDef {
    /// This attribute, which may also be given as a run-time tensor; `infer` types the outputs
    /// when it is.
    pub const fn or_input(self, infer: InferFn) -> AttrDef {
        AttrDef {
            runtime: Some(infer),
            ..self
        }
    }
}

/// The node attribute listing the attributes given as run-time tensors: one trailing input
/// each, in this order, after the op's own inputs (a Reshape's `shape` computed from data,
/// ONNX-style). Integer tensors for int attributes (1-d for lists, a scalar for one int),
/// float tensors for float ones. Folded back into attributes wherever the value is known.
pub const FROM_INPUTS: &str = "from_inputs";

/// One weight tensor owned by a node, stored in the weight store under (node, name).
#[derive(Clone, Copy, Debug)]
pub struct WeightDef {
    pub name: &'static str,
    /// Present only when the condition holds (documented); otherwise always present.
    pub optional: bool,
    /// The documented layout of the tensor.
    pub layout: &'static str,
    /// The shape the tensor must have for the node's attributes and input types (`-1` where
    /// unknown); validation refuses a stored weight of any other shape.
    pub shape: Option<WeightShape>,
}

/// Gives a weight's expected shape from the node's attributes and input types.
pub type WeightShape = fn(&InferCtx) -> Result<Vec<i64>>;

impl WeightDef {
    /// This weight with its expected shape.
    pub const fn shaped(self, shape: WeightShape) -> WeightDef {
        WeightDef {
            shape: Some(shape),
            ..self
        }
    }
}

/// How many tensor inputs an op takes.
#[derive(Clone, Copy, Debug)]
pub enum Inputs {
    /// Exactly these (named) inputs; trailing ones after `required` may be omitted.
    Fixed {
        names: &'static [&'static str],
        required: usize,
    },
    /// At least `min` inputs of the same role.
    Variadic { name: &'static str, min: usize },
}

/// How many outputs an op produces.
#[derive(Clone, Copy, Debug)]
pub enum Outputs {
    Fixed(&'static [&'static str]),
    /// As many as the named list attribute has entries (e.g. Split's `split`).
    PerEntryOf(&'static str),
}

/// How an op follows a permutation of its inputs' axes: the rule the layout pass
/// (`ir::passes::layout`) applies when it converts a graph between channels_first and
/// channels_last. The pass implements each rule once and knows no op by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Same meaning in any layout (unary math, Cast): the output is permuted as input 0.
    Agnostic,
    /// Elementwise over inputs broadcast with NumPy rules: every operand is taken permuted as
    /// the first permuted operand of full rank. `mask`: the result is a boolean mask
    /// (comparisons, logic), which the choice of a graph input's layout does not look through.
    Elementwise { mask: bool },
    /// Has a `data_format` attribute: switched to the target format, input 0 taken in it.
    /// `kernel`: the convolution kernel `weights`, stored in the layout `data_format` names.
    DataFormat { kernel: Option<Kernel> },
    /// One `axis` attribute naming an axis of input 0, renamed; the rule says what the
    /// outputs are.
    Axis(AxisRule),
    /// An `axes` list of reduced axes (empty: all) with `keepdims`: the axes are renamed.
    ReducedAxes,
    /// The attribute `attr` holds `lists` consecutive lists of one entry per axis of input 0
    /// (Pad's begins then ends, Tile's repeats): each list is reordered.
    PerAxis { attr: &'static str, lists: usize },
    /// A graph input: takes the target layout when it is an image feeding a `data_format` op.
    GraphInput,
    /// A constant: emitted where it is used, its value permuted to the form each use needs.
    Constant,
    /// Transpose: absorbed into the permutation the pass tracks for its output.
    Transpose,
    /// Concat: every input taken permuted as the first permuted one, `axis` renamed.
    Concat,
    /// Reshape: rewritten when the permutation moves whole blocks of axes the reshape maps
    /// onto each other, or when feeding only FullyConnected layers (their weight rows are
    /// reordered instead).
    Reshape,
    /// Flatten: kept when the data order is unchanged, or when feeding only FullyConnected
    /// layers (their weight rows are reordered instead).
    Flatten,
    /// FullyConnected: absorbs a permuted flatten into its weight rows; otherwise follows a
    /// permutation that keeps the last axis.
    FullyConnected,
    /// Squeeze: `axes` renamed (all size-1 axes when empty and the shape is known).
    Squeeze,
    /// Unsqueeze: the inserted axes stay where they are, the others follow the input.
    Unsqueeze,
    /// Slice: `axes` renamed (absent: the first ones, made explicit).
    Slice,
    /// Expand: the target `shape` permuted, after left-padding to the output rank.
    Expand,
    /// LayerNorm: `axes` renamed, `scale` and `bias` permuted with them.
    LayerNorm,
    /// PRelu: follows input 0, `slope` permuted with it (broadcast like an operand).
    PRelu,
    /// Reads its inputs in their source layout (matrix products, recurrent layers, Shape, ...):
    /// a permuted input is transposed back first.
    Fixed,
}

/// What the outputs of an op with one `axis` attribute are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxisRule {
    /// Shaped like input 0 (softmax, channel-wise normalization; Split's pieces).
    Kept,
    /// As `Kept`, but with statistics per sample: followed only while the batch axis stays
    /// first (GroupNorm, InstanceNorm).
    KeptPerSample,
    /// The axis is reduced, and dropped unless `keepdims` (ArgMax, ArgMin).
    Reduced,
    /// The axis is replaced by the axes of input 1, the indices (Gather).
    Indexed,
}

/// The convolution kernel `weights` of a `data_format` op, as named on its first two axes in
/// channels_first order: channels_first `[a, b, *kernel]`, channels_last `[*kernel, b, a]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// `[out, in/group, *kernel]` (convolution).
    OutIn,
    /// `[in, out/group, *kernel]` (transposed convolution).
    InOut,
}

impl Kernel {
    /// The names of the kernel's first two axes in channels_first order.
    pub fn axis_names(self) -> (&'static str, &'static str) {
        match self {
            Kernel::OutIn => ("out", "in"),
            Kernel::InOut => ("in", "out"),
        }
    }
}

impl fmt::Display for Layout {
    /// The rule in a few words, as `docs/ops.md` prints it.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            Layout::Agnostic => write!(f, "agnostic"),
            Layout::Elementwise { mask: false } => write!(f, "elementwise with broadcasting"),
            Layout::Elementwise { mask: true } => {
                write!(f, "elementwise with broadcasting; a mask")
            }
            Layout::DataFormat { kernel: None } => write!(f, "`data_format`"),
            Layout::DataFormat { kernel: Some(_) } => {
                write!(f, "`data_format`; the kernel `weights` follows it")
            }
            Layout::Axis(AxisRule::Kept) => write!(f, "`axis` renamed"),
            Layout::Axis(AxisRule::KeptPerSample) => {
                write!(f, "`axis` renamed while the batch axis stays first")
            }
            Layout::Axis(AxisRule::Reduced) => write!(f, "`axis` renamed; reduced"),
            Layout::Axis(AxisRule::Indexed) => {
                write!(f, "`axis` renamed; replaced by the indices' axes")
            }
            Layout::ReducedAxes => write!(f, "`axes` renamed; reduced"),
            Layout::PerAxis { attr, lists: 1 } => write!(f, "`{attr}` reordered per axis"),
            Layout::PerAxis { attr, lists } => {
                write!(f, "`{attr}` reordered per axis ({lists} lists)")
            }
            Layout::Fixed => write!(f, "fixed: inputs read in their source layout"),
            rule => write!(f, "own rule ({rule:?})"),
        }
    }
}

/// Shape rule: computes output types from the node and its input types.
pub type InferFn = fn(&InferCtx) -> Result<Vec<TensorType>>;

/// A catalogue entry.
#[derive(Clone, Copy, Debug)]
pub struct OpDef {
    pub name: &'static str,
    pub family: Family,
    pub doc: &'static str,
    pub inputs: Inputs,
    pub outputs: Outputs,
    pub attrs: &'static [AttrDef],
    pub weights: &'static [WeightDef],
    pub layout: Layout,
    pub infer: InferFn,
}

impl OpDef {
    pub fn attr(&self, name: &str) -> Option<&AttrDef> {
        self.attrs.iter().find(|a| a.name == name)
    }
    pub fn weight(&self, name: &str) -> Option<&WeightDef> {
        self.weights.iter().find(|w| w.name == name)
    }
}

// Constructors that keep the family files short.
pub const fn attr(
    name: &'static str,
    kind: AttrKind,
    default: Default,
    doc: &'static str,
) -> AttrDef {
    AttrDef {
        name,
        kind,
        default,
        allowed: &[],
        doc,
        runtime: None,
    }
}

pub const fn choice(
    name: &'static str,
    default: &'static str,
    allowed: &'static [&'static str],
    doc: &'static str,
) -> AttrDef {
    AttrDef {
        name,
        kind: AttrKind::Str,
        default: Default::Str(default),
        allowed,
        doc,
        runtime: None,
    }
}

pub const fn weight(name: &'static str, layout: &'static str) -> WeightDef {
    WeightDef {
        name,
        optional: false,
        layout,
        shape: None,
    }
}

pub const fn optional_weight(name: &'static str, layout: &'static str) -> WeightDef {
    WeightDef {
        name,
        optional: true,
        layout,
        shape: None,
    }
}

pub const fn inputs(names: &'static [&'static str]) -> Inputs {
    Inputs::Fixed {
        names,
        required: names.len(),
    }
}

pub const ONE_INPUT: Inputs = inputs(&["x"]);
pub const ONE_OUTPUT: Outputs = Outputs::Fixed(&["y"]);

/// The `data_format` attribute shared by every layout-sensitive op.
pub const DATA_FORMAT: AttrDef = choice(
    "data_format",
    "channels_first",
    &["channels_first", "channels_last"],
    "channels_first: [N, C, *spatial]; channels_last: [N, *spatial, C]",
);

/// `(file name, item)` for the item `$item` of each family file `$file` (the name is
/// `stringify!` of the module, so it cannot drift from the file). Every stage lists its family
/// files with it: the catalogue's op lists, the interpreter's registries, the ONNX writer's
/// lowerings; `tests/families.rs` checks that an op is in the same family everywhere.
macro_rules! family_table {
    ($item:ident as $ty:ty: $($file:ident),* $(,)?) => {
        &[$((stringify!($file), $file::$item as $ty)),*]
    };
}
pub(crate) use family_table;

/// Each family file's ops under the file's name.
const FAMILY_FILES: &[(&str, &[OpDef])] = family_table![OPS as &[OpDef]:
    io,
    conv,
    pool,
    resize,
    dense,
    norm,
    activation,
    elementwise,
    reduce,
    shape,
    recurrent,
];

/// Every op, in catalogue order (by family, then as declared).
pub fn all() -> &'static [OpDef] {
    static ALL: OnceLock<Vec<OpDef>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut ops: Vec<OpDef> = FAMILY_FILES
            .iter()
            .flat_map(|(_, ops)| *ops)
            .copied()
            .collect();
        ops.sort_by_key(|o| o.family);
        ops
    })
}

/// Looks up an op by name.
pub fn get(name: &str) -> Option<&'static OpDef> {
    static INDEX: OnceLock<HashMap<&'static str, &'static OpDef>> = OnceLock::new();
    INDEX
        .get_or_init(|| all().iter().map(|o| (o.name, o)).collect())
        .get(name)
        .copied()
}

/// Looks up an op by name, failing with an error that names the node.
pub fn lookup(node: &Node) -> Result<&'static OpDef> {
    get(&node.op).ok_or_else(|| anyhow!("node '{}': unknown op '{}'", node.name, node.op))
}

/// The layout rule of `node`: its op's, except that an op whose rule rewrites an attribute
/// given as a run-time tensor reads its inputs in their source layout ([`Layout::Fixed`]).
pub fn layout_of(node: &Node) -> Result<Layout> {
    let layout = lookup(node)?.layout;
    let rewrites_attr = matches!(
        layout,
        Layout::Reshape
            | Layout::Expand
            | Layout::PerAxis { .. }
            | Layout::Squeeze
            | Layout::Unsqueeze
            | Layout::Slice
            | Layout::ReducedAxes
    );
    Ok(if rewrites_attr && node.runtime_inputs() > 0 {
        Layout::Fixed
    } else {
        layout
    })
}

/// Typed access to a node's attributes, with the catalogue's defaults filled in.
#[derive(Clone, Copy)]
pub struct Attrs<'a> {
    pub node: &'a Node,
    pub def: &'static OpDef,
}

impl<'a> Attrs<'a> {
    pub fn of(node: &'a Node) -> Result<Self> {
        Ok(Attrs {
            node,
            def: lookup(node)?,
        })
    }

    /// The attribute's value, or its default; `None` if absent and optional. An attribute
    /// given as a run-time tensor has no value here (see [`Attrs::is_runtime`]).
    pub fn get(&self, name: &str) -> Result<Option<AttrValue>> {
        let def = self.def.attr(name).ok_or_else(|| {
            anyhow!(
                "internal: op {} declares no attribute '{name}'",
                self.def.name
            )
        })?;
        if self.is_runtime(name) {
            bail!(
                "node '{}' ({}): attribute '{name}' is a tensor computed at run time",
                self.node.name,
                self.node.op
            );
        }
        match self.node.attrs.get(name) {
            Some(v) => Ok(Some(v.clone().coerce(def.kind).with_context(|| {
                format!(
                    "node '{}' ({}): attribute '{name}'",
                    self.node.name, self.node.op
                )
            })?)),
            None => match def.default {
                Default::Required => bail!(
                    "node '{}' ({}): required attribute '{name}' is missing",
                    self.node.name,
                    self.node.op
                ),
                d => Ok(d.value()),
            },
        }
    }

    fn required(&self, name: &str) -> Result<AttrValue> {
        self.get(name)?.ok_or_else(|| {
            anyhow!(
                "node '{}' ({}): attribute '{name}' is not set",
                self.node.name,
                self.node.op
            )
        })
    }

    pub fn int(&self, name: &str) -> Result<i64> {
        match self.required(name)? {
            AttrValue::Int(v) => Ok(v),
            v => bail!("attribute '{name}' is {v}, not an int"),
        }
    }
    pub fn float(&self, name: &str) -> Result<f32> {
        match self.required(name)? {
            AttrValue::Float(v) => Ok(v),
            v => bail!("attribute '{name}' is {v}, not a float"),
        }
    }
    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.required(name)? {
            AttrValue::Bool(v) => Ok(v),
            v => bail!("attribute '{name}' is {v}, not a bool"),
        }
    }
    pub fn str(&self, name: &str) -> Result<String> {
        match self.required(name)? {
            AttrValue::Str(v) => Ok(v),
            v => bail!("attribute '{name}' is {v}, not a string"),
        }
    }
    pub fn ints(&self, name: &str) -> Result<Vec<i64>> {
        match self.required(name)? {
            AttrValue::Ints(v) | AttrValue::Shape(v) => Ok(v),
            v => bail!("attribute '{name}' is {v}, not a list of ints"),
        }
    }
    pub fn floats(&self, name: &str) -> Result<Vec<f32>> {
        match self.required(name)? {
            AttrValue::Floats(v) => Ok(v),
            v => bail!("attribute '{name}' is {v}, not a list of floats"),
        }
    }
    pub fn strs(&self, name: &str) -> Result<Vec<String>> {
        match self.required(name)? {
            AttrValue::Strs(v) => Ok(v),
            v => bail!("attribute '{name}' is {v}, not a list of strings"),
        }
    }
    pub fn dtype(&self, name: &str) -> Result<DType> {
        match self.required(name)? {
            AttrValue::Type(v) => Ok(v),
            v => bail!("attribute '{name}' is {v}, not a type"),
        }
    }
    /// An optional list: `None` when absent.
    pub fn opt_ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(match self.get(name)? {
            Some(AttrValue::Ints(v)) | Some(AttrValue::Shape(v)) => Some(v),
            Some(v) => bail!("attribute '{name}' is {v}, not a list of ints"),
            None => None,
        })
    }
    pub fn opt_float(&self, name: &str) -> Result<Option<f32>> {
        Ok(match self.get(name)? {
            Some(AttrValue::Float(v)) => Some(v),
            Some(v) => bail!("attribute '{name}' is {v}, not a float"),
            None => None,
        })
    }
    /// Whether attribute `name` is given as a run-time tensor.
    pub fn is_runtime(&self, name: &str) -> bool {
        self.node.runtime_attrs().any(|a| a == name)
    }

    /// True when `data_format` is channels_last.
    pub fn channels_last(&self) -> Result<bool> {
        Ok(self.str("data_format")? == "channels_last")
    }
}

/// What a shape rule sees: the node, its attributes and the types of its inputs.
pub struct InferCtx<'a> {
    pub attrs: Attrs<'a>,
    pub inputs: Vec<&'a TensorType>,
}

impl InferCtx<'_> {
    pub fn input(&self, i: usize) -> Result<&TensorType> {
        self.inputs
            .get(i)
            .copied()
            .ok_or_else(|| anyhow!("input {i} is missing"))
    }
    /// Normalises a possibly negative axis against `rank`.
    pub fn axis(&self, axis: i64, rank: usize) -> Result<usize> {
        shape_rules::norm_axis(axis, rank)
    }

    /// The type of the run-time tensor giving attribute `name`, if it is given so.
    pub fn runtime(&self, name: &str) -> Option<&TensorType> {
        let node = self.attrs.node;
        let k = node.runtime_attrs().position(|a| a == name)?;
        let first = self.inputs.len().checked_sub(node.runtime_inputs())?;
        self.inputs.get(first + k).copied()
    }

    /// The length of the 1-d run-time tensor giving list attribute `name`.
    pub fn runtime_len(&self, name: &str) -> Result<Option<usize>> {
        let Some(t) = self.runtime(name) else {
            return Ok(None);
        };
        match t.shape.as_slice() {
            [n] if *n >= 0 => Ok(Some(*n as usize)),
            _ => bail!(
                "'{name}' is given by a tensor of type {t}; a 1-d tensor of known length is needed"
            ),
        }
    }
}

/// The output types of a node: its op's shape rule, or, when attributes are given as run-time
/// tensors, the rule the first of them declares.
pub fn infer(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let node = ctx.attrs.node;
    let Some(first) = node.runtime_attrs().next() else {
        return (ctx.attrs.def.infer)(ctx);
    };
    let n = node.runtime_inputs();
    if n > ctx.inputs.len() {
        bail!(
            "{n} attributes are given by tensors but the node has {} inputs",
            ctx.inputs.len()
        );
    }
    for (k, name) in node.runtime_attrs().enumerate() {
        let def = ctx
            .attrs
            .def
            .attr(name)
            .ok_or_else(|| anyhow!("unknown attribute '{name}'"))?;
        if def.runtime.is_none() {
            bail!("attribute '{name}' cannot be a tensor computed at run time");
        }
        if node.attrs.contains_key(name) {
            bail!("attribute '{name}' is given both as a value and as a tensor");
        }
        let t = ctx.inputs[ctx.inputs.len() - n + k];
        let fits = match def.kind {
            AttrKind::Float | AttrKind::Floats => t.dtype.is_float() || t.dtype.is_int(),
            _ => t.dtype.is_int(),
        };
        if !fits {
            bail!("attribute '{name}' is given by a tensor of type {t}");
        }
    }
    let rule = ctx.attrs.def.attr(first).and_then(|d| d.runtime);
    rule.ok_or_else(|| anyhow!("attribute '{first}' cannot be a tensor computed at run time"))?(ctx)
}

/// How many outputs the node makes (a Split with run-time sizes: as many as the sizes tensor
/// has entries).
pub fn output_count(ctx: &InferCtx) -> Result<usize> {
    Ok(match ctx.attrs.def.outputs {
        Outputs::Fixed(names) => names.len(),
        Outputs::PerEntryOf(attr) => match ctx.runtime_len(attr)? {
            Some(n) => n,
            None => ctx.attrs.ints(attr)?.len(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_is_declared_in_its_family_file() {
        for (file, ops) in FAMILY_FILES {
            for op in *ops {
                assert_eq!(
                    op.family.name(),
                    *file,
                    "{} is declared in src/ir/ops/{file}.rs but belongs to family {:?}",
                    op.name,
                    op.family
                );
            }
        }
    }

    /// Every layout declaration names attributes and weights its op has.
    #[test]
    fn layout_declarations_fit_their_ops() {
        for op in all() {
            let needs: &[&str] = match op.layout {
                Layout::DataFormat { .. } => &["data_format"],
                Layout::Axis(AxisRule::Reduced) => &["axis", "keepdims"],
                Layout::Axis(_) | Layout::Concat | Layout::Flatten => &["axis"],
                Layout::ReducedAxes => &["axes", "keepdims"],
                Layout::PerAxis { attr, .. } => &[attr],
                Layout::Squeeze | Layout::Unsqueeze | Layout::Slice | Layout::LayerNorm => {
                    &["axes"]
                }
                Layout::Reshape | Layout::Expand => &["shape"],
                Layout::Transpose => &["perm"],
                _ => &[],
            };
            for name in needs {
                assert!(op.attr(name).is_some(), "{}: no attribute {name}", op.name);
            }
            if let Layout::DataFormat { kernel: Some(_) } = op.layout {
                assert!(op.weight("weights").is_some(), "{}: no kernel", op.name);
            }
        }
    }
}
