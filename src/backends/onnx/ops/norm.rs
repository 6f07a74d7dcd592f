//! Normalization layers. Channel-axis-1 forms map to BatchNormalization, InstanceNormalization
//! and LRN; LayerNorm is LayerNormalization from opset 17 when its axes are the trailing ones;
//! everything else (other axes, GroupNorm, LpNormalize, older opsets) is composed from
//! reductions and arithmetic. Missing scale/bias weights become ones/zeros initializers.
use super::{axes_op, channel_shape, reshape_to, Lower, A};
use crate::backends::onnx::builder::Ctx;
use crate::ir::ops::shape_rules::norm_axis;
use anyhow::{bail, Context, Result};

pub fn find(op: &str) -> Option<Lower> {
    Some(match op {
        "BatchNorm" => batch_norm,
        "LayerNorm" => layer_norm,
        "GroupNorm" => group_norm,
        "InstanceNorm" => instance_norm,
        "LRN" => lrn,
        "LpNormalize" => lp_normalize,
        _ => return None,
    })
}

/// The channel axis (normalised) and the channel count from the input type.
fn channels(c: &Ctx) -> Result<(usize, i64)> {
    let ty = c.in_ty(0)?;
    let axis = norm_axis(c.a.int("axis")?, ty.rank())?;
    let n = ty.shape[axis];
    if n < 0 {
        bail!("the channel axis {axis} of {ty} has an unknown size");
    }
    Ok((axis, n))
}

/// Weight `param` when `flag` says it exists, else a constant of `value` with `dims`.
fn weight_or(c: &mut Ctx, flag: &str, param: &str, dims: Vec<i64>, value: f64) -> Result<String> {
    if c.a.bool(flag)? {
        return c.weight(param);
    }
    let dt = c.in_ty(0)?.dtype;
    let n = dims.iter().product::<i64>() as usize;
    c.consts(param, dt, dims, &vec![value; n])
}

fn batch_norm(c: &mut Ctx) -> Result<()> {
    let (axis, ch) = channels(c)?;
    let rank = c.in_ty(0)?.rank();
    let x = c.x(0)?;
    let eps = c.a.float("epsilon")?;
    let scale = weight_or(c, "use_scale", "scale", vec![ch], 1.0)?;
    let bias = weight_or(c, "use_bias", "bias", vec![ch], 0.0)?;
    let mean = c.weight("mean")?;
    let var = c.weight("var")?;
    if axis == 1 {
        return c.last(
            "BatchNormalization",
            &[&x, &scale, &bias, &mean, &var],
            vec![A::F("epsilon", eps)],
        );
    }
    // (x − mean) / sqrt(var + eps) · scale + bias, the vectors broadcast along `axis`.
    let shape = channel_shape(ch, axis, rank);
    let [scale, bias, mean, var] =
        [&scale, &bias, &mean, &var].map(|v| reshape_to(c, v, &shape, "channel"));
    let dt = c.in_ty(0)?.dtype;
    let e = c.scalar("epsilon", dt, eps as f64)?;
    let d = c.op("Sub", &[&x, &mean], vec![]);
    let ve = c.op("Add", &[&var, &e], vec![]);
    let sd = c.op("Sqrt", &[&ve], vec![]);
    let n = c.op("Div", &[&d, &sd], vec![]);
    let s = c.op("Mul", &[&n, &scale], vec![]);
    c.last("Add", &[&s, &bias], vec![])
}

fn layer_norm(c: &mut Ctx) -> Result<()> {
    let ty = c.in_ty(0)?;
    let rank = ty.rank();
    let mut axes =
        c.a.ints("axes")?
            .into_iter()
            .map(|a| norm_axis(a, rank))
            .collect::<Result<Vec<_>>>()?;
    axes.sort_unstable();
    axes.dedup();
    let first = *axes.first().context("LayerNorm over no axes")?;
    let trailing = axes == (first..rank).collect::<Vec<_>>();
    // Scale and bias have the shape of the normalised axes; broadcast them from `first` on.
    let norm_dims: Vec<i64> = axes.iter().map(|&a| ty.shape[a]).collect();
    if norm_dims.iter().any(|&d| d < 0) && !(c.a.bool("use_scale")? && c.a.bool("use_bias")?) {
        bail!("normalised axes of {ty} have unknown sizes");
    }
    let eps = c.a.float("epsilon")?;
    let dt = ty.dtype;
    let x = c.x(0)?;
    let scale = weight_or(c, "use_scale", "scale", norm_dims.clone(), 1.0)?;
    let bias = weight_or(c, "use_bias", "bias", norm_dims.clone(), 0.0)?;
    if trailing && c.opset() >= 17 {
        return c.last(
            "LayerNormalization",
            &[&x, &scale, &bias],
            vec![A::I("axis", first as i64), A::F("epsilon", eps)],
        );
    }
    let axes: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
    let keep = || vec![A::I("keepdims", 1)];
    let mean = axes_op(c, "ReduceMean", &x, Some(&axes), keep(), None);
    let d = c.op("Sub", &[&x, &mean], vec![]);
    let d2 = c.op("Mul", &[&d, &d], vec![]);
    let var = axes_op(c, "ReduceMean", &d2, Some(&axes), keep(), None);
    let e = c.scalar("epsilon", dt, eps as f64)?;
    let ve = c.op("Add", &[&var, &e], vec![]);
    let sd = c.op("Sqrt", &[&ve], vec![]);
    let n = c.op("Div", &[&d, &sd], vec![]);
    let (scale, bias) = if trailing {
        (scale, bias)
    } else {
        let shape: Vec<i64> = (first..rank)
            .map(|a| {
                if axes.contains(&(a as i64)) {
                    ty.shape[a]
                } else {
                    1
                }
            })
            .collect();
        (
            reshape_to(c, &scale, &shape, "scale"),
            reshape_to(c, &bias, &shape, "bias"),
        )
    };
    let s = c.op("Mul", &[&n, &scale], vec![]);
    c.last("Add", &[&s, &bias], vec![])
}

fn group_norm(c: &mut Ctx) -> Result<()> {
    let (axis, ch) = channels(c)?;
    if axis != 1 {
        bail!("GroupNorm over channel axis {axis} (ONNX needs axis 1)");
    }
    let rank = c.in_ty(0)?.rank();
    let dt = c.in_ty(0)?.dtype;
    let groups = c.a.int("groups")?;
    let eps = c.a.float("epsilon")?;
    let x = c.x(0)?;
    // InstanceNormalization of x viewed as [N, groups, rest], then back, scale and bias.
    let shape = c.op("Shape", &[&x], vec![]);
    let g = c.ints("grouped", &[0, groups, -1]);
    let r = c.op("Reshape", &[&x, &g], vec![]);
    let ones = c.consts("group_scale", dt, vec![groups], &vec![1.0; groups as usize])?;
    let zeros = c.consts("group_bias", dt, vec![groups], &vec![0.0; groups as usize])?;
    let n = c.op(
        "InstanceNormalization",
        &[&r, &ones, &zeros],
        vec![A::F("epsilon", eps)],
    );
    let back = c.op("Reshape", &[&n, &shape], vec![]);
    let shape = channel_shape(ch, 1, rank);
    let scale = weight_or(c, "use_scale", "scale", vec![ch], 1.0)?;
    let bias = weight_or(c, "use_bias", "bias", vec![ch], 0.0)?;
    let scale = reshape_to(c, &scale, &shape, "scale");
    let bias = reshape_to(c, &bias, &shape, "bias");
    let s = c.op("Mul", &[&back, &scale], vec![]);
    c.last("Add", &[&s, &bias], vec![])
}

fn instance_norm(c: &mut Ctx) -> Result<()> {
    let (axis, ch) = channels(c)?;
    if axis != 1 {
        bail!("InstanceNorm over channel axis {axis} (ONNX needs axis 1)");
    }
    let x = c.x(0)?;
    let scale = weight_or(c, "use_scale", "scale", vec![ch], 1.0)?;
    let bias = weight_or(c, "use_bias", "bias", vec![ch], 0.0)?;
    let eps = c.a.float("epsilon")?;
    c.last(
        "InstanceNormalization",
        &[&x, &scale, &bias],
        vec![A::F("epsilon", eps)],
    )
}

fn lrn(c: &mut Ctx) -> Result<()> {
    let ty = c.in_ty(0)?;
    let rank = ty.rank();
    let axis = norm_axis(c.a.int("axis")?, rank)?;
    let size = c.a.int("size")?;
    let (alpha, beta, bias) = (c.a.float("alpha")?, c.a.float("beta")?, c.a.float("bias")?);
    let x = c.x(0)?;
    if size % 2 == 0 {
        return lrn_even(c, &x, axis, size, [alpha, beta, bias]);
    }
    let attrs = vec![
        A::I("size", size),
        A::F("alpha", alpha),
        A::F("beta", beta),
        A::F("bias", bias),
    ];
    if axis == 1 {
        return c.last("LRN", &[&x], attrs);
    }
    // ONNX's LRN runs over axis 1: swap the channel axis there and back.
    let mut perm: Vec<i64> = (0..rank as i64).collect();
    perm.swap(1, axis);
    let t = c.op("Transpose", &[&x], vec![A::Is("perm", perm.clone())]);
    let l = c.op("LRN", &[&t], attrs);
    c.last("Transpose", &[&l], vec![A::Is("perm", perm)])
}

/// LRN with an even size (which runtimes refuse): the window sum of squares is an average pool
/// over the channel axis of x² viewed as [prod(before), 1, C, prod(after)], padded with
/// floor((size−1)/2) channels before and the rest after, as ONNX defines the window.
fn lrn_even(
    c: &mut Ctx,
    x: &str,
    axis: usize,
    size: i64,
    [alpha, beta, bias]: [f32; 3],
) -> Result<()> {
    let ty = c.in_ty(0)?;
    let dt = ty.dtype;
    if ty.shape[axis] < 0 || ty.shape[axis + 1..].iter().any(|&d| d < 0) {
        bail!("LRN of even size needs a known channel axis and known dims after it in {ty}");
    }
    let rest: i64 = ty.shape[axis + 1..].iter().product();
    let shape = c.op("Shape", &[x], vec![]);
    let view = c.ints("view", &[-1, 1, ty.shape[axis], rest]);
    let sq = c.op("Mul", &[x, x], vec![]);
    let v = c.op("Reshape", &[&sq, &view], vec![]);
    let before = (size - 1) / 2;
    let after = size - 1 - before;
    let avg = c.op(
        "AveragePool",
        &[&v],
        vec![
            A::Is("kernel_shape", vec![size, 1]),
            A::Is("pads", vec![before, 0, after, 0]),
            A::I("count_include_pad", 1),
        ],
    );
    let back = c.op("Reshape", &[&avg, &shape], vec![]);
    let a = c.scalar("alpha", dt, alpha as f64)?;
    let k = c.scalar("bias", dt, bias as f64)?;
    let b = c.scalar("beta", dt, beta as f64)?;
    let scaled = c.op("Mul", &[&back, &a], vec![]);
    let base = c.op("Add", &[&scaled, &k], vec![]);
    let den = c.op("Pow", &[&base, &b], vec![]);
    c.last("Div", &[x, &den], vec![])
}

fn lp_normalize(c: &mut Ctx) -> Result<()> {
    let rank = c.in_ty(0)?.rank();
    let dt = c.in_ty(0)?.dtype;
    let axis = norm_axis(c.a.int("axis")?, rank)? as i64;
    let reduce = match c.a.int("p")? {
        1 => "ReduceL1",
        2 => "ReduceL2",
        p => bail!("p = {p} (ONNX has L1 and L2 norms)"),
    };
    if !dt.is_float() {
        bail!("LpNormalize of {dt}");
    }
    let x = c.x(0)?;
    let norm = axes_op(
        c,
        reduce,
        &x,
        Some(&[axis]),
        vec![A::I("keepdims", 1)],
        None,
    );
    let eps = c.scalar("epsilon", dt, c.a.float("epsilon")? as f64)?;
    let m = c.op("Max", &[&norm, &eps], vec![]);
    c.last("Div", &[&x, &m], vec![])
}
