//! Pooling: Max/AveragePooling1D/2D/3D and their global forms. "same" average pooling counts
//! only real cells, as TensorFlow does (`count_include_pad` false), with explicit pads or, over
//! spatial dims not known before run time, `auto_pad`.
use super::super::convert::Cx;
use super::conv::pads;
use super::{data_format, LayerCall};
use crate::ir::{AttrValue, TensorRef};
use anyhow::{Context, Result};

fn kind(class: &str) -> &'static str {
    if class.contains("Max") {
        "MAX"
    } else {
        "AVG"
    }
}

/// MaxPooling*, AveragePooling*.
pub fn pool(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let n = cx
        .rank(&x)?
        .checked_sub(2)
        .filter(|n| (1..=3).contains(n))
        .context("expects a rank 3 to 5 input")?;
    let channels_last = l.cfg.channels_last()?;
    let key = if l.cfg.get("pool_size").is_some() {
        "pool_size"
    } else {
        "kernel_size"
    };
    let kernel = l.cfg.ints_or(key, n, 2)?;
    let strides = match l.cfg.get("strides") {
        Some(v) => super::ints_of(v, n)?,
        None => kernel.clone(),
    };
    let padding = l.cfg.str_or("padding", "valid")?;
    let pads = pads(
        cx,
        &x,
        channels_last,
        &padding,
        &kernel,
        &strides,
        &vec![1; n],
    )?;
    let mut attrs = vec![
        ("pooling_type", AttrValue::Str(kind(l.class).into())),
        ("kernel_shape", AttrValue::Ints(kernel)),
        ("strides", AttrValue::Ints(strides)),
    ];
    attrs.extend(pads.attrs());
    attrs.push(("count_include_pad", AttrValue::Bool(false)));
    attrs.push(("data_format", data_format(channels_last)));
    let y = cx.op(&l.name, "Pool", &[x], attrs)?;
    Ok(vec![y])
}

/// GlobalMaxPooling*, GlobalAveragePooling* (with `keepdims`).
pub fn global_pool(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let y = cx.op(
        &l.name,
        "GlobalPool",
        &[x],
        vec![
            ("pooling_type", AttrValue::Str(kind(l.class).into())),
            (
                "keepdims",
                AttrValue::Bool(l.cfg.bool_or("keepdims", false)?),
            ),
            ("data_format", data_format(l.cfg.channels_last()?)),
        ],
    )?;
    Ok(vec![y])
}
