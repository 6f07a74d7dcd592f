//! Shape manipulation, indexing and data movement.
use super::runtime_rules as rt;
use super::shape_rules::{
    broadcast, dim_add, dim_mul, dims_product, norm_axis, range_bounds, range_len, reshape_dims,
    spatial_axes, unify,
};
use super::*;
use crate::ir::types::AttrKind as K;

const fn op(
    name: &'static str,
    doc: &'static str,
    inputs: Inputs,
    attrs: &'static [AttrDef],
    layout: Layout,
    infer: InferFn,
) -> OpDef {
    OpDef {
        name,
        family: Family::Shape,
        doc,
        inputs,
        outputs: ONE_OUTPUT,
        attrs,
        weights: &[],
        layout,
        infer,
    }
}

pub const OPS: &[OpDef] = &[
    op(
        "Reshape",
        "Reshapes to `shape` (batch included); 0 copies the input dim, one -1 is inferred.",
        ONE_INPUT,
        &[attr("shape", K::Ints, Default::Required, "target shape").or_input(rt::reshape)],
        Layout::Reshape,
        infer_reshape,
    ),
    op(
        "Flatten",
        "Reshapes to 2-d: [prod(dims before axis), prod(dims from axis)].",
        ONE_INPUT,
        &[attr(
            "axis",
            K::Int,
            Default::Int(1),
            "first flattened axis",
        )],
        Layout::Flatten,
        infer_flatten,
    ),
    op(
        "Transpose",
        "Permutes axes: output axis i is input axis perm[i].",
        ONE_INPUT,
        &[attr("perm", K::Ints, Default::Required, "the permutation")],
        Layout::Transpose,
        infer_transpose,
    ),
    op(
        "Squeeze",
        "Removes size-1 axes.",
        ONE_INPUT,
        &[attr(
            "axes",
            K::Ints,
            Default::Ints(&[]),
            "axes removed (empty: every size-1 axis)",
        )
        .or_input(rt::squeeze)],
        Layout::Squeeze,
        infer_squeeze,
    ),
    op(
        "Unsqueeze",
        "Inserts size-1 axes at `axes` (positions in the output).",
        ONE_INPUT,
        &[attr("axes", K::Ints, Default::Required, "inserted axes").or_input(rt::unsqueeze)],
        Layout::Unsqueeze,
        infer_unsqueeze,
    ),
    op(
        "Concat",
        "Joins inputs along `axis`.",
        Inputs::Variadic { name: "x", min: 1 },
        &[attr("axis", K::Int, Default::Required, "the joined axis")],
        Layout::Concat,
        infer_concat,
    ),
    OpDef {
        name: "Split",
        family: Family::Shape,
        doc: "Splits along `axis` into pieces of the given sizes; one output per piece.",
        inputs: ONE_INPUT,
        outputs: Outputs::PerEntryOf("split"),
        attrs: &[
            attr("axis", K::Int, Default::Int(0), "the split axis"),
            attr("split", K::Ints, Default::Required, "size of each piece").or_input(rt::split),
        ],
        weights: &[],
        layout: Layout::Axis(AxisRule::Kept),
        infer: infer_split,
    },
    op(
        "Slice",
        "x[starts:ends:steps] on `axes`, indices clamped as in NumPy and ONNX.",
        ONE_INPUT,
        &[
            attr(
                "starts",
                K::Ints,
                Default::Required,
                "start per sliced axis",
            )
            .or_input(rt::slice),
            attr(
                "ends",
                K::Ints,
                Default::Required,
                "end (exclusive) per sliced axis",
            )
            .or_input(rt::slice),
            attr(
                "axes",
                K::Ints,
                Default::Optional,
                "sliced axes (absent: 0..n)",
            )
            .or_input(rt::slice),
            attr(
                "steps",
                K::Ints,
                Default::Optional,
                "step per sliced axis (absent: 1)",
            )
            .or_input(rt::slice),
        ],
        Layout::Slice,
        infer_slice,
    ),
    op(
        "Pad",
        "Pads every axis: pads = [begin per axis..., end per axis...].",
        ONE_INPUT,
        &[
            attr(
                "pads",
                K::Ints,
                Default::Required,
                "begin and end padding for all axes",
            )
            .or_input(rt::pad),
            choice(
                "mode",
                "constant",
                &["constant", "reflect", "edge", "symmetric"],
                "constant value, mirror without or with the edge, or repeat the edge",
            ),
            attr(
                "value",
                K::Float,
                Default::Float(0.0),
                "fill value for constant mode",
            ),
        ],
        Layout::PerAxis {
            attr: "pads",
            lists: 2,
        },
        infer_pad,
    ),
    op(
        "Tile",
        "Repeats the tensor `repeats[i]` times along axis i.",
        ONE_INPUT,
        &[attr(
            "repeats",
            K::Ints,
            Default::Required,
            "repeat count per axis",
        )
        .or_input(rt::tile)],
        Layout::PerAxis {
            attr: "repeats",
            lists: 1,
        },
        infer_tile,
    ),
    op(
        "Expand",
        "Broadcasts to `shape` with NumPy rules.",
        ONE_INPUT,
        &[attr("shape", K::Ints, Default::Required, "target shape").or_input(rt::expand)],
        Layout::Expand,
        infer_expand,
    ),
    op(
        "Gather",
        "Takes entries of `data` along `axis` at integer `indices` (negative counts from the end).",
        inputs(&["data", "indices"]),
        &[attr("axis", K::Int, Default::Int(0), "the indexed axis")],
        Layout::Axis(AxisRule::Indexed),
        infer_gather,
    ),
    op(
        "ScatterND",
        "A copy of `data` whose slices at the integer index tuples `indices[..., :k]` (negative \
         counts from the end) are replaced by, or combined with, the slices of `updates` \
         (shape `indices.shape[:-1] + data.shape[k:]`), in index order.",
        inputs(&["data", "indices", "updates"]),
        &[choice(
            "reduction",
            "none",
            &["none", "add", "mul", "max", "min"],
            "none: replace (repeated indices: the last update wins); otherwise the slice \
             becomes slice ∘ update",
        )],
        Layout::Fixed,
        infer_scatter_nd,
    ),
    op(
        "Shape",
        "The input's shape as a 1-d int64 tensor.",
        ONE_INPUT,
        &[],
        Layout::Fixed,
        infer_shape,
    ),
    op(
        "Range",
        "The int64 sequence start, start + delta, … up to `limit` (excluded): \
         max(ceil((limit − start) / delta), 0) values. `limit` may be a symbolic dim \
         (`arange(seq_len)`).",
        inputs(&[]),
        &[
            attr("start", K::Int, Default::Int(0), "first value").or_input(rt::range),
            attr("limit", K::Int, Default::Required, "bound (excluded)").or_input(rt::range),
            attr("delta", K::Int, Default::Int(1), "step, not 0").or_input(rt::range),
        ],
        Layout::Fixed,
        infer_range,
    ),
    op(
        "Cast",
        "Converts elements to `to` (float to int truncates toward zero; to a 4- or 2-bit \
         integer, out of range gives 0; to a narrow float, round to nearest even per ONNX Cast).",
        ONE_INPUT,
        &[
            attr("to", K::Type, Default::Required, "target element type"),
            attr(
                "saturate",
                K::Bool,
                Default::Bool(true),
                "to an 8-bit float: clamp out-of-range values and infinities to the largest \
                 finite value (else they become NaN, or infinity for float8_e5m2)",
            ),
            choice(
                "round_mode",
                "up",
                crate::ir::narrow::RoundMode::NAMES,
                "to float8_e8m0fnu: round the mantissa up, down or to nearest (ties up)",
            ),
        ],
        Layout::Agnostic,
        infer_cast,
    ),
    OpDef {
        name: "DepthToSpace",
        family: Family::Shape,
        doc: "Moves blocks of channels into blocksize×blocksize spatial blocks.",
        inputs: ONE_INPUT,
        outputs: ONE_OUTPUT,
        attrs: &[
            attr("blocksize", K::Int, Default::Required, "block edge"),
            choice(
                "mode",
                "DCR",
                &["DCR", "CRD"],
                "channel order: depth-column-row (TF) or column-row-depth (PyTorch pixel shuffle)",
            ),
            DATA_FORMAT,
        ],
        weights: &[],
        layout: Layout::DataFormat { kernel: None },
        infer: infer_depth_to_space,
    },
    OpDef {
        name: "SpaceToDepth",
        family: Family::Shape,
        doc: "Moves blocksize×blocksize spatial blocks into channels (TF order).",
        inputs: ONE_INPUT,
        outputs: ONE_OUTPUT,
        attrs: &[
            attr("blocksize", K::Int, Default::Required, "block edge"),
            DATA_FORMAT,
        ],
        weights: &[],
        layout: Layout::DataFormat { kernel: None },
        infer: infer_space_to_depth,
    },
];

fn infer_reshape(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    let target = ctx.attrs.ints("shape")?;
    Ok(vec![TensorType::new(
        x.dtype,
        reshape_dims(&x.shape, &target)?,
    )])
}

fn infer_flatten(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    let axis = ctx.attrs.int("axis")?;
    let a = if axis < 0 {
        axis + x.rank() as i64
    } else {
        axis
    };
    if a < 0 || a > x.rank() as i64 {
        bail!("axis {axis} is out of range for {x}");
    }
    let a = a as usize;
    Ok(vec![TensorType::new(
        x.dtype,
        vec![dims_product(&x.shape[..a])?, dims_product(&x.shape[a..])?],
    )])
}

fn infer_transpose(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    let perm = ctx.attrs.ints("perm")?;
    let mut seen = vec![false; x.rank()];
    if perm.len() != x.rank() {
        bail!("perm {:?} does not fit rank {}", perm, x.rank());
    }
    let mut shape = vec![];
    for &p in &perm {
        let a = norm_axis(p, x.rank())?;
        if std::mem::replace(&mut seen[a], true) {
            bail!("perm {perm:?} repeats axis {a}");
        }
        shape.push(x.shape[a]);
    }
    Ok(vec![TensorType::new(x.dtype, shape)])
}

fn infer_squeeze(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    let axes = ctx
        .attrs
        .ints("axes")?
        .iter()
        .map(|&a| norm_axis(a, x.rank()))
        .collect::<Result<Vec<_>>>()?;
    let mut shape = vec![];
    for (i, &d) in x.shape.iter().enumerate() {
        let drop = if axes.is_empty() {
            d == 1
        } else {
            axes.contains(&i)
        };
        if drop && d != 1 && d >= 0 {
            bail!("cannot squeeze axis {i} of size {d}");
        }
        if !drop {
            shape.push(d);
        }
    }
    Ok(vec![TensorType::new(x.dtype, shape)])
}

fn infer_unsqueeze(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    let rank = x.rank() + ctx.attrs.ints("axes")?.len();
    let mut axes = ctx
        .attrs
        .ints("axes")?
        .iter()
        .map(|&a| norm_axis(a, rank))
        .collect::<Result<Vec<_>>>()?;
    axes.sort_unstable();
    let mut dims = x.shape.iter();
    let shape = (0..rank)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                *dims.next().expect("rank matches")
            }
        })
        .collect();
    Ok(vec![TensorType::new(x.dtype, shape)])
}

fn infer_concat(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let first = ctx.input(0)?;
    let axis = norm_axis(ctx.attrs.int("axis")?, first.rank())?;
    let mut shape = first.shape.clone();
    for t in &ctx.inputs[1..] {
        if t.rank() != first.rank() {
            bail!("Concat inputs differ in rank: {first} and {t}");
        }
        for (i, (d, &other)) in shape.iter_mut().zip(&t.shape).enumerate() {
            if i == axis {
                *d = crate::ir::dim::add(*d, other)
                    .map_err(|_| anyhow!("Concat of {first} and {t}: axis {axis} overflows"))?;
            } else {
                *d = unify(*d, other).with_context(|| {
                    format!("Concat inputs {first} and {t} differ off axis {axis}")
                })?;
            }
        }
    }
    Ok(vec![TensorType::new(first.dtype, shape)])
}

fn infer_split(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    let axis = norm_axis(ctx.attrs.int("axis")?, x.rank())?;
    let split = ctx.attrs.ints("split")?;
    let total = split.iter().try_fold(0, |n, &s| dim_add(n, s))?;
    if x.shape[axis] >= 0 && total != x.shape[axis] {
        bail!("split sizes {split:?} do not add up to axis {axis} of {x}");
    }
    Ok(split
        .iter()
        .map(|&s| {
            let mut shape = x.shape.clone();
            shape[axis] = s;
            TensorType::new(x.dtype, shape)
        })
        .collect())
}

/// Resolved slice of one axis: (start, step, count).
pub fn slice_axis(dim: i64, start: i64, end: i64, step: i64) -> Result<(i64, i64, i64)> {
    if step == 0 {
        bail!("slice step is 0");
    }
    let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
    let norm = |v: i64| if v < 0 { v + dim } else { v };
    let (s, e) = if step > 0 {
        (clamp(norm(start), 0, dim), clamp(norm(end), 0, dim))
    } else {
        (
            clamp(norm(start), -1, dim - 1),
            clamp(norm(end), -1, dim - 1),
        )
    };
    // s and e lie in [-1, dim]: their difference fits; a step past i64's range does not.
    let (span, stride) = if step > 0 {
        ((e - s).max(0), step)
    } else {
        ((s - e).max(0), dim_mul(step, -1)?)
    };
    let count = dim_add(span, stride - 1)? / stride;
    Ok((s, step, count))
}

/// (axes, starts, ends, steps) of a Slice node, normalised for an input of `rank`.
pub fn slice_params(attrs: &Attrs, rank: usize) -> Result<Vec<(usize, i64, i64, i64)>> {
    let starts = attrs.ints("starts")?;
    let ends = attrs.ints("ends")?;
    if starts.len() != ends.len() {
        bail!("starts and ends differ in length");
    }
    let axes = match attrs.opt_ints("axes")? {
        Some(a) => a,
        None => (0..starts.len() as i64).collect(),
    };
    let steps = attrs.opt_ints("steps")?.unwrap_or(vec![1; starts.len()]);
    if axes.len() != starts.len() || steps.len() != starts.len() {
        bail!("starts, ends, axes and steps differ in length");
    }
    (0..starts.len())
        .map(|i| Ok((norm_axis(axes[i], rank)?, starts[i], ends[i], steps[i])))
        .collect()
}

fn infer_slice(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    let mut shape = x.shape.clone();
    for (axis, start, end, step) in slice_params(&ctx.attrs, x.rank())? {
        let sym = |v: i64| crate::ir::dim::is_symbolic(v);
        shape[axis] = if x.shape[axis] >= 0 && (sym(start) || sym(end)) {
            symbolic_bound_count(x.shape[axis], start, end, step)?
        } else if x.shape[axis] >= 0 {
            slice_axis(x.shape[axis], start, end, step)?.2
        } else {
            symbolic_slice_count(x.shape[axis], start, end, step)?
        };
    }
    Ok(vec![TensorType::new(x.dtype, shape)])
}

/// The length of a slice of an axis of known length `d` whose start or end is a symbolic dim:
/// `start..E` with a known `0 <= start <= d`, a symbolic `E` and a step of 1 is `E - start`,
/// assuming `start <= E <= d` (`position_ids[:, :seq_len]` of a 512-long table); anything else
/// is unknown. A symbolic bound is never read as the negative number that stores it.
fn symbolic_bound_count(d: i64, start: i64, end: i64, step: i64) -> Result<i64> {
    if step != 1 || !(0..=d).contains(&start) || !crate::ir::dim::is_symbolic(end) {
        return Ok(-1);
    }
    crate::ir::dim::offset(end, -start)
}

/// The length of a forward slice of an axis not known now, where it is an expression of the
/// axis: `start..` to the end (an `end` of `INT32_MAX` or more, as exporters write "to the end")
/// with `start >= 0`, and `start..-k` with a step of 1 — both assuming the axis is at least
/// `start` (+ `k`) long. Anything else (`0..5` could be shorter than 5) is unknown, never guessed.
fn symbolic_slice_count(d: i64, start: i64, end: i64, step: i64) -> Result<i64> {
    if d == -1 || start < 0 || step < 1 {
        return Ok(-1);
    }
    if end >= i32::MAX as i64 {
        return crate::ir::dim::ceil_div(crate::ir::dim::sub(d, start)?, step);
    }
    if end < 0 && step == 1 && end > i32::MIN as i64 {
        return crate::ir::dim::sub(d, start + -end);
    }
    Ok(-1)
}

fn infer_pad(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    let pads = ctx.attrs.ints("pads")?;
    let r = x.rank();
    if pads.len() != 2 * r {
        bail!("pads has {} values; {x} needs {}", pads.len(), 2 * r);
    }
    let shape = (0..r)
        .map(|i| match pads[i].checked_add(pads[i + r]) {
            Some(p) => crate::ir::dim::offset(x.shape[i], p),
            None => bail!("pads {pads:?}: their sum overflows"),
        })
        .collect::<Result<_>>()?;
    Ok(vec![TensorType::new(x.dtype, shape)])
}

fn infer_tile(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    let reps = ctx.attrs.ints("repeats")?;
    if reps.len() != x.rank() {
        bail!("repeats {reps:?} does not fit {x}");
    }
    let shape = x
        .shape
        .iter()
        .zip(&reps)
        .map(|(&d, &r)| dim_mul(d, r))
        .collect::<Result<_>>()?;
    Ok(vec![TensorType::new(x.dtype, shape)])
}

fn infer_expand(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    Ok(vec![TensorType::new(
        x.dtype,
        broadcast(&x.shape, &ctx.attrs.ints("shape")?)?,
    )])
}

fn infer_gather(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let (data, idx) = (ctx.input(0)?, ctx.input(1)?);
    if idx.dtype.is_float() {
        bail!("Gather indices must be integers, got {idx}");
    }
    let axis = norm_axis(ctx.attrs.int("axis")?, data.rank())?;
    let mut shape = data.shape[..axis].to_vec();
    shape.extend(&idx.shape);
    shape.extend(&data.shape[axis + 1..]);
    Ok(vec![TensorType::new(data.dtype, shape)])
}

fn infer_scatter_nd(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let (data, idx, upd) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    if idx.dtype.is_float() || idx.dtype == DType::Bool {
        bail!("ScatterND indices must be integers, got {idx}");
    }
    if upd.dtype != data.dtype {
        bail!("updates {upd} differ in type from data {data}");
    }
    let Some(&k) = idx.shape.last() else {
        bail!("ScatterND indices must have rank 1 or more, got {idx}");
    };
    if k < 0 {
        bail!("the last dim of ScatterND indices {idx} must be known");
    }
    if k as usize > data.rank() {
        bail!("indices {idx} index {k} axes of data {data}");
    }
    let mut want = idx.shape[..idx.rank() - 1].to_vec();
    want.extend(&data.shape[k as usize..]);
    let fits = want.len() == upd.rank()
        && want
            .iter()
            .zip(&upd.shape)
            .all(|(&w, &u)| w == u || w < 0 || u < 0);
    if !fits {
        bail!(
            "updates {upd} do not have the shape {want:?} that indices {idx} and data {data} give"
        );
    }
    Ok(vec![data.clone()])
}

fn infer_shape(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    Ok(vec![TensorType::new(
        DType::I64,
        vec![ctx.input(0)?.rank() as i64],
    )])
}

/// Range's length: a size when the bounds are, else (a symbolic limit, a positive step) the
/// expression ceil((limit − start) / delta), which assumes limit ≥ start, as a sequence length
/// or size is.
fn infer_range(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let (start, limit, delta) = range_bounds(&ctx.attrs)?;
    let n = if crate::ir::dim::is_symbolic(limit) {
        if delta < 0 || start < 0 {
            -1
        } else {
            crate::ir::dim::ceil_div(crate::ir::dim::offset(limit, -start)?, delta)?
        }
    } else {
        range_len(start, limit, delta)?
    };
    Ok(vec![TensorType::new(DType::I64, vec![n])])
}

fn infer_cast(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    Ok(vec![TensorType::new(
        ctx.attrs.dtype("to")?,
        ctx.input(0)?.shape.clone(),
    )])
}

fn block_rearrange(ctx: &InferCtx, to_space: bool) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    if x.rank() != 4 {
        bail!("expects a 4-d input, got {x}");
    }
    let b = ctx.attrs.int("blocksize")?;
    if b < 1 {
        bail!("blocksize {b} is not positive");
    }
    let b2 = dim_mul(b, b)?;
    let (c, spatial) = spatial_axes(4, ctx.attrs.channels_last()?);
    let mut shape = x.shape.clone();
    let scale = |d: i64, up: bool| {
        if up {
            dim_mul(d, b)
        } else {
            crate::ir::dim::floor_div(d, b)
        }
    };
    if to_space && x.shape[c] > 0 && x.shape[c] % b2 != 0 {
        bail!(
            "channels {} are not divisible by blocksize² = {b2}",
            x.shape[c]
        );
    }
    if !to_space
        && spatial
            .iter()
            .any(|&a| x.shape[a] > 0 && x.shape[a] % b != 0)
    {
        bail!("spatial dims of {x} are not divisible by blocksize {b}");
    }
    shape[c] = if to_space {
        crate::ir::dim::floor_div(x.shape[c], b2)?
    } else {
        dim_mul(x.shape[c], b2)?
    };
    for a in spatial {
        shape[a] = scale(x.shape[a], to_space)?;
    }
    Ok(vec![TensorType::new(x.dtype, shape)])
}

fn infer_depth_to_space(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    block_rearrange(ctx, true)
}

fn infer_space_to_depth(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    block_rearrange(ctx, false)
}
