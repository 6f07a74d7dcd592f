//! Dense and Embedding. Keras's kernel `[in, units]` and embedding matrix are the IR's layouts,
//! copied as stored.
use super::super::convert::Cx;
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
    Ok(vec![activation::fused(cx, l, y)?])
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
