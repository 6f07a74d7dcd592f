//! Shape arithmetic on symbolic dims at conversion time. Exporters compute shapes in the
//! graph (`Shape → Gather → Unsqueeze → Concat → Reshape`, `Shape → Slice → Mul → Div`); when
//! the input dims are symbols, those values are integer tensors of symbolic dims
//! ([`crate::ir::dim`]). Ops that only move entries (Gather, Concat, Slice, …) run through the
//! interpreter as they are — a symbolic dim is an `i64` — and arithmetic is evaluated
//! symbolically here. What cannot be expressed (`Equal(N, 3)`, `S % 4`) is an error naming the
//! values, never a guess.
use super::builder::Val;
use crate::interp::{self, Value};
use crate::ir::{dim, AttrValue, DType, Node};
use crate::weights::MemoryWeights;
use anyhow::{anyhow, bail, Result};
use ndarray::{ArrayD, IxDyn, Zip};

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
