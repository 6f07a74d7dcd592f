//! Shape ops. The IR takes shapes, axes, slices, pads and repeats as attributes, or as int64
//! tensors computed at run time (`crate::ir::ops::FROM_INPUTS`). The ONNX inputs that carry
//! them (Reshape's shape from opset 5, Slice's from 10, Squeeze/Unsqueeze axes and Split sizes
//! from 13, Pad's from 11, Tile, Expand) become attributes when known now — constants, or shape
//! computations folded from the input dims, symbolic dims included (`[N, S, 12, 64]`); an entry
//! that is the input's own dim becomes its "copy" form (0 in a Reshape, 1 in an Expand, "to
//! the end" in a Slice) — and stay run-time inputs otherwise.
use super::{axis, OpFn};
use crate::frontends::onnx::builder::{not_constant_because, Dims, IntsArg, Val};
use crate::frontends::onnx::node::Ctx;
use crate::interp::Value;
use crate::ir::{dim, DType};
use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;

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
        "Size" => size,
        "DepthToSpace" => depth_to_space,
        "SpaceToDepth" => space_to_depth,
        _ => return None,
    })
}

fn reshape(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let target = ctx
        .ints_arg(1, "the target shape")?
        .context("the target shape is missing")?;
    let allow_zero = ctx.opset >= 14 && ctx.int("allowzero", 0)? == 1;
    let target = match target {
        IntsArg::Known(t) if allow_zero && t.contains(&0) => {
            bail!("allowzero = 1 with a 0 in the target shape (an empty tensor) is not supported")
        }
        IntsArg::Known(t) => IntsArg::Known(resolve_reshape(&x, t)),
        IntsArg::Runtime(v) if allow_zero => {
            let why = "allowzero = 1: its 0s would mean empty axes, not copies";
            return Err(not_constant_because(&v, "the target shape", why));
        }
        runtime => runtime,
    };
    let s = ctx.spec("Reshape").ints_or_input("shape", target).input(&x);
    Ok(vec![ctx.emit1(s)?])
}

/// A Reshape target for the IR: a symbolic entry that is the input's dim at the same position
/// becomes 0 (copy), so the generated code reads like the source's `view(*x.shape[:2], 12, 64)`.
fn resolve_reshape(x: &Val, target: Vec<i64>) -> Vec<i64> {
    let shape = x.shape();
    target
        .iter()
        .enumerate()
        .map(|(i, &d)| match shape.get(i) {
            Some(&own) if dim::is_symbolic(d) && own == d => 0,
            _ => d,
        })
        .collect()
}

fn flatten(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let s = ctx
        .spec("Flatten")
        .int("axis", ctx.int("axis", 1)?)
        .input(&x);
    Ok(vec![ctx.emit1(s)?])
}

fn transpose(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let perm = match ctx.opt_ints("perm")? {
        Some(p) => p,
        None => (0..x.rank() as i64).rev().collect(),
    };
    let s = ctx.spec("Transpose").ints("perm", perm).input(&x);
    Ok(vec![ctx.emit1(s)?])
}

/// Axes: an attribute before opset 13, an input (possibly computed at run time) from 13.
fn axes_arg(ctx: &Ctx) -> Result<Option<IntsArg>> {
    if ctx.opset >= 13 {
        ctx.ints_arg(1, "the axes")
    } else {
        Ok(ctx.opt_ints("axes")?.map(IntsArg::Known))
    }
}

fn squeeze(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let axes = match axes_arg(ctx)? {
        Some(IntsArg::Runtime(v)) => {
            let s = ctx
                .spec("Squeeze")
                .ints_or_input("axes", IntsArg::Runtime(v));
            return Ok(vec![ctx.emit1(s.input(&x))?]);
        }
        Some(IntsArg::Known(a)) if !a.is_empty() => a,
        _ => {
            let shape = x.shape();
            if shape.contains(&-1) {
                bail!(
                    "Squeeze without axes drops every dim of size 1, and {} has dims unknown \
                     here; pin them with --inputShape",
                    x.ty()
                );
            }
            (0..shape.len() as i64)
                .filter(|&i| shape[i as usize] == 1)
                .collect()
        }
    };
    let s = ctx.spec("Squeeze").ints("axes", axes).input(&x);
    Ok(vec![ctx.emit1(s)?])
}

fn unsqueeze(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let axes = axes_arg(ctx)?.context("the axes are missing")?;
    let s = ctx.spec("Unsqueeze").ints_or_input("axes", axes).input(&x);
    Ok(vec![ctx.emit1(s)?])
}

fn concat(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let inputs = ctx.all_inputs()?;
    let a = ctx.opt_int("axis")?.context("axis is missing")?;
    let mut s = ctx.spec("Concat").int("axis", a);
    for v in &inputs {
        s = s.input(v);
    }
    Ok(vec![ctx.emit1(s)?])
}

/// Split: sizes from the `split` attribute (before 13) or input (from 13); without them, equal
/// parts, one per output (`num_outputs` from 18, the last part possibly smaller).
fn split(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let a = axis(ctx.int("axis", 0)?, x.rank())?;
    let given = if ctx.opset >= 13 {
        match ctx.ints_arg(1, "the split sizes")? {
            Some(IntsArg::Runtime(v)) => {
                let s = ctx.spec("Split").int("axis", a as i64).input(&x);
                return ctx.emit(s.ints_or_input("split", IntsArg::Runtime(v)));
            }
            Some(IntsArg::Known(s)) => Some(s),
            None => None,
        }
    } else {
        ctx.opt_ints("split")?
    };
    let parts = match ctx.opt_int("num_outputs")? {
        Some(n) => n,
        None => ctx.node.output.len() as i64,
    };
    let sizes = match given {
        Some(s) if !s.is_empty() => s,
        _ => {
            let dim = x.shape()[a];
            if dim < 0 {
                bail!(
                    "an equal split of axis {a} of {} needs its size, unknown here; pin it with \
                     --inputShape",
                    x.ty()
                );
            }
            let chunk = (dim + parts - 1) / parts;
            if ctx.opset < 18 && dim % parts != 0 {
                bail!(
                    "axis {a} of {} does not split into {parts} equal parts",
                    x.ty()
                );
            }
            (0..parts)
                .map(|k| chunk.min(dim - k * chunk).max(0))
                .collect()
        }
    };
    let s = ctx
        .spec("Split")
        .int("axis", a as i64)
        .ints("split", sizes)
        .input(&x);
    ctx.emit(s)
}

/// Slice: attributes before opset 10 (no steps), inputs from 10. An end computed from unknown
/// dims that equals the sliced axis' own size becomes "to the end".
fn slice(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let (starts, ends, axes, steps) = if ctx.opset < 10 {
        (
            IntsArg::Known(ctx.opt_ints("starts")?.context("starts is missing")?),
            IntsArg::Known(ctx.opt_ints("ends")?.context("ends is missing")?),
            ctx.opt_ints("axes")?.map(IntsArg::Known),
            None,
        )
    } else {
        let starts = ctx
            .ints_arg(1, "the starts")?
            .context("starts is missing")?;
        let axes = ctx.ints_arg(3, "the axes")?;
        let ends = ctx.ints_arg(2, "the ends")?.context("ends is missing")?;
        let ends = match (ends, &axes) {
            (IntsArg::Known(e), None | Some(IntsArg::Known(_))) => e,
            (ends, _) => return slice_at_run_time(ctx, x, starts, ends, axes),
        };
        let axes = match axes {
            Some(IntsArg::Known(a)) => Some(a),
            _ => None,
        };
        // An end that is the sliced axis' own (symbolic) size is "to the end".
        let shape = x.shape();
        let ends = (0..ends.len())
            .map(|i| {
                let a = match &axes {
                    Some(a) => *a.get(i).context("axes and ends differ in length")?,
                    None => i as i64,
                };
                let own = shape[axis(a, x.rank())?];
                Ok(if dim::is_symbolic(ends[i]) && ends[i] == own {
                    i64::MAX
                } else {
                    ends[i]
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let axes = axes.map(IntsArg::Known);
        (
            starts,
            IntsArg::Known(ends),
            axes,
            ctx.ints_arg(4, "the steps")?,
        )
    };
    slice_node(ctx, x, starts, ends, axes, steps)
}

/// A Slice whose ends or axes are computed at run time.
fn slice_at_run_time(
    ctx: &mut Ctx,
    x: Val,
    starts: IntsArg,
    ends: IntsArg,
    axes: Option<IntsArg>,
) -> Result<Vec<Val>> {
    let steps = ctx.ints_arg(4, "the steps")?;
    slice_node(ctx, x, starts, ends, axes, steps)
}

fn slice_node(
    ctx: &mut Ctx,
    x: Val,
    starts: IntsArg,
    ends: IntsArg,
    axes: Option<IntsArg>,
    steps: Option<IntsArg>,
) -> Result<Vec<Val>> {
    let mut s = ctx
        .spec("Slice")
        .ints_or_input("starts", starts)
        .ints_or_input("ends", ends)
        .input(&x);
    if let Some(a) = axes {
        s = s.ints_or_input("axes", a);
    }
    if let Some(st) = steps {
        s = s.ints_or_input("steps", st);
    }
    Ok(vec![ctx.emit1(s)?])
}

/// Pad: attributes before opset 11; from 11 the pads and constant value are inputs (and from 18
/// the padded axes). Mode wrap (19) is a Tile and a Slice (see `wrap_pad`).
fn pad(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let rank = x.rank();
    let mode = ctx.string("mode", "constant")?;
    if !["constant", "reflect", "edge", "wrap"].contains(&mode.as_str()) {
        bail!("mode '{mode}' has no IR equivalent");
    }
    let (pads, value) = if ctx.opset < 11 {
        (
            ctx.opt_ints("pads")?.context("pads is missing")?,
            ctx.float("value", 0.0)?,
        )
    } else {
        let value = match ctx.const_input(2, "the constant value")? {
            Some(v) => v.to_f32().iter().copied().next().unwrap_or(0.0),
            None => 0.0,
        };
        let pads = match ctx.ints_arg(1, "the pads")?.context("pads is missing")? {
            IntsArg::Known(p) => p,
            IntsArg::Runtime(p) if mode != "wrap" && ctx.opt_input(3).is_none() => {
                let s = ctx
                    .spec("Pad")
                    .ints_or_input("pads", IntsArg::Runtime(p))
                    .str("mode", &mode)
                    .float("value", value)
                    .input(&x);
                return Ok(vec![ctx.emit1(s)?]);
            }
            IntsArg::Runtime(p) => {
                let why = "run-time pads are taken for every axis, in modes other than wrap";
                return Err(not_constant_because(&p, "the pads", why));
            }
        };
        let pads = match ctx.const_ints(3, "the axes")? {
            None => pads,
            Some(axes) => {
                if pads.len() != 2 * axes.len() {
                    bail!("pads {pads:?} do not fit axes {axes:?}");
                }
                let mut full = vec![0; 2 * rank];
                for (i, &a) in axes.iter().enumerate() {
                    let a = axis(a, rank)?;
                    full[a] = pads[i];
                    full[a + rank] = pads[i + axes.len()];
                }
                full
            }
        };
        (pads, value)
    };
    if mode == "wrap" {
        return wrap_pad(ctx, &x, &pads);
    }
    let s = ctx
        .spec("Pad")
        .ints("pads", pads)
        .str("mode", &mode)
        .float("value", value)
        .input(&x);
    Ok(vec![ctx.emit1(s)?])
}

/// Pad mode wrap: output index j of an axis of size n padded by (b, e) reads input index
/// (j − b) mod n. The axis is tiled kb + 1 + ke times (kb = ⌈b/n⌉, ke = ⌈e/n⌉, 0 for crops)
/// and sliced from kb·n − b, n + b + e long.
fn wrap_pad(ctx: &mut Ctx, x: &Val, pads: &[i64]) -> Result<Vec<Val>> {
    let (shape, rank) = (x.shape(), x.rank());
    if pads.len() != 2 * rank {
        bail!("pads {pads:?} do not have 2 × {rank} entries");
    }
    let (mut reps, mut starts, mut ends) = (vec![], vec![], vec![]);
    for (a, &n) in shape.iter().enumerate() {
        let (b, e) = (pads[a], pads[a + rank]);
        if b == 0 && e == 0 {
            reps.push(1);
            starts.push(0);
            ends.push(i64::MAX);
            continue;
        }
        if n <= 0 {
            bail!(
                "mode wrap pads axis {a}, whose size must be known and nonzero, got {}",
                x.ty()
            );
        }
        let (kb, ke) = ((b.max(0) + n - 1) / n, (e.max(0) + n - 1) / n);
        reps.push(kb + 1 + ke);
        starts.push(kb * n - b);
        ends.push(kb * n - b + (n + b + e).max(0));
    }
    let tiled = ctx.tmp("Tile", "wrap").ints("repeats", reps).input(x);
    let tiled = ctx.emit1(tiled)?;
    let s = ctx
        .spec("Slice")
        .ints("starts", starts)
        .ints("ends", ends)
        .ints("axes", (0..rank as i64).collect())
        .input(&tiled);
    Ok(vec![ctx.emit1(s)?])
}

fn tile(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let reps = ctx
        .ints_arg(1, "the repeats")?
        .context("repeats is missing")?;
    let s = ctx.spec("Tile").ints_or_input("repeats", reps).input(&x);
    Ok(vec![ctx.emit1(s)?])
}

/// Expand. A symbolic entry that is the input's own (aligned) dim becomes 1, which
/// broadcasting turns back into that dim.
fn expand(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let target = match ctx
        .ints_arg(1, "the shape")?
        .context("the shape is missing")?
    {
        IntsArg::Known(t) => t,
        runtime => {
            let s = ctx.spec("Expand").ints_or_input("shape", runtime).input(&x);
            return Ok(vec![ctx.emit1(s)?]);
        }
    };
    let shape = x.shape();
    let off = target.len() as i64 - shape.len() as i64;
    let target = (0..target.len())
        .map(|i| {
            let j = i as i64 - off;
            let own = (j >= 0).then(|| shape[j as usize]);
            if dim::is_symbolic(target[i]) && own == Some(target[i]) {
                1
            } else {
                target[i]
            }
        })
        .collect();
    let s = ctx.spec("Expand").ints("shape", target).input(&x);
    Ok(vec![ctx.emit1(s)?])
}

fn gather(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let (data, idx) = (ctx.input(0)?, ctx.input(1)?);
    let s = ctx
        .spec("Gather")
        .int("axis", ctx.int("axis", 0)?)
        .input(&data)
        .input(&idx);
    Ok(vec![ctx.emit1(s)?])
}

/// ScatterND (opset 11; reduction add/mul from 16, max/min from 18): the IR op of the same
/// name, every input possibly computed at run time.
fn scatter_nd(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let (data, idx, upd) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let reduction = ctx.string("reduction", "none")?;
    let s = ctx
        .spec("ScatterND")
        .str("reduction", &reduction)
        .input(&data)
        .input(&idx)
        .input(&upd);
    Ok(vec![ctx.emit1(s)?])
}

/// Shape (with opset 15's start/end): a constant when the dims are known, else the symbolic
/// dims.
fn shape(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let rank = x.rank() as i64;
    let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
    let start = clamp(ctx.int("start", 0)?);
    let end = clamp(ctx.int("end", rank)?);
    let dims = x.shape()[start.min(end)..end].to_vec();
    if dims.contains(&dim::UNKNOWN) {
        // A dim nobody can name: the IR's Shape, at run time.
        let whole = (start, end) == (0, rank as usize);
        let s = if whole {
            ctx.spec("Shape")
        } else {
            ctx.tmp("Shape", "shape")
        };
        let shape = ctx.emit1(s.input(&x))?;
        if whole {
            return Ok(vec![shape]);
        }
        let s = ctx
            .spec("Slice")
            .ints("starts", vec![start as i64])
            .ints("ends", vec![end as i64])
            .input(&shape);
        return Ok(vec![ctx.emit1(s)?]);
    }
    dims_value(ctx, ArrayD::from_shape_vec(IxDyn(&[dims.len()]), dims)?)
}

/// Size: the element count, like Shape (the product of the IR's Shape at run time when a dim
/// is unknown).
fn size(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    if x.shape().contains(&dim::UNKNOWN) {
        let shape = ctx.emit1(ctx.tmp("Shape", "shape").input(&x))?;
        let s = ctx
            .spec("ReduceProd")
            .ints("axes", vec![0])
            .flag("keepdims", false)
            .input(&shape);
        return Ok(vec![ctx.emit1(s)?]);
    }
    let n = crate::ir::ops::shape_rules::dims_product(&x.shape())?;
    dims_value(ctx, ndarray::arr0(n).into_dyn())
}

/// A value made of known dims: a constant when they are all sizes, symbolic dims otherwise.
fn dims_value(ctx: &mut Ctx, dims: ArrayD<i64>) -> Result<Vec<Val>> {
    let name = ctx.out_name(0);
    if !dims.iter().any(|&d| dim::is_symbolic(d)) {
        return Ok(vec![ctx.b.constant_value(
            &name,
            &Value::I64(dims),
            DType::I64,
        )?]);
    }
    Ok(vec![Val::Dims(Dims {
        name,
        dtype: DType::I64,
        value: Arc::new(Value::I64(dims)),
    })])
}

fn depth_to_space(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let block = ctx.opt_int("blocksize")?.context("blocksize is missing")?;
    let mode = ctx.string("mode", "DCR")?;
    let s = ctx
        .spec("DepthToSpace")
        .int("blocksize", block)
        .str("mode", &mode)
        .str("data_format", "channels_first")
        .input(&x);
    Ok(vec![ctx.emit1(s)?])
}

/// SpaceToDepth: mode DCR (the default, and the only one before opset 25) is the IR op; CRD
/// (depth = channel·b² + row·b + column) is reshape [N, C, H/b, b, W/b, b], transpose
/// [0, 1, 3, 5, 2, 4], reshape [N, C·b², H/b, W/b].
fn space_to_depth(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let block = ctx.opt_int("blocksize")?.context("blocksize is missing")?;
    match ctx.string("mode", "DCR")?.as_str() {
        "DCR" => {}
        "CRD" => return space_to_depth_crd(ctx, &x, block),
        m => bail!("mode '{m}' is not one of DCR, CRD"),
    }
    let s = ctx
        .spec("SpaceToDepth")
        .int("blocksize", block)
        .str("data_format", "channels_first")
        .input(&x);
    Ok(vec![ctx.emit1(s)?])
}

fn space_to_depth_crd(ctx: &mut Ctx, x: &Val, b: i64) -> Result<Vec<Val>> {
    let shape = x.shape();
    let [_, c, h, w] = shape[..] else {
        bail!("expects a 4-d input, got {}", x.ty());
    };
    if c < 0 || h < 0 || w < 0 {
        bail!(
            "mode CRD needs the channel and spatial dims, got {}",
            x.ty()
        );
    }
    if b <= 0 || h % b != 0 || w % b != 0 {
        bail!("spatial dims {h}×{w} are not divisible by blocksize {b}");
    }
    let blocks = ctx
        .tmp("Reshape", "blocks")
        .ints("shape", vec![0, c, h / b, b, w / b, b])
        .input(x);
    let blocks = ctx.emit1(blocks)?;
    let moved = ctx
        .tmp("Transpose", "crd")
        .ints("perm", vec![0, 1, 3, 5, 2, 4])
        .input(&blocks);
    let moved = ctx.emit1(moved)?;
    let s = ctx
        .spec("Reshape")
        .ints("shape", vec![0, c * b * b, h / b, w / b])
        .input(&moved);
    Ok(vec![ctx.emit1(s)?])
}
