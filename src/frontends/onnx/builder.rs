//! The IR graph under construction. Every ONNX value name is bound to a [`Val`]: a tensor an IR
//! node computes at run time, a constant known now, or a shape-like integer tensor whose
//! entries are symbolic dims ([`Dims`]). [`Builder::emit`] adds an IR node — or, when no input
//! is computed at run time, folds it: through the reference interpreter (`interp::run_op`) for
//! constants, so shape computations and weight transforms become constants, and through the
//! symbolic evaluation of `super::dims` when an input holds symbolic dims, so
//! `Shape → Gather → Concat → Reshape` over `[N, S, 768]` becomes the target `[N, S, 12, 64]`.
use super::tensor::Lazy;
use crate::frontends::builder::{fits_fold_cap, infer, GraphBuilder};
use crate::interp::{self, Value};
use crate::ir::ops::FROM_INPUTS;
use crate::ir::{AttrValue, DType, Node, TensorRef, TensorType};
use crate::weights::derived::{Derived, Key};
use crate::weights::MemoryWeights;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A tensor computed by an IR node at run time.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub r: TensorRef,
    pub ty: TensorType,
}

/// A tensor known at conversion time.
#[derive(Clone)]
pub struct Const {
    id: u64,
    /// The ONNX name it came from (or the node that folded it), for naming and messages.
    pub name: String,
    pub data: Lazy,
}

impl Const {
    pub fn value(&self) -> Result<Value> {
        Value::from_tensor(&self.data.tensor()?)
            .with_context(|| format!("constant '{}'", self.name))
    }
    pub fn dtype(&self) -> DType {
        self.data.info.dtype
    }
    pub fn shape(&self) -> Vec<i64> {
        self.data.info.shape.iter().map(|&d| d as i64).collect()
    }
}

/// An integer tensor (0-d or 1-d, typically) computed from symbolic dims: each entry a size,
/// a plain integer, or a symbolic dim (see `crate::ir::dim`) — known now as an expression,
/// though not as a number.
#[derive(Clone, Debug)]
pub struct Dims {
    pub name: String,
    pub dtype: DType,
    pub value: Arc<Value>,
}

/// What an ONNX value name stands for.
#[derive(Clone)]
pub enum Val {
    Runtime(Runtime),
    Const(Const),
    Dims(Dims),
}

impl Val {
    pub fn dtype(&self) -> DType {
        match self {
            Val::Runtime(t) => t.ty.dtype,
            Val::Const(c) => c.dtype(),
            Val::Dims(d) => d.dtype,
        }
    }

    /// The shape (with symbolic dims).
    pub fn shape(&self) -> Vec<i64> {
        match self {
            Val::Runtime(t) => t.ty.shape.clone(),
            Val::Const(c) => c.shape(),
            Val::Dims(d) => d.value.shape().iter().map(|&n| n as i64).collect(),
        }
    }

    pub fn rank(&self) -> usize {
        self.shape().len()
    }

    pub fn ty(&self) -> TensorType {
        TensorType::new(self.dtype(), self.shape())
    }

    /// The value known now: a constant's, or the symbolic dims of a [`Dims`].
    pub fn value_now(&self) -> Result<Value> {
        match self {
            Val::Const(c) => c.value(),
            Val::Dims(d) => Ok((*d.value).clone()),
            Val::Runtime(t) => bail!("'{}' is computed at run time", t.r),
        }
    }

    pub fn is_runtime(&self) -> bool {
        matches!(self, Val::Runtime(_))
    }

    /// The name to mention in messages.
    pub fn name(&self) -> String {
        match self {
            Val::Runtime(t) => t.r.to_string(),
            Val::Const(c) => c.name.clone(),
            Val::Dims(d) => d.name.clone(),
        }
    }
}

/// An IR node to emit: op, attributes, inputs and weights; `name` is a hint made unique.
pub struct Spec {
    pub name: String,
    /// Whether `name` is the ONNX value name this node produces (which it may claim even
    /// though the name is reserved).
    pub onnx_name: bool,
    pub op: &'static str,
    pub attrs: BTreeMap<String, AttrValue>,
    pub inputs: Vec<Val>,
    pub weights: Vec<(&'static str, Lazy)>,
    /// Attributes given as tensors computed at run time, each an input after `inputs`.
    pub runtime: Vec<(&'static str, Val)>,
}

/// A shape-like operand (a Reshape's shape, Slice bounds, Pad amounts, …): its entries when
/// they are known now (sizes or symbolic dims), else the tensor that computes it at run time.
pub enum IntsArg {
    Known(Vec<i64>),
    Runtime(Val),
}

impl Spec {
    pub fn attr(mut self, name: &str, v: AttrValue) -> Spec {
        self.attrs.insert(name.to_string(), v);
        self
    }
    pub fn int(self, name: &str, v: i64) -> Spec {
        self.attr(name, AttrValue::Int(v))
    }
    pub fn ints(self, name: &str, v: Vec<i64>) -> Spec {
        self.attr(name, AttrValue::Ints(v))
    }
    pub fn float(self, name: &str, v: f32) -> Spec {
        self.attr(name, AttrValue::Float(v))
    }
    pub fn floats(self, name: &str, v: Vec<f32>) -> Spec {
        self.attr(name, AttrValue::Floats(v))
    }
    pub fn flag(self, name: &str, v: bool) -> Spec {
        self.attr(name, AttrValue::Bool(v))
    }
    pub fn str(self, name: &str, v: &str) -> Spec {
        self.attr(name, AttrValue::Str(v.to_string()))
    }
    pub fn input(mut self, v: &Val) -> Spec {
        self.inputs.push(v.clone());
        self
    }
    /// Float-list attribute `name` from a tensor computed at run time.
    pub fn floats_input(mut self, name: &'static str, v: Val) -> Spec {
        self.runtime.push((name, v));
        self
    }
    /// Attribute `name` from `arg`: its value when known now, else a run-time tensor.
    pub fn ints_or_input(mut self, name: &'static str, arg: IntsArg) -> Spec {
        match arg {
            IntsArg::Known(v) => self.ints(name, v),
            IntsArg::Runtime(v) => {
                self.runtime.push((name, v));
                self
            }
        }
    }
    pub fn weight(mut self, name: &'static str, t: Lazy) -> Spec {
        self.weights.push((name, t));
        self
    }
}

/// The graph and weights being built, and what each ONNX name stands for.
#[derive(Default)]
pub struct Builder {
    /// The shared graph builder: names (ONNX value names kept for the nodes that produce
    /// them), types, folding.
    pub core: GraphBuilder,
    /// The weights, each a lazily read ONNX tensor, in key order.
    pub weights: BTreeMap<Key, Derived>,
    values: HashMap<String, Val>,
    /// Constant nodes already made, by constant id.
    materialized: HashMap<u64, TensorRef>,
    next_id: u64,
}

impl Builder {
    pub fn reserve(&mut self, name: &str) {
        self.core.reserve(name);
    }

    pub fn bind(&mut self, name: &str, v: Val) {
        self.values.insert(name.to_string(), v);
    }

    pub fn get(&self, name: &str) -> Option<&Val> {
        self.values.get(name)
    }

    /// A constant value named `name`.
    pub fn constant(&mut self, name: &str, data: Lazy) -> Val {
        self.next_id += 1;
        Val::Const(Const {
            id: self.next_id,
            name: name.to_string(),
            data,
        })
    }

    /// A constant from an interpreter value stored as `dtype`.
    pub fn constant_value(&mut self, name: &str, v: &Value, dtype: DType) -> Result<Val> {
        let t = v
            .to_tensor(dtype)
            .with_context(|| format!("storing folded value '{name}' as {dtype}"))?;
        Ok(self.constant(name, Lazy::ready(t)))
    }

    fn add_weight(&mut self, node: &str, param: &str, t: Lazy) {
        let key = (node.to_string(), param.to_string());
        self.weights.insert(key, Derived::lazy(Arc::new(t)));
    }

    /// A unique IR node name from a hint.
    fn claim(&mut self, hint: &str, onnx_name: bool) -> String {
        self.core.claim(hint, onnx_name)
    }

    /// Adds a graph input (`DataInput`) of the given type.
    pub fn add_input(&mut self, name: &str, ty: TensorType) -> Result<Val> {
        let node = Node::new(name, "DataInput")
            .with_attr("dtype", AttrValue::Type(ty.dtype))
            .with_attr("shape", AttrValue::Shape(ty.shape.clone()));
        self.core.add_input(node)?;
        Ok(Val::Runtime(Runtime {
            r: TensorRef::new(name, 0),
            ty,
        }))
    }

    /// The IR tensor holding `v`: a run-time tensor, or a `Constant` node made (once) for a
    /// constant.
    pub fn tensor_ref(&mut self, v: &Val, hint: Option<&str>) -> Result<TensorRef> {
        match v {
            Val::Runtime(t) => Ok(t.r.clone()),
            Val::Const(c) => {
                if let Some(r) = self.materialized.get(&c.id) {
                    return Ok(r.clone());
                }
                let name = match hint {
                    Some(h) => self.claim(h, true),
                    None => self.claim(&c.name, true),
                };
                let node = Node::new(name.clone(), "Constant")
                    .with_attr("dtype", AttrValue::Type(c.dtype()))
                    .with_attr("shape", AttrValue::Shape(c.shape()));
                self.add_weight(&name, "value", c.data.clone());
                let r = self.core.push(node)?;
                self.materialized.insert(c.id, r.clone());
                Ok(r)
            }
            Val::Dims(d) => bail!("{}", unknown_dims_message(&d.name)),
        }
    }

    /// Adds the node `spec` describes, or folds it when none of its inputs is computed at run
    /// time. Returns its outputs.
    pub fn emit(&mut self, mut spec: Spec) -> Result<Vec<Val>> {
        let mut node = Node::new(spec.name.clone(), spec.op);
        node.attrs = spec.attrs;
        if !spec.runtime.is_empty() {
            let names = spec.runtime.iter().map(|(n, _)| n.to_string()).collect();
            node.attrs
                .insert(FROM_INPUTS.to_string(), AttrValue::Strs(names));
            spec.inputs.extend(spec.runtime.into_iter().map(|(_, v)| v));
        }
        // Known now: computed now, unless the result is too large to hold (then the node
        // computes it at run time from Constant inputs). Symbolic dims the op cannot work on
        // now are computed at run time, from the inputs' shapes.
        let symbolic = spec.inputs.iter().any(|v| matches!(v, Val::Dims(_)));
        let mut not_now = None;
        if !spec.inputs.iter().any(Val::is_runtime) && foldable(&node, &spec.inputs) {
            match self.fold(node.clone(), &spec.inputs, &spec.weights) {
                Err(e) if symbolic => not_now = Some(e),
                done => return done,
            }
        }
        if symbolic {
            let mut m = super::dims::Materializer::new(self);
            for v in spec.inputs.iter_mut() {
                if let Val::Dims(d) = v {
                    let t = m.tensor(d);
                    *v = match (t, not_now.take()) {
                        (Ok(t), _) => t,
                        (Err(e), Some(first)) => return Err(first.context(e)),
                        (Err(e), None) => return Err(e),
                    };
                }
            }
        }
        let types: Vec<TensorType> = spec.inputs.iter().map(Val::ty).collect();
        let out = infer(&node, &types).with_context(|| {
            format!(
                "{} on {}",
                spec.op,
                types
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        node.outputs = out.clone();
        node.name = self.claim(&spec.name, spec.onnx_name);
        for v in &spec.inputs {
            let r = self.tensor_ref(v, None)?;
            node.inputs.push(r);
        }
        for (param, t) in spec.weights {
            self.add_weight(&node.name, param, t);
        }
        let vals = out
            .into_iter()
            .enumerate()
            .map(|(k, ty)| {
                Val::Runtime(Runtime {
                    r: TensorRef::new(node.name.clone(), k),
                    ty,
                })
            })
            .collect();
        self.core.push(node)?;
        Ok(vals)
    }

    /// [`Builder::emit`] of a node with one output (the first, when it has more).
    pub fn emit1(&mut self, spec: Spec) -> Result<Val> {
        let op = spec.op;
        self.emit(spec)?
            .into_iter()
            .next()
            .with_context(|| format!("internal: {op} produced no output"))
    }

    /// A value that no IR op computes, computed now by `f` from constant inputs: for ops whose
    /// output shape depends on their input values (Range, ConstantOfShape), which IR shapes
    /// cannot follow.
    pub fn compute(
        &mut self,
        name: &str,
        inputs: &[Val],
        dtype: DType,
        f: impl Fn(&[Value]) -> Result<Value>,
    ) -> Result<Val> {
        if let Some(v) = inputs.iter().find(|v| !matches!(v, Val::Const(_))) {
            bail!(
                "{} (the output's shape depends on its value; IR shapes are static)",
                not_constant(v, "input")
            );
        }
        let values = inputs
            .iter()
            .map(Val::value_now)
            .collect::<Result<Vec<_>>>()?;
        let result = f(&values)?;
        self.constant_value(name, &result, dtype)
    }

    /// Runs the op on inputs known now: constants through the interpreter, symbolic dims
    /// through `super::dims`.
    fn fold(&mut self, node: Node, inputs: &[Val], weights: &[(&str, Lazy)]) -> Result<Vec<Val>> {
        let mut store = MemoryWeights::default();
        for (param, t) in weights {
            store.insert(&node.name, param, t.tensor()?);
        }
        let values = inputs
            .iter()
            .map(Val::value_now)
            .collect::<Result<Vec<_>>>()?;
        let types: Vec<TensorType> = inputs.iter().map(Val::ty).collect();
        let dtypes: Vec<DType> = infer(&node, &types)?.into_iter().map(|t| t.dtype).collect();
        let symbolic = inputs.iter().any(|v| matches!(v, Val::Dims(_)));
        let results = if symbolic {
            super::dims::fold(&node, &store, values).with_context(|| {
                format!(
                    "{} '{}' computes on symbolic dims ({})",
                    node.op,
                    node.name,
                    inputs
                        .iter()
                        .filter(|v| matches!(v, Val::Dims(_)))
                        .map(|v| format!("{} = {}", v.name(), super::dims::describe(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?
        } else {
            interp::run_op(&node, &store, values)
                .with_context(|| format!("folding {} '{}'", node.op, node.name))?
        };
        let mut out = Vec::with_capacity(dtypes.len());
        for (k, (value, &dtype)) in results.into_iter().zip(&dtypes).enumerate() {
            let name = if k == 0 {
                node.name.clone()
            } else {
                format!("{}_{k}", node.name)
            };
            if super::dims::is_symbolic(&value) {
                out.push(Val::Dims(Dims {
                    name,
                    dtype,
                    value: Arc::new(value),
                }));
            } else {
                out.push(self.constant_value(&name, &value, dtype)?);
            }
        }
        Ok(out)
    }
}

/// Whether a node on inputs known now is folded: always when an input holds symbolic dims
/// (there is no run-time tensor to compute from), else when its outputs fit the builder's fold
/// cap (weights transformed always do; a value far larger than its inputs does not).
fn foldable(node: &Node, inputs: &[Val]) -> bool {
    if inputs.iter().any(|v| matches!(v, Val::Dims(_))) {
        return true;
    }
    // Attributes holding symbolic dims (an Expand to `[N, 16]`) are known only at run time.
    if node.symbolic_attr().is_some() {
        return false;
    }
    let types: Vec<TensorType> = inputs.iter().map(Val::ty).collect();
    infer(node, &types).map_or(true, |out| fits_fold_cap(&types, &out))
}

/// The error for a value computed from symbolic dims where the IR needs a constant or a
/// run-time tensor.
pub fn unknown_dims_message(name: &str) -> String {
    format!(
        "'{name}' is computed from symbolic input dims where this op needs a constant (a weight \
         or an attribute the IR has no run-time form of); pin the dims it depends on with --dim \
         NAME=SIZE"
    )
}

/// Reads a value as integers (for shape-like inputs).
pub fn to_ints(v: &Value) -> Result<Vec<i64>> {
    Ok(match v {
        Value::I64(a) => a.iter().copied().collect(),
        Value::F32(a) => a.iter().map(|&x| x as i64).collect(),
        Value::Bool(a) => a.iter().map(|&x| x as i64).collect(),
    })
}

/// [`not_constant`] with the reason the IR cannot take this value at run time.
pub fn not_constant_because(v: &Val, what: &str, why: &str) -> anyhow::Error {
    anyhow!("{} ({why})", not_constant(v, what))
}

/// Builds an `anyhow` error naming a value that is computed at run time but must be constant.
pub fn not_constant(v: &Val, what: &str) -> anyhow::Error {
    match v {
        Val::Dims(d) => anyhow!("{what}: {}", unknown_dims_message(&d.name)),
        _ => anyhow!(
            "{what} ('{}') is computed at run time; the IR needs it as a constant",
            v.name()
        ),
    }
}
