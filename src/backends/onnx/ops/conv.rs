//! Convolutions. The layout pass has made them channels-first, which is ONNX's layout; kernels
//! are already `[out, in/group, *k]` (Conv) and `[in, out/group, *k]` (ConvTranspose), and
//! `pads` are ONNX's `[begins…, ends…]`. RuntimeConv is Conv on its inputs x, w (and b).
use super::{channels_first, Lower, A};
use crate::backends::onnx::builder::Ctx;
use anyhow::Result;

pub fn find(op: &str) -> Option<Lower> {
    Some(match op {
        "Conv" => |c| conv(c, "Conv"),
        "ConvTranspose" => |c| conv(c, "ConvTranspose"),
        "RuntimeConv" => |c| conv(c, "RuntimeConv"),
        _ => return None,
    })
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
    let mut inputs = vec![c.x(0)?];
    if op == "RuntimeConv" {
        for k in 1..c.node.inputs.len() {
            inputs.push(c.x(k)?);
        }
    } else {
        inputs.push(c.weight("weights")?);
        if c.a.bool("use_bias")? {
            inputs.push(c.weight("bias")?);
        }
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let onnx_op = if op == "RuntimeConv" { "Conv" } else { op };
    c.last(onnx_op, &refs, attrs)
}
