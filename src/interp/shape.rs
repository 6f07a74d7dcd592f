//! Shape manipulation, indexing and data movement. Most ops work on every value kind.
use super::util::{axis, broadcast_shape, one, take};
use super::{OpCtx, OpFn, Value};
use crate::ir::narrow::{self, RoundMode};
use crate::ir::ops::shape_rules::{range_bounds, range_len, reshape_dims};
use crate::ir::DType;
use anyhow::{anyhow, bail, Result};
use ndarray::{ArrayD, Axis, IxDyn};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "Reshape" => reshape,
        "Flatten" => flatten,
        "Transpose" => transpose,
        "Squeeze" => squeeze,
        "Unsqueeze" => unsqueeze,
        "Concat" => concat,
        "Split" => split,
        "Slice" => slice,
        "Pad" => pad,
        "Tile" => tile,
        "Expand" => expand,
        "Gather" => gather,
        "ScatterND" => scatter_nd,
        "Shape" => shape,
        "Range" => range,
        "Cast" => cast,
        "DepthToSpace" => depth_to_space,
        "SpaceToDepth" => space_to_depth,
        _ => return None,
    })
}

/// Applies a generic expression to the array inside a value, keeping its kind.
macro_rules! each_kind {
    ($v:expr, $a:ident => $body:expr) => {
        match $v {
            Value::F32($a) => Value::F32($body),
            Value::I64($a) => Value::I64($body),
            Value::Bool($a) => Value::Bool($body),
        }
    };
}

fn reshape_to<T: Clone>(a: ArrayD<T>, shape: &[usize]) -> Result<ArrayD<T>> {
    let a = if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    };
    Ok(a.into_shape_with_order(IxDyn(shape))?)
}

/// A Reshape target resolved against the input's shape (`shape_rules::reshape_dims`: 0 copies
/// the input dim, one -1 is inferred).
fn reshape_target(input: &[usize], target: &[i64]) -> Result<Vec<usize>> {
    let dims: Vec<i64> = input.iter().map(|&d| d as i64).collect();
    reshape_dims(&dims, target)?
        .into_iter()
        .map(|d| {
            usize::try_from(d).map_err(|_| anyhow!("cannot reshape {input:?} into {target:?}"))
        })
        .collect()
}

fn reshape(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(i)?;
    let target = reshape_target(x.shape(), &ctx.attrs.ints("shape")?)?;
    Ok(vec![each_kind!(x, a => reshape_to(a, &target)?)])
}

fn flatten(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(i)?;
    let rank = x.shape().len() as i64;
    let ax = ctx.attrs.int("axis")?;
    let a = if ax < 0 { ax + rank } else { ax };
    if a < 0 || a > rank {
        bail!("axis {ax} is out of range for rank {rank}");
    }
    let s = x.shape();
    let target = [
        s[..a as usize].iter().product::<usize>(),
        s[a as usize..].iter().product::<usize>(),
    ];
    Ok(vec![each_kind!(x, v => reshape_to(v, &target)?)])
}

fn transpose(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(i)?;
    let rank = x.shape().len();
    let perm = ctx
        .attrs
        .ints("perm")?
        .iter()
        .map(|&p| axis(p, rank))
        .collect::<Result<Vec<_>>>()?;
    let mut seen = vec![false; rank];
    if perm.len() != rank || perm.iter().any(|&p| std::mem::replace(&mut seen[p], true)) {
        bail!("perm {perm:?} is not a permutation of {rank} axes");
    }
    Ok(vec![
        each_kind!(x, a => a.permuted_axes(IxDyn(&perm)).as_standard_layout().into_owned()),
    ])
}

fn squeeze(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(i)?;
    let s = x.shape().to_vec();
    let axes = ctx
        .attrs
        .ints("axes")?
        .iter()
        .map(|&a| axis(a, s.len()))
        .collect::<Result<Vec<_>>>()?;
    let mut target = Vec::new();
    for (i, &d) in s.iter().enumerate() {
        let drop = if axes.is_empty() {
            d == 1
        } else {
            axes.contains(&i)
        };
        if drop && d != 1 {
            bail!("cannot squeeze axis {i} of size {d}");
        }
        if !drop {
            target.push(d);
        }
    }
    Ok(vec![each_kind!(x, a => reshape_to(a, &target)?)])
}

fn unsqueeze(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(i)?;
    let given = ctx.attrs.ints("axes")?;
    let rank = x.shape().len() + given.len();
    let mut axes = given
        .iter()
        .map(|&a| axis(a, rank))
        .collect::<Result<Vec<_>>>()?;
    axes.sort_unstable();
    if axes.windows(2).any(|w| w[0] == w[1]) {
        bail!("axes {given:?} repeat an axis");
    }
    let mut dims = x.shape().iter();
    let target: Vec<usize> = (0..rank)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                *dims.next().expect("rank")
            }
        })
        .collect();
    Ok(vec![each_kind!(x, a => reshape_to(a, &target)?)])
}

fn concat_arrays<T: Clone>(arrays: &[ArrayD<T>], ax: usize) -> Result<ArrayD<T>> {
    let views: Vec<_> = arrays.iter().map(|a| a.view()).collect();
    Ok(ndarray::concatenate(Axis(ax), &views)?)
}

fn concat(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let first = inputs
        .first()
        .ok_or_else(|| anyhow!("needs at least one input"))?;
    let rank = first.shape().len();
    let ax = axis(ctx.attrs.int("axis")?, rank)?;
    for v in &inputs {
        if v.shape().len() != rank
            || v.shape()
                .iter()
                .enumerate()
                .any(|(i, &d)| i != ax && d != first.shape()[i])
        {
            bail!(
                "inputs {} and {} differ off axis {ax}",
                first.describe(),
                v.describe()
            );
        }
    }
    macro_rules! join {
        ($kind:ident, $into:ident) => {{
            let arrays = inputs
                .into_iter()
                .map(|v| v.$into())
                .collect::<Result<Vec<_>>>()?;
            Value::$kind(concat_arrays(&arrays, ax)?)
        }};
    }
    Ok(vec![match first {
        Value::F32(_) => join!(F32, into_f32),
        Value::I64(_) => join!(I64, into_i64),
        Value::Bool(_) => join!(Bool, into_bool),
    }])
}

fn split(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(i)?;
    let ax = axis(ctx.attrs.int("axis")?, x.shape().len())?;
    let sizes = ctx.attrs.ints("split")?;
    if sizes.iter().any(|&s| s < 0) || sizes.iter().sum::<i64>() != x.shape()[ax] as i64 {
        bail!(
            "split sizes {sizes:?} do not add up to axis {ax} of {}",
            x.describe()
        );
    }
    let mut out = Vec::with_capacity(sizes.len());
    let mut start = 0;
    for &s in &sizes {
        let r = start..start + s as usize;
        out.push(each_kind!(&x, a => a.slice_axis(Axis(ax), r.clone().into()).to_owned()));
        start += s as usize;
    }
    Ok(out)
}

/// Indices an ONNX/NumPy slice selects on an axis of size `dim` (clamped; negative counts
/// from the end).
fn slice_indices(dim: usize, start: i64, end: i64, step: i64) -> Result<Vec<usize>> {
    if step == 0 {
        bail!("slice step is 0");
    }
    let d = dim as i64;
    let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (s, e) = if step > 0 {
        (norm(start).clamp(0, d), norm(end).clamp(0, d))
    } else {
        (norm(start).clamp(-1, d - 1), norm(end).clamp(-1, d - 1))
    };
    let mut out = Vec::new();
    let mut i = s;
    while (step > 0 && i < e) || (step < 0 && i > e) {
        out.push(i as usize);
        i += step;
    }
    Ok(out)
}

fn select<T: Clone>(a: &ArrayD<T>, ax: usize, idx: &[usize]) -> ArrayD<T> {
    a.select(Axis(ax), idx)
}

fn slice(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let mut x = one(i)?;
    let rank = x.shape().len();
    let a = &ctx.attrs;
    let starts = a.ints("starts")?;
    let ends = a.ints("ends")?;
    let axes = a
        .opt_ints("axes")?
        .unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = a.opt_ints("steps")?.unwrap_or(vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        bail!("starts, ends, axes and steps differ in length");
    }
    let mut seen = vec![false; rank];
    for k in 0..starts.len() {
        let ax = axis(axes[k], rank)?;
        if std::mem::replace(&mut seen[ax], true) {
            bail!("axis {ax} is sliced twice");
        }
        let idx = slice_indices(x.shape()[ax], starts[k], ends[k], steps[k])?;
        x = each_kind!(&x, v => select(v, ax, &idx));
    }
    Ok(vec![x])
}

/// Source index on an axis of size `n` for position `p` (may be outside [0, n)), by pad mode;
/// `None` for constant fill.
fn pad_source(p: i64, n: i64, mode: &str) -> Option<usize> {
    if (0..n).contains(&p) {
        return Some(p as usize);
    }
    let i = match mode {
        "edge" => p.clamp(0, n - 1),
        "reflect" if n == 1 => 0,
        "reflect" => {
            let period = 2 * (n - 1);
            let m = p.rem_euclid(period);
            if m < n {
                m
            } else {
                period - m
            }
        }
        "symmetric" => {
            let m = p.rem_euclid(2 * n);
            if m < n {
                m
            } else {
                2 * n - 1 - m
            }
        }
        _ => return None,
    };
    Some(i as usize)
}

fn pad_axis<T: Clone>(a: &ArrayD<T>, ax: usize, src: &[Option<usize>], fill: T) -> ArrayD<T> {
    let mut shape = a.shape().to_vec();
    shape[ax] = src.len();
    let mut out = ArrayD::from_elem(IxDyn(&shape), fill);
    for (o, s) in src.iter().enumerate() {
        if let Some(s) = s {
            out.index_axis_mut(Axis(ax), o)
                .assign(&a.index_axis(Axis(ax), *s));
        }
    }
    out
}

fn pad(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let mut x = one(i)?;
    let rank = x.shape().len();
    let pads = ctx.attrs.ints("pads")?;
    if pads.len() != 2 * rank {
        bail!(
            "pads has {} values; rank {rank} needs {}",
            pads.len(),
            2 * rank
        );
    }
    let mode = ctx.attrs.str("mode")?;
    let value = ctx.attrs.float("value")?;
    for ax in 0..rank {
        let (b, e) = (pads[ax], pads[ax + rank]);
        if b == 0 && e == 0 {
            continue;
        }
        let n = x.shape()[ax] as i64;
        let size = n + b + e;
        if size < 0 {
            bail!("pads {pads:?} give axis {ax} a negative size");
        }
        if n == 0 && mode != "constant" && size > 0 {
            bail!("cannot pad an empty axis in {mode} mode");
        }
        let src: Vec<Option<usize>> = (0..size).map(|o| pad_source(o - b, n, &mode)).collect();
        x = match &x {
            Value::F32(a) => Value::F32(pad_axis(a, ax, &src, value)),
            Value::I64(a) => Value::I64(pad_axis(a, ax, &src, value as i64)),
            Value::Bool(a) => Value::Bool(pad_axis(a, ax, &src, value != 0.0)),
        };
    }
    Ok(vec![x])
}

fn tile(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let mut x = one(i)?;
    let reps = ctx.attrs.ints("repeats")?;
    if reps.len() != x.shape().len() || reps.iter().any(|&r| r < 0) {
        bail!("repeats {reps:?} does not fit {}", x.describe());
    }
    for (ax, &r) in reps.iter().enumerate() {
        if r == 1 {
            continue;
        }
        let n = x.shape()[ax];
        let idx: Vec<usize> = (0..n * r as usize).map(|k| k % n.max(1)).collect();
        x = each_kind!(&x, a => select(a, ax, &idx));
    }
    Ok(vec![x])
}

fn expand(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(i)?;
    let target = ctx.attrs.ints("shape")?;
    if target.iter().any(|&d| d < 0) {
        bail!("target shape {target:?} has a negative dim");
    }
    let target: Vec<usize> = target.iter().map(|&d| d as usize).collect();
    let out = broadcast_shape(x.shape(), &target)?;
    Ok(vec![
        each_kind!(x, a => a.broadcast(IxDyn(&out)).expect("broadcastable").to_owned()),
    ])
}

fn gather(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let [data, idx] = take(i)?;
    let idx = idx.into_i64()?;
    let rank = data.shape().len();
    let ax = axis(ctx.attrs.int("axis")?, rank)?;
    let n = data.shape()[ax] as i64;
    let flat: Vec<usize> = idx
        .iter()
        .map(|&k| {
            let j = if k < 0 { k + n } else { k };
            if j < 0 || j >= n {
                bail!("index {k} is out of range for axis {ax} of size {n}");
            }
            Ok(j as usize)
        })
        .collect::<Result<_>>()?;
    let mut shape = data.shape()[..ax].to_vec();
    shape.extend(idx.shape());
    shape.extend(&data.shape()[ax + 1..]);
    Ok(vec![
        each_kind!(&data, a => reshape_to(select(a, ax, &flat), &shape)?),
    ])
}

/// ScatterND: each index tuple (the last axis of `indices`, k entries) names a slice of `data`
/// (its trailing `rank - k` axes); the updates are applied in index order.
fn scatter_nd(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let [data, idx, upd] = take(i)?;
    let idx = idx.into_i64()?;
    let shape = data.shape().to_vec();
    let (&k, lead) = idx
        .shape()
        .split_last()
        .ok_or_else(|| anyhow!("indices is a scalar"))?;
    if k > shape.len() {
        bail!("indices of {k} entries index a rank-{} data", shape.len());
    }
    let mut want = lead.to_vec();
    want.extend(&shape[k..]);
    if upd.shape() != want {
        bail!(
            "updates {} do not have the shape {want:?} that indices and data give",
            upd.describe()
        );
    }
    let slice: usize = shape[k..].iter().product();
    let idx = idx.as_standard_layout();
    let flat = idx.as_slice().expect("standard layout");
    let offsets = (0..lead.iter().product())
        .map(|j| {
            let tuple = &flat[j * k..(j + 1) * k];
            let mut row = 0;
            for (axis, (&v, &n)) in tuple.iter().zip(&shape).enumerate() {
                let w = if v < 0 { v + n as i64 } else { v };
                if w < 0 || w >= n as i64 {
                    bail!("index {v} is out of range for axis {axis} of size {n}");
                }
                row = row * n + w as usize;
            }
            Ok(row * slice)
        })
        .collect::<Result<Vec<usize>>>()?;
    let reduction = ctx.attrs.str("reduction")?;
    let red = reduction.as_str();
    Ok(vec![match (data, upd) {
        (Value::F32(d), Value::F32(u)) => {
            let f: fn(f32, f32) -> f32 = match red {
                "add" => |a, b| a + b,
                "mul" => |a, b| a * b,
                "max" => |a, b| if a.is_nan() || a >= b { a } else { b },
                "min" => |a, b| if a.is_nan() || a <= b { a } else { b },
                _ => |_, b| b,
            };
            Value::F32(scatter_slices(d, &u, &offsets, slice, f))
        }
        (Value::I64(d), Value::I64(u)) => {
            let f: fn(i64, i64) -> i64 = match red {
                "add" => i64::wrapping_add,
                "mul" => i64::wrapping_mul,
                "max" => i64::max,
                "min" => i64::min,
                _ => |_, b| b,
            };
            Value::I64(scatter_slices(d, &u, &offsets, slice, f))
        }
        (Value::Bool(d), Value::Bool(u)) => {
            if red != "none" {
                bail!("reduction '{red}' on bool tensors");
            }
            Value::Bool(scatter_slices(d, &u, &offsets, slice, |_, b| b))
        }
        (d, u) => bail!(
            "data and updates differ in kind: {} and {}",
            d.describe(),
            u.describe()
        ),
    }])
}

/// `data` with `slice` elements from each `offsets[j]` combined with update slice j by `f`.
fn scatter_slices<T: Copy>(
    data: ArrayD<T>,
    upd: &ArrayD<T>,
    offsets: &[usize],
    slice: usize,
    f: impl Fn(T, T) -> T,
) -> ArrayD<T> {
    let mut out = data.as_standard_layout().into_owned();
    let upd = upd.as_standard_layout();
    let (o, u) = (
        out.as_slice_mut().expect("standard layout"),
        upd.as_slice().expect("standard layout"),
    );
    for (j, &off) in offsets.iter().enumerate() {
        for t in 0..slice {
            o[off + t] = f(o[off + t], u[j * slice + t]);
        }
    }
    out
}

fn shape(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(i)?;
    let dims: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
    Ok(vec![Value::I64(ArrayD::from_shape_vec(
        IxDyn(&[dims.len()]),
        dims,
    )?)])
}

/// The sequence start, start + delta, … below `limit` (above it for a negative delta); its
/// length is checked against the memory budget before it is made.
fn range(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    if !i.is_empty() {
        bail!("takes no inputs");
    }
    let (start, limit, delta) = range_bounds(&ctx.attrs)?;
    let n = range_len(start, limit, delta)?;
    let values: Vec<i64> = (0..n).map(|k| start + k * delta).collect();
    Ok(vec![Value::I64(ArrayD::from_shape_vec(
        IxDyn(&[values.len()]),
        values,
    )?)])
}

/// Wraps an integer to the range of `dtype`, as a C cast (two's complement) does.
fn wrap_int(v: i64, dtype: DType) -> i64 {
    match dtype {
        DType::I8 => v as i8 as i64,
        DType::I16 => v as i16 as i64,
        DType::I32 => v as i32 as i64,
        DType::U8 => v as u8 as i64,
        DType::U16 => v as u16 as i64,
        DType::U32 => v as u32 as i64,
        // The low bits, sign-extended for the signed ones.
        DType::I4 | DType::I2 | DType::U4 | DType::U2 => {
            let bits = dtype.bits() as u32;
            let low = v & ((1 << bits) - 1);
            if matches!(dtype, DType::I4 | DType::I2) && low >= 1 << (bits - 1) {
                low - (1 << bits)
            } else {
                low
            }
        }
        _ => v,
    }
}

/// A float truncated toward zero to an integer `dtype`. NaN gives 0 and infinities saturate
/// before wrapping; the 4- and 2-bit types give 0 out of their range (ONNX leaves out-of-range
/// float to integer casts undefined; this is what its reference implementation does).
fn float_to_int(v: f32, dtype: DType) -> i64 {
    let t = v as i64;
    if dtype.bits() < 8 {
        let (lo, hi) = dtype.int_range();
        return if (lo..=hi).contains(&(t as i128)) {
            t
        } else {
            0
        };
    }
    wrap_int(t, dtype)
}

/// Rounds an f32 to the precision of a float dtype.
fn round_float(v: f32, dtype: DType, saturate: bool, mode: RoundMode) -> f32 {
    match dtype {
        DType::F16 => half::f16::from_f32(v).to_f32(),
        DType::BF16 => half::bf16::from_f32(v).to_f32(),
        d if d.is_minifloat() => narrow::round(d, v, saturate, mode),
        _ => v,
    }
}

fn cast(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(i)?;
    let to = ctx.attrs.dtype("to")?;
    let saturate = ctx.attrs.bool("saturate")?;
    let mode = RoundMode::from_name(&ctx.attrs.str("round_mode")?)?;
    let round = |v: f32| round_float(v, to, saturate, mode);
    Ok(vec![if to == DType::Bool {
        Value::Bool(match x {
            Value::F32(a) => a.mapv(|v| v != 0.0),
            Value::I64(a) => a.mapv(|v| v != 0),
            Value::Bool(a) => a,
        })
    } else if to.is_float() {
        Value::F32(match x {
            Value::F32(a) => a.mapv(round),
            Value::I64(a) => a.mapv(|v| round(v as f32)),
            Value::Bool(a) => a.mapv(|v| round(v as u8 as f32)),
        })
    } else {
        Value::I64(match x {
            Value::F32(a) => a.mapv(|v| float_to_int(v, to)),
            Value::I64(a) => a.mapv(|v| wrap_int(v, to)),
            Value::Bool(a) => a.mapv(|v| v as i64),
        })
    }])
}

/// Reshape, permute and reshape again (the block moves of DepthToSpace / SpaceToDepth).
fn rearrange(x: Value, split: &[usize], perm: &[usize], out: &[usize]) -> Result<Value> {
    Ok(each_kind!(x, a => {
        let a = reshape_to(a, split)?;
        let a = a.permuted_axes(IxDyn(perm)).as_standard_layout().into_owned();
        reshape_to(a, out)?
    }))
}

fn block_size(ctx: &OpCtx, x: &Value) -> Result<usize> {
    if x.shape().len() != 4 {
        bail!("expects a 4-d input, got {}", x.describe());
    }
    let b = ctx.attrs.int("blocksize")?;
    if b <= 0 {
        bail!("blocksize must be positive");
    }
    Ok(b as usize)
}

fn depth_to_space(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(i)?;
    let b = block_size(ctx, &x)?;
    let cl = ctx.attrs.channels_last()?;
    let crd = ctx.attrs.str("mode")? == "CRD";
    let s = x.shape().to_vec();
    let (n, c, h, w) = if cl {
        (s[0], s[3], s[1], s[2])
    } else {
        (s[0], s[1], s[2], s[3])
    };
    if c % (b * b) != 0 {
        bail!("{c} channels are not divisible by blocksize² = {}", b * b);
    }
    let c2 = c / (b * b);
    let y = match (cl, crd) {
        (false, false) => rearrange(
            x,
            &[n, b, b, c2, h, w],
            &[0, 3, 4, 1, 5, 2],
            &[n, c2, h * b, w * b],
        )?,
        (false, true) => rearrange(
            x,
            &[n, c2, b, b, h, w],
            &[0, 1, 4, 2, 5, 3],
            &[n, c2, h * b, w * b],
        )?,
        (true, false) => rearrange(
            x,
            &[n, h, w, b, b, c2],
            &[0, 1, 3, 2, 4, 5],
            &[n, h * b, w * b, c2],
        )?,
        (true, true) => rearrange(
            x,
            &[n, h, w, c2, b, b],
            &[0, 1, 4, 2, 5, 3],
            &[n, h * b, w * b, c2],
        )?,
    };
    Ok(vec![y])
}

fn space_to_depth(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(i)?;
    let b = block_size(ctx, &x)?;
    let cl = ctx.attrs.channels_last()?;
    let s = x.shape().to_vec();
    let (n, c, h, w) = if cl {
        (s[0], s[3], s[1], s[2])
    } else {
        (s[0], s[1], s[2], s[3])
    };
    if h % b != 0 || w % b != 0 {
        bail!("spatial dims {h}×{w} are not divisible by blocksize {b}");
    }
    let (h2, w2) = (h / b, w / b);
    let y = if cl {
        rearrange(
            x,
            &[n, h2, b, w2, b, c],
            &[0, 1, 3, 2, 4, 5],
            &[n, h2, w2, b * b * c],
        )?
    } else {
        rearrange(
            x,
            &[n, c, h2, b, w2, b],
            &[0, 3, 5, 1, 2, 4],
            &[n, b * b * c, h2, w2],
        )?
    };
    Ok(vec![y])
}
