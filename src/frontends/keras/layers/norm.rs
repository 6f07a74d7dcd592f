//! BatchNormalization, LayerNormalization, GroupNormalization, UnitNormalization and the
//! preprocessing layers Normalization and Rescaling.
use super::super::convert::Cx;
use super::{ints_of, LayerCall};
use crate::ir::{AttrValue, TensorRef};
use anyhow::{bail, Context, Result};
use serde_json::Value as Json;

/// The `axis` config: one int, a list, or the default.
fn axes(l: &LayerCall, default: i64) -> Result<Vec<i64>> {
    match l.cfg.get("axis") {
        Some(v) => ints_of(v, 0).context("config 'axis'"),
        None => Ok(vec![default]),
    }
}

fn one_axis(l: &LayerCall, default: i64) -> Result<i64> {
    match &axes(l, default)?[..] {
        [a] => Ok(*a),
        other => bail!("normalising over several axes {other:?} is not supported"),
    }
}

/// BatchNormalization (inference): weights gamma?, beta?, moving_mean, moving_variance.
pub fn batch_norm(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let scale = l.cfg.bool_or("scale", true)?;
    let center = l.cfg.bool_or("center", true)?;
    let y = cx.op(
        &l.name,
        "BatchNorm",
        &[l.input()?],
        vec![
            ("axis", AttrValue::Int(one_axis(l, -1)?)),
            ("epsilon", AttrValue::Float(l.cfg.f32_or("epsilon", 1e-3)?)),
            ("use_scale", AttrValue::Bool(scale)),
            ("use_bias", AttrValue::Bool(center)),
        ],
    )?;
    let present = [
        (scale, "scale"),
        (center, "bias"),
        (true, "mean"),
        (true, "var"),
    ];
    stored_in_order(cx, l, &y, &present)?;
    Ok(vec![y])
}

/// LayerNormalization over `axis` (one or several); weights gamma?, beta?.
pub fn layer_norm(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    if l.cfg.bool_or("rms_scaling", false)? {
        bail!("rms_scaling is not supported");
    }
    let scale = l.cfg.bool_or("scale", true)?;
    let center = l.cfg.bool_or("center", true)?;
    let y = cx.op(
        &l.name,
        "LayerNorm",
        &[l.input()?],
        vec![
            ("axes", AttrValue::Ints(axes(l, -1)?)),
            ("epsilon", AttrValue::Float(l.cfg.f32_or("epsilon", 1e-3)?)),
            ("use_scale", AttrValue::Bool(scale)),
            ("use_bias", AttrValue::Bool(center)),
        ],
    )?;
    stored_in_order(cx, l, &y, &[(scale, "scale"), (center, "bias")])?;
    Ok(vec![y])
}

/// GroupNormalization; weights gamma?, beta?.
pub fn group_norm(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let scale = l.cfg.bool_or("scale", true)?;
    let center = l.cfg.bool_or("center", true)?;
    let y = cx.op(
        &l.name,
        "GroupNorm",
        &[l.input()?],
        vec![
            ("groups", AttrValue::Int(l.cfg.int_or("groups", 32)?)),
            ("axis", AttrValue::Int(one_axis(l, -1)?)),
            ("epsilon", AttrValue::Float(l.cfg.f32_or("epsilon", 1e-3)?)),
            ("use_scale", AttrValue::Bool(scale)),
            ("use_bias", AttrValue::Bool(center)),
        ],
    )?;
    stored_in_order(cx, l, &y, &[(scale, "scale"), (center, "bias")])?;
    Ok(vec![y])
}

/// UnitNormalization: x / ‖x‖₂ along one axis.
pub fn unit_norm(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let y = cx.op(
        &l.name,
        "LpNormalize",
        &[l.input()?],
        vec![
            ("axis", AttrValue::Int(one_axis(l, -1)?)),
            ("p", AttrValue::Int(2)),
        ],
    )?;
    Ok(vec![y])
}

/// Numbers from a config value: a number or a (nested) list.
fn numbers(v: &Json) -> Result<Vec<f32>> {
    match v {
        Json::Number(n) => Ok(vec![n.as_f64().context("not a number")? as f32]),
        Json::Array(a) => Ok(a.iter().map(numbers).collect::<Result<Vec<_>>>()?.concat()),
        other => bail!("{other} is not a number or a list of numbers"),
    }
}

/// A constant broadcast against the kept axes of a rank-`rank` input: shape
/// `[d or 1 for each axis after the batch]`, values repeated if one was given.
fn broadcast_const(
    cx: &mut Cx,
    name: &str,
    values: Vec<f32>,
    shape: &[i64],
    keep: &[usize],
) -> Result<TensorRef> {
    let dims: Vec<usize> = (1..shape.len())
        .map(|a| {
            if keep.contains(&a) {
                shape[a].max(1) as usize
            } else {
                1
            }
        })
        .collect();
    let n: usize = dims.iter().product();
    let values = match values.len() {
        1 => return cx.scalar(name, values[0]),
        m if m == n => values,
        m => bail!("{m} values do not broadcast to the kept axes {dims:?}"),
    };
    cx.constant(name, dims, &values)
}

/// Normalization: (x − mean) / max(√variance, 1e-7) (or its inverse), with mean and variance
/// from the config or the weights file, over the kept `axis`.
pub fn normalization(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let shape = cx.shape(&x)?;
    let rank = shape.len() as i64;
    let keep: Vec<usize> = axes(l, -1)?
        .iter()
        .map(|&a| (if a < 0 { a + rank } else { a }) as usize)
        .collect();
    if keep
        .iter()
        .any(|&a| a == 0 || a >= shape.len() || shape[a] < 0)
    {
        bail!("axis {keep:?} must name known non-batch axes of {shape:?}");
    }
    let (mean, var) = match (l.cfg.get("mean"), l.cfg.get("variance")) {
        (Some(m), Some(v)) => (numbers(m)?, numbers(v)?),
        _ => (cx.read(l.var(0)?)?.to_f32(), cx.read(l.var(1)?)?.to_f32()),
    };
    let std: Vec<f32> = var.iter().map(|v| v.sqrt().max(1e-7)).collect();
    let mean = broadcast_const(cx, &l.sub("mean"), mean, &shape, &keep)?;
    let std = broadcast_const(cx, &l.sub("std"), std, &shape, &keep)?;
    let y = if l.cfg.bool_or("invert", false)? {
        let scaled = cx.op(&l.sub("scaled"), "Mul", &[x, std], vec![])?;
        cx.op(&l.name, "Add", &[scaled, mean], vec![])?
    } else {
        let centered = cx.op(&l.sub("centered"), "Sub", &[x, mean], vec![])?;
        cx.op(&l.name, "Div", &[centered, std], vec![])?
    };
    Ok(vec![y])
}

/// Rescaling: x · scale + offset (scalars or per-channel lists).
pub fn rescaling(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let scale = numbers(l.cfg.get("scale").context("config 'scale' is missing")?)?;
    let offset = match l.cfg.get("offset") {
        Some(v) => numbers(v)?,
        None => vec![0.0],
    };
    let shape = cx.shape(&x)?;
    let last = vec![shape.len() - 1];
    let s = broadcast_const(cx, &l.sub("scale"), scale, &shape, &last)?;
    let scaled = cx.op(&l.sub("scaled"), "Mul", &[x, s], vec![])?;
    if offset.iter().all(|&o| o == 0.0) {
        return Ok(vec![cx.op(&l.name, "Identity", &[scaled], vec![])?]);
    }
    let o = broadcast_const(cx, &l.sub("offset"), offset, &shape, &last)?;
    Ok(vec![cx.op(&l.name, "Add", &[scaled, o], vec![])?])
}

/// Weights `params` of node `y` read from the layer's variables in order, each only when its
/// flag says the layer has it (Keras stores the optional gamma and beta only when enabled).
fn stored_in_order(
    cx: &mut Cx,
    l: &LayerCall,
    y: &TensorRef,
    params: &[(bool, &str)],
) -> Result<()> {
    let mut i = 0;
    for &(on, param) in params {
        if on {
            cx.weight(y, param, l.var(i)?, vec![]);
            i += 1;
        }
    }
    Ok(())
}
