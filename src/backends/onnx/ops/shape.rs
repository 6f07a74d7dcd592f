//! Shape, indexing and data movement. Since opset 13 the shape-like operands (Reshape's shape,
//! Squeeze/Unsqueeze axes, Split sizes, Slice bounds, Pad amounts, Tile repeats, Expand's shape)
//! are int64 inputs, made here as initializers from the IR's attributes.
use super::{axes_op, channels_first, dense::indices, onnx_dtype, Lower, A};
use crate::backends::onnx::builder::Ctx;
use crate::ir::DType;
use anyhow::{bail, Result};

pub fn find(op: &str) -> Option<Lower> {
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
        "Tile" => |c| with_ints(c, "Tile", "repeats"),
        "Expand" => |c| with_ints(c, "Expand", "shape"),
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

/// `op(x, attribute as an int64 input)`.
fn with_ints(c: &mut Ctx, op: &str, attr: &str) -> Result<()> {
    let x = c.x(0)?;
    let v = c.a.ints(attr)?;
    let s = c.shape_ints(attr, &v)?;
    c.last(op, &[&x, &s], vec![])
}

fn reshape(c: &mut Ctx) -> Result<()> {
    with_ints(c, "Reshape", "shape")
}

fn flatten(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let axis = c.a.int("axis")?;
    c.last("Flatten", &[&x], vec![A::I("axis", axis)])
}

fn transpose(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let perm = c.a.ints("perm")?;
    c.last("Transpose", &[&x], vec![A::Is("perm", perm)])
}

fn squeeze(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let axes = c.a.ints("axes")?;
    let y = c.y(0)?;
    let axes = (!axes.is_empty()).then_some(axes.as_slice());
    axes_op(c, "Squeeze", &x, axes, vec![], Some(&y));
    Ok(())
}

fn unsqueeze(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let axes = c.a.ints("axes")?;
    let y = c.y(0)?;
    axes_op(c, "Unsqueeze", &x, Some(&axes), vec![], Some(&y));
    Ok(())
}

fn concat(c: &mut Ctx) -> Result<()> {
    let inputs = (0..c.node.inputs.len())
        .map(|i| c.x(i))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let axis = c.a.int("axis")?;
    c.last("Concat", &refs, vec![A::I("axis", axis)])
}

fn split(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let sizes = c.a.ints("split")?;
    let s = c.ints("split", &sizes);
    let outs = (0..sizes.len())
        .map(|i| c.y(i))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
    let axis = c.a.int("axis")?;
    c.emit("Split", &[&x, &s], &refs, vec![A::I("axis", axis)]);
    Ok(())
}

fn slice(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let starts = c.a.ints("starts")?;
    let starts = c.shape_ints("starts", &starts)?;
    let ends = c.a.ints("ends")?;
    let ends = c.shape_ints("ends", &ends)?;
    let mut inputs = vec![x, starts, ends];
    let steps = c.a.opt_ints("steps")?;
    match c.a.opt_ints("axes")? {
        Some(axes) => inputs.push(c.ints("axes", &axes)),
        None if steps.is_some() => inputs.push(String::new()),
        None => {}
    }
    if let Some(steps) = steps {
        inputs.push(c.ints("steps", &steps));
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    c.last("Slice", &refs, vec![])
}

fn pad(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let mode = c.a.str("mode")?;
    let pads = c.a.ints("pads")?;
    if mode == "symmetric" {
        return symmetric_pad(c, &x, &pads);
    }
    let p = c.ints("pads", &pads);
    let mut inputs = vec![x, p];
    let value = c.a.float("value")?;
    let dt = c.in_ty(0)?.dtype;
    if mode == "constant" && value != 0.0 {
        inputs.push(c.scalar("value", dt, value as f64)?);
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    c.last("Pad", &refs, vec![A::S("mode", mode)])
}

/// Symmetric padding (mirror with the edge), which ONNX's Pad lacks: per padded axis, the
/// reversed first `begin` and last `end` slices are concatenated around the tensor.
fn symmetric_pad(c: &mut Ctx, x: &str, pads: &[i64]) -> Result<()> {
    let ty = c.in_ty(0)?;
    let rank = ty.rank();
    if pads.len() != 2 * rank || pads.iter().any(|&p| p < 0) {
        bail!(
            "symmetric padding needs {} non-negative pads, got {pads:?}",
            2 * rank
        );
    }
    let axes: Vec<usize> = (0..rank)
        .filter(|&a| pads[a] > 0 || pads[a + rank] > 0)
        .collect();
    let mut cur = x.to_string();
    for (k, &a) in axes.iter().enumerate() {
        let (begin, end) = (pads[a], pads[a + rank]);
        if ty.shape[a] >= 0 && (begin > ty.shape[a] || end > ty.shape[a]) {
            bail!("symmetric padding of {begin}/{end} on axis {a} of {ty} exceeds the axis");
        }
        let ax = c.ints(&format!("axis{a}"), &[a as i64]);
        let step = c.ints("reverse", &[-1]);
        let mut parts = vec![];
        if begin > 0 {
            let s = c.ints(&format!("begin{a}_start"), &[begin - 1]);
            let e = c.ints(&format!("begin{a}_end"), &[i64::MIN]);
            parts.push(c.op("Slice", &[&cur, &s, &e, &ax, &step], vec![]));
        }
        parts.push(cur.clone());
        if end > 0 {
            let s = c.ints(&format!("end{a}_start"), &[-1]);
            let e = c.ints(&format!("end{a}_end"), &[-1 - end]);
            parts.push(c.op("Slice", &[&cur, &s, &e, &ax, &step], vec![]));
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let attrs = vec![A::I("axis", a as i64)];
        if k + 1 == axes.len() {
            return c.last("Concat", &refs, attrs);
        }
        cur = c.op("Concat", &refs, attrs);
    }
    c.last("Identity", &[&cur], vec![])
}

fn gather(c: &mut Ctx) -> Result<()> {
    let data = c.x(0)?;
    let idx = indices(c, 1)?;
    let axis = c.a.int("axis")?;
    c.last("Gather", &[&data, &idx], vec![A::I("axis", axis)])
}

/// ScatterND: int64 indices; the reduction attribute exists from opset 16 (add, mul) and 18
/// (max, min).
fn scatter_nd(c: &mut Ctx) -> Result<()> {
    let data = c.x(0)?;
    let mut idx = c.x(1)?;
    if c.in_ty(1)?.dtype != DType::I64 {
        idx = c.op("Cast", &[&idx], vec![A::I("to", 7)]);
    }
    let upd = c.x(2)?;
    let reduction = c.a.str("reduction")?;
    let since = match reduction.as_str() {
        "none" => 0,
        "add" | "mul" => 16,
        _ => 18,
    };
    if c.opset() < since {
        bail!("ScatterND's reduction '{reduction}' needs opset {since} or later");
    }
    let attrs = if reduction == "none" {
        vec![]
    } else {
        vec![A::S("reduction", reduction)]
    };
    c.last("ScatterND", &[&data, &idx, &upd], attrs)
}

fn shape(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    c.last("Shape", &[&x], vec![])
}

/// Range (opset 11) on int64 scalars; a symbolic limit is computed from the inputs' shapes.
fn range(c: &mut Ctx) -> Result<()> {
    if c.opset() < 11 {
        bail!("Range needs opset 11 or later");
    }
    let start = c.scalar("start", DType::I64, c.a.int("start")? as f64)?;
    let delta = c.scalar("delta", DType::I64, c.a.int("delta")? as f64)?;
    let limit = c.a.int("limit")?;
    let limit = if crate::ir::dim::is_symbolic(limit) {
        let one = c.shape_ints("limit", &[limit])?;
        let scalar = c.ints("scalar", &[]);
        c.op("Reshape", &[&one, &scalar], vec![])
    } else {
        c.scalar("limit", DType::I64, limit as f64)?
    };
    c.last("Range", &[&start, &limit, &delta], vec![])
}

/// `saturate` exists from opset 19 (the 8-bit floats), `round_mode` from 24 (FLOAT8E8M0); they
/// are written only for the types they concern. A float cast to a 4- or 2-bit integer gives 0
/// out of range in the IR (ONNX leaves it undefined): the written model selects 0 first.
fn cast(c: &mut Ctx) -> Result<()> {
    let mut x = c.x(0)?;
    let to = c.a.dtype("to")?;
    let from = c.in_ty(0)?.dtype;
    if from.is_float() && matches!(to, DType::I4 | DType::U4 | DType::I2 | DType::U2) {
        // trunc(x) is in [lo, hi] exactly when lo − 1 < x < hi + 1 (false for NaN).
        let (lo, hi) = to.int_range();
        let below = c.scalar("below", from, (lo - 1) as f64)?;
        let above = c.scalar("above", from, (hi + 1) as f64)?;
        let zero = c.scalar("zero", from, 0.0)?;
        let ge = c.op("Greater", &[&x, &below], vec![]);
        let le = c.op("Less", &[&x, &above], vec![]);
        let inside = c.op("And", &[&ge, &le], vec![]);
        x = c.op("Where", &[&inside, &x, &zero], vec![]);
    }
    let mut attrs = vec![A::I("to", onnx_dtype(to) as i64)];
    if to.is_minifloat() && to != DType::F4E2M1 {
        attrs.push(A::I("saturate", c.a.bool("saturate")? as i64));
    }
    if to == DType::F8E8M0 {
        attrs.push(A::S("round_mode", c.a.str("round_mode")?));
    }
    c.last("Cast", &[&x], attrs)
}

fn depth_to_space(c: &mut Ctx) -> Result<()> {
    channels_first(c)?;
    let x = c.x(0)?;
    let attrs = vec![
        A::I("blocksize", c.a.int("blocksize")?),
        A::S("mode", c.a.str("mode")?),
    ];
    c.last("DepthToSpace", &[&x], attrs)
}

fn space_to_depth(c: &mut Ctx) -> Result<()> {
    channels_first(c)?;
    let x = c.x(0)?;
    let b = c.a.int("blocksize")?;
    c.last("SpaceToDepth", &[&x], vec![A::I("blocksize", b)])
}
