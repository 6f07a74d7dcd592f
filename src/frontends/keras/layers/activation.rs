//! Keras activation functions (the `Activation` layer and every fused `activation=`) as IR ops;
//! the activation layers (ReLU, LeakyReLU, PReLU, ELU, ThresholdedReLU, Softmax); and the
//! inference-time identities (Dropout, noise and regularisation layers), which become the
//! activation family's Identity.
use super::super::convert::Cx;
use super::LayerCall;
use crate::ir::{AttrValue, TensorRef};
use anyhow::{bail, Result};
use serde_json::Value as Json;

/// The activation's name: a string, or a serialised function object.
pub fn name_of(v: Option<&Json>) -> Result<String> {
    Ok(match v {
        None | Some(Json::Null) => "linear".into(),
        Some(Json::String(s)) => s.clone(),
        Some(o) => match o.get("config") {
            Some(Json::String(s)) => s.clone(),
            _ => match o.get("class_name").and_then(Json::as_str) {
                Some(c) => c.to_string(),
                None => bail!("unreadable activation {o}"),
            },
        },
    })
}

/// Applies activation `act` to `x`; the new node is called `name`. `linear` returns `x`.
pub fn apply(cx: &mut Cx, x: &TensorRef, act: &str, name: &str) -> Result<TensorRef> {
    let f = |v: f32| AttrValue::Float(v);
    let unary = |cx: &mut Cx, op: &str| cx.op(name, op, std::slice::from_ref(x), vec![]);
    match act {
        "linear" | "identity" => Ok(x.clone()),
        "relu" => unary(cx, "Relu"),
        "relu6" => cx.op(
            name,
            "Clip",
            std::slice::from_ref(x),
            vec![("min", f(0.0)), ("max", f(6.0))],
        ),
        "sigmoid" => unary(cx, "Sigmoid"),
        "tanh" => unary(cx, "Tanh"),
        "softmax" => cx.op(
            name,
            "Softmax",
            std::slice::from_ref(x),
            vec![("axis", AttrValue::Int(-1))],
        ),
        "log_softmax" => cx.op(
            name,
            "LogSoftmax",
            std::slice::from_ref(x),
            vec![("axis", AttrValue::Int(-1))],
        ),
        "elu" => unary(cx, "Elu"),
        "selu" => unary(cx, "Selu"),
        "softplus" => unary(cx, "Softplus"),
        "softsign" => unary(cx, "Softsign"),
        "swish" | "silu" => unary(cx, "SiLU"),
        "gelu" => unary(cx, "Gelu"),
        "mish" => unary(cx, "Mish"),
        "exponential" => unary(cx, "Exp"),
        "hard_swish" | "hard_silu" => unary(cx, "HardSwish"),
        // Keras 2: clip(0.2·x + 0.5); Keras 3: relu6(x + 3) / 6.
        "hard_sigmoid" if cx.keras3 => cx.op(
            name,
            "HardSigmoid",
            std::slice::from_ref(x),
            vec![("alpha", f(1.0 / 6.0)), ("beta", f(0.5))],
        ),
        "hard_sigmoid" => cx.op(
            name,
            "HardSigmoid",
            std::slice::from_ref(x),
            vec![("alpha", f(0.2)), ("beta", f(0.5))],
        ),
        "leaky_relu" => cx.op(
            name,
            "LeakyRelu",
            std::slice::from_ref(x),
            vec![("alpha", f(0.2))],
        ),
        "hard_tanh" => cx.op(
            name,
            "Clip",
            std::slice::from_ref(x),
            vec![("min", f(-1.0)), ("max", f(1.0))],
        ),
        "log_sigmoid" => {
            let neg = cx.op(
                &format!("{name}/neg"),
                "Neg",
                std::slice::from_ref(x),
                vec![],
            )?;
            let sp = cx.op(&format!("{name}/softplus"), "Softplus", &[neg], vec![])?;
            cx.op(name, "Neg", &[sp], vec![])
        }
        "tanh_shrink" => {
            let t = cx.op(
                &format!("{name}/tanh"),
                "Tanh",
                std::slice::from_ref(x),
                vec![],
            )?;
            cx.op(name, "Sub", &[x.clone(), t], vec![])
        }
        other => bail!("activation '{other}' is not supported"),
    }
}

/// Whether `act` is an activation [`apply`] knows.
pub fn known(act: &str) -> bool {
    matches!(
        act,
        "linear"
            | "identity"
            | "relu"
            | "relu6"
            | "sigmoid"
            | "tanh"
            | "softmax"
            | "log_softmax"
            | "elu"
            | "selu"
            | "softplus"
            | "softsign"
            | "swish"
            | "silu"
            | "gelu"
            | "mish"
            | "exponential"
            | "hard_swish"
            | "hard_silu"
            | "hard_sigmoid"
            | "leaky_relu"
            | "hard_tanh"
            | "log_sigmoid"
            | "tanh_shrink"
    )
}

/// Applies the layer's fused `activation`, naming the result `<layer>/<activation>`.
pub fn fused(cx: &mut Cx, l: &LayerCall, y: TensorRef) -> Result<TensorRef> {
    let act = name_of(l.cfg.get("activation"))?;
    apply(cx, &y, &act, &l.sub(&act))
}

/// Activation.
pub fn activation_layer(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let act = name_of(l.cfg.get("activation"))?;
    if act == "linear" {
        return identity(cx, l);
    }
    Ok(vec![apply(cx, &x, &act, &l.name)?])
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
            other => bail!("softmax over several axes {other:?} is not supported"),
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
