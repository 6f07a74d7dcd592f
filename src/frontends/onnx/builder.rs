//! The IR graph under construction. Every ONNX value name is bound to a [`Val`]: a tensor an IR
//! node computes at run time, a constant known now, or a value derived from dims that are
//! unknown now ("probed"). [`Builder::emit`] adds an IR node — or, when no input is computed at
//! run time, folds it through the reference interpreter (`interp::run_op`), so shape
//! computations (`Shape → Gather → Concat → Reshape`) and weight transforms become constants.
//!
//! Unknown dims are handled by probing: each unknown input dim gets two unusual sizes (one per
//! probe), every run-time tensor carries its shape under both, and shape computations are
//! evaluated under both. A result that agrees is a constant; one that differs depends on the
//! unknown dims, and the ops that take it as an attribute (Reshape, Expand, Slice) accept it
//! only where it provably equals their input's own dim (see `ops::shape`).
use super::tensor::Lazy;
use crate::frontends::builder::{fits_fold_cap, infer, GraphBuilder};
use crate::interp::{self, Value};
use crate::ir::{AttrValue, DType, Node, TensorRef, TensorType};
use crate::weights::derived::{Derived, Key};
use crate::weights::MemoryWeights;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Shapes of a run-time tensor under the two probes.
pub type Probes = Arc<[Vec<i64>; 2]>;

/// A tensor computed by an IR node at run time.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub r: TensorRef,
    pub ty: TensorType,
    /// Its shape under each probe; `None` when a shape rule could not follow the probes.
    pub probes: Option<Probes>,
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

/// A value computed from dims unknown at conversion time: its value under each probe.
#[derive(Clone, Debug)]
pub struct Probed {
    pub name: String,
    pub dtype: DType,
    pub values: Arc<[Value; 2]>,
}

/// What an ONNX value name stands for.
#[derive(Clone)]
pub enum Val {
    Runtime(Runtime),
    Const(Const),
    Probed(Probed),
}

impl Val {
    pub fn dtype(&self) -> DType {
        match self {
            Val::Runtime(t) => t.ty.dtype,
            Val::Const(c) => c.dtype(),
            Val::Probed(p) => p.dtype,
        }
    }

    /// The shape, -1 where unknown at conversion time.
    pub fn shape(&self) -> Vec<i64> {
        match self {
            Val::Runtime(t) => t.ty.shape.clone(),
            Val::Const(c) => c.shape(),
            Val::Probed(p) => {
                let (a, b) = (p.values[0].shape(), p.values[1].shape());
                if a.len() != b.len() {
                    return vec![-1; a.len()];
                }
                a.iter()
                    .zip(b)
                    .map(|(&x, &y)| if x == y { x as i64 } else { -1 })
                    .collect()
            }
        }
    }

    pub fn rank(&self) -> usize {
        match self {
            Val::Probed(p) => p.values[0].shape().len(),
            v => v.shape().len(),
        }
    }

    pub fn ty(&self) -> TensorType {
        TensorType::new(self.dtype(), self.shape())
    }

    /// The shape under probe `p`, if known.
    pub fn probe_shape(&self, p: usize) -> Option<Vec<i64>> {
        match self {
            Val::Runtime(t) => t.probes.as_ref().map(|s| s[p].clone()),
            Val::Const(c) => Some(c.shape()),
            Val::Probed(v) => Some(v.values[p].shape().iter().map(|&d| d as i64).collect()),
        }
    }

    /// The value under probe `p` (constants have the same value under both).
    fn probe_value(&self, p: usize) -> Result<Value> {
        match self {
            Val::Const(c) => c.value(),
            Val::Probed(v) => Ok(v.values[p].clone()),
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
            Val::Probed(p) => p.name.clone(),
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

    /// Adds a graph input (`DataInput`) of the given type and probe shapes.
    pub fn add_input(&mut self, name: &str, ty: TensorType, probes: Option<Probes>) -> Result<Val> {
        let node = Node::new(name, "DataInput")
            .with_attr("dtype", AttrValue::Type(ty.dtype))
            .with_attr("shape", AttrValue::Shape(ty.shape.clone()));
        self.core.add_input(node)?;
        Ok(Val::Runtime(Runtime {
            r: TensorRef::new(name, 0),
            ty,
            probes,
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
            Val::Probed(p) => bail!("{}", unknown_dims_message(&p.name)),
        }
    }

    /// Adds the node `spec` describes, or folds it when none of its inputs is computed at run
    /// time. Returns its outputs.
    pub fn emit(&mut self, spec: Spec) -> Result<Vec<Val>> {
        let mut node = Node::new(spec.name.clone(), spec.op);
        node.attrs = spec.attrs;
        // Known now: computed now, unless the result is too large to hold (then the node
        // computes it at run time from Constant inputs).
        if !spec.inputs.iter().any(Val::is_runtime) && foldable(&node, &spec.inputs) {
            return self.fold(node, &spec.inputs, &spec.weights);
        }
        if let Some(Val::Probed(p)) = spec.inputs.iter().find(|v| matches!(v, Val::Probed(_))) {
            bail!("{}", unknown_dims_message(&p.name));
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
        let probes = probe_types(&node, &spec.inputs);
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
                    probes: probes
                        .as_ref()
                        .map(|p| Arc::new([p[0][k].clone(), p[1][k].clone()])),
                })
            })
            .collect();
        self.core.push(node)?;
        Ok(vals)
    }

    /// A value that no IR op computes, computed now by `f` from inputs known now (or under
    /// each probe): for ops whose output shape depends on their input values (Range,
    /// ConstantOfShape), which IR shapes, being static, cannot.
    pub fn compute(
        &mut self,
        name: &str,
        inputs: &[Val],
        dtype: DType,
        f: impl Fn(&[Value]) -> Result<Value>,
    ) -> Result<Val> {
        if let Some(v) = inputs.iter().find(|v| v.is_runtime()) {
            bail!(
                "{} (the output's shape depends on its value; IR shapes are static)",
                not_constant(v, "input")
            );
        }
        let probed = inputs.iter().any(|v| matches!(v, Val::Probed(_)));
        let mut results = vec![];
        for p in 0..if probed { 2 } else { 1 } {
            let values = inputs
                .iter()
                .map(|v| v.probe_value(p))
                .collect::<Result<Vec<_>>>()?;
            results.push(f(&values)?);
        }
        if results.len() == 1 || results[0] == results[1] {
            return self.constant_value(name, &results[0], dtype);
        }
        let b = results.pop().expect("two results");
        let a = results.pop().expect("two results");
        Ok(Val::Probed(Probed {
            name: name.to_string(),
            dtype,
            values: Arc::new([a, b]),
        }))
    }

    /// Runs the op on constant (or probed) inputs.
    fn fold(&mut self, node: Node, inputs: &[Val], weights: &[(&str, Lazy)]) -> Result<Vec<Val>> {
        let mut store = MemoryWeights::default();
        for (param, t) in weights {
            store.insert(&node.name, param, t.tensor()?);
        }
        let probed = inputs.iter().any(|v| matches!(v, Val::Probed(_)));
        let runs = if probed { 2 } else { 1 };
        let mut results: Vec<Vec<Value>> = Vec::with_capacity(runs);
        let mut dtypes = vec![];
        for p in 0..runs {
            let values = inputs
                .iter()
                .map(|v| v.probe_value(p))
                .collect::<Result<Vec<_>>>()?;
            let types: Vec<TensorType> = inputs
                .iter()
                .zip(&values)
                .map(|(v, x)| {
                    TensorType::new(v.dtype(), x.shape().iter().map(|&d| d as i64).collect())
                })
                .collect();
            dtypes = infer(&node, &types)?.into_iter().map(|t| t.dtype).collect();
            results.push(
                interp::run_op(&node, &store, values)
                    .with_context(|| format!("folding {} '{}'", node.op, node.name))?,
            );
        }
        let mut out = Vec::with_capacity(dtypes.len());
        for (k, &dtype) in dtypes.iter().enumerate() {
            let name = if k == 0 {
                node.name.clone()
            } else {
                format!("{}_{k}", node.name)
            };
            let value = &results[0][k];
            if runs == 1 || *value == results[1][k] {
                out.push(self.constant_value(&name, value, dtype)?);
            } else {
                out.push(Val::Probed(Probed {
                    name,
                    dtype,
                    values: Arc::new([value.clone(), results[1][k].clone()]),
                }));
            }
        }
        Ok(out)
    }
}

/// Whether a node on inputs known now is folded: always when a value depends on probed dims
/// (the probes need values), else when its outputs fit the builder's fold cap (weights
/// transformed always do; a value far larger than its inputs does not).
fn foldable(node: &Node, inputs: &[Val]) -> bool {
    if inputs.iter().any(|v| matches!(v, Val::Probed(_))) {
        return true;
    }
    let types: Vec<TensorType> = inputs.iter().map(Val::ty).collect();
    infer(node, &types).map_or(true, |out| fits_fold_cap(&types, &out))
}

/// Output shapes under both probes, if every input's probe shapes are known and the shape rule
/// accepts them.
fn probe_types(node: &Node, inputs: &[Val]) -> Option<[Vec<Vec<i64>>; 2]> {
    let run = |p: usize| -> Option<Vec<Vec<i64>>> {
        let types = inputs
            .iter()
            .map(|v| Some(TensorType::new(v.dtype(), v.probe_shape(p)?)))
            .collect::<Option<Vec<_>>>()?;
        let out = infer(node, &types).ok()?;
        Some(out.into_iter().map(|t| t.shape).collect())
    };
    Some([run(0)?, run(1)?])
}

/// The error for a value that depends on dims unknown at conversion time.
pub fn unknown_dims_message(name: &str) -> String {
    format!(
        "'{name}' depends on input dims that are unknown at conversion time, and the IR needs \
         it as a constant; pin the input shapes with --inputShape"
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

/// Builds an `anyhow` error naming a value that is computed at run time but must be constant.
pub fn not_constant(v: &Val, what: &str) -> anyhow::Error {
    match v {
        Val::Probed(p) => anyhow!("{what}: {}", unknown_dims_message(&p.name)),
        _ => anyhow!(
            "{what} ('{}') is computed at run time; the IR needs it as a constant",
            v.name()
        ),
    }
}
