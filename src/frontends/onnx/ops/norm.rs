//! Normalization: BatchNormalization (inference form only), InstanceNormalization,
//! LayerNormalization (opset 17), GroupNormalization (per-group scale in opset 18, per-channel
//! from 21), LRN and LpNormalization. Constant parameters become weights; parameters computed
//! at run time (fed as graph inputs) scale and shift the normalised tensor with ordinary ops.
use super::{axis, OpFn};
use crate::frontends::onnx::builder::{Spec, Val};
use crate::frontends::onnx::node::Ctx;
use anyhow::{bail, Result};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "BatchNormalization" => batch_norm,
        "InstanceNormalization" => instance_norm,
        "LayerNormalization" => layer_norm,
        "GroupNormalization" => group_norm,
        "LRN" => lrn,
        "LpNormalization" => lp_norm,
        _ => return None,
    })
}

fn batch_norm(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let eps = ctx.float("epsilon", 1e-5)?;
    if ctx.opset < 9 && ctx.int("spatial", 1)? == 0 && x.rank() > 2 {
        bail!("spatial = 0 (statistics per activation) has no IR equivalent");
    }
    if ctx.int("training_mode", 0)? != 0 {
        return batch_norm_training(ctx, &x, eps);
    }
    ctx.ignore(&["momentum"]);
    if any_runtime(ctx, &[1, 2, 3, 4]) {
        return batch_norm_at_run_time(ctx, &x, eps);
    }
    let s = ctx
        .spec("BatchNorm")
        .int("axis", 1)
        .float("epsilon", eps)
        .flag("use_scale", true)
        .flag("use_bias", true)
        .input(&x)
        .weight("scale", ctx.weight(1, "the scale")?)
        .weight("bias", ctx.weight(2, "the bias B")?)
        .weight("mean", ctx.weight(3, "the running mean")?)
        .weight("var", ctx.weight(4, "the running variance")?);
    Ok(vec![ctx.emit1(s)?])
}

/// BatchNormalization with training_mode = 1 (opset 14): normalised with the batch's own
/// statistics (mean and population variance over every axis but 1); outputs 1 and 2 are the
/// running mean and variance updated with them, input · momentum + batch · (1 − momentum).
fn batch_norm_training(ctx: &mut Ctx, x: &Val, eps: f32) -> Result<Vec<Val>> {
    let momentum = ctx.float("momentum", 0.9)?;
    let (rank, c) = (x.rank(), x.shape().get(1).copied().unwrap_or(-1));
    if rank < 2 || c < 0 {
        bail!(
            "training_mode = 1 needs an input of rank 2 or more with known channels, got {}",
            x.ty()
        );
    }
    let axes: Vec<i64> = std::iter::once(0).chain(2..rank as i64).collect();
    let channel: Vec<i64> = std::iter::once(c)
        .chain(std::iter::repeat_n(1, rank - 2))
        .collect();
    let dtype = x.dtype();
    let mean = ctx.tmp("ReduceMean", "mean");
    let (mean, centred, var) = moments(ctx, x, axes, mean)?;
    let e = super::scalar(ctx, "epsilon", eps as f64, dtype)?;
    let s = ctx.tmp("Add", "var_eps").input(&var).input(&e);
    let var_eps = ctx.emit1(s)?;
    let s = ctx.tmp("Rsqrt", "inv_std").input(&var_eps);
    let inv_std = ctx.emit1(s)?;
    let s = ctx.tmp("Mul", "normed").input(&centred).input(&inv_std);
    let normed = ctx.emit1(s)?;
    let per_channel = |ctx: &mut Ctx, i: usize, what: &str| -> Result<Val> {
        let v = ctx.input(i)?;
        let s = ctx
            .tmp("Reshape", what)
            .ints("shape", channel.clone())
            .input(&v);
        ctx.emit1(s)
    };
    let scale = per_channel(ctx, 1, "scale")?;
    let bias = per_channel(ctx, 2, "bias")?;
    let s = ctx.tmp("Mul", "scaled").input(&normed).input(&scale);
    let scaled = ctx.emit1(s)?;
    let s = ctx.spec("Add").input(&scaled).input(&bias);
    let mut outs = vec![ctx.emit1(s)?];
    let keep = super::scalar(ctx, "momentum", momentum as f64, dtype)?;
    let take = super::scalar(ctx, "one_minus_momentum", 1.0 - momentum as f64, dtype)?;
    for (k, batch, what) in [(1, &mean, "mean"), (2, &var, "var")] {
        if ctx.out_name(k).is_empty() {
            break;
        }
        let running = ctx.input(k + 2)?;
        let s = ctx
            .tmp("Reshape", &format!("batch_{what}"))
            .ints("shape", vec![c])
            .input(batch);
        let batch = ctx.emit1(s)?;
        let s = ctx
            .tmp("Mul", &format!("kept_{what}"))
            .input(&running)
            .input(&keep);
        let kept = ctx.emit1(s)?;
        let s = ctx
            .tmp("Mul", &format!("new_{what}"))
            .input(&batch)
            .input(&take);
        let new = ctx.emit1(s)?;
        let s = ctx.spec_for(k, "Add").input(&kept).input(&new);
        outs.push(ctx.emit1(s)?);
    }
    Ok(outs)
}

fn instance_norm(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let eps = ctx.float("epsilon", 1e-5)?;
    if any_runtime(ctx, &[1, 2]) {
        let y = ctx.emit1(unscaled(ctx, "InstanceNorm", eps, &x))?;
        let (scale, bias) = (ctx.input(1)?, ctx.input(2)?);
        return Ok(vec![affine(ctx, y, &scale, Some(&bias), x.rank(), true)?]);
    }
    let s = ctx
        .spec("InstanceNorm")
        .int("axis", 1)
        .float("epsilon", eps)
        .flag("use_scale", true)
        .flag("use_bias", true)
        .input(&x)
        .weight("scale", ctx.weight(1, "the scale")?)
        .weight("bias", ctx.weight(2, "the bias B")?);
    Ok(vec![ctx.emit1(s)?])
}

/// LayerNormalization normalises axes `axis..rank`; its scale and bias are broadcast to the
/// normalised shape. The Mean and InvStdDev outputs are not mapped.
fn layer_norm(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let rank = x.rank();
    let a = axis(ctx.int("axis", -1)?, rank)?;
    let eps = ctx.float("epsilon", 1e-5)?;
    // stash_type picks the precision of the statistics; the IR computes them in f32 or wider.
    ctx.ignore(&["stash_type"]);
    let normalised: Vec<i64> = x.shape()[a..].to_vec();
    if any_runtime(ctx, &[1, 2]) {
        let s = ctx
            .tmp("LayerNorm", "normalised")
            .ints("axes", (a as i64..rank as i64).collect())
            .float("epsilon", eps)
            .flag("use_scale", false)
            .flag("use_bias", false)
            .input(&x);
        let y = ctx.emit1(s)?;
        let (scale, bias) = (ctx.input(1)?, ctx.opt_input(2));
        let mut outs = vec![affine(ctx, y, &scale, bias.as_ref(), rank, false)?];
        if ctx.node.output.iter().skip(1).any(|o| !o.is_empty()) {
            let axes = (a as i64..rank as i64).collect();
            outs.extend(layer_norm_stats(ctx, &x, axes, eps)?);
        }
        return Ok(outs);
    }
    let mut s = ctx
        .spec("LayerNorm")
        .ints("axes", (a as i64..rank as i64).collect())
        .float("epsilon", eps)
        .flag("use_scale", true)
        .input(&x);
    let scale = param(ctx, 1, &normalised, "scale")?;
    s = s.weight("scale", scale);
    s = match ctx.opt_input(2) {
        Some(_) => s
            .flag("use_bias", true)
            .weight("bias", param(ctx, 2, &normalised, "bias")?),
        None => s.flag("use_bias", false),
    };
    let mut outs = vec![ctx.emit1(s)?];
    if ctx.node.output.iter().skip(1).any(|o| !o.is_empty()) {
        outs.extend(layer_norm_stats(
            ctx,
            &x,
            (a as i64..rank as i64).collect(),
            eps,
        )?);
    }
    Ok(outs)
}

/// LayerNormalization's optional outputs: the mean and 1/sqrt(variance + epsilon) over `axes`
/// (kept as size-1 dims).
fn layer_norm_stats(ctx: &mut Ctx, x: &Val, axes: Vec<i64>, eps: f32) -> Result<Vec<Val>> {
    let mean = ctx.spec_for(1, "ReduceMean");
    let (mean, _, var) = moments(ctx, x, axes, mean)?;
    let eps = super::scalar(ctx, "epsilon", eps as f64, x.dtype())?;
    let s = ctx.tmp("Add", "variance_eps").input(&var).input(&eps);
    let var = ctx.emit1(s)?;
    let s = ctx.spec_for(2, "Rsqrt").input(&var);
    Ok(vec![mean, ctx.emit1(s)?])
}

/// The mean of `x` over `axes` (emitted as `mean`, a ReduceMean spec naming it), `x` less that
/// mean, and the population variance, all with the reduced axes kept as size-1 dims.
fn moments(ctx: &mut Ctx, x: &Val, axes: Vec<i64>, mean: Spec) -> Result<(Val, Val, Val)> {
    let s = mean.ints("axes", axes.clone()).input(x);
    let mean = ctx.emit1(s)?;
    let s = ctx.tmp("Sub", "centred").input(x).input(&mean);
    let centred = ctx.emit1(s)?;
    let s = ctx.tmp("Square", "squared").input(&centred);
    let squared = ctx.emit1(s)?;
    let s = ctx
        .tmp("ReduceMean", "variance")
        .ints("axes", axes)
        .input(&squared);
    let var = ctx.emit1(s)?;
    Ok((mean, centred, var))
}

/// A constant parameter input broadcast (folded) to `shape`.
fn param(
    ctx: &mut Ctx,
    i: usize,
    shape: &[i64],
    what: &'static str,
) -> Result<crate::frontends::onnx::tensor::Lazy> {
    let w = ctx.weight(i, what)?;
    let dims: Vec<i64> = w.info.shape.iter().map(|&d| d as i64).collect();
    let fits = dims.len() == shape.len() && dims.iter().zip(shape).all(|(&d, &s)| s < 0 || d == s);
    if fits {
        return Ok(w);
    }
    if shape.iter().any(|&d| d < 0) {
        bail!(
            "the {what} has shape {dims:?}; broadcasting it needs the normalised dims, unknown \
             here; pin them with --inputShape"
        );
    }
    let v = ctx.input(i)?;
    let e = ctx
        .tmp("Expand", &format!("{what}_expand"))
        .ints("shape", shape.to_vec())
        .input(&v);
    match ctx.emit1(e)? {
        Val::Const(c) if c.shape() == shape => Ok(c.data),
        v => bail!("the {what} ({}) does not broadcast to {shape:?}", v.ty()),
    }
}

/// GroupNormalization: opset 18 has one scale and bias per group (repeated here per channel),
/// opset 21 one per channel.
fn group_norm(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let groups = ctx
        .opt_int("num_groups")?
        .ok_or_else(|| anyhow::anyhow!("num_groups is missing"))?;
    if groups < 1 {
        bail!("num_groups {groups} is not positive");
    }
    let eps = ctx.float("epsilon", 1e-5)?;
    ctx.ignore(&["stash_type"]);
    let channels = x.shape().get(1).copied().unwrap_or(-1);
    let mut weights = vec![];
    for (i, name) in [(1, "scale"), (2, "bias")] {
        let mut w = ctx.input(i)?;
        if ctx.opset < 21 {
            if channels < 0 {
                bail!("per-group parameters need the channel count; pin it with --inputShape");
            }
            let per = channels / groups;
            let r = ctx
                .tmp("Reshape", &format!("{name}_g"))
                .ints("shape", vec![groups, 1])
                .input(&w);
            let r = ctx.emit1(r)?;
            let e = ctx
                .tmp("Expand", &format!("{name}_gc"))
                .ints("shape", vec![groups, per])
                .input(&r);
            let e = ctx.emit1(e)?;
            let f = ctx
                .tmp("Reshape", &format!("{name}_c"))
                .ints("shape", vec![channels])
                .input(&e);
            w = ctx.emit1(f)?;
        }
        weights.push(w);
    }
    if weights.iter().any(Val::is_runtime) {
        let s = unscaled(ctx, "GroupNorm", eps, &x).int("groups", groups);
        let y = ctx.emit1(s)?;
        return Ok(vec![affine(
            ctx,
            y,
            &weights[0],
            Some(&weights[1]),
            x.rank(),
            true,
        )?]);
    }
    let mut weights = weights.into_iter().map(|w| match w {
        Val::Const(c) => Ok(c.data),
        v => Err(crate::frontends::onnx::builder::not_constant(
            &v,
            "a parameter",
        )),
    });
    let (Some(scale), Some(bias)) = (weights.next(), weights.next()) else {
        bail!("internal: GroupNorm without its two parameters");
    };
    let (scale, bias) = (scale?, bias?);
    let s = ctx
        .spec("GroupNorm")
        .int("groups", groups)
        .int("axis", 1)
        .float("epsilon", eps)
        .flag("use_scale", true)
        .flag("use_bias", true)
        .input(&x)
        .weight("scale", scale)
        .weight("bias", bias);
    Ok(vec![ctx.emit1(s)?])
}

/// Whether one of the inputs `which` is computed at run time (a parameter fed as a graph input).
fn any_runtime(ctx: &Ctx, which: &[usize]) -> bool {
    which
        .iter()
        .any(|&i| ctx.opt_input(i).is_some_and(|v| v.is_runtime()))
}

/// A channel-axis normalization `op` of `x` without its scale and bias (applied after it by
/// [`affine`] when they are computed at run time).
fn unscaled(ctx: &Ctx, op: &'static str, eps: f32, x: &Val) -> Spec {
    ctx.tmp(op, "normalised")
        .int("axis", 1)
        .float("epsilon", eps)
        .flag("use_scale", false)
        .flag("use_bias", false)
        .input(x)
}

/// Inference BatchNormalization with parameters computed at run time, as the spec defines it:
/// `x · inv + (B − mean · inv)` with `inv = scale / sqrt(var + epsilon)` per channel.
fn batch_norm_at_run_time(ctx: &mut Ctx, x: &Val, eps: f32) -> Result<Vec<Val>> {
    let [scale, bias, mean, var] = [1, 2, 3, 4].map(|i| ctx.input(i));
    let (scale, bias, mean, var) = (scale?, bias?, mean?, var?);
    let eps = super::scalar(ctx, "epsilon", eps as f64, x.dtype())?;
    let v = ctx.emit1(ctx.tmp("Add", "var_eps").input(&var).input(&eps))?;
    let sd = ctx.emit1(ctx.tmp("Sqrt", "std").input(&v))?;
    let inv = ctx.emit1(ctx.tmp("Div", "inv_std").input(&scale).input(&sd))?;
    let m = ctx.emit1(ctx.tmp("Mul", "mean_scaled").input(&mean).input(&inv))?;
    let shift = ctx.emit1(ctx.tmp("Sub", "shift").input(&bias).input(&m))?;
    Ok(vec![affine(
        ctx,
        x.clone(),
        &inv,
        Some(&shift),
        x.rank(),
        true,
    )?])
}

/// `y · scale + bias` for parameters computed at run time. `per_channel`: each is a `[C]` vector
/// for axis 1 of a rank-`rank` tensor, unsqueezed to `[C, 1, …]`; else they broadcast as they
/// are (LayerNorm's normalised trailing axes).
fn affine(
    ctx: &mut Ctx,
    y: Val,
    scale: &Val,
    bias: Option<&Val>,
    rank: usize,
    per_channel: bool,
) -> Result<Val> {
    let along = |ctx: &mut Ctx, v: &Val, what: &str| -> Result<Val> {
        if !per_channel || rank <= 2 {
            return Ok(v.clone());
        }
        let axes = (1..rank as i64 - 1).collect();
        let s = ctx.tmp("Unsqueeze", what).ints("axes", axes).input(v);
        ctx.emit1(s)
    };
    let scale = along(ctx, scale, "scale_c")?;
    let Some(bias) = bias else {
        return ctx.emit1(ctx.spec("Mul").input(&y).input(&scale));
    };
    let bias = along(ctx, bias, "bias_c")?;
    let y = ctx.emit1(ctx.tmp("Mul", "scaled").input(&y).input(&scale))?;
    ctx.emit1(ctx.spec("Add").input(&y).input(&bias))
}

fn lrn(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let size = ctx
        .opt_int("size")?
        .ok_or_else(|| anyhow::anyhow!("size is missing"))?;
    let s = ctx
        .spec("LRN")
        .int("size", size)
        .float("alpha", ctx.float("alpha", 1e-4)?)
        .float("beta", ctx.float("beta", 0.75)?)
        .float("bias", ctx.float("bias", 1.0)?)
        .int("axis", 1)
        .input(&x);
    Ok(vec![ctx.emit1(s)?])
}

fn lp_norm(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let p = ctx.int("p", 2)?;
    if p != 1 && p != 2 {
        bail!("p = {p}; only 1 and 2 are defined");
    }
    let s = ctx
        .spec("LpNormalize")
        .int("axis", ctx.int("axis", -1)?)
        .int("p", p)
        .input(&x);
    Ok(vec![ctx.emit1(s)?])
}
