//! Reductions over axes and arg-max/min. Float sums accumulate in f64. Reducing an empty
//! set gives the identity (sum 0, product 1, max −inf / i64::MIN, min +inf / i64::MAX, mean NaN).
use super::util::{axis, one};
use super::{OpCtx, OpFn, Value};
use anyhow::{bail, Result};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "ReduceMean" => reduce_mean,
        "ReduceSum" => reduce_sum,
        "ReduceMax" => reduce_max,
        "ReduceMin" => reduce_min,
        "ReduceProd" => reduce_prod,
        "ReduceL2" => reduce_l2,
        "ArgMax" => arg_max,
        "ArgMin" => arg_min,
        _ => return None,
    })
}

/// The reduced axes (sorted, all when `axes` is empty) and the output shape.
fn plan(ctx: &OpCtx, shape: &[usize]) -> Result<(Vec<usize>, Vec<usize>)> {
    let rank = shape.len();
    let given = ctx.attrs.ints("axes")?;
    let mut axes = if given.is_empty() {
        (0..rank).collect()
    } else {
        given
            .iter()
            .map(|&a| axis(a, rank))
            .collect::<Result<Vec<_>>>()?
    };
    axes.sort_unstable();
    axes.dedup();
    let keep = ctx.attrs.bool("keepdims")?;
    let out = (0..rank)
        .filter_map(|i| match (axes.contains(&i), keep) {
            (false, _) => Some(shape[i]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    Ok((axes, out))
}

/// Calls `f` on each group of reduced elements (kept axes outer, in order).
fn reduce_with<T: Copy, R>(
    x: ArrayViewD<T>,
    axes: &[usize],
    out_shape: &[usize],
    f: impl Fn(&[T]) -> R,
) -> Result<ArrayD<R>> {
    let rank = x.ndim();
    let mut perm: Vec<usize> = (0..rank).filter(|a| !axes.contains(a)).collect();
    perm.extend(axes);
    let moved = x.permuted_axes(IxDyn(&perm));
    let inner: usize = moved.shape()[rank - axes.len()..].iter().product();
    let groups: usize = out_shape.iter().product();
    let data = moved.as_standard_layout();
    let s = data.as_slice().expect("standard layout");
    let out: Vec<R> = (0..groups)
        .map(|g| f(&s[g * inner..(g + 1) * inner]))
        .collect();
    Ok(ArrayD::from_shape_vec(IxDyn(out_shape), out)?)
}

/// The integer version of a reduction, for the ops that have one.
type IntReducer<'a> = &'a dyn Fn(&[i64]) -> i64;

fn reduce_op(
    ctx: &OpCtx,
    inputs: Vec<Value>,
    f: impl Fn(&[f32]) -> f32,
    g: Option<IntReducer>,
) -> Result<Vec<Value>> {
    let x = one(inputs)?;
    let (axes, out) = plan(ctx, x.shape())?;
    Ok(vec![match (&x, g) {
        (Value::F32(a), _) => Value::F32(reduce_with(a.view(), &axes, &out, f)?),
        (Value::I64(a), Some(g)) => Value::I64(reduce_with(a.view(), &axes, &out, g)?),
        _ => bail!("cannot reduce a {} tensor", x.describe()),
    }])
}

fn sum64(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum()
}

fn reduce_mean(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    reduce_op(ctx, i, |v| (sum64(v) / v.len() as f64) as f32, None)
}

fn reduce_sum(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    reduce_op(
        ctx,
        i,
        |v| sum64(v) as f32,
        Some(&|v| v.iter().fold(0i64, |a, &b| a.wrapping_add(b))),
    )
}

fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || a >= b {
        a
    } else {
        b
    }
}

fn nan_min(a: f32, b: f32) -> f32 {
    if a.is_nan() || a <= b {
        a
    } else {
        b
    }
}

/// ReduceMax (`any`) or ReduceMin (all) of a bool tensor; None for other kinds.
fn reduce_bool(ctx: &OpCtx, i: &[Value], any: bool) -> Result<Option<Vec<Value>>> {
    let [Value::Bool(a)] = i else {
        return Ok(None);
    };
    let (axes, out) = plan(ctx, a.shape())?;
    let f = |v: &[bool]| {
        if any {
            v.iter().any(|&b| b)
        } else {
            v.iter().all(|&b| b)
        }
    };
    Ok(Some(vec![Value::Bool(reduce_with(
        a.view(),
        &axes,
        &out,
        f,
    )?)]))
}

fn reduce_max(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    if let Some(v) = reduce_bool(ctx, &i, true)? {
        return Ok(v);
    }
    reduce_op(
        ctx,
        i,
        |v| v.iter().fold(f32::NEG_INFINITY, |a, &b| nan_max(a, b)),
        Some(&|v| v.iter().copied().max().unwrap_or(i64::MIN)),
    )
}

fn reduce_min(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    if let Some(v) = reduce_bool(ctx, &i, false)? {
        return Ok(v);
    }
    reduce_op(
        ctx,
        i,
        |v| v.iter().fold(f32::INFINITY, |a, &b| nan_min(a, b)),
        Some(&|v| v.iter().copied().min().unwrap_or(i64::MAX)),
    )
}

fn reduce_prod(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    reduce_op(
        ctx,
        i,
        |v| v.iter().map(|&x| x as f64).product::<f64>() as f32,
        Some(&|v| v.iter().fold(1i64, |a, &b| a.wrapping_mul(b))),
    )
}

fn reduce_l2(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    reduce_op(
        ctx,
        i,
        |v| v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt() as f32,
        None,
    )
}

/// Index of the best element; NaN wins (as in NumPy), ties go to the first or last index.
fn arg_best<T: Copy + PartialOrd>(v: &[T], better: fn(T, T) -> bool, last: bool) -> i64 {
    let mut best = 0;
    for i in 1..v.len() {
        let (a, b) = (v[i], v[best]);
        #[allow(clippy::eq_op)]
        let a_nan = a != a;
        #[allow(clippy::eq_op)]
        let b_nan = b != b;
        if b_nan {
            break;
        }
        if a_nan || better(a, b) || (last && a == b) {
            best = i;
            if a_nan {
                break;
            }
        }
    }
    best as i64
}

fn arg_op(ctx: &OpCtx, inputs: Vec<Value>, max: bool) -> Result<Vec<Value>> {
    let x = one(inputs)?;
    let rank = x.shape().len();
    let ax = axis(ctx.attrs.int("axis")?, rank)?;
    if x.shape()[ax] == 0 {
        bail!("cannot take the arg of an empty axis");
    }
    let keep = ctx.attrs.bool("keepdims")?;
    let last = ctx.attrs.bool("select_last_index")?;
    let out: Vec<usize> = (0..rank)
        .filter_map(|i| match (i == ax, keep) {
            (false, _) => Some(x.shape()[i]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    Ok(vec![Value::I64(match &x {
        Value::F32(a) => reduce_with(a.view(), &[ax], &out, |v| {
            arg_best(v, if max { |a, b| a > b } else { |a, b| a < b }, last)
        })?,
        Value::I64(a) => reduce_with(a.view(), &[ax], &out, |v| {
            arg_best(v, if max { |a, b| a > b } else { |a, b| a < b }, last)
        })?,
        v => bail!("cannot search a {} tensor", v.describe()),
    })])
}

fn arg_max(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    arg_op(ctx, i, true)
}

fn arg_min(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    arg_op(ctx, i, false)
}
