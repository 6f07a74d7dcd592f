//! Keras activation functions (the `Activation` layer and every fused `activation=`) as IR ops.
use super::super::convert::Cx;
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
