//! Convolutions. Depthwise convolution is `Conv` with `group` = input channels; a separable
//! convolution is a depthwise `Conv` followed by a 1×1 `Conv`. `RuntimeConv` is `Conv` with its
//! kernel and bias as inputs (values computed at run time or graph inputs), channels_first only.
//! Conv, RuntimeConv and Pool pad explicitly (`pads`) or, with `auto_pad`, by the SAME rule
//! applied to the input's sizes at run time (for strided windows over dims not known before).
use super::shape_rules::{
    check_window, same_pad_total, same_pads, spatial_axes, spatial_list, split_pads, split_same,
    window_out, MAX_WINDOW,
};
use super::*;
use crate::ir::types::AttrKind as K;

const WINDOW_ATTRS: [AttrDef; 4] = [
    attr(
        "kernel_shape",
        K::Ints,
        Default::Required,
        "kernel size per spatial axis",
    ),
    attr(
        "strides",
        K::Ints,
        Default::Ints(&[]),
        "stride per spatial axis (empty: all 1)",
    ),
    attr(
        "dilations",
        K::Ints,
        Default::Ints(&[]),
        "dilation per spatial axis (empty: all 1)",
    ),
    attr(
        "pads",
        K::Ints,
        Default::Ints(&[]),
        "explicit padding [begin per spatial axis..., end per spatial axis...] (empty: none)",
    ),
];

/// `auto_pad` of Conv, RuntimeConv and Pool.
pub const AUTO_PAD: AttrDef = choice(
    "auto_pad",
    "explicit",
    &["explicit", "same_upper", "same_lower"],
    "explicit: `pads` as given; same_upper / same_lower: SAME padding of the input's spatial \
     sizes, computed when it runs (`pads` empty): ceil(size / stride) outputs, total padding \
     max((ceil(size / stride) - 1) * stride + dilation * (kernel - 1) + 1 - size, 0), half at \
     each end and the odd cell at the end (same_upper, TensorFlow's rule) or at the begin \
     (same_lower); a Pool treats them as explicit pads and must not be in ceil_mode. Readers \
     use it only for a strided window over a spatial dim not known before run time",
);

pub const OPS: &[OpDef] = &[
    OpDef {
        name: "Conv",
        family: Family::Conv,
        doc: "N-d convolution (1-d to 3-d) with groups; cross-correlation as in every framework.",
        inputs: ONE_INPUT,
        outputs: ONE_OUTPUT,
        attrs: &[
            WINDOW_ATTRS[0],
            WINDOW_ATTRS[1],
            WINDOW_ATTRS[2],
            WINDOW_ATTRS[3],
            AUTO_PAD,
            attr(
                "group",
                K::Int,
                Default::Int(1),
                "number of groups; = in channels for depthwise",
            ),
            attr(
                "out_channels",
                K::Int,
                Default::Required,
                "number of output channels",
            ),
            attr(
                "use_bias",
                K::Bool,
                Default::Bool(false),
                "whether the `bias` weight exists",
            ),
            DATA_FORMAT,
        ],
        weights: &[
            weight(
                "weights",
                "channels_first: [out, in/group, *kernel]; channels_last: [*kernel, in/group, out]",
            )
            .shaped(conv_kernel_shape),
            optional_weight("bias", "[out]; present when use_bias").shaped(out_channels_shape),
        ],
        layout: Layout::DataFormat {
            kernel: Some(Kernel::OutIn),
        },
        infer: infer_conv,
    },
    OpDef {
        name: "RuntimeConv",
        family: Family::Conv,
        doc: "Conv whose kernel w [out, in/group, *kernel] and bias b [out] are inputs (computed \
              at run time), channels_first.",
        inputs: Inputs::Fixed {
            names: &["x", "w", "b"],
            required: 2,
        },
        outputs: ONE_OUTPUT,
        attrs: &[
            WINDOW_ATTRS[0],
            WINDOW_ATTRS[1],
            WINDOW_ATTRS[2],
            WINDOW_ATTRS[3],
            AUTO_PAD,
            attr("group", K::Int, Default::Int(1), "number of groups"),
            attr(
                "out_channels",
                K::Int,
                Default::Required,
                "number of output channels (w's first dim)",
            ),
            choice(
                "data_format",
                "channels_first",
                &["channels_first"],
                "[N, C, *spatial] only; kept by the layout pass",
            ),
        ],
        weights: &[],
        layout: Layout::Fixed,
        infer: infer_runtime_conv,
    },
    OpDef {
        name: "ConvTranspose",
        family: Family::Conv,
        doc: "N-d transposed convolution (gradient of Conv w.r.t. its input).",
        inputs: ONE_INPUT,
        outputs: ONE_OUTPUT,
        attrs: &[
            WINDOW_ATTRS[0],
            WINDOW_ATTRS[1],
            WINDOW_ATTRS[2],
            attr(
                "pads",
                K::Ints,
                Default::Ints(&[]),
                "amount cropped from the full output [begins..., ends...] (empty: none)",
            ),
            attr(
                "output_padding",
                K::Ints,
                Default::Ints(&[]),
                "extra size added at the end of each spatial axis (empty: none)",
            ),
            attr("group", K::Int, Default::Int(1), "number of groups"),
            attr(
                "out_channels",
                K::Int,
                Default::Required,
                "number of output channels",
            ),
            attr(
                "use_bias",
                K::Bool,
                Default::Bool(false),
                "whether the `bias` weight exists",
            ),
            DATA_FORMAT,
        ],
        weights: &[
            weight(
                "weights",
                "channels_first: [in, out/group, *kernel]; channels_last: [*kernel, out/group, in]",
            )
            .shaped(conv_transpose_kernel_shape),
            optional_weight("bias", "[out]; present when use_bias").shaped(out_channels_shape),
        ],
        layout: Layout::DataFormat {
            kernel: Some(Kernel::InOut),
        },
        infer: infer_conv_transpose,
    },
];

/// Spatial geometry of a windowed op, read from its attributes for an input of `rank`.
pub struct Window {
    pub kernel: Vec<i64>,
    pub strides: Vec<i64>,
    pub dilations: Vec<i64>,
    /// Explicit pads (zero with `auto_pad`: see [`Window::pads_for`]).
    pub pad_begin: Vec<i64>,
    pub pad_end: Vec<i64>,
    /// `auto_pad` same_upper (`Some(true)`: the odd cell at the end) or same_lower.
    pub same: Option<bool>,
}

impl Window {
    pub fn read(attrs: &Attrs, n_spatial: usize) -> Result<Window> {
        let kernel = attrs.ints("kernel_shape")?;
        if kernel.len() != n_spatial {
            bail!(
                "kernel_shape has {} values but the input has {n_spatial} spatial axes",
                kernel.len()
            );
        }
        let strides = spatial_list(attrs.ints("strides")?, n_spatial, 1, "strides")?;
        let dilations = match attrs.def.attr("dilations") {
            Some(_) => spatial_list(attrs.ints("dilations")?, n_spatial, 1, "dilations")?,
            None => vec![1; n_spatial],
        };
        let same = same_mode(attrs)?;
        let pads = attrs.ints("pads")?;
        if same.is_some() && !pads.is_empty() {
            bail!(
                "pads {pads:?} are given with auto_pad {}",
                attrs.str("auto_pad")?
            );
        }
        let (pad_begin, pad_end) = split_pads(pads, n_spatial)?;
        let pads = [&pad_begin[..], &pad_end[..]].concat();
        check_window(&kernel, &strides, &dilations, &pads)?;
        Ok(Window {
            kernel,
            strides,
            dilations,
            pad_begin,
            pad_end,
            same,
        })
    }

    /// The pads (begins, ends) over spatial sizes `sizes`: the explicit ones, or the SAME
    /// padding of those sizes (which must be known where the stride is above 1).
    pub fn pads_for(&self, sizes: &[i64]) -> Result<(Vec<i64>, Vec<i64>)> {
        let Some(odd_at_end) = self.same else {
            return Ok((self.pad_begin.clone(), self.pad_end.clone()));
        };
        let pads = same_pads(
            sizes,
            &self.kernel,
            &self.strides,
            &self.dilations,
            odd_at_end,
        )
        .with_context(|| {
            format!(
                "SAME padding of spatial sizes {} needs them known",
                crate::ir::types::shape_string(sizes)
            )
        })?;
        split_pads(pads, sizes.len())
    }

    /// The output size of spatial axis `i` of size `size` (ceil mode for pooling): with
    /// `auto_pad`, ceil(size / stride), also of a symbolic size.
    pub fn out_size(&self, i: usize, size: i64, ceil_mode: bool) -> Result<i64> {
        let (k, s, d) = (self.kernel[i], self.strides[i], self.dilations[i]);
        match self.same {
            Some(_) if size < 0 => crate::ir::dim::ceil_div(size, s),
            Some(odd_at_end) => {
                let (b, e) = split_same(
                    same_pad_total(size, k, s, d).context("SAME padding overflows")?,
                    odd_at_end,
                );
                window_out(size, k, s, d, b, e, ceil_mode)
            }
            None => window_out(size, k, s, d, self.pad_begin[i], self.pad_end[i], ceil_mode),
        }
    }
}

/// `auto_pad` of an op that has it: `Some(odd_at_end)` for same_upper / same_lower.
fn same_mode(attrs: &Attrs) -> Result<Option<bool>> {
    if attrs.def.attr("auto_pad").is_none() {
        return Ok(None);
    }
    Ok(match attrs.str("auto_pad")?.as_str() {
        "same_upper" => Some(true),
        "same_lower" => Some(false),
        _ => None,
    })
}

/// The explicit pads `[begins..., ends...]` a windowed op applies to an input of spatial sizes
/// `sizes` (known, at run time): its `pads`, or its `auto_pad` resolved.
pub fn resolved_pads(attrs: &Attrs, sizes: &[i64]) -> Result<Vec<i64>> {
    if same_mode(attrs)?.is_none() {
        return attrs.ints("pads");
    }
    let w = Window::read(attrs, sizes.len())?;
    let (mut begin, end) = w.pads_for(sizes)?;
    begin.extend(end);
    Ok(begin)
}

fn activation_rank(ctx: &InferCtx) -> Result<usize> {
    let rank = ctx.input(0)?.rank();
    if !(3..=5).contains(&rank) {
        bail!("expects a rank 3 to 5 input, got {}", ctx.input(0)?);
    }
    Ok(rank)
}

/// A kernel's shape: `[a, b, *kernel]` channels first, `[*kernel, b, a]` channels last.
fn kernel_shape(ctx: &InferCtx, a: i64, b: i64) -> Result<Vec<i64>> {
    let kernel = ctx.attrs.ints("kernel_shape")?;
    Ok(if ctx.attrs.channels_last()? {
        kernel.iter().copied().chain([b, a]).collect()
    } else {
        [a, b].into_iter().chain(kernel.iter().copied()).collect()
    })
}

/// `channels / group`, or -1 when the channels are unknown.
fn per_group(channels: i64, ctx: &InferCtx) -> Result<i64> {
    let group = ctx.attrs.int("group")?;
    Ok(if channels < 0 || group <= 0 {
        -1
    } else {
        channels / group
    })
}

fn input_channels(ctx: &InferCtx) -> Result<i64> {
    let x = ctx.input(0)?;
    let (c_axis, _) = spatial_axes(x.rank(), ctx.attrs.channels_last()?);
    Ok(x.shape[c_axis])
}

fn conv_kernel_shape(ctx: &InferCtx) -> Result<Vec<i64>> {
    let in_per_group = per_group(input_channels(ctx)?, ctx)?;
    kernel_shape(ctx, ctx.attrs.int("out_channels")?, in_per_group)
}

fn conv_transpose_kernel_shape(ctx: &InferCtx) -> Result<Vec<i64>> {
    let out_per_group = per_group(ctx.attrs.int("out_channels")?, ctx)?;
    kernel_shape(ctx, input_channels(ctx)?, out_per_group)
}

fn out_channels_shape(ctx: &InferCtx) -> Result<Vec<i64>> {
    Ok(vec![ctx.attrs.int("out_channels")?])
}

fn infer_conv(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let rank = activation_rank(ctx)?;
    let x = ctx.input(0)?;
    let (c_axis, spatial) = spatial_axes(rank, ctx.attrs.channels_last()?);
    let w = Window::read(&ctx.attrs, spatial.len())?;
    let group = ctx.attrs.int("group")?;
    let in_c = x.shape[c_axis];
    if in_c > 0 && (group <= 0 || in_c % group != 0) {
        bail!("{in_c} input channels are not divisible into {group} groups");
    }
    let mut shape = x.shape.clone();
    shape[c_axis] = ctx.attrs.int("out_channels")?;
    for (i, &a) in spatial.iter().enumerate() {
        shape[a] = w.out_size(i, x.shape[a], false)?;
    }
    Ok(vec![TensorType::new(x.dtype, shape)])
}

/// Conv's rule, with the kernel and bias inputs checked against it where their dims are known.
fn infer_runtime_conv(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let out = infer_conv(ctx)?;
    let x = ctx.input(0)?;
    let in_per_group = per_group(input_channels(ctx)?, ctx)?;
    let want = kernel_shape(ctx, ctx.attrs.int("out_channels")?, in_per_group)?;
    let fits = |t: &TensorType, want: &[i64]| {
        t.dtype == x.dtype
            && t.rank() == want.len()
            && t.shape
                .iter()
                .zip(want)
                .all(|(&g, &w)| g < 0 || w < 0 || g == w)
    };
    let w = ctx.input(1)?;
    if !fits(w, &want) {
        bail!("kernel w is {w}; expected {}{want:?}", x.dtype);
    }
    if let Some(b) = ctx.inputs.get(2) {
        let want = [ctx.attrs.int("out_channels")?];
        if !fits(b, &want) {
            bail!("bias b is {b}; expected {}{want:?}", x.dtype);
        }
    }
    Ok(out)
}

fn infer_conv_transpose(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let rank = activation_rank(ctx)?;
    let x = ctx.input(0)?;
    let (c_axis, spatial) = spatial_axes(rank, ctx.attrs.channels_last()?);
    let w = Window::read(&ctx.attrs, spatial.len())?;
    let extra = spatial_list(
        ctx.attrs.ints("output_padding")?,
        spatial.len(),
        0,
        "output_padding",
    )?;
    if let Some(v) = extra.iter().find(|&&v| !(0..=MAX_WINDOW).contains(&v)) {
        bail!("output_padding {extra:?}: {v} is not between 0 and {MAX_WINDOW}");
    }
    let mut shape = x.shape.clone();
    shape[c_axis] = ctx.attrs.int("out_channels")?;
    for (i, &a) in spatial.iter().enumerate() {
        // (size - 1) * stride + dilation * (kernel - 1) + output_padding + 1 - pads. The
        // window's terms are below 2^31 (check_window); only the input size is large.
        let grow =
            w.dilations[i] * (w.kernel[i] - 1) + extra[i] + 1 - w.pad_begin[i] - w.pad_end[i];
        shape[a] = crate::ir::dim::offset(x.shape[a], -1)
            .and_then(|d| crate::ir::dim::mul(d, w.strides[i]))
            .and_then(|d| crate::ir::dim::offset(d, grow))
            .ok()
            .filter(|&v| v != 0)
            .with_context(|| {
                format!(
                    "spatial axis {a} of size {} gives no valid output size",
                    crate::ir::dim::text(x.shape[a])
                )
            })?;
    }
    Ok(vec![TensorType::new(x.dtype, shape)])
}
