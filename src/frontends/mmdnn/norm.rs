//! Normalisation: `BatchNorm` and `LRN` over MMdnn's NHWC channel axis.
use super::import::{Importer, MapFn};
use super::node::MmNode;
use crate::ir::AttrValue;
use anyhow::Result;

pub(super) fn lookup(op: &str) -> Option<MapFn> {
    Some(match op {
        "BatchNorm" => batch_norm,
        "LRN" => lrn,
        _ => return None,
    })
}

/// BatchNorm over MMdnn's `axis` (an NHWC axis; default the last).
fn batch_norm(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(
        n.node("BatchNorm")
            .with_attr("axis", AttrValue::Int(n.int("axis")?.unwrap_or(-1)))
            .with_attr("epsilon", AttrValue::Float(n.req_float("epsilon")?))
            .with_attr("use_scale", AttrValue::Bool(n.flag("scale")?))
            .with_attr("use_bias", AttrValue::Bool(n.flag("bias")?)),
    );
    cx.same_weight(n, "mean", &["mean"]);
    cx.same_weight(n, "var", &["var"]);
    cx.same_weight(n, "scale", &["scale"]);
    cx.same_weight(n, "bias", &["bias"]);
    Ok(())
}

/// LRN across channels; MMdnn's alpha is already divided by size in the formula (Caffe's).
fn lrn(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(
        n.node("LRN")
            .with_attr("size", AttrValue::Int(n.req_int("size")?))
            .with_attr("alpha", AttrValue::Float(n.req_float("alpha")?))
            .with_attr("beta", AttrValue::Float(n.req_float("beta")?))
            .with_attr("bias", AttrValue::Float(n.req_float("bias")?))
            .with_attr("axis", AttrValue::Int(-1)),
    );
    Ok(())
}
