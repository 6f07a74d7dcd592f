//! Dense, Embedding, the activation layers and the inference-time identities.
use super::super::convert::Cx;
use super::conv::fused_activation;
use super::{activation, LayerCall};
use crate::ir::{AttrValue, DType, TensorRef};
use anyhow::Result;

/// Dense on an input of any rank (over the last axis).
pub fn dense(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let use_bias = l.cfg.bool_or("use_bias", true)?;
    let y = cx.op(
        &l.name,
        "FullyConnected",
        &[x],
        vec![
            ("units", AttrValue::Int(l.cfg.int("units")?)),
            ("use_bias", AttrValue::Bool(use_bias)),
        ],
    )?;
    cx.weight(&y, "weights", l.var(0)?, vec![]);
    if use_bias {
        cx.weight(&y, "bias", l.var(1)?, vec![]);
    }
    Ok(vec![fused_activation(cx, l, y)?])
}

/// Embedding; float indices (Keras casts them) get a Cast to int64 first.
pub fn embedding(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let mut x = l.input()?;
    if cx.ty(&x)?.dtype.is_float() {
        x = cx.op(
            &l.sub("cast"),
            "Cast",
            &[x],
            vec![("to", AttrValue::Type(DType::I64))],
        )?;
    }
    let y = cx.op(
        &l.name,
        "Embedding",
        &[x],
        vec![
            ("input_dim", AttrValue::Int(l.cfg.int("input_dim")?)),
            ("output_dim", AttrValue::Int(l.cfg.int("output_dim")?)),
        ],
    )?;
    cx.weight(&y, "weights", l.var(0)?, vec![]);
    Ok(vec![y])
}

/// Activation.
pub fn activation_layer(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let act = activation::name_of(l.cfg.get("activation"))?;
    if act == "linear" {
        return identity(cx, l);
    }
    Ok(vec![activation::apply(cx, &x, &act, &l.name)?])
}

/// ReLU with max_value, negative_slope and threshold:
/// `min(x ≥ t ? x : slope·(x − t), max_value)`.
pub fn relu(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let max = l.cfg.opt_f32("max_value")?;
    let slope = l.cfg.f32_or("negative_slope", 0.0)?;
    let t = l.cfg.f32_or("threshold", 0.0)?;
    let f = AttrValue::Float;
    let bounded = |cx: &mut Cx, y: TensorRef, name: &str| match max {
        Some(m) => cx.op(name, "Clip", &[y], vec![("max", f(m))]),
        None => Ok(y),
    };
    let y = match (slope == 0.0, t == 0.0) {
        (true, true) => match max {
            Some(m) => cx.op(&l.name, "Clip", &[x], vec![("min", f(0.0)), ("max", f(m))])?,
            None => cx.op(&l.name, "Relu", &[x], vec![])?,
        },
        (false, true) => {
            let y = cx.op(
                &l.sub("leaky"),
                "LeakyRelu",
                &[x],
                vec![("alpha", f(slope))],
            )?;
            bounded(cx, y, &l.name)?
        }
        (true, false) => {
            let y = cx.op(
                &l.sub("threshold"),
                "ThresholdedRelu",
                &[x],
                vec![("alpha", f(t))],
            )?;
            bounded(cx, y, &l.name)?
        }
        (false, false) => {
            let tc = cx.scalar(&l.sub("t"), t)?;
            let sc = cx.scalar(&l.sub("slope"), slope)?;
            let keep = cx.op(
                &l.sub("keep"),
                "GreaterOrEqual",
                &[x.clone(), tc.clone()],
                vec![],
            )?;
            let shifted = cx.op(&l.sub("shifted"), "Sub", &[x.clone(), tc], vec![])?;
            let low = cx.op(&l.sub("low"), "Mul", &[shifted, sc], vec![])?;
            let y = cx.op(&l.sub("select"), "Where", &[keep, x, low], vec![])?;
            bounded(cx, y, &l.name)?
        }
    };
    Ok(vec![y])
}

/// LeakyReLU (`alpha` in Keras 2, `negative_slope` in Keras 3; default 0.3).
pub fn leaky_relu(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let alpha = match l.cfg.opt_f32("negative_slope")? {
        Some(a) => a,
        None => l.cfg.f32_or("alpha", 0.3)?,
    };
    let y = cx.op(
        &l.name,
        "LeakyRelu",
        &[l.input()?],
        vec![("alpha", AttrValue::Float(alpha))],
    )?;
    Ok(vec![y])
}

/// PReLU: the learned slope (shape of the input without the batch, shared axes 1) broadcasts.
pub fn prelu(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let y = cx.op(&l.name, "PRelu", &[l.input()?], vec![])?;
    cx.weight(&y, "slope", l.var(0)?, vec![]);
    Ok(vec![y])
}

pub fn elu(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let alpha = l.cfg.f32_or("alpha", 1.0)?;
    let y = cx.op(
        &l.name,
        "Elu",
        &[l.input()?],
        vec![("alpha", AttrValue::Float(alpha))],
    )?;
    Ok(vec![y])
}

pub fn thresholded_relu(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let theta = l.cfg.f32_or("theta", 1.0)?;
    let y = cx.op(
        &l.name,
        "ThresholdedRelu",
        &[l.input()?],
        vec![("alpha", AttrValue::Float(theta))],
    )?;
    Ok(vec![y])
}

pub fn softmax(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let axis = match l.cfg.get("axis") {
        Some(v) => match &super::ints_of(v, 0)?[..] {
            [a] => *a,
            other => anyhow::bail!("softmax over several axes {other:?} is not supported"),
        },
        None => -1,
    };
    let y = cx.op(
        &l.name,
        "Softmax",
        &[l.input()?],
        vec![("axis", AttrValue::Int(axis))],
    )?;
    Ok(vec![y])
}

/// Dropout, noise and regularisation layers: identities at inference.
pub fn identity(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    Ok(vec![cx.op(&l.name, "Identity", &[l.input()?], vec![])?])
}
