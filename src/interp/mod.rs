//! The reference interpreter: runs an IR graph on concrete tensors and so defines what every op
//! of the catalogue (`crate::ir::ops`) means.
//!
//! Values are NumPy-like arrays of three kinds ([`Value`]): every float dtype is computed as f32,
//! every integer dtype as i64, and bools as bool. Each op is one function ([`OpFn`]) found by
//! name in the registry of its family; the files mirror `src/ir/ops/`. Convolutions and matrix
//! products go through a GEMM (im2col + `ndarray`'s `dot`, i.e. `matrixmultiply`), split over
//! the machine's cores with scoped threads (`MMDNN_THREADS` caps their number).
//!
//! The executor runs nodes in topological order, moves a value into its last consumer (so
//! elementwise ops can work in place) and drops every intermediate value once its last consumer
//! has run.
mod activation;
pub mod budget;
mod conv;
mod dense;
mod elementwise;
mod io;
mod linalg;
mod norm;
mod pool;
mod recurrent;
mod reduce;
mod resize;
mod runtime_attrs;
mod shape;
mod symbols;
mod util;

use crate::ir::ops::Attrs;
use crate::ir::{narrow, DType, Graph, Node, TensorRef};
use crate::weights::{Tensor, WeightReader};
use anyhow::{anyhow, bail, Context, Result};
use ndarray::{ArrayD, IxDyn};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// A tensor value. Float dtypes (8 to 64 bits, and FLOAT4E2M1) are held as f32, integer dtypes
/// (signed and unsigned, 2 to 64 bits) as i64, bool as bool.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
    Bool(ArrayD<bool>),
}

impl Value {
    /// Shape of the value.
    pub fn shape(&self) -> &[usize] {
        match self {
            Value::F32(a) => a.shape(),
            Value::I64(a) => a.shape(),
            Value::Bool(a) => a.shape(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Name of the kind: "float32", "int64" or "bool".
    pub fn kind(&self) -> &'static str {
        match self {
            Value::F32(_) => "float32",
            Value::I64(_) => "int64",
            Value::Bool(_) => "bool",
        }
    }

    /// Whether this value can hold tensors of `dtype`.
    pub fn holds(&self, dtype: DType) -> bool {
        match self {
            Value::F32(_) => dtype.is_float(),
            Value::Bool(_) => dtype == DType::Bool,
            Value::I64(_) => !dtype.is_float() && dtype != DType::Bool,
        }
    }

    /// Short description for errors: `float32[2, 3]`.
    pub fn describe(&self) -> String {
        format!("{}{:?}", self.kind(), self.shape())
    }

    pub fn as_f32(&self) -> Result<&ArrayD<f32>> {
        match self {
            Value::F32(a) => Ok(a),
            v => bail!("expected a float tensor, got {}", v.describe()),
        }
    }
    pub fn into_f32(self) -> Result<ArrayD<f32>> {
        match self {
            Value::F32(a) => Ok(a),
            v => bail!("expected a float tensor, got {}", v.describe()),
        }
    }
    pub fn as_i64(&self) -> Result<&ArrayD<i64>> {
        match self {
            Value::I64(a) => Ok(a),
            v => bail!("expected an integer tensor, got {}", v.describe()),
        }
    }
    pub fn into_i64(self) -> Result<ArrayD<i64>> {
        match self {
            Value::I64(a) => Ok(a),
            v => bail!("expected an integer tensor, got {}", v.describe()),
        }
    }
    pub fn as_bool(&self) -> Result<&ArrayD<bool>> {
        match self {
            Value::Bool(a) => Ok(a),
            v => bail!("expected a bool tensor, got {}", v.describe()),
        }
    }
    pub fn into_bool(self) -> Result<ArrayD<bool>> {
        match self {
            Value::Bool(a) => Ok(a),
            v => bail!("expected a bool tensor, got {}", v.describe()),
        }
    }

    /// The values as f32 whatever the kind (ints convert, bools give 0 and 1).
    pub fn to_f32(&self) -> ArrayD<f32> {
        match self {
            Value::F32(a) => a.clone(),
            Value::I64(a) => a.mapv(|v| v as f32),
            Value::Bool(a) => a.mapv(|v| v as u8 as f32),
        }
    }

    /// Converts a stored tensor: floats to f32, integers to i64, bool to bool.
    pub fn from_tensor(t: &Tensor) -> Result<Value> {
        let shape = IxDyn(&t.info.shape);
        let d = &t.data;
        macro_rules! ints {
            ($t:ty, $n:expr) => {
                d.chunks_exact($n)
                    .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk size")) as i64)
                    .collect()
            };
        }
        let v = match t.info.dtype {
            dt if dt.is_float() => Value::F32(ArrayD::from_shape_vec(shape, t.to_f32())?),
            DType::Bool => Value::Bool(ArrayD::from_shape_vec(
                shape,
                d.iter().map(|&b| b != 0).collect(),
            )?),
            DType::I8 | DType::I4 | DType::I2 => Value::I64(ArrayD::from_shape_vec(
                shape,
                d.iter().map(|&b| b as i8 as i64).collect(),
            )?),
            DType::U8 | DType::U4 | DType::U2 => Value::I64(ArrayD::from_shape_vec(
                shape,
                d.iter().map(|&b| b as i64).collect(),
            )?),
            DType::I16 => Value::I64(ArrayD::from_shape_vec(shape, ints!(i16, 2))?),
            DType::U16 => Value::I64(ArrayD::from_shape_vec(shape, ints!(u16, 2))?),
            DType::I32 => Value::I64(ArrayD::from_shape_vec(shape, ints!(i32, 4))?),
            DType::U32 => Value::I64(ArrayD::from_shape_vec(shape, ints!(u32, 4))?),
            DType::I64 => Value::I64(ArrayD::from_shape_vec(shape, ints!(i64, 8))?),
            DType::U64 => Value::I64(ArrayD::from_shape_vec(shape, ints!(u64, 8))?),
            dt => bail!("cannot convert a {dt} tensor"),
        };
        Ok(v)
    }

    /// Converts to a stored tensor of `dtype`, which must be of this value's kind. Floats round
    /// to the target precision (the narrow floats as Cast's defaults do: saturating, E8M0
    /// rounding up); integers must fit the target type.
    pub fn to_tensor(&self, dtype: DType) -> Result<Tensor> {
        let shape = self.shape().to_vec();
        let bytes: Vec<u8> = match (self, dtype) {
            (Value::F32(a), DType::F32) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
            (Value::F32(a), DType::F64) => {
                a.iter().flat_map(|&v| (v as f64).to_le_bytes()).collect()
            }
            (Value::F32(a), DType::F16) => a
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
            (Value::F32(a), DType::BF16) => a
                .iter()
                .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                .collect(),
            (Value::F32(a), dt) if dt.is_minifloat() => a
                .iter()
                .map(|&v| narrow::encode(dt, v, true, narrow::RoundMode::Up))
                .collect(),
            (Value::Bool(a), DType::Bool) => a.iter().map(|&v| v as u8).collect(),
            (Value::I64(a), dt) if self.holds(dt) => {
                let (lo, hi) = dt.int_range();
                let mut out = Vec::with_capacity(a.len() * dt.size());
                for &v in a.iter() {
                    if (v as i128) < lo || (v as i128) > hi {
                        bail!("value {v} does not fit {dt}");
                    }
                    out.extend_from_slice(&v.to_le_bytes()[..dt.size()]);
                }
                out
            }
            (v, dt) => bail!("cannot store a {} value as {dt}", v.describe()),
        };
        Tensor::new(dtype, shape, bytes)
    }

    /// Converts to a stored tensor of this value's own kind (f32, i64 or bool).
    pub fn to_natural_tensor(&self) -> Result<Tensor> {
        self.to_tensor(match self {
            Value::F32(_) => DType::F32,
            Value::I64(_) => DType::I64,
            Value::Bool(_) => DType::Bool,
        })
    }
}

impl From<ArrayD<f32>> for Value {
    fn from(a: ArrayD<f32>) -> Value {
        Value::F32(a)
    }
}
impl From<ArrayD<i64>> for Value {
    fn from(a: ArrayD<i64>) -> Value {
        Value::I64(a)
    }
}
impl From<ArrayD<bool>> for Value {
    fn from(a: ArrayD<bool>) -> Value {
        Value::Bool(a)
    }
}

impl TryFrom<&Tensor> for Value {
    type Error = anyhow::Error;
    fn try_from(t: &Tensor) -> Result<Value> {
        Value::from_tensor(t)
    }
}

impl TryFrom<&Value> for Tensor {
    type Error = anyhow::Error;
    fn try_from(v: &Value) -> Result<Tensor> {
        v.to_natural_tensor()
    }
}

/// An op's implementation: gets the node's context and its input values (owned, so it may
/// reuse their buffers) and returns its output values in order.
pub type OpFn = fn(&OpCtx, Vec<Value>) -> Result<Vec<Value>>;

/// A family file's registry: the implementation of an op, if the family has it.
type Registry = fn(&str) -> Option<OpFn>;

/// Each family file's registry under the file's name.
const FAMILY_REGISTRIES: &[(&str, Registry)] = crate::ir::ops::family_table![lookup as Registry:
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

/// Finds the implementation of an op by name.
pub fn lookup(op: &str) -> Option<OpFn> {
    FAMILY_REGISTRIES.iter().find_map(|(_, find)| find(op))
}

/// The names of the family files (`src/interp/<name>.rs`) whose registry has an op: exactly
/// its catalogue family's, as `tests/families.rs` checks.
pub fn registering_files(op: &str) -> Vec<&'static str> {
    FAMILY_REGISTRIES
        .iter()
        .filter(|(_, find)| find(op).is_some())
        .map(|(file, _)| *file)
        .collect()
}

/// Converted weights, shared between runs.
type WeightCache = Mutex<HashMap<(String, String), Arc<Value>>>;

/// What an op function sees: its node, typed attributes (catalogue defaults filled in) and
/// access to its weights.
pub struct OpCtx<'a> {
    pub node: &'a Node,
    pub attrs: Attrs<'a>,
    weights: &'a dyn WeightReader,
    cache: Option<&'a WeightCache>,
}

impl<'a> OpCtx<'a> {
    /// A context for `node` reading weights from `weights` (no caching).
    pub fn new(node: &'a Node, weights: &'a dyn WeightReader) -> Result<Self> {
        Ok(OpCtx {
            node,
            attrs: Attrs::of(node)?,
            weights,
            cache: None,
        })
    }

    /// The node's weight `name`, converted to a value; fails if it is absent.
    pub fn weight(&self, name: &str) -> Result<Arc<Value>> {
        let load = || -> Result<Arc<Value>> {
            let t = self.weights.read(&self.node.name, name)?;
            Ok(Arc::new(Value::from_tensor(&t).with_context(|| {
                format!("weight '{name}' of node '{}'", self.node.name)
            })?))
        };
        let Some(cache) = self.cache else {
            return load();
        };
        let key = (self.node.name.clone(), name.to_string());
        if let Some(v) = cache.lock().expect("weight cache lock").get(&key) {
            return Ok(v.clone());
        }
        let v = load()?;
        cache
            .lock()
            .expect("weight cache lock")
            .insert(key, v.clone());
        Ok(v)
    }

    /// The weight as f32 with its shape checked against `shape`.
    pub fn weight_f32(&self, name: &str, shape: &[usize]) -> Result<Arc<Value>> {
        let w = self.weight(name)?;
        let a = w
            .as_f32()
            .with_context(|| format!("weight '{name}' must be a float tensor"))?;
        if a.shape() != shape {
            bail!(
                "weight '{name}' has shape {:?}; expected {shape:?} ({})",
                a.shape(),
                self.layout_of(name)
            );
        }
        Ok(w)
    }

    /// A weight that exists only when the boolean attribute `flag` is true.
    pub fn flagged_weight(&self, name: &str, flag: &str) -> Result<Option<Arc<Value>>> {
        if self.attrs.bool(flag)? {
            Ok(Some(self.weight(name)?))
        } else {
            Ok(None)
        }
    }

    /// A weight that may be absent from the store.
    pub fn opt_weight(&self, name: &str) -> Result<Option<Arc<Value>>> {
        if self.weights.info(&self.node.name, name).is_some() {
            Ok(Some(self.weight(name)?))
        } else {
            Ok(None)
        }
    }

    fn layout_of(&self, name: &str) -> &'static str {
        self.attrs.def.weight(name).map_or("", |w| w.layout)
    }
}

/// Runs graphs on concrete inputs. Converted weights are cached across runs (see
/// [`Interpreter::without_weight_cache`]).
pub struct Interpreter<'a> {
    graph: &'a Graph,
    weights: &'a dyn WeightReader,
    cache: Option<WeightCache>,
}

impl<'a> Interpreter<'a> {
    pub fn new(graph: &'a Graph, weights: &'a dyn WeightReader) -> Self {
        Interpreter {
            graph,
            weights,
            cache: Some(Mutex::new(HashMap::new())),
        }
    }

    /// Reads and converts weights on every use instead of keeping them in memory.
    pub fn without_weight_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// Runs the nodes needed for the graph's outputs; returns the outputs in order.
    /// `inputs` gives a value for each graph input, by name.
    pub fn run(&self, inputs: &[(String, Value)]) -> Result<Vec<Value>> {
        self.execute(inputs, true, &mut |_, _| {})
    }

    /// Runs every node, calling `on_node` with each node and its outputs as soon as it ran
    /// (for dumping intermediate tensors or per-layer comparison); returns the graph outputs.
    pub fn run_all(
        &self,
        inputs: &[(String, Value)],
        on_node: &mut dyn FnMut(&Node, &[Value]),
    ) -> Result<Vec<Value>> {
        self.execute(inputs, false, on_node)
    }

    fn execute(
        &self,
        inputs: &[(String, Value)],
        prune: bool,
        on_node: &mut dyn FnMut(&Node, &[Value]),
    ) -> Result<Vec<Value>> {
        let graph = self.graph;
        let order = exec_order(graph, prune)?;
        let mut feeds: HashMap<&str, &Value> = HashMap::new();
        for (name, v) in inputs {
            if !graph.inputs.contains(name) {
                bail!("'{name}' is not an input of the graph");
            }
            if feeds.insert(name.as_str(), v).is_some() {
                bail!("input '{name}' is given twice");
            }
        }
        let bindings = symbols::Bindings::of_inputs(graph, &feeds)?;
        // Remaining uses of each tensor by the nodes that will run and by the graph outputs.
        let mut uses: HashMap<TensorRef, usize> = HashMap::new();
        for &i in &order {
            for r in &graph.nodes[i].inputs {
                *uses.entry(r.clone()).or_insert(0) += 1;
            }
        }
        for r in &graph.outputs {
            *uses.entry(r.clone()).or_insert(0) += 1;
        }
        let mut values: HashMap<TensorRef, Value> = HashMap::new();
        for &i in &order {
            let node = &*bindings.specialise(&graph.nodes[i])?;
            let mut args = Vec::with_capacity(node.inputs.len());
            for r in &node.inputs {
                let left = uses.get_mut(r).expect("every input is counted");
                *left -= 1;
                let v = if *left == 0 {
                    values.remove(r)
                } else {
                    values.get(r).cloned()
                };
                args.push(v.ok_or_else(|| {
                    anyhow!(
                        "node '{}' ({}): input '{r}' has no value (the producing node has no \
                         such output)",
                        node.name,
                        node.op
                    )
                })?);
            }
            if node.op == "DataInput" {
                let fed = feeds
                    .get(node.name.as_str())
                    .ok_or_else(|| anyhow!("graph input '{}' was not given a value", node.name))?;
                args.push((*fed).clone());
            }
            let outs = self.run_node(node, args)?;
            on_node(node, &outs);
            for (k, v) in outs.into_iter().enumerate() {
                let r = TensorRef::new(node.name.clone(), k);
                if uses.get(&r).copied().unwrap_or(0) > 0 {
                    values.insert(r, v);
                }
            }
        }
        graph
            .outputs
            .iter()
            .map(|r| {
                let left = uses.get_mut(r).expect("outputs are counted");
                *left -= 1;
                let v = if *left == 0 {
                    values.remove(r)
                } else {
                    values.get(r).cloned()
                };
                v.ok_or_else(|| anyhow!("graph output '{r}' was not computed"))
            })
            .collect()
    }

    /// Runs one node on its input values.
    fn run_node(&self, node: &Node, args: Vec<Value>) -> Result<Vec<Value>> {
        let context = || format!("node '{}' ({})", node.name, node.op);
        let (node, args) = runtime_attrs::resolve(node, args).with_context(context)?;
        let node = &*node;
        let f = lookup(&node.op).ok_or_else(|| {
            anyhow!(
                "node '{}': op '{}' has no interpreter implementation",
                node.name,
                node.op
            )
        })?;
        let ctx = OpCtx {
            node,
            attrs: Attrs::of(node)?,
            weights: self.weights,
            cache: self.cache.as_ref(),
        };
        check_budget(&ctx, &args)?;
        let outs = f(&ctx, args).with_context(context)?;
        if let Ok(expected) = expected_outputs(&ctx.attrs) {
            if outs.len() != expected {
                bail!(
                    "{}: internal: produced {} outputs, expected {expected}",
                    context(),
                    outs.len()
                );
            }
        }
        Ok(outs)
    }
}

/// Runs one op on its inputs outside a graph (weights from `weights`).
pub fn run_op(node: &Node, weights: &dyn WeightReader, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let (node, inputs) = runtime_attrs::resolve(node, inputs)
        .with_context(|| format!("node '{}' ({})", node.name, node.op))?;
    let node = &*node;
    let f = lookup(&node.op).ok_or_else(|| {
        anyhow!(
            "node '{}': op '{}' has no interpreter implementation",
            node.name,
            node.op
        )
    })?;
    let ctx = OpCtx::new(node, weights)?;
    check_budget(&ctx, &inputs)?;
    f(&ctx, inputs).with_context(|| format!("node '{}' ({})", node.name, node.op))
}

/// Fails when an output of the node, sized by its shape rule from the inputs' actual shapes,
/// exceeds the memory budget. An op the rule cannot size here (the interpreter holds every
/// integer type as i64, which some rules refuse) is left to run.
fn check_budget(ctx: &OpCtx, inputs: &[Value]) -> Result<()> {
    use crate::ir::ops::InferCtx;
    use crate::ir::TensorType;
    let types: Vec<TensorType> = inputs
        .iter()
        .map(|v| {
            let dtype = match v {
                Value::F32(_) => DType::F32,
                Value::I64(_) => DType::I64,
                Value::Bool(_) => DType::Bool,
            };
            TensorType::new(dtype, v.shape().iter().map(|&d| d as i64).collect())
        })
        .collect();
    let infer = InferCtx {
        attrs: ctx.attrs,
        inputs: types.iter().collect(),
    };
    let Ok(outputs) = crate::ir::ops::infer(&infer) else {
        return Ok(());
    };
    for t in outputs {
        let shape: Vec<usize> = t.shape.iter().map(|&d| d.max(0) as usize).collect();
        let what = format!("node '{}' ({}): its output", ctx.node.name, ctx.node.op);
        budget::check(&shape, t.dtype.size().max(4), &what)?;
    }
    Ok(())
}

fn expected_outputs(attrs: &Attrs) -> Result<usize> {
    use crate::ir::ops::Outputs;
    Ok(match attrs.def.outputs {
        Outputs::Fixed(names) => names.len(),
        Outputs::PerEntryOf(a) => attrs.ints(a)?.len(),
    })
}

/// Indices of the nodes to run, in a topological order (the stored order when it is one).
/// With `prune`, only nodes the graph outputs depend on.
fn exec_order(graph: &Graph, prune: bool) -> Result<Vec<usize>> {
    let index = graph.index();
    let producer = |r: &TensorRef, user: &Node| -> Result<usize> {
        index.get(r.node.as_str()).copied().ok_or_else(|| {
            anyhow!(
                "node '{}' ({}) reads '{r}', which no node produces",
                user.name,
                user.op
            )
        })
    };
    let needed: Vec<bool> = if prune {
        let mut need = vec![false; graph.nodes.len()];
        let mut stack = Vec::new();
        for r in &graph.outputs {
            let &i = index
                .get(r.node.as_str())
                .ok_or_else(|| anyhow!("graph output '{r}' names no node"))?;
            stack.push(i);
        }
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut need[i], true) {
                continue;
            }
            for r in &graph.nodes[i].inputs {
                stack.push(producer(r, &graph.nodes[i])?);
            }
        }
        need
    } else {
        vec![true; graph.nodes.len()]
    };
    // Iterative DFS post-order keeps the stored order when it is already topological.
    let mut state = vec![0u8; graph.nodes.len()]; // 0 new, 1 open, 2 done
    let mut order = Vec::new();
    for root in (0..graph.nodes.len()).filter(|&i| needed[i]) {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some(&mut (i, ref mut next)) = stack.last_mut() {
            let node = &graph.nodes[i];
            if let Some(r) = node.inputs.get(*next) {
                *next += 1;
                let j = producer(r, node)?;
                match state[j] {
                    0 => {
                        state[j] = 1;
                        stack.push((j, 0));
                    }
                    1 => bail!(
                        "the graph has a cycle through node '{}'",
                        graph.nodes[j].name
                    ),
                    _ => {}
                }
            } else {
                state[i] = 2;
                order.push(i);
                stack.pop();
            }
        }
    }
    let inputs: HashSet<&str> = graph.inputs.iter().map(|s| s.as_str()).collect();
    for &i in &order {
        let n = &graph.nodes[i];
        if n.op == "DataInput" && !inputs.contains(n.name.as_str()) {
            bail!("DataInput node '{}' is not listed as a graph input", n.name);
        }
    }
    Ok(order)
}
