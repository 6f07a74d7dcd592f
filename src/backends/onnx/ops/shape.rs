//! Shape, indexing and data movement. Since opset 13 the shape-like operands (Reshape's shape,
//! Squeeze/Unsqueeze axes, Split sizes, Slice bounds, Pad amounts, Tile repeats, Expand's shape)
//! are int64 inputs: initializers made from the IR's attributes, or the IR's run-time tensors.
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
    let s = c.ints_arg(attr)?;
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

/// Squeeze or Unsqueeze whose axes are computed at run time (an input from opset 13).
fn runtime_axes(c: &mut Ctx, op: &str) -> Result<Option<()>> {
    if !c.a.is_runtime("axes") {
        return Ok(None);
    }
    if c.opset() < 13 {
        bail!("{op} axes computed at run time need opset 13 or later");
    }
    let x = c.x(0)?;
    let axes = c.ints_arg("axes")?;
    c.last(op, &[&x, &axes], vec![]).map(Some)
}

fn squeeze(c: &mut Ctx) -> Result<()> {
    if runtime_axes(c, "Squeeze")?.is_some() {
        return Ok(());
    }
    let x = c.x(0)?;
    let axes = c.a.ints("axes")?;
    let y = c.y(0)?;
    let axes = (!axes.is_empty()).then_some(axes.as_slice());
    axes_op(c, "Squeeze", &x, axes, vec![], Some(&y));
    Ok(())
}

fn unsqueeze(c: &mut Ctx) -> Result<()> {
    if runtime_axes(c, "Unsqueeze")?.is_some() {
        return Ok(());
    }
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
    if c.a.is_runtime("split") && c.opset() < 13 {
        bail!("split sizes computed at run time need opset 13 or later");
    }
    let s = c.ints_arg("split")?;
    let outs = (0..c.node.outputs.len())
        .map(|i| c.y(i))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
    let axis = c.a.int("axis")?;
    c.emit("Split", &[&x, &s], &refs, vec![A::I("axis", axis)]);
    Ok(())
}

fn slice(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let starts = c.ints_arg("starts")?;
    let ends = c.ints_arg("ends")?;
    let mut inputs = vec![x, starts, ends];
    let given =
        |c: &Ctx, a: &str| -> Result<bool> { Ok(c.a.is_runtime(a) || c.a.opt_ints(a)?.is_some()) };
    let steps = given(c, "steps")?;
    if given(c, "axes")? {
        inputs.push(c.ints_arg("axes")?);
    } else if steps {
        inputs.push(String::new());
    }
    if steps {
        inputs.push(c.ints_arg("steps")?);
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    c.last("Slice", &refs, vec![])
}

fn pad(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let mode = c.a.str("mode")?;
    if mode == "symmetric" {
        if c.a.is_runtime("pads") {
            bail!("symmetric padding by amounts computed at run time has no ONNX form");
        }
        let pads = c.a.ints("pads")?;
        return symmetric_pad(c, &x, &pads);
    }
    let p = c.ints_arg("pads")?;
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
    let start = range_bound(c, "start")?;
    let delta = range_bound(c, "delta")?;
    let limit = if let Some(v) = c.runtime_attr("limit", DType::I64)? {
        scalar_of(c, &v)?
    } else if crate::ir::dim::is_symbolic(c.a.int("limit")?) {
        let limit = c.a.int("limit")?;
        let one = c.shape_ints("limit", &[limit])?;
        let scalar = c.ints("scalar", &[]);
        c.op("Reshape", &[&one, &scalar], vec![])
    } else {
        c.scalar("limit", DType::I64, c.a.int("limit")? as f64)?
    };
    c.last("Range", &[&start, &limit, &delta], vec![])
}

/// An int64 scalar bound of Range: its run-time tensor, or its value.
fn range_bound(c: &mut Ctx, attr: &str) -> Result<String> {
    match c.runtime_attr(attr, DType::I64)? {
        Some(v) => scalar_of(c, &v),
        None => c.scalar(attr, DType::I64, c.a.int(attr)? as f64),
    }
}

/// `v` (one value, of rank 0 or 1) as a scalar, which Range wants.
fn scalar_of(c: &mut Ctx, v: &str) -> Result<String> {
    let scalar = c.ints("scalar", &[]);
    Ok(c.op("Reshape", &[v, &scalar], vec![]))
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
