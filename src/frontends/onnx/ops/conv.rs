//! Convolutions, channels_first as in ONNX. Conv weights keep ONNX's layout ([out, in/group,
//! *kernel], ConvTranspose [in, out/group, *kernel]), which is the IR's channels_first layout.
//! `auto_pad` is resolved to explicit pads from the input's dims (also for pooling), or kept as
//! the IR's `auto_pad` when a strided window runs over spatial dims not known before run time. A Conv
//! whose W or B is computed at run time (or a graph input) becomes `RuntimeConv`, which takes
//! them as inputs; W's dims must be known.
use super::OpFn;
use crate::frontends::onnx::builder::{Spec, Val};
use crate::frontends::onnx::node::Ctx;
use crate::ir::ops::shape_rules::{same_pads, split_same};
use anyhow::{bail, Result};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "Conv" => conv,
        "ConvTranspose" => conv_transpose,
        _ => return None,
    })
}

/// Window geometry read from a node: kernel, strides, dilations (spatial axes).
pub struct Window {
    pub kernel: Vec<i64>,
    pub strides: Vec<i64>,
    pub dilations: Vec<i64>,
}

/// The window of a node with kernel `kernel` (absent strides and dilations are 1).
pub fn window(ctx: &Ctx, kernel: Vec<i64>) -> Result<Window> {
    let n = kernel.len();
    let list = |name: &str, v: Option<Vec<i64>>| -> Result<Vec<i64>> {
        match v {
            None => Ok(vec![1; n]),
            Some(v) if v.len() == n => Ok(v),
            Some(v) => bail!("{name} {v:?} does not fit {n} spatial axes"),
        }
    };
    let strides = list("strides", ctx.opt_ints("strides")?)?;
    let dilations = list("dilations", ctx.opt_ints("dilations")?)?;
    Ok(Window {
        kernel,
        strides,
        dilations,
    })
}

/// A window's padding: explicit pads `[begins..., ends...]`, or `auto_pad` SAME_UPPER /
/// SAME_LOWER kept as the IR's `auto_pad` (same_upper / same_lower), resolved when the model
/// runs: only for a strided window over spatial dims not known here.
pub enum Pads {
    Explicit(Vec<i64>),
    SameAtRunTime(&'static str),
}

impl Pads {
    /// `s` with the padding's attributes.
    pub fn set(self, s: Spec) -> Spec {
        match self {
            Pads::Explicit(pads) => s.ints("pads", pads),
            Pads::SameAtRunTime(mode) => s.str("auto_pad", mode),
        }
    }
}

/// The padding from `pads` / `auto_pad` for input `x` (channels_first).
pub fn pads(ctx: &Ctx, x: &Val, w: &Window) -> Result<Pads> {
    let n = w.kernel.len();
    let auto = ctx.string("auto_pad", "NOTSET")?;
    let explicit = ctx.opt_ints("pads")?;
    Ok(Pads::Explicit(match auto.as_str() {
        "NOTSET" => match explicit {
            None => vec![0; 2 * n],
            Some(p) if p.len() == 2 * n => p,
            Some(p) => bail!("pads {p:?} does not fit {n} spatial axes"),
        },
        "VALID" => vec![0; 2 * n],
        "SAME_UPPER" | "SAME_LOWER" => {
            let shape = x.shape();
            if shape.len() != n + 2 {
                bail!("input {} does not have {n} spatial axes", x.ty());
            }
            let upper = auto == "SAME_UPPER";
            match same_pads(&shape[2..], &w.kernel, &w.strides, &w.dilations, upper) {
                Some(pads) => pads,
                None if upper => return Ok(Pads::SameAtRunTime("same_upper")),
                None => return Ok(Pads::SameAtRunTime("same_lower")),
            }
        }
        other => bail!("auto_pad '{other}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID"),
    }))
}

/// The kernel: the attribute if given (it must match the weight), else the weight's dims.
fn kernel(ctx: &Ctx, weight_dims: &[usize]) -> Result<Vec<i64>> {
    let from_weight: Vec<i64> = weight_dims[2..].iter().map(|&d| d as i64).collect();
    match ctx.opt_ints("kernel_shape")? {
        Some(k) if k != from_weight => {
            bail!("kernel_shape {k:?} does not match the weight's dims {weight_dims:?}")
        }
        _ => Ok(from_weight),
    }
}

/// The `op` node (Conv or RuntimeConv) with the window, pads, groups and output channels of a
/// kernel of `dims` ([out, in/group, *kernel]).
fn window_spec(ctx: &mut Ctx, op: &'static str, x: &Val, dims: &[usize]) -> Result<Spec> {
    let win = window(ctx, kernel(ctx, dims)?)?;
    let pads = pads(ctx, x, &win)?;
    let group = ctx.int("group", 1)?;
    let s = ctx
        .spec(op)
        .ints("kernel_shape", win.kernel)
        .ints("strides", win.strides)
        .ints("dilations", win.dilations);
    Ok(pads
        .set(s)
        .int("group", group)
        .int("out_channels", dims[0] as i64))
}

fn conv(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let runtime = |v: Option<Val>| v.is_some_and(|v| !matches!(v, Val::Const(_)));
    if runtime(ctx.opt_input(1)) || runtime(ctx.opt_input(2)) {
        return runtime_conv(ctx);
    }
    let x = ctx.input(0)?;
    let w = ctx.weight(1, "the weight W")?;
    let dims = w.info.shape.clone();
    if dims.len() < 3 || x.rank() != dims.len() {
        bail!("weight {dims:?} does not fit input {}", x.ty());
    }
    let mut s = window_spec(ctx, "Conv", &x, &dims)?
        .str("data_format", "channels_first")
        .input(&x)
        .weight("weights", w);
    if ctx.opt_input(2).is_some() {
        s = s
            .flag("use_bias", true)
            .weight("bias", ctx.weight(2, "the bias B")?);
    }
    Ok(vec![ctx.emit1(s)?])
}

/// `RuntimeConv` on the inputs x, W and B (constants among them become Constant inputs).
fn runtime_conv(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let w = ctx.input(1)?;
    let dims = w.shape();
    if dims.len() < 3 || x.rank() != dims.len() {
        bail!("weight W {} does not fit input {}", w.ty(), x.ty());
    }
    if dims.iter().any(|&d| d < 0) {
        bail!(
            "weight W {} is computed at run time with dims unknown here",
            w.ty()
        );
    }
    let udims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    let mut s = window_spec(ctx, "RuntimeConv", &x, &udims)?
        .input(&x)
        .input(&w);
    if let Some(b) = ctx.opt_input(2) {
        s = s.input(&b);
    }
    Ok(vec![ctx.emit1(s)?])
}

fn conv_transpose(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let w = ctx.weight(1, "the weight W")?;
    let dims = w.info.shape.clone();
    if dims.len() < 3 || x.rank() != dims.len() {
        bail!("weight {dims:?} does not fit input {}", x.ty());
    }
    let n = dims.len() - 2;
    let win = window(ctx, kernel(ctx, &dims)?)?;
    let group = ctx.int("group", 1)?;
    let mut extra = ctx.opt_ints("output_padding")?.unwrap_or(vec![0; n]);
    if extra.len() != n {
        bail!("output_padding {extra:?} does not fit {n} spatial axes");
    }
    let auto = ctx.string("auto_pad", "NOTSET")?;
    let output_shape = ctx.opt_ints("output_shape")?;
    let pads = if output_shape.is_some() || auto.starts_with("SAME") {
        let shape = x.shape();
        let target = match output_shape {
            Some(o) if o.len() >= n => Some(o[o.len() - n..].to_vec()),
            Some(o) => bail!("output_shape {o:?} does not fit {n} spatial axes"),
            None => None,
        };
        let mut begin = vec![0; n];
        let mut end = vec![0; n];
        for i in 0..n {
            let size = shape[i + 2];
            // The full output has (size - 1)·stride + output_padding + (kernel - 1)·dilation + 1
            // cells; SAME keeps size·stride of them, whatever the size.
            let grow = extra[i] + (win.kernel[i] - 1) * win.dilations[i] + 1;
            let total = match &target {
                None => grow - win.strides[i],
                Some(_) if size < 0 => bail!(
                    "output_shape needs spatial dim {i} of input {}, unknown here; pin it with \
                     --inputShape",
                    x.ty()
                ),
                Some(t) => win.strides[i] * (size - 1) + grow - t[i],
            };
            if total < 0 {
                // The output grows past the full size: the extra lands at the end.
                extra[i] -= total;
                continue;
            }
            (begin[i], end[i]) = split_same(total, auto == "SAME_UPPER");
        }
        begin.extend(end);
        begin
    } else if auto == "VALID" {
        vec![0; 2 * n]
    } else if auto == "NOTSET" {
        match ctx.opt_ints("pads")? {
            None => vec![0; 2 * n],
            Some(p) if p.len() == 2 * n => p,
            Some(p) => bail!("pads {p:?} does not fit {n} spatial axes"),
        }
    } else {
        bail!("auto_pad '{auto}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
    };
    ctx.ignore(&["pads"]);
    let mut s = ctx
        .spec("ConvTranspose")
        .ints("kernel_shape", win.kernel)
        .ints("strides", win.strides)
        .ints("dilations", win.dilations)
        .ints("pads", pads)
        .ints("output_padding", extra)
        .int("group", group)
        .int("out_channels", dims[1] as i64 * group)
        .str("data_format", "channels_first")
        .input(&x)
        .weight("weights", w);
    if ctx.opt_input(2).is_some() {
        s = s
            .flag("use_bias", true)
            .weight("bias", ctx.weight(2, "the bias B")?);
    }
    Ok(vec![ctx.emit1(s)?])
}
