//! Convolutions and pooling. The layout pass has made them channels-first, which is ONNX's
//! layout; kernels are already `[out, in/group, *k]` (Conv) and `[in, out/group, *k]`
//! (ConvTranspose), and `pads` are ONNX's `[begins…, ends…]`.
use super::{Lower, A};
use crate::backends::onnx::builder::Ctx;
use anyhow::{bail, Result};

pub fn find(op: &str) -> Option<Lower> {
    Some(match op {
        "Conv" => |c| conv(c, "Conv"),
        "ConvTranspose" => |c| conv(c, "ConvTranspose"),
        "Pool" => pool,
        "GlobalPool" => global_pool,
        _ => return None,
    })
}

fn channels_first(c: &Ctx) -> Result<()> {
    if c.a.channels_last()? {
        bail!("ONNX needs channels_first here (the layout pass left channels_last)");
    }
    Ok(())
}

/// Adds list attributes that are set (an empty list means the ONNX default).
fn lists(c: &Ctx, names: &[&'static str], attrs: &mut Vec<A>) -> Result<()> {
    for &n in names {
        let v = c.a.ints(n)?;
        if !v.is_empty() {
            attrs.push(A::Is(n, v));
        }
    }
    Ok(())
}

fn conv(c: &mut Ctx, op: &str) -> Result<()> {
    channels_first(c)?;
    let mut attrs = vec![
        A::Is("kernel_shape", c.a.ints("kernel_shape")?),
        A::I("group", c.a.int("group")?),
    ];
    lists(c, &["strides", "dilations", "pads"], &mut attrs)?;
    if op == "ConvTranspose" {
        lists(c, &["output_padding"], &mut attrs)?;
    }
    let x = c.x(0)?;
    let w = c.weight("weights")?;
    let mut inputs = vec![x, w];
    if c.a.bool("use_bias")? {
        inputs.push(c.weight("bias")?);
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    c.last(op, &refs, attrs)
}

fn pool(c: &mut Ctx) -> Result<()> {
    channels_first(c)?;
    let max = c.a.str("pooling_type")? == "MAX";
    let mut attrs = vec![
        A::Is("kernel_shape", c.a.ints("kernel_shape")?),
        A::I("ceil_mode", c.a.bool("ceil_mode")? as i64),
    ];
    lists(c, &["strides", "pads"], &mut attrs)?;
    let dilations = c.a.ints("dilations")?;
    if dilations.iter().any(|&d| d != 1) {
        if !max && c.opset() < 19 {
            bail!("average pooling with dilations needs opset 19 or later");
        }
        attrs.push(A::Is("dilations", dilations));
    }
    if !max {
        attrs.push(A::I(
            "count_include_pad",
            c.a.bool("count_include_pad")? as i64,
        ));
    }
    let x = c.x(0)?;
    c.last(if max { "MaxPool" } else { "AveragePool" }, &[&x], attrs)
}

fn global_pool(c: &mut Ctx) -> Result<()> {
    channels_first(c)?;
    let op = if c.a.str("pooling_type")? == "MAX" {
        "GlobalMaxPool"
    } else {
        "GlobalAveragePool"
    };
    let x = c.x(0)?;
    if c.a.bool("keepdims")? {
        return c.last(op, &[&x], vec![]);
    }
    let p = c.op(op, &[&x], vec![]);
    c.last("Flatten", &[&p], vec![A::I("axis", 1)])
}
