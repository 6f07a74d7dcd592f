//! Normalization layers. Channel-wise ops name their channel axis with `axis`.
use super::shape_rules::same_as_input;
use super::*;
use crate::ir::types::AttrKind as K;

const EPSILON: AttrDef = attr(
    "epsilon",
    K::Float,
    Default::Float(1e-5),
    "added to the variance",
);
const USE_SCALE: AttrDef = attr(
    "use_scale",
    K::Bool,
    Default::Bool(true),
    "whether `scale` exists",
);
const USE_BIAS: AttrDef = attr(
    "use_bias",
    K::Bool,
    Default::Bool(true),
    "whether `bias` exists",
);
const CHANNEL_AXIS: AttrDef = attr("axis", K::Int, Default::Int(1), "the channel axis");

const fn norm(
    name: &'static str,
    doc: &'static str,
    attrs: &'static [AttrDef],
    weights: &'static [WeightDef],
    layout: Layout,
) -> OpDef {
    OpDef {
        name,
        family: Family::Norm,
        doc,
        inputs: ONE_INPUT,
        outputs: ONE_OUTPUT,
        attrs,
        weights,
        layout,
        infer: same_as_input,
    }
}

/// `[C]`, the size of the channel axis `axis` (-1 when unknown).
fn channels_shape(ctx: &InferCtx) -> Result<Vec<i64>> {
    let x = ctx.input(0)?;
    Ok(vec![x.shape[ctx.axis(ctx.attrs.int("axis")?, x.rank())?]])
}

/// The sizes of the normalised axes `axes`, in order.
fn normalised_shape(ctx: &InferCtx) -> Result<Vec<i64>> {
    let x = ctx.input(0)?;
    let mut axes = ctx
        .attrs
        .ints("axes")?
        .iter()
        .map(|&a| ctx.axis(a, x.rank()))
        .collect::<Result<Vec<_>>>()?;
    axes.sort_unstable();
    Ok(axes.iter().map(|&a| x.shape[a]).collect())
}

pub const OPS: &[OpDef] = &[
    norm(
        "BatchNorm",
        "Inference batch norm: (x − mean) / sqrt(var + epsilon) · scale + bias along `axis`.",
        &[CHANNEL_AXIS, EPSILON, USE_SCALE, USE_BIAS],
        &[
            weight("mean", "[C]").shaped(channels_shape),
            weight("var", "[C]").shaped(channels_shape),
            optional_weight("scale", "[C]; present when use_scale").shaped(channels_shape),
            optional_weight("bias", "[C]; present when use_bias").shaped(channels_shape),
        ],
        Layout::Axis(AxisRule::Kept),
    ),
    norm(
        "LayerNorm",
        "Normalises over `axes` with the statistics of each sample, then scale and bias.",
        &[
            attr("axes", K::Ints, Default::Ints(&[-1]), "the normalised axes"),
            EPSILON,
            USE_SCALE,
            USE_BIAS,
        ],
        &[
            optional_weight("scale", "shape of the normalised axes; present when use_scale")
                .shaped(normalised_shape),
            optional_weight("bias", "shape of the normalised axes; present when use_bias")
                .shaped(normalised_shape),
        ],
        Layout::LayerNorm,
    ),
    norm(
        "GroupNorm",
        "Splits channels into `groups`, normalises each group over channels and spatial axes.",
        &[
            attr("groups", K::Int, Default::Required, "number of groups"),
            CHANNEL_AXIS,
            EPSILON,
            USE_SCALE,
            USE_BIAS,
        ],
        &[
            optional_weight("scale", "[C]; present when use_scale").shaped(channels_shape),
            optional_weight("bias", "[C]; present when use_bias").shaped(channels_shape),
        ],
        Layout::Axis(AxisRule::KeptPerSample),
    ),
    norm(
        "InstanceNorm",
        "Normalises each channel of each sample over the spatial axes.",
        &[CHANNEL_AXIS, EPSILON, USE_SCALE, USE_BIAS],
        &[
            optional_weight("scale", "[C]; present when use_scale").shaped(channels_shape),
            optional_weight("bias", "[C]; present when use_bias").shaped(channels_shape),
        ],
        Layout::Axis(AxisRule::KeptPerSample),
    ),
    norm(
        "LRN",
        "Local response norm across channels: x / (bias + alpha/size · Σ x²)^beta over `size` neighbours.",
        &[
            attr("size", K::Int, Default::Required, "number of channels summed (odd)"),
            attr("alpha", K::Float, Default::Float(1e-4), "scale"),
            attr("beta", K::Float, Default::Float(0.75), "exponent"),
            attr("bias", K::Float, Default::Float(1.0), "offset"),
            CHANNEL_AXIS,
        ],
        &[],
        Layout::Axis(AxisRule::Kept),
    ),
    norm(
        "LpNormalize",
        "x / max(‖x‖_p, epsilon) along `axis`.",
        &[
            attr("axis", K::Int, Default::Int(-1), "the axis normalised over"),
            attr("p", K::Int, Default::Int(2), "1 or 2"),
            attr("epsilon", K::Float, Default::Float(1e-12), "lower bound of the norm"),
        ],
        &[],
        Layout::Axis(AxisRule::Kept),
    ),
];
