//! Pooling, channels_first as in ONNX; `auto_pad` is resolved as for convolutions.
use super::conv::{pads, window, Pads};
use super::OpFn;
use crate::frontends::onnx::builder::Val;
use crate::frontends::onnx::node::Ctx;
use anyhow::{bail, Result};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "MaxPool" => |c| pool(c, "MAX"),
        "AveragePool" => |c| pool(c, "AVG"),
        "GlobalAveragePool" => |c| global_pool(c, "AVG"),
        "GlobalMaxPool" => |c| global_pool(c, "MAX"),
        _ => return None,
    })
}

/// MaxPool and AveragePool (ceil_mode and MaxPool dilations from opset 10, AveragePool
/// dilations from 19). MaxPool's Indices output is not mapped.
fn pool(ctx: &mut Ctx, kind: &'static str) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let kernel = ctx
        .opt_ints("kernel_shape")?
        .ok_or_else(|| anyhow::anyhow!("kernel_shape is missing"))?;
    if x.rank() != kernel.len() + 2 {
        bail!("kernel_shape {kernel:?} does not fit input {}", x.ty());
    }
    let win = window(ctx, kernel)?;
    let pads = pads(ctx, &x, &win)?;
    // SAME gives ceil(size / stride) outputs whatever ceil_mode says.
    let ceil = ctx.int("ceil_mode", 0)? == 1 && matches!(pads, Pads::Explicit(_));
    let include_pad = kind == "AVG" && ctx.int("count_include_pad", 0)? == 1;
    // storage_order only changes the Indices output.
    ctx.ignore(&["storage_order"]);
    let s = ctx
        .spec("Pool")
        .str("pooling_type", kind)
        .ints("kernel_shape", win.kernel)
        .ints("strides", win.strides)
        .ints("dilations", win.dilations);
    let s = pads
        .set(s)
        .flag("ceil_mode", ceil)
        .flag("count_include_pad", include_pad)
        .str("data_format", "channels_first")
        .input(&x);
    Ok(vec![ctx.emit1(s)?])
}

fn global_pool(ctx: &mut Ctx, kind: &'static str) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let s = ctx
        .spec("GlobalPool")
        .str("pooling_type", kind)
        .flag("keepdims", true)
        .str("data_format", "channels_first")
        .input(&x);
    Ok(vec![ctx.emit1(s)?])
}
