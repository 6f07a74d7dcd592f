//! Convolutions: Conv1D/2D/3D, their transposes, depthwise and separable convolutions. Keras
//! kernels are `[*kernel, in/groups, out]` — the IR's channels_last layout — so they are copied
//! as stored (depthwise kernels only change shape); a channels_first layer gets its kernel
//! permuted to `[out, in/groups, *kernel]`. "same" padding becomes explicit pads (TensorFlow's
//! rule: the odd pixel at the end), or `auto_pad` same_upper when a strided window runs over a
//! spatial dim not known before run time; "causal" pads the beginning only.
use super::super::convert::Cx;
use super::{activation, data_format, LayerCall};
use crate::ir::ops::shape_rules::{check_window, same_pad_total, spatial_axes, split_same};
use crate::ir::{AttrValue, TensorRef};
use crate::weights::derived::Step;
use anyhow::{bail, Context, Result};

/// How a window pads: explicit pads `[begins…, ends…]`, or SAME padding resolved at run time
/// (`auto_pad` same_upper) for a strided window over a spatial dim not known here.
pub enum Pads {
    Explicit(Vec<i64>),
    SameAtRunTime,
}

impl Pads {
    /// The node's padding attributes (static models keep their explicit pads alone).
    pub fn attrs(self) -> Vec<(&'static str, AttrValue)> {
        match self {
            Pads::Explicit(pads) => vec![("pads", AttrValue::Ints(pads))],
            Pads::SameAtRunTime => vec![("auto_pad", AttrValue::Str("same_upper".into()))],
        }
    }
}

/// The pads of Keras padding mode `padding`.
pub fn pads(
    cx: &Cx,
    x: &TensorRef,
    channels_last: bool,
    padding: &str,
    kernel: &[i64],
    strides: &[i64],
    dilations: &[i64],
) -> Result<Pads> {
    check_window(kernel, strides, dilations, &[])?;
    let n = kernel.len();
    let shape = cx.shape(x)?;
    let (_, axes) = spatial_axes(shape.len(), channels_last);
    let mut begin = vec![0; n];
    let mut end = vec![0; n];
    match padding {
        "valid" => {}
        "causal" => {
            for i in 0..n {
                begin[i] = (kernel[i] - 1) * dilations[i];
            }
        }
        "same" => {
            for i in 0..n {
                let d = shape[axes[i]];
                let Some(total) = same_pad_total(d, kernel[i], strides[i], dilations[i]) else {
                    // A strided window over a size not known here: the pads depend on it.
                    return Ok(Pads::SameAtRunTime);
                };
                (begin[i], end[i]) = split_same(total, true);
            }
        }
        other => bail!("padding '{other}' is not supported"),
    }
    begin.extend(end);
    Ok(Pads::Explicit(begin))
}

/// Geometry shared by the convolution layers.
struct Geometry {
    n: usize,
    channels_last: bool,
    kernel: Vec<i64>,
    strides: Vec<i64>,
    dilations: Vec<i64>,
    padding: String,
}

impl Geometry {
    fn read(cx: &Cx, l: &LayerCall, x: &TensorRef) -> Result<Geometry> {
        let n = cx
            .rank(x)?
            .checked_sub(2)
            .filter(|n| (1..=3).contains(n))
            .with_context(|| {
                format!(
                    "expects a rank 3 to 5 input, got {}",
                    cx.ty(x).map(|t| t.to_string()).unwrap_or_default()
                )
            })?;
        Ok(Geometry {
            n,
            channels_last: l.cfg.channels_last()?,
            kernel: l.cfg.ints("kernel_size", n)?,
            strides: l.cfg.ints_or("strides", n, 1)?,
            dilations: l.cfg.ints_or("dilation_rate", n, 1)?,
            padding: l.cfg.str_or("padding", "valid")?,
        })
    }

    fn attrs(&self, pads: Pads) -> Vec<(&'static str, AttrValue)> {
        let mut attrs = vec![
            ("kernel_shape", AttrValue::Ints(self.kernel.clone())),
            ("strides", AttrValue::Ints(self.strides.clone())),
            ("dilations", AttrValue::Ints(self.dilations.clone())),
        ];
        attrs.extend(pads.attrs());
        attrs.push(("data_format", data_format(self.channels_last)));
        attrs
    }

    /// The kernel transform: none for channels_last, else `[*k, i, o]` → `[o, i, *k]`.
    fn kernel_transform(&self) -> Vec<Step> {
        if self.channels_last {
            vec![]
        } else {
            let n = self.n;
            let mut perm = vec![n + 1, n];
            perm.extend(0..n);
            vec![Step::Permute(perm)]
        }
    }
}

/// Conv1D, Conv2D, Conv3D.
pub fn conv(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let g = Geometry::read(cx, l, &x)?;
    let pads = pads(
        cx,
        &x,
        g.channels_last,
        &g.padding,
        &g.kernel,
        &g.strides,
        &g.dilations,
    )?;
    let use_bias = l.cfg.bool_or("use_bias", true)?;
    let mut attrs = g.attrs(pads);
    attrs.push(("group", AttrValue::Int(l.cfg.int_or("groups", 1)?)));
    attrs.push(("out_channels", AttrValue::Int(l.cfg.int("filters")?)));
    attrs.push(("use_bias", AttrValue::Bool(use_bias)));
    let y = cx.op(&l.name, "Conv", &[x], attrs)?;
    cx.weight(&y, "weights", l.var(0)?, g.kernel_transform());
    if use_bias {
        cx.weight(&y, "bias", l.var(1)?, vec![]);
    }
    Ok(vec![activation::fused(cx, l, y)?])
}

/// Conv1DTranspose, Conv2DTranspose, Conv3DTranspose: Keras's output size rule, expressed as
/// cropping pads (or output_padding when the output is larger than the full result). The crop
/// does not depend on the input's size, which may be unknown.
pub fn conv_transpose(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let g = Geometry::read(cx, l, &x)?;
    let out_pad = match l.cfg.get("output_padding") {
        Some(v) => Some(super::ints_of(v, g.n)?),
        None => None,
    };
    let (mut begin, mut end, mut extra) = (vec![], vec![], vec![]);
    for i in 0..g.n {
        let (k, s) = ((g.kernel[i] - 1) * g.dilations[i] + 1, g.strides[i]);
        // The full result has (size - 1)·s + k cells; Keras keeps size·s + max(k - s, 0)
        // (valid), size·s (same), (size - 1)·s + k + p (valid with output_padding p) or
        // (size - 1)·s + k - 2·(k // 2) + p (same with p): the crop is the difference.
        let total = match (&out_pad, g.padding.as_str()) {
            (None, "valid") => (k - s).min(0),
            (None, "same") => k - s,
            (Some(p), "valid") => -p[i],
            (Some(p), "same") => 2 * (k / 2) - p[i],
            (_, other) => bail!("padding '{other}' is not supported"),
        };
        if total >= 0 {
            let (b, e) = split_same(total, true);
            begin.push(b);
            end.push(e);
            extra.push(0);
        } else {
            begin.push(0);
            end.push(0);
            extra.push(-total);
        }
    }
    begin.extend(end);
    let use_bias = l.cfg.bool_or("use_bias", true)?;
    let mut attrs = g.attrs(Pads::Explicit(begin));
    attrs.push(("output_padding", AttrValue::Ints(extra)));
    attrs.push(("out_channels", AttrValue::Int(l.cfg.int("filters")?)));
    attrs.push(("use_bias", AttrValue::Bool(use_bias)));
    let y = cx.op(&l.name, "ConvTranspose", &[x], attrs)?;
    // Keras's [*k, out, in] is the IR's channels_last layout; channels_first wants [in, out, *k].
    cx.weight(&y, "weights", l.var(0)?, g.kernel_transform());
    if use_bias {
        cx.weight(&y, "bias", l.var(1)?, vec![]);
    }
    Ok(vec![activation::fused(cx, l, y)?])
}

/// A depthwise convolution node (group = the `c` input channels) on `x`.
fn depthwise_node(
    cx: &mut Cx,
    name: &str,
    x: TensorRef,
    g: &Geometry,
    (c, mult): (usize, usize),
    use_bias: bool,
) -> Result<TensorRef> {
    let pads = pads(
        cx,
        &x,
        g.channels_last,
        &g.padding,
        &g.kernel,
        &g.strides,
        &g.dilations,
    )?;
    let mut attrs = g.attrs(pads);
    attrs.push(("group", AttrValue::Int(c as i64)));
    attrs.push(("out_channels", AttrValue::Int((c * mult) as i64)));
    attrs.push(("use_bias", AttrValue::Bool(use_bias)));
    cx.op(name, "Conv", &[x], attrs)
}

/// The depthwise kernel `[*k, C, mult]` as IR weights: `[*k, 1, C·mult]` channels_last,
/// `[C·mult, 1, *k]` channels_first.
fn depthwise_kernel(g: &Geometry, c: usize, mult: usize) -> Vec<Step> {
    let k: Vec<usize> = g.kernel.iter().map(|&v| v as usize).collect();
    if g.channels_last {
        let mut to = k;
        to.extend([1, c * mult]);
        vec![Step::Reshape(to)]
    } else {
        let n = g.n;
        let mut perm = vec![n, n + 1];
        perm.extend(0..n);
        let mut to = vec![c * mult, 1];
        to.extend(k);
        vec![Step::Permute(perm), Step::Reshape(to)]
    }
}

fn channels(cx: &Cx, x: &TensorRef, channels_last: bool) -> Result<usize> {
    let shape = cx.shape(x)?;
    let c = shape[spatial_axes(shape.len(), channels_last).0];
    usize::try_from(c).context("needs a known number of input channels")
}

/// DepthwiseConv1D, DepthwiseConv2D.
pub fn depthwise(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let g = Geometry::read(cx, l, &x)?;
    let mult = l.cfg.int_or("depth_multiplier", 1)? as usize;
    let use_bias = l.cfg.bool_or("use_bias", true)?;
    let c = channels(cx, &x, g.channels_last)?;
    let y = depthwise_node(cx, &l.name, x, &g, (c, mult), use_bias)?;
    cx.weight(&y, "weights", l.var(0)?, depthwise_kernel(&g, c, mult));
    if use_bias {
        cx.weight(&y, "bias", l.var(1)?, vec![]);
    }
    Ok(vec![activation::fused(cx, l, y)?])
}

/// SeparableConv1D, SeparableConv2D: a depthwise Conv (`<layer>/depthwise`) then a 1×1 Conv
/// carrying the layer's name and bias.
pub fn separable(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let g = Geometry::read(cx, l, &x)?;
    let mult = l.cfg.int_or("depth_multiplier", 1)? as usize;
    let use_bias = l.cfg.bool_or("use_bias", true)?;
    let c = channels(cx, &x, g.channels_last)?;
    let dw = depthwise_node(cx, &l.sub("depthwise"), x, &g, (c, mult), false)?;
    cx.weight(&dw, "weights", l.var(0)?, depthwise_kernel(&g, c, mult));
    let point = Geometry {
        n: g.n,
        channels_last: g.channels_last,
        kernel: vec![1; g.n],
        strides: vec![1; g.n],
        dilations: vec![1; g.n],
        padding: "valid".into(),
    };
    let mut attrs = point.attrs(Pads::Explicit(vec![0; 2 * g.n]));
    attrs.push(("out_channels", AttrValue::Int(l.cfg.int("filters")?)));
    attrs.push(("use_bias", AttrValue::Bool(use_bias)));
    let y = cx.op(&l.name, "Conv", &[dw], attrs)?;
    cx.weight(&y, "weights", l.var(1)?, point.kernel_transform());
    if use_bias {
        cx.weight(&y, "bias", l.var(2)?, vec![]);
    }
    Ok(vec![activation::fused(cx, l, y)?])
}
