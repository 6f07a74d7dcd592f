//! The PyTorch target. [`generate`] takes a graph the passes stage made channels-first and
//! renders a readable `nn.Module` named `KitModel` from the Tera templates in
//! `templates/pytorch/`: layers with weights are built in `__init__` under the source's layer
//! names (made safe by [`names`]), `forward` computes the graph in topological order, and only
//! the nodes the outputs need are emitted, each by its op's function in `ops/<family>.rs`.
//! Alongside the code comes the state-dict plan ([`state::Entry`]): which weight of the
//! converted graph fills each state-dict key, and how. [`state::write_state_dict`] writes it as a
//! `.pth` without Python; [`saver`] makes the TorchScript, `torch.export` and pickled-module
//! files by running the generated code.
pub mod names;
mod ops;
pub mod saver;
pub mod state;
mod target;
#[cfg(test)]
pub(crate) mod test_graph;

pub use target::PyTorch;

use crate::ir::passes::layout::{Perm, TransformedWeights};
use crate::ir::passes::Prepared;
use crate::ir::types::shape_string;
use crate::ir::{validate, DType, Graph, TensorRef};
use crate::weights::WeightReader;
use anyhow::{bail, Context, Result};
use names::Namer;
use state::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Graph names that became another Python identifier: (name, identifier), sorted; and the
/// graph inputs whose `forward()` argument is named otherwise, with why.
#[derive(Clone, Debug, Default)]
pub struct Renamed {
    pub layers: Vec<(String, String)>,
    pub args: Vec<(String, String, &'static str)>,
}

/// The generated module and what its weights need.
pub struct Generated<'w> {
    /// The Python source.
    pub code: String,
    /// The state dict the module loads, in registration order.
    pub state: Vec<Entry>,
    /// The weights of the layout-converted graph the state dict is read from.
    pub weights: TransformedWeights<'w>,
    pub renamed: Renamed,
}

/// Generates the PyTorch module of a graph prepared channels-first (the module takes and
/// returns tensors in the source's layout unless `--io-layout` changed them).
pub fn generate(prepared: Prepared<'_>) -> Result<Generated<'_>> {
    let io = Boundary {
        inputs: prepared.input_perms,
        outputs: prepared.output_perms,
        source_inputs: prepared.source_inputs,
    };
    let (code, state, renamed) = emit(&prepared.graph, &prepared.weights, &io)?;
    Ok(Generated {
        code,
        state,
        weights: prepared.weights,
        renamed,
    })
}

/// How the module's inputs and outputs relate to the source model's (for the docstring).
#[derive(Default)]
pub struct Boundary {
    /// Per graph input: its permutation from the source layout, if any.
    pub inputs: Vec<Option<Perm>>,
    /// Per graph output: its permutation from the source layout, if any.
    pub outputs: Vec<Option<Perm>>,
    /// Per graph input: its shape in the source model.
    pub source_inputs: Vec<Option<Vec<i64>>>,
}

/// Emits the module for a graph whose layout-sensitive ops are channels-first: its code, its
/// state dict entries and the names that became other identifiers. Fails, before anything is
/// written, with one message listing every node that cannot be emitted.
pub fn emit(
    graph: &Graph,
    weights: &dyn WeightReader,
    io: &Boundary,
) -> Result<(String, Vec<Entry>, Renamed)> {
    let mut graph = graph.clone();
    if graph.nodes.iter().any(|n| n.outputs.is_empty()) {
        validate::infer_types(&mut graph)?;
    }
    check_dtypes(&graph, weights)?;
    let mut e = Emitter::new(&graph, weights);
    let needed = super::needed_nodes(&graph);
    let (mut problems, mut ops) = (vec![], BTreeSet::new());
    // Nodes that failed or read from one that did (those are not reported again).
    let mut failed: HashSet<&str> = HashSet::new();
    for node in graph
        .nodes
        .iter()
        .filter(|n| needed.contains(n.name.as_str()))
    {
        if node.inputs.iter().any(|r| failed.contains(r.node.as_str())) {
            failed.insert(&node.name);
            continue;
        }
        if let Err(err) = ops::lower(&mut e, node) {
            problems.push(format!("node '{}' ({}): {err:#}", node.name, node.op));
            ops.insert(node.op.as_str());
            failed.insert(&node.name);
        }
    }
    if !problems.is_empty() {
        bail!(
            "cannot generate PyTorch code for {} node(s) (ops: {}):\n  - {}",
            problems.len(),
            ops.into_iter().collect::<Vec<_>>().join(", "),
            problems.join("\n  - ")
        );
    }
    let code = e.render(io)?;
    let mut state = std::mem::take(&mut e.root_params);
    state.append(&mut e.root_buffers);
    state.append(&mut e.module_state);
    let mut layers: Vec<(String, String)> = e
        .idents
        .iter()
        .filter(|(name, ident)| name != ident && !graph.inputs.contains(name))
        .map(|(name, ident)| (name.clone(), ident.clone()))
        .collect();
    layers.sort();
    let renamed = Renamed {
        layers,
        args: std::mem::take(&mut e.args_renamed),
    };
    Ok((code, state, renamed))
}

/// Helper code a module may need; each is emitted only when used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Helper {
    Resample,
    Recurrent,
    SamePad,
}

/// The module being generated.
pub(crate) struct Emitter<'a> {
    pub graph: &'a Graph,
    pub weights: &'a dyn WeightReader,
    pub namer: Namer,
    /// Identifier of each emitted node (its layer attribute and its variable).
    pub idents: HashMap<String, String>,
    /// Graph inputs whose `forward()` argument is named otherwise: (name, argument, why).
    pub args_renamed: Vec<(String, String, &'static str)>,
    /// Python expression of each computed tensor.
    pub vars: HashMap<TensorRef, String>,
    pub init: Vec<String>,
    pub forward: Vec<String>,
    pub root_params: Vec<Entry>,
    pub root_buffers: Vec<Entry>,
    pub module_state: Vec<Entry>,
    pub helpers: BTreeSet<Helper>,
    pub uses_f: bool,
    pub uses_math: bool,
}

impl<'a> Emitter<'a> {
    fn new(graph: &'a Graph, weights: &'a dyn WeightReader) -> Self {
        let mut namer = Namer::new();
        // Graph inputs first: the forward arguments keep their names where Python allows.
        let mut idents = HashMap::new();
        let mut args_renamed = vec![];
        for name in &graph.inputs {
            if idents.contains_key(name) {
                continue;
            }
            let (arg, why) = namer.arg(name);
            if let Some(why) = why {
                args_renamed.push((name.clone(), arg.clone(), why));
            }
            idents.insert(name.clone(), arg);
        }
        for name in graph.nodes.iter().map(|n| &n.name) {
            if !idents.contains_key(name) {
                idents.insert(name.clone(), namer.ident(name));
            }
        }
        Emitter {
            graph,
            weights,
            namer,
            idents,
            args_renamed,
            vars: HashMap::new(),
            init: vec![],
            forward: vec![],
            root_params: vec![],
            root_buffers: vec![],
            module_state: vec![],
            helpers: BTreeSet::new(),
            uses_f: false,
            uses_math: false,
        }
    }

    fn render(&self, io: &Boundary) -> Result<String> {
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![]);
        tera.add_raw_templates([
            (
                "model.py",
                include_str!("../../../templates/pytorch/model.py.tera"),
            ),
            (
                "resample.py",
                include_str!("../../../templates/pytorch/resample.py.tera"),
            ),
            (
                "recurrent.py",
                include_str!("../../../templates/pytorch/recurrent.py.tera"),
            ),
            (
                "same_pad.py",
                include_str!("../../../templates/pytorch/same_pad.py.tera"),
            ),
        ])
        .context("internal: PyTorch templates")?;
        let mut ctx = tera::Context::new();
        ctx.insert("version", env!("CARGO_PKG_VERSION"));
        ctx.insert("uses_math", &self.uses_math);
        ctx.insert("uses_f", &self.uses_f);
        ctx.insert("resample", &self.helpers.contains(&Helper::Resample));
        ctx.insert("recurrent", &self.helpers.contains(&Helper::Recurrent));
        ctx.insert("same_pad", &self.helpers.contains(&Helper::SamePad));
        ctx.insert("init", &self.init);
        ctx.insert("forward", &self.forward);
        let args: Vec<&str> = self
            .graph
            .inputs
            .iter()
            .map(|n| self.idents[n].as_str())
            .collect();
        ctx.insert("args", &args.join(", "));
        ctx.insert("doc_inputs", &self.doc_inputs(io));
        ctx.insert("doc_outputs", &self.doc_outputs(io));
        ctx.insert("example_inputs", &self.example_inputs()?);
        ctx.insert("dynamic_dims", &self.dynamic_dims());
        let outs: Vec<String> = self
            .graph
            .outputs
            .iter()
            .map(|r| self.var(r))
            .collect::<Result<_>>()?;
        ctx.insert("returns", &outs.join(", "));
        tera.render("model.py", &ctx)
            .context("internal: rendering the PyTorch module")
    }

    /// One docstring line per forward argument: identifier, type and layout.
    fn doc_inputs(&self, io: &Boundary) -> Vec<String> {
        self.graph
            .inputs
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let ident = &self.idents[name];
                let ty = self.graph.node(name).and_then(|n| n.outputs.first());
                let mut line = match ty {
                    Some(t) => format!("{ident}: {}{}", t.dtype, shape_string(&t.shape)),
                    None => ident.clone(),
                };
                if let (Some(Some(p)), Some(Some(src))) =
                    (io.inputs.get(i), io.source_inputs.get(i))
                {
                    line.push_str(&format!(
                        " ({}; the source took {}, --io-layout)",
                        layout_word(p),
                        shape_string(src)
                    ));
                }
                line
            })
            .collect()
    }

    /// One docstring line per returned tensor: the source's output name, type and layout.
    fn doc_outputs(&self, io: &Boundary) -> Vec<String> {
        self.graph
            .outputs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                // The source's name where it reads safely in a docstring (printable ASCII, no
                // quote or backslash); other names are left out rather than escaped.
                let name = self.graph.output_name(i);
                let plain = name
                    .chars()
                    .all(|c| matches!(c, ' '..='~') && c != '"' && c != '\\');
                let mut line = match self.graph.tensor_type(r) {
                    Some(t) => format!("{}{}", t.dtype, shape_string(&t.shape)),
                    None => "tensor".to_string(),
                };
                if plain && !name.is_empty() {
                    line = format!("{name}: {line}");
                }
                if let Some(Some(p)) = io.outputs.get(i) {
                    line.push_str(&format!(
                        " ({}: the source's output permuted by {p:?}, --io-layout)",
                        layout_word(p)
                    ));
                }
                line
            })
            .collect()
    }

    /// `(argument, axis, symbol)` of each plain symbolic dim of the inputs, as a Python tuple
    /// (immutable, like `example_inputs`); empty when no input has one.
    fn dynamic_dims(&self) -> String {
        let mut items = vec![];
        for name in &self.graph.inputs {
            let Some(t) = self.graph.node(name).and_then(|n| n.outputs.first()) else {
                continue;
            };
            for (axis, &d) in t.shape.iter().enumerate() {
                if let Some(s) = crate::ir::dim::as_symbol(d) {
                    let arg = names::py_str(&self.idents[name]);
                    items.push(format!("({arg}, {axis}, {})", names::py_str(&s)));
                }
            }
        }
        match items.len() {
            0 => String::new(),
            1 => format!("({},)", items[0]),
            _ => format!("({})", items.join(", ")),
        }
    }

    /// `(name, shape, dtype)` of each forward argument as Python source: unknown dims as 1,
    /// symbolic ones as 2 on axis 0 and 64 elsewhere.
    fn example_inputs(&self) -> Result<String> {
        let mut items = vec![];
        for name in &self.graph.inputs {
            let t = self
                .graph
                .node(name)
                .and_then(|n| n.outputs.first())
                .with_context(|| format!("graph input '{name}' has no type"))?;
            let dims: Vec<i64> = t
                .shape
                .iter()
                .enumerate()
                .map(|(axis, &d)| match d {
                    _ if crate::ir::dim::is_symbolic(d) && axis == 0 => 2,
                    _ if crate::ir::dim::is_symbolic(d) => 64,
                    _ => d.max(1),
                })
                .collect();
            items.push(format!(
                "({}, {}, {})",
                names::py_str(&self.idents[name]),
                tuple(&dims),
                torch_dtype(t.dtype)?
            ));
        }
        Ok(match items.len() {
            1 => format!("({},)", items[0]),
            _ => format!("({})", items.join(", ")),
        })
    }

    /// The expression of a tensor.
    pub fn var(&self, r: &TensorRef) -> Result<String> {
        self.vars
            .get(r)
            .cloned()
            .with_context(|| format!("internal: tensor '{r}' has not been computed"))
    }
}

/// The layout an interface tensor permuted by `p` (`--io-layout`) is in: `p` moves the last
/// axis to 1 (channels-first) or axis 1 to the end (channels-last).
fn layout_word(p: &[usize]) -> &'static str {
    if p.get(1) == Some(&(p.len() - 1)) {
        "channels-first"
    } else {
        "channels-last"
    }
}

/// A Python tuple of ints.
pub(crate) fn tuple(v: &[i64]) -> String {
    match v.len() {
        1 => format!("({},)", v[0]),
        _ => format!(
            "({})",
            v.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `torch.float32` and so on; fails for the element types torch lacks ([`check_dtypes`]).
pub(crate) fn torch_dtype(d: DType) -> Result<&'static str> {
    Ok(match d {
        DType::F32 => "torch.float32",
        DType::F16 => "torch.float16",
        DType::BF16 => "torch.bfloat16",
        DType::F64 => "torch.float64",
        DType::I8 => "torch.int8",
        DType::I16 => "torch.int16",
        DType::I32 => "torch.int32",
        DType::I64 => "torch.int64",
        DType::U8 => "torch.uint8",
        DType::U16 => "torch.uint16",
        DType::U32 => "torch.uint32",
        DType::U64 => "torch.uint64",
        DType::Bool => "torch.bool",
        DType::F8E4M3FN => "torch.float8_e4m3fn",
        DType::F8E4M3FNUZ => "torch.float8_e4m3fnuz",
        DType::F8E5M2 => "torch.float8_e5m2",
        DType::F8E5M2FNUZ => "torch.float8_e5m2fnuz",
        // torch's e8m0 and 4-bit float dtypes are scale / packed-pair types without the
        // arithmetic and conversions a module needs; its int4 / int2 types are bit layouts.
        DType::F8E8M0 | DType::F4E2M1 | DType::I4 | DType::U4 | DType::I2 | DType::U2 => {
            bail!("torch has no {d} element type")
        }
    })
}

/// Fails, before anything is generated, when the graph has values or weights of an element
/// type torch lacks, naming each type and the nodes that have it.
fn check_dtypes(graph: &Graph, weights: &dyn WeightReader) -> Result<()> {
    let mut bad: BTreeMap<DType, BTreeSet<String>> = BTreeMap::new();
    let outputs = graph
        .nodes
        .iter()
        .flat_map(|n| n.outputs.iter().map(|t| (n.name.clone(), t.dtype)));
    let stored = weights
        .keys()
        .into_iter()
        .filter_map(|(n, p)| weights.info(&n, &p).map(|i| (n, i.dtype)));
    for (node, d) in outputs.chain(stored) {
        if torch_dtype(d).is_err() {
            bad.entry(d).or_default().insert(node);
        }
    }
    if !bad.is_empty() {
        bail!(
            "the PyTorch target cannot represent element type(s) {} (torch lacks them): {}",
            bad.keys()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            bad.iter()
                .map(|(d, nodes)| format!(
                    "{d} in node(s) {}",
                    nodes
                        .iter()
                        .map(|n| format!("'{n}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}
