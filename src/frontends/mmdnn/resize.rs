//! Resizing: Keras' `UpSampling2D` as a nearest-neighbour Resize.
use super::import::{Importer, MapFn};
use super::node::{required, MmNode};
use crate::ir::AttrValue;
use anyhow::Result;

pub(super) fn lookup(op: &str) -> Option<MapFn> {
    Some(match op {
        "UpSampling2D" => upsampling,
        _ => return None,
    })
}

/// UpSampling2D (Keras): nearest-neighbour repetition by integer `scales`.
fn upsampling(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let scales = required("scales", n.floats("scales"))?;
    cx.add(
        n.node("Resize")
            .with_attr("mode", AttrValue::Str("nearest".into()))
            .with_attr("scales", AttrValue::Floats(scales))
            .with_attr(
                "coordinate_transformation_mode",
                AttrValue::Str("asymmetric".into()),
            )
            .with_attr("nearest_mode", AttrValue::Str("floor".into()))
            .with_attr("data_format", AttrValue::Str("channels_last".into())),
    );
    Ok(())
}
