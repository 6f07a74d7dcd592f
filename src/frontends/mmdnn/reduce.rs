//! Reductions: `ReduceMean`.
use super::import::{Importer, MapFn};
use super::node::MmNode;
use crate::ir::AttrValue;
use anyhow::Result;

pub(super) fn lookup(op: &str) -> Option<MapFn> {
    Some(match op {
        "ReduceMean" => reduce_mean,
        _ => return None,
    })
}

/// ReduceMean; absent axes = all, absent keepdims = false (as MMdnn's emitters read it).
fn reduce_mean(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(
        n.node("ReduceMean")
            .with_attr("axes", AttrValue::Ints(n.ints("axes")?.unwrap_or_default()))
            .with_attr("keepdims", AttrValue::Bool(n.flag("keepdims")?)),
    );
    Ok(())
}
