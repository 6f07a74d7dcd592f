//! Shape arithmetic on symbolic dims at conversion time. Exporters compute shapes in the
//! graph (`Shape → Gather → Unsqueeze → Concat → Reshape`, `Shape → Slice → Mul → Div`); when
//! the input dims are symbols, those values are integer tensors of symbolic dims
//! ([`crate::ir::dim`]). Ops that only move entries (Gather, Concat, Slice, …) run through the
//! interpreter as they are — a symbolic dim is an `i64` — and arithmetic is evaluated
//! symbolically here. What cannot be expressed (`Equal(N, 3)`, `S % 4`) is computed at run
//! time instead: [`Materializer`] makes the symbolic values tensors read from the inputs'
//! shapes, and the op becomes an ordinary IR node. Nothing is guessed.
use super::builder::{Builder, Dims, Runtime, Spec, Val};
use crate::interp::{self, Value};
use crate::ir::dim::Expr;
use crate::ir::{dim, AttrValue, DType, Node};
use crate::weights::MemoryWeights;
use anyhow::{anyhow, bail, Result};
use ndarray::{ArrayD, IxDyn, Zip};
use std::collections::HashMap;

/// IR ops that only move, copy or select entries: exact on symbolic dims held as `i64`s.
const MOVES: &[&str] = &[
    "Identity",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Concat",
    "Split",
    "Slice",
    "Gather",
    "Transpose",
    "Expand",
    "Tile",
];

/// Whether a value holds a symbolic dim.
pub fn is_symbolic(v: &Value) -> bool {
    matches!(v, Value::I64(a) if a.iter().any(|&d| dim::is_symbolic(d)))
}

/// A value's entries as text (`[N, S, 768]`), for messages.
pub fn describe(v: &Val) -> String {
    match v.value_now() {
        Ok(Value::I64(a)) if a.ndim() == 0 => dim::text(a[IxDyn(&[])]),
        Ok(Value::I64(a)) => {
            let items: Vec<String> = a.iter().map(|&d| dim::text(d)).collect();
            format!("[{}]", items.join(", "))
        }
        Ok(other) => other.describe(),
        Err(e) => format!("{e:#}"),
    }
}

/// Runs `node` on inputs some of which hold symbolic dims.
pub fn fold(node: &Node, store: &MemoryWeights, inputs: Vec<Value>) -> Result<Vec<Value>> {
    if node.symbolic_attr().is_some() {
        bail!("symbolic dims both in its inputs and in its attributes");
    }
    if MOVES.contains(&node.op.as_str()) {
        return interp::run_op(node, store, inputs);
    }
    let ints = |i: usize| -> Result<&ArrayD<i64>> {
        match inputs.get(i) {
            Some(Value::I64(a)) => Ok(a),
            Some(v) => bail!("input {i} is {}", v.describe()),
            None => bail!("input {i} is missing"),
        }
    };
    let out = match node.op.as_str() {
        "Cast" => {
            let to = node
                .attrs
                .get("to")
                .and_then(|v| match v {
                    AttrValue::Type(t) => Some(*t),
                    _ => None,
                })
                .ok_or_else(|| anyhow!("Cast without a target type"))?;
            if !matches!(to, DType::I64 | DType::I32) {
                bail!("a cast of symbolic dims to {to}");
            }
            Value::I64(ints(0)?.clone())
        }
        "Add" => Value::I64(binary(ints(0)?, ints(1)?, add)?),
        "Sub" => Value::I64(binary(ints(0)?, ints(1)?, sub)?),
        "Mul" => Value::I64(binary(ints(0)?, ints(1)?, mul)?),
        "Div" => Value::I64(binary(ints(0)?, ints(1)?, div)?),
        "Minimum" => Value::I64(binary(ints(0)?, ints(1)?, min)?),
        "Maximum" => Value::I64(binary(ints(0)?, ints(1)?, max)?),
        "Equal" => {
            let eq = binary(ints(0)?, ints(1)?, equal)?;
            Value::Bool(eq.mapv(|v| v == 1))
        }
        "ReduceProd" => {
            let a = ints(0)?;
            if a.ndim() > 1 || node.attrs.contains_key("axes") && a.ndim() != 1 {
                bail!(
                    "ReduceProd of symbolic dims over a tensor of rank {}",
                    a.ndim()
                );
            }
            let p = a.iter().try_fold(1, |n, &d| dim::mul(n, d))?;
            let keep = !matches!(node.attrs.get("keepdims"), Some(AttrValue::Bool(false)));
            let shape: &[usize] = if keep && a.ndim() == 1 { &[1] } else { &[] };
            Value::I64(ArrayD::from_elem(IxDyn(shape), p))
        }
        "Where" => {
            let Value::Bool(c) = &inputs[0] else {
                bail!("the condition is {}", inputs[0].describe());
            };
            let (a, b) = (ints(1)?, ints(2)?);
            let shape = broadcast_shape(&[c.shape(), a.shape(), b.shape()])?;
            let (c, a, b) = (view(c, &shape)?, view(a, &shape)?, view(b, &shape)?);
            let mut out = ArrayD::zeros(IxDyn(&shape));
            Zip::from(&mut out)
                .and(&c)
                .and(&a)
                .and(&b)
                .for_each(|o, &c, &a, &b| *o = if c { a } else { b });
            Value::I64(out)
        }
        op => bail!("{op} is not evaluated on symbolic dims"),
    };
    Ok(vec![out])
}

fn broadcast_shape(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1; rank];
    for s in shapes {
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[rank - s.len() + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                bail!("shapes {shapes:?} do not broadcast");
            }
        }
    }
    Ok(out)
}

fn view<'a, T>(a: &'a ArrayD<T>, shape: &[usize]) -> Result<ndarray::ArrayViewD<'a, T>> {
    a.broadcast(IxDyn(shape))
        .ok_or_else(|| anyhow!("{:?} does not broadcast to {shape:?}", a.shape()))
}

/// Applies `f` entry by entry with NumPy broadcasting; an entry `f` cannot express fails.
fn binary(a: &ArrayD<i64>, b: &ArrayD<i64>, f: fn(i64, i64) -> Option<i64>) -> Result<ArrayD<i64>> {
    let shape = broadcast_shape(&[a.shape(), b.shape()])?;
    let (va, vb) = (view(a, &shape)?, view(b, &shape)?);
    let mut out = ArrayD::zeros(IxDyn(&shape));
    let mut failed = None;
    Zip::from(&mut out)
        .and(&va)
        .and(&vb)
        .for_each(|o, &x, &y| match f(x, y) {
            Some(v) => *o = v,
            None => failed = failed.or(Some((x, y))),
        });
    match failed {
        Some((x, y)) => bail!(
            "the operands {} and {} give no value known now",
            dim::text_or_int(x),
            dim::text_or_int(y)
        ),
        None => Ok(out),
    }
}

fn sym(v: i64) -> bool {
    dim::is_symbolic(v)
}

fn add(x: i64, y: i64) -> Option<i64> {
    match (sym(x), sym(y)) {
        (false, false) => x.checked_add(y),
        (true, false) => dim::offset(x, y).ok(),
        (false, true) => dim::offset(y, x).ok(),
        (true, true) => dim::add(x, y).ok(),
    }
}

fn sub(x: i64, y: i64) -> Option<i64> {
    match (sym(x), sym(y)) {
        (false, false) => x.checked_sub(y),
        (true, false) => dim::offset(x, y.checked_neg()?).ok(),
        (false, true) if x >= 0 => dim::sub(x, y).ok(),
        (false, true) => None,
        (true, true) => dim::sub(x, y).ok(),
    }
}

fn mul(x: i64, y: i64) -> Option<i64> {
    match (sym(x), sym(y)) {
        (false, false) => x.checked_mul(y),
        (true, false) if y >= 0 => dim::mul(x, y).ok(),
        (false, true) if x >= 0 => dim::mul(x, y).ok(),
        (true, true) => dim::mul(x, y).ok(),
        _ => None,
    }
}

/// ONNX's integer Div truncates; symbolic dims are never negative, so it floors them.
fn div(x: i64, y: i64) -> Option<i64> {
    match (sym(x), sym(y)) {
        (false, false) => x.checked_div(y),
        (true, false) if y >= 1 => dim::floor_div(x, y).ok(),
        (true, true) => dim::exact_div(x, y),
        _ => None,
    }
}

/// `Min(d, k)` with `k` at least `INT32_MAX` is `d` (exporters clamp slice ends that way).
fn min(x: i64, y: i64) -> Option<i64> {
    match (sym(x), sym(y)) {
        (false, false) => Some(x.min(y)),
        (true, false) if y >= i32::MAX as i64 => Some(x),
        (false, true) if x >= i32::MAX as i64 => Some(y),
        (true, true) if x == y => Some(x),
        _ => None,
    }
}

/// `Max(d, k)` with `k <= 0` is `d` (a dim is never negative).
fn max(x: i64, y: i64) -> Option<i64> {
    match (sym(x), sym(y)) {
        (false, false) => Some(x.max(y)),
        (true, false) if y <= 0 => Some(x),
        (false, true) if x <= 0 => Some(y),
        (true, true) if x == y => Some(x),
        _ => None,
    }
}

/// 1 or 0; a dim compared with a negative number is unequal (a dim is never negative).
fn equal(x: i64, y: i64) -> Option<i64> {
    match (sym(x), sym(y)) {
        (false, false) => Some((x == y) as i64),
        _ if x == y => Some(1),
        (true, false) if y < 0 => Some(0),
        (false, true) if x < 0 => Some(0),
        _ => None,
    }
}

/// Symbolic dims made into a tensor computed at run time, for an op that cannot work on them
/// now (`Equal(N, 3)`, a Mod, a Range step): each symbol is read from the shape of the graph
/// input that declares it (`Shape → Gather`), expressions become int64 `Add`/`Mul`/`Div`, the
/// entries are joined by `Concat` and shaped like the value.
pub struct Materializer<'b> {
    pub b: &'b mut Builder,
    /// `[1]` tensors already made, per symbol.
    symbols: HashMap<String, Val>,
}

impl<'b> Materializer<'b> {
    pub fn new(b: &'b mut Builder) -> Self {
        Materializer {
            b,
            symbols: HashMap::new(),
        }
    }

    /// The run-time tensor holding `d`'s value.
    pub fn tensor(&mut self, d: &Dims) -> Result<Val> {
        let Value::I64(a) = d.value.as_ref() else {
            bail!("'{}' holds no integers", d.name);
        };
        let base = format!("{}/dims", d.name);
        let mut parts = vec![];
        for &v in a.iter() {
            let e = if dim::is_symbolic(v) {
                dim::expr(v).ok_or_else(|| anyhow!("{} is not a dim", dim::text_or_int(v)))?
            } else {
                Expr::Const(v)
            };
            parts.push(self.expr(&base, &e)?);
        }
        let mut out = if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            let mut s = spec(&base, "Concat").int("axis", 0);
            for p in &parts {
                s = s.input(p);
            }
            self.emit(s)?
        };
        let shape: Vec<i64> = a.shape().iter().map(|&n| n as i64).collect();
        if shape != [1] {
            out = self.emit(spec(&base, "Reshape").ints("shape", shape).input(&out))?;
        }
        if d.dtype != DType::I64 {
            out = self.emit(
                spec(&base, "Cast")
                    .attr("to", AttrValue::Type(d.dtype))
                    .input(&out),
            )?;
        }
        Ok(out)
    }

    fn emit(&mut self, s: Spec) -> Result<Val> {
        self.b.emit1(s)
    }

    fn ints(&mut self, base: &str, v: i64) -> Result<Val> {
        let value = Value::I64(ArrayD::from_elem(IxDyn(&[1]), v));
        self.b
            .constant_value(&format!("{base}/const"), &value, DType::I64)
    }

    /// A `[1]` int64 tensor computing `e`.
    fn expr(&mut self, base: &str, e: &Expr) -> Result<Val> {
        Ok(match e {
            Expr::Const(c) => self.ints(base, *c)?,
            Expr::Sym(s) => self.symbol(s)?,
            Expr::Sum(terms) | Expr::Product(terms) => {
                let op = if matches!(e, Expr::Sum(_)) {
                    "Add"
                } else {
                    "Mul"
                };
                let mut acc = self.expr(base, &terms[0])?;
                for t in &terms[1..] {
                    let v = self.expr(base, t)?;
                    acc = self.emit(spec(base, op).input(&acc).input(&v))?;
                }
                acc
            }
            // Dims are never negative, so the integer Div floors them.
            Expr::FloorDiv(inner, k) => {
                let v = self.expr(base, inner)?;
                let k = self.ints(base, *k)?;
                self.emit(spec(base, "Div").input(&v).input(&k))?
            }
        })
    }

    /// `[size]` of the first graph input declaring symbol `s`.
    fn symbol(&mut self, s: &str) -> Result<Val> {
        if let Some(v) = self.symbols.get(s) {
            return Ok(v.clone());
        }
        let graph = &self.b.core.graph;
        let source = graph.inputs.iter().find_map(|name| {
            let node = graph.node(name)?;
            let ty = node.outputs.first()?.clone();
            let axis = ty
                .shape
                .iter()
                .position(|&d| dim::as_symbol(d).as_deref() == Some(s))?;
            Some((node.output(0), ty, axis as i64))
        });
        let Some((r, ty, axis)) = source else {
            bail!("the symbolic dim {s} is declared by no graph input");
        };
        let x = Val::Runtime(Runtime { r, ty });
        let base = format!("{s}/dim");
        let shape = self.emit(spec(&base, "Shape").input(&x))?;
        let v = self.emit(
            spec(&base, "Slice")
                .ints("starts", vec![axis])
                .ints("ends", vec![axis + 1])
                .input(&shape),
        )?;
        self.symbols.insert(s.to_string(), v.clone());
        Ok(v)
    }
}

/// An intermediate node named after `base`.
fn spec(base: &str, op: &'static str) -> Spec {
    Spec {
        name: format!("{base}/{}", op.to_lowercase()),
        onnx_name: false,
        op,
        attrs: Default::default(),
        inputs: vec![],
        weights: vec![],
        runtime: vec![],
    }
}
