//! Activations: `Relu` (and `Relu6` / `max_value` as Clip), `LeakyRelu`, `Elu`, `PRelu`,
//! `Softmax`, `Dropout` (Identity) and the attribute-less unary ops of the same name as ours.
use super::import::{Importer, MapFn};
use super::node::MmNode;
use crate::ir::AttrValue;
use anyhow::Result;

pub(super) fn lookup(op: &str) -> Option<MapFn> {
    Some(match op {
        "Relu" | "Relu6" => relu,
        "LeakyRelu" => leaky_relu,
        "Elu" | "ELU" => elu,
        "PRelu" => prelu,
        "Softmax" => softmax,
        "Dropout" => dropout,
        _ if UNARY.contains(&op) => unary,
        _ => return None,
    })
}

/// MMdnn ops that are our attribute-less unary op of the same name.
const UNARY: &[&str] = &[
    "Sigmoid",
    "Tanh",
    "Abs",
    "Exp",
    "Log",
    "Reciprocal",
    "Square",
    "Sqrt",
    "Rsqrt",
    "Floor",
    "Softplus",
    "Softsign",
    "HardSigmoid",
];

/// Relu; Relu6, and Keras' ReLU with `max_value`, are Clip.
fn relu(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let max = match n.def.op.as_str() {
        "Relu6" => Some(6.0),
        _ => n.float("max_value")?,
    };
    let node = match max {
        Some(max) => n
            .node("Clip")
            .with_attr("min", AttrValue::Float(0.0))
            .with_attr("max", AttrValue::Float(max)),
        None => n.node("Relu"),
    };
    cx.add(node);
    Ok(())
}

fn leaky_relu(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let alpha = n.req_float("alpha")?;
    cx.add(
        n.node("LeakyRelu")
            .with_attr("alpha", AttrValue::Float(alpha)),
    );
    Ok(())
}

/// Elu (Caffe's parser writes `ELU`); alpha defaults to 1 as in Keras and Caffe.
fn elu(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let alpha = n.float("alpha")?.unwrap_or(1.0);
    cx.add(n.node("Elu").with_attr("alpha", AttrValue::Float(alpha)));
    Ok(())
}

/// PRelu: MMdnn's `gamma` weight is our `slope` (NHWC, so it broadcasts as stored).
fn prelu(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(n.node("PRelu"));
    cx.same_weight(n, "slope", &["gamma"]);
    Ok(())
}

/// Softmax over `axis` or `dim` (parsers use both), default the last axis.
fn softmax(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let axis = match n.int("axis")? {
        Some(a) => a,
        None => n.int("dim")?.unwrap_or(-1),
    };
    cx.add(n.node("Softmax").with_attr("axis", AttrValue::Int(axis)));
    Ok(())
}

fn unary(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(n.node(&n.def.op));
    Ok(())
}

/// Dropout is the identity at inference.
fn dropout(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(n.node("Identity"));
    Ok(())
}
