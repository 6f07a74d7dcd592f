//! Lowering of each IR op to PyTorch, one small function per op found by the op's name, grouped
//! by family as the catalogue is: a layer in `__init__` for ops with weights (with its
//! state-dict entries), statements in `forward` for all. Layout-sensitive ops must be
//! channels-first (the layout pass runs before). The meaning of every op is the reference
//! interpreter's; where a torch function differs (asymmetric padding, ceil-mode windows that
//! start in the end padding, even LRN sizes, Resize coordinate modes, recurrent gate orders) the
//! code computes the IR's result explicitly. `Ctx` is the per-node context every family uses.
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
mod shape;
#[cfg(test)]
mod tests;

use super::names::quoted_name;
use super::state::Entry;
use super::{tuple, Emitter, Helper};
use crate::ir::ops::shape_rules::{spatial_list, split_pads};
use crate::ir::ops::{resolved_pads, Attrs};
use crate::ir::{dim, DType, Node, TensorType};
use crate::weights::derived::{Derived, Step};
use crate::weights::TensorInfo;
use anyhow::{anyhow, bail, Context, Result};

/// A lowering function.
type Lower = fn(&mut Ctx) -> Result<()>;

/// The lowering of an IR op.
fn lookup(op: &str) -> Option<Lower> {
    io::lookup(op)
        .or_else(|| conv::lookup(op))
        .or_else(|| pool::lookup(op))
        .or_else(|| resize::lookup(op))
        .or_else(|| dense::lookup(op))
        .or_else(|| norm::lookup(op))
        .or_else(|| activation::lookup(op))
        .or_else(|| elementwise::lookup(op))
        .or_else(|| reduce::lookup(op))
        .or_else(|| shape::lookup(op))
        .or_else(|| recurrent::lookup(op))
}

/// Emits one node.
pub fn lower(e: &mut Emitter, node: &Node) -> Result<()> {
    let a = Attrs::of(node)?;
    let op = node.op.as_str();
    let f = lookup(op).ok_or_else(|| anyhow!("the PyTorch emitter has no mapping for op {op}"))?;
    crate::backends::check_symbolic_attrs(node, "the PyTorch backend")?;
    let id = e.idents[&node.name].clone();
    let mut c = Ctx {
        e,
        node,
        a,
        id,
        noted: false,
    };
    f(&mut c)
}

/// Lowering context of one IR node.
struct Ctx<'e, 'a> {
    e: &'e mut Emitter<'a>,
    node: &'e Node,
    a: Attrs<'e>,
    /// The node's identifier.
    id: String,
    /// Whether the rename comment has been written to `forward`.
    noted: bool,
}

impl Ctx<'_, '_> {
    /// Expression of input `i`.
    fn x(&self, i: usize) -> Result<String> {
        let r = self
            .node
            .inputs
            .get(i)
            .ok_or_else(|| anyhow!("input {i} is missing"))?;
        self.e.var(r)
    }

    fn in_ty(&self, i: usize) -> Result<TensorType> {
        let r = self
            .node
            .inputs
            .get(i)
            .ok_or_else(|| anyhow!("input {i} is missing"))?;
        self.e
            .graph
            .tensor_type(r)
            .cloned()
            .with_context(|| format!("the type of input '{r}' is unknown"))
    }

    fn out_ty(&self, k: usize) -> Result<TensorType> {
        self.node
            .outputs
            .get(k)
            .cloned()
            .with_context(|| format!("the type of output {k} is unknown"))
    }

    /// The comment naming the node when its identifier differs from its name.
    fn note(&self) -> Option<String> {
        (self.id != self.node.name)
            .then(|| format!("# {} ({})", quoted_name(&self.node.name), self.node.op))
    }

    /// A line of `forward`.
    fn line(&mut self, text: String) {
        if !self.noted {
            self.noted = true;
            if let Some(c) = self.note() {
                self.e.forward.push(c);
            }
        }
        self.e.forward.push(text);
    }

    /// The tensor giving an attribute at run time, `None` when it is given as a value.
    fn runtime_var(&self, attr: &str) -> Result<Option<String>> {
        let Some(k) = self.node.runtime_attrs().position(|a| a == attr) else {
            return Ok(None);
        };
        let i = self.node.inputs.len() - self.node.runtime_inputs() + k;
        self.x(i).map(Some)
    }

    /// The Python list of ints of an attribute given as a run-time tensor (`None` otherwise),
    /// written so that TorchScript types it.
    fn runtime_list(&self, attr: &str) -> Result<Option<String>> {
        Ok(self
            .runtime_var(attr)?
            .map(|v| format!("[int(v) for v in {v}]")))
    }

    /// `<id> = start`, then `header` (a `for` over run-time lists) updating `<id> = body`.
    fn set_loop(&mut self, start: String, header: String, body: String) -> Result<()> {
        let id = self.id.clone();
        self.line(format!("{id} = {start}"));
        self.line(header);
        self.line(format!("    {id} = {body}"));
        self.bind(0, id);
        Ok(())
    }

    /// `<id> = expr`, the node's (first) output.
    fn set(&mut self, expr: String) -> Result<()> {
        self.line(format!("{} = {expr}", self.id));
        self.bind(0, self.id.clone());
        Ok(())
    }

    fn bind(&mut self, k: usize, expr: String) {
        self.e.vars.insert(self.node.output(k), expr);
    }

    /// A fresh local variable name derived from the node's.
    fn local(&mut self, suffix: &str) -> String {
        self.e.namer.ident(&format!("{}_{suffix}", self.id))
    }

    /// Registers the node's layer; returns `self.<id>`.
    fn layer(&mut self, ctor: String) -> String {
        if let Some(c) = self.note() {
            self.e.init.push(c);
        }
        self.e.init.push(format!("self.{} = {ctor}", self.id));
        format!("self.{}", self.id)
    }

    /// A torch function, noting the `F` import.
    fn func(&mut self, f: &str) -> String {
        if f.starts_with("F.") {
            self.e.uses_f = true;
        }
        f.to_string()
    }

    fn info(&self, param: &str) -> Result<TensorInfo> {
        self.e
            .weights
            .info(&self.node.name, param)
            .with_context(|| format!("weight '{param}' is missing from the weights"))
    }

    fn has(&self, param: &str) -> bool {
        self.e.weights.info(&self.node.name, param).is_some()
    }

    /// A state-dict entry `<id>.<key>`: weight `param` viewed as `shape` (its own when `None`).
    fn entry(&mut self, key: &str, param: &str, shape: Option<Vec<usize>>) -> Result<()> {
        self.derived_entry(key, param, vec![], shape)
    }

    /// A state-dict entry `<id>.<key>` made from weight `param` by `steps`, then viewed as
    /// `shape` (the weight's own when `None`).
    fn derived_entry(
        &mut self,
        key: &str,
        param: &str,
        steps: Vec<Step>,
        shape: Option<Vec<usize>>,
    ) -> Result<()> {
        let info = self.info(param)?;
        let shape = shape.unwrap_or(info.shape);
        let derived = Derived {
            steps,
            ..Derived::weight(&self.node.name, param)
        }
        .then(Step::Reshape(shape.clone()));
        let key = format!("{}.{key}", self.id);
        self.e
            .module_state
            .push(Entry::new(key, info.dtype, shape, derived));
        Ok(())
    }

    /// A state-dict entry `<id>.<key>` holding 2-d weight `param` transposed: written as
    /// stored, read back through strides.
    fn transposed_entry(&mut self, key: &str, param: &str) -> Result<()> {
        let info = self.info(param)?;
        let shape = info.shape.iter().rev().copied().collect();
        let derived = Derived::weight(&self.node.name, param);
        self.e.module_state.push(Entry {
            transposed: true,
            ..Entry::new(format!("{}.{key}", self.id), info.dtype, shape, derived)
        });
        Ok(())
    }

    /// A state-dict entry `<id>.<key>` filled with `value`.
    fn fill(&mut self, key: &str, dtype: DType, shape: Vec<usize>, value: f64) -> Result<()> {
        let derived = Derived::filled(dtype, shape.clone(), value)
            .with_context(|| format!("state-dict tensor '{}.{key}'", self.id))?;
        let key = format!("{}.{key}", self.id);
        self.e
            .module_state
            .push(Entry::new(key, dtype, shape, derived));
        Ok(())
    }

    fn channels_first(&self) -> Result<()> {
        if self.a.channels_last()? {
            bail!("internal: the layout pass left this node channels_last");
        }
        Ok(())
    }

    /// Number of spatial axes of input 0 (1 to 3).
    fn spatial(&self) -> Result<usize> {
        let rank = self.in_ty(0)?.rank();
        if !(3..=5).contains(&rank) {
            bail!("expects a 3-d to 5-d input, got rank {rank}");
        }
        Ok(rank - 2)
    }

    /// A dim as Python: its size, or its expression with each symbol read from the first graph
    /// input that declares it (`x.shape[0] * x.shape[1]`).
    fn py_dim(&self, d: i64) -> Result<String> {
        if !dim::is_symbolic(d) {
            return Ok(d.to_string());
        }
        let missing = std::cell::RefCell::new(None);
        let text = dim::text_with(d, &|s| match self.symbol_source(s) {
            Some(expr) => expr,
            None => {
                *missing.borrow_mut() = Some(s.to_string());
                s.to_string()
            }
        });
        match missing.into_inner() {
            Some(s) => bail!(
                "the dim {} uses {s}, which no graph input declares",
                dim::text(d)
            ),
            None => Ok(text),
        }
    }

    /// `input.shape[axis]` for the first graph input with symbol `s` as a dim.
    fn symbol_source(&self, s: &str) -> Option<String> {
        self.e.graph.inputs.iter().find_map(|name| {
            let node = self.e.graph.node(name)?;
            let axis = node
                .outputs
                .first()?
                .shape
                .iter()
                .position(|&d| dim::as_symbol(d).as_deref() == Some(s))?;
            let var = self.e.var(&node.output(0)).ok()?;
            Some(format!("{var}.shape[{axis}]"))
        })
    }

    /// The padding of a windowed node (Conv, RuntimeConv, Pool) with `ns` spatial axes: its
    /// pads, or its `auto_pad` resolved over the spatial sizes of input 0 (known here, or by
    /// the module's `same_pad` when it runs: a line of `forward` computes them).
    fn window_pads(&mut self, ns: usize) -> Result<WindowPads> {
        let mode = self.a.str("auto_pad")?;
        let sizes = self.in_ty(0)?.shape[2..].to_vec();
        let pads = if mode == "explicit" {
            self.a.ints("pads")?
        } else if sizes.iter().all(|&d| d >= 0) {
            resolved_pads(&self.a, &sizes)?
        } else {
            let list = |v: &[i64]| {
                let items: Vec<String> = v.iter().map(|d| d.to_string()).collect();
                format!("[{}]", items.join(", "))
            };
            let kernel = self.a.ints("kernel_shape")?;
            let strides = spatial_list(self.a.ints("strides")?, ns, 1, "strides")?;
            let dilations = spatial_list(self.a.ints("dilations")?, ns, 1, "dilations")?;
            let odd_at_end = if mode == "same_upper" {
                "True"
            } else {
                "False"
            };
            self.e.helpers.insert(Helper::SamePad);
            let pad = self.local("pad");
            let x = self.x(0)?;
            self.line(format!(
                "{pad} = same_pad({x}.shape[2:], {}, {}, {}, {odd_at_end})",
                list(&kernel),
                list(&strides),
                list(&dilations)
            ));
            return Ok(WindowPads::RunTime(pad));
        };
        let (begin, end) = split_pads(pads, ns)?;
        Ok(WindowPads::Explicit(begin, end))
    }

    /// A dim of input 0: its size when known, else `x.shape[i]`.
    fn dim(&self, x: &str, i: usize) -> Result<String> {
        let d = self.in_ty(0)?.shape[i];
        Ok(if d >= 0 {
            d.to_string()
        } else {
            format!("{x}.shape[{i}]")
        })
    }
}

/// A windowed node's padding: (begins, ends) per spatial axis, or the local variable holding
/// F.pad's list computed when the module runs.
enum WindowPads {
    Explicit(Vec<i64>, Vec<i64>),
    RunTime(String),
}

impl WindowPads {
    /// F.pad's padding argument.
    fn torch(&self) -> String {
        match self {
            WindowPads::Explicit(begin, end) => torch_pads(begin, end),
            WindowPads::RunTime(var) => var.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting shared by the families.

/// A float literal that reads back as the same f32 (`float("inf")` for infinities).
fn float(v: f32) -> String {
    if v.is_nan() {
        "float(\"nan\")".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "float(\"inf\")"
        } else {
            "-float(\"inf\")"
        }
        .into()
    } else {
        format!("{v:?}")
    }
}

/// An int when all values agree (PyTorch's shorthand), else a tuple.
fn ints(v: &[i64]) -> String {
    if !v.is_empty() && v.iter().all(|&d| d == v[0]) {
        v[0].to_string()
    } else {
        tuple(v)
    }
}

/// F.pad's list: (begin, end) pairs from the last axis to the first.
fn torch_pads(begin: &[i64], end: &[i64]) -> String {
    let v: Vec<String> = (0..begin.len())
        .rev()
        .flat_map(|i| [begin[i].to_string(), end[i].to_string()])
        .collect();
    format!("[{}]", v.join(", "))
}
