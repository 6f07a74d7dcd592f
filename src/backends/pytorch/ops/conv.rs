//! Convolutions: `nn.ConvNd` and `nn.ConvTransposeNd` layers. Asymmetric padding becomes an
//! explicit `F.pad` before a convolution (SAME padding over spatial dims not known before run
//! time: the module's `same_pad` of the input's shape), and a crop of a transposed
//! convolution's output. `RuntimeConv` (kernel and bias as inputs) is `F.convNd`.
use super::{ints, Ctx, Lower, WindowPads};
use crate::ir::ops::shape_rules::{spatial_list, split_pads};
use anyhow::{bail, Result};

pub fn lookup(op: &str) -> Option<Lower> {
    Some(match op {
        "Conv" => conv,
        "ConvTranspose" => conv_transpose,
        "RuntimeConv" => runtime_conv,
        _ => return None,
    })
}

fn conv(c: &mut Ctx) -> Result<()> {
    c.channels_first()?;
    let ns = c.spatial()?;
    let w = c.info("weights")?;
    let group = c.a.int("group")?;
    let cout = c.a.int("out_channels")?;
    if w.shape.len() != ns + 2 {
        bail!(
            "weights of shape {:?} do not fit {ns} spatial axes",
            w.shape
        );
    }
    let cin = w.shape[1] as i64 * group;
    let kernel = c.a.ints("kernel_shape")?;
    let strides = spatial_list(c.a.ints("strides")?, ns, 1, "strides")?;
    let dilations = spatial_list(c.a.ints("dilations")?, ns, 1, "dilations")?;
    let pads = c.window_pads(ns)?;
    let mut args = vec![
        cin.to_string(),
        cout.to_string(),
        format!("kernel_size={}", ints(&kernel)),
    ];
    push_unless(&mut args, "stride", &strides, 1);
    let symmetric = match &pads {
        WindowPads::Explicit(pb, pe) if pb == pe => {
            push_unless(&mut args, "padding", pb, 0);
            true
        }
        _ => false,
    };
    push_unless(&mut args, "dilation", &dilations, 1);
    if group != 1 {
        args.push(format!("groups={group}"));
    }
    let bias = c.a.bool("use_bias")?;
    if !bias {
        args.push("bias=False".into());
    }
    let layer = c.layer(format!("nn.Conv{ns}d({})", args.join(", ")));
    c.entry("weight", "weights", None)?;
    if bias {
        c.entry("bias", "bias", None)?;
    }
    let mut x = c.x(0)?;
    if !symmetric {
        let f = c.func("F.pad");
        x = format!("{f}({x}, {})", pads.torch());
    }
    c.set(format!("{layer}({x})"))
}

fn runtime_conv(c: &mut Ctx) -> Result<()> {
    c.channels_first()?;
    let ns = c.spatial()?;
    let strides = spatial_list(c.a.ints("strides")?, ns, 1, "strides")?;
    let dilations = spatial_list(c.a.ints("dilations")?, ns, 1, "dilations")?;
    let pads = c.window_pads(ns)?;
    let group = c.a.int("group")?;
    let mut args = vec![c.x(0)?, c.x(1)?];
    if c.node.inputs.len() > 2 {
        args.push(c.x(2)?);
    }
    let symmetric = matches!(&pads, WindowPads::Explicit(pb, pe) if pb == pe);
    if !symmetric {
        let f = c.func("F.pad");
        args[0] = format!("{f}({}, {})", args[0], pads.torch());
    }
    push_unless(&mut args, "stride", &strides, 1);
    if let WindowPads::Explicit(pb, pe) = &pads {
        if pb == pe {
            push_unless(&mut args, "padding", pb, 0);
        }
    }
    push_unless(&mut args, "dilation", &dilations, 1);
    if group != 1 {
        args.push(format!("groups={group}"));
    }
    let f = c.func(&format!("F.conv{ns}d"));
    c.set(format!("{f}({})", args.join(", ")))
}

fn conv_transpose(c: &mut Ctx) -> Result<()> {
    c.channels_first()?;
    let ns = c.spatial()?;
    let w = c.info("weights")?;
    if w.shape.len() != ns + 2 {
        bail!(
            "weights of shape {:?} do not fit {ns} spatial axes",
            w.shape
        );
    }
    let group = c.a.int("group")?;
    let cout = c.a.int("out_channels")?;
    let cin = w.shape[0] as i64;
    let kernel = c.a.ints("kernel_shape")?;
    let strides = spatial_list(c.a.ints("strides")?, ns, 1, "strides")?;
    let dilations = spatial_list(c.a.ints("dilations")?, ns, 1, "dilations")?;
    let (pb, pe) = split_pads(c.a.ints("pads")?, ns)?;
    let extra = spatial_list(c.a.ints("output_padding")?, ns, 0, "output_padding")?;
    // torch crops `padding` at both ends and adds `output_padding` at the end; the rest of
    // an asymmetric crop is a slice of its output.
    let (mut padding, mut out_pad, mut crops) = (vec![], vec![], vec![]);
    let mut cropped = false;
    for i in 0..ns {
        let p = pb[i].min(pe[i]);
        let q = (extra[i] - (pe[i] - p)).max(0);
        if q >= strides[i].max(dilations[i]) {
            bail!(
                "output_padding {} on axis {i} is not below the stride or dilation",
                extra[i]
            );
        }
        let begin = pb[i] - p;
        let end = (pe[i] - p - extra[i]).max(0);
        cropped |= begin > 0 || end > 0;
        crops.push(match (begin, end) {
            (0, 0) => ":".to_string(),
            (b, 0) => format!("{b}:"),
            (b, e) => format!(
                "{}:-{e}",
                if b == 0 { String::new() } else { b.to_string() }
            ),
        });
        padding.push(p);
        out_pad.push(q);
    }
    let mut args = vec![
        cin.to_string(),
        cout.to_string(),
        format!("kernel_size={}", ints(&kernel)),
    ];
    push_unless(&mut args, "stride", &strides, 1);
    push_unless(&mut args, "padding", &padding, 0);
    push_unless(&mut args, "output_padding", &out_pad, 0);
    if group != 1 {
        args.push(format!("groups={group}"));
    }
    let bias = c.a.bool("use_bias")?;
    if !bias {
        args.push("bias=False".into());
    }
    push_unless(&mut args, "dilation", &dilations, 1);
    let layer = c.layer(format!("nn.ConvTranspose{ns}d({})", args.join(", ")));
    c.entry("weight", "weights", None)?;
    if bias {
        c.entry("bias", "bias", None)?;
    }
    let x = c.x(0)?;
    if cropped {
        c.set(format!("{layer}({x})[:, :, {}]", crops.join(", ")))
    } else {
        c.set(format!("{layer}({x})"))
    }
}

/// Adds `name=values` unless every value is `default`.
fn push_unless(args: &mut Vec<String>, name: &str, values: &[i64], default: i64) {
    if values.iter().any(|&v| v != default) {
        args.push(format!("{name}={}", ints(values)));
    }
}
