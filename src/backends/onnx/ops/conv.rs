//! Convolutions. The layout pass has made them channels-first, which is ONNX's layout; kernels
//! are already `[out, in/group, *k]` (Conv) and `[in, out/group, *k]` (ConvTranspose), and
//! `pads` are ONNX's `[begins…, ends…]`; the IR's `auto_pad` same_upper / same_lower is ONNX's
//! SAME_UPPER / SAME_LOWER. RuntimeConv is Conv on its inputs x, w (and b).
use super::{channels_first, Lower, A};
use crate::backends::onnx::builder::Ctx;
use crate::ir::ops::resolved_pads;
use crate::ir::ops::shape_rules::spatial_list;
use anyhow::{bail, Result};

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

/// The node's padding in ONNX: explicit pads `[begins…, ends…]` (its own, or its `auto_pad`
/// resolved over spatial sizes known here), or ONNX's `auto_pad` SAME_UPPER / SAME_LOWER.
pub enum Padding {
    Explicit(Vec<i64>),
    Auto(A),
}

/// The padding of a Conv (`pool` false) or Pool node. onnxruntime computes SAME padding wrongly
/// or not at all for dilated windows and for pools whose window is narrower than their stride:
/// those need known spatial sizes.
pub fn padding(c: &Ctx, pool: bool) -> Result<Padding> {
    let mode = match c.a.str("auto_pad")?.as_str() {
        "same_upper" => "SAME_UPPER",
        "same_lower" => "SAME_LOWER",
        _ => return Ok(Padding::Explicit(c.a.ints("pads")?)),
    };
    let sizes = c.in_ty(0)?.shape[2..].to_vec();
    if sizes.iter().all(|&d| d >= 0) {
        return Ok(Padding::Explicit(resolved_pads(&c.a, &sizes)?));
    }
    let kernel = c.a.ints("kernel_shape")?;
    let n = kernel.len();
    let strides = spatial_list(c.a.ints("strides")?, n, 1, "strides")?;
    let dilations = spatial_list(c.a.ints("dilations")?, n, 1, "dilations")?;
    if dilations.iter().any(|&d| d != 1) {
        bail!(
            "SAME padding at run time with dilations {dilations:?} is not computed right by \
             onnxruntime; pin the spatial dims (--inputShape or --dim)"
        );
    }
    if pool && kernel.iter().zip(&strides).any(|(k, s)| k < s) {
        bail!(
            "SAME padding at run time of a pool whose window {kernel:?} is narrower than its \
             stride {strides:?} is not computed right by onnxruntime; pin the spatial dims \
             (--inputShape or --dim)"
        );
    }
    Ok(Padding::Auto(A::S("auto_pad", mode.into())))
}

fn conv(c: &mut Ctx, op: &str) -> Result<()> {
    channels_first(c)?;
    let mut attrs = vec![
        A::Is("kernel_shape", c.a.ints("kernel_shape")?),
        A::I("group", c.a.int("group")?),
    ];
    lists(c, &["strides", "dilations"], &mut attrs)?;
    if op == "ConvTranspose" {
        lists(c, &["pads"], &mut attrs)?;
    } else {
        match padding(c, false)? {
            Padding::Explicit(pads) if pads.is_empty() => {}
            Padding::Explicit(pads) => attrs.push(A::Is("pads", pads)),
            Padding::Auto(auto_pad) => attrs.push(auto_pad),
        }
    }
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

#[cfg(test)]
mod tests {
    use crate::backends::onnx::{build, Options};
    use crate::backends::pytorch::test_graph::{channels_first, OneOp};
    use crate::ir::dim;

    fn error(op: OneOp) -> String {
        let (graph, weights) = op.build();
        let prepared = channels_first(&graph, &weights).expect("converts the layout");
        let built = build(prepared, Options::default());
        match built {
            Ok(_) => panic!("expected an error"),
            Err(e) => format!("{e:#}"),
        }
    }

    /// onnxruntime gets SAME padding wrong for dilated windows and for pools narrower than
    /// their stride (it refuses them or gives other sizes): refused over unknown sizes.
    #[test]
    fn same_padding_onnxruntime_gets_wrong_is_refused() {
        let dilated = OneOp::new("Conv")
            .input("x", &[1, 2, dim::symbol("H")])
            .ints("kernel_shape", &[3])
            .ints("strides", &[2])
            .ints("dilations", &[2])
            .str("auto_pad", "same_upper")
            .int("out_channels", 2)
            .weight("weights", &[2, 2, 3]);
        let e = error(dilated);
        assert!(
            e.contains("with dilations [2] is not computed right"),
            "{e}"
        );
        let narrow = OneOp::new("Pool")
            .input("x", &[1, 2, dim::symbol("H")])
            .ints("kernel_shape", &[1])
            .ints("strides", &[2])
            .str("auto_pad", "same_upper");
        let e = error(narrow);
        assert!(
            e.contains("window [1] is narrower than its stride [2]"),
            "{e}"
        );
    }
}
