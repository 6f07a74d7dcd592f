//! Pooling: MMdnn's `Pool`, windowed or global, MAX or AVG.
use super::import::{Importer, MapFn};
use super::node::{required, MmNode};
use super::window::Window;
use crate::ir::AttrValue;
use anyhow::{bail, Result};

pub(super) fn lookup(op: &str) -> Option<MapFn> {
    Some(match op {
        "Pool" => pool,
        _ => return None,
    })
}

/// Pool, or GlobalPool when `global_pooling` is set (keepdims unless MMdnn recorded a 2-d
/// output, as Keras' global pools give). AVG excludes padding (TensorFlow/Keras semantics).
fn pool(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let kind = required("pooling_type", n.str("pooling_type"))?.to_ascii_uppercase();
    if kind != "MAX" && kind != "AVG" {
        bail!("pooling_type '{kind}' is neither MAX nor AVG");
    }
    let node = if n.flag("global_pooling")? {
        let keepdims = cx.output_shape(n).is_none_or(|s| s.len() != 2);
        n.node("GlobalPool")
            .with_attr("keepdims", AttrValue::Bool(keepdims))
    } else {
        let ks = n.req_ints("kernel_shape")?;
        if !(3..=5).contains(&ks.len()) {
            bail!("kernel_shape {ks:?} is not [1, *window, 1] for 1 to 3 spatial axes");
        }
        let w = Window::read(cx, n, ks[1..ks.len() - 1].to_vec())?;
        w.attrs(n.node("Pool"))
            .with_attr("count_include_pad", AttrValue::Bool(false))
    };
    cx.add(
        node.with_attr("pooling_type", AttrValue::Str(kind))
            .with_attr("data_format", AttrValue::Str("channels_last".into())),
    );
    Ok(())
}
