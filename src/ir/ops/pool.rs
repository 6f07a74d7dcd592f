//! Pooling over spatial windows, and global pooling.
use super::conv::{Window, AUTO_PAD};
use super::shape_rules::spatial_axes;
use super::*;
use crate::ir::types::AttrKind as K;

pub const OPS: &[OpDef] = &[
    OpDef {
        name: "Pool",
        family: Family::Pool,
        doc: "Max or average pooling over N-d windows (MMdnn's Pool).",
        inputs: ONE_INPUT,
        outputs: ONE_OUTPUT,
        attrs: &[
            choice("pooling_type", "MAX", &["MAX", "AVG"], "max or average"),
            attr(
                "kernel_shape",
                K::Ints,
                Default::Required,
                "window size per spatial axis",
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
                "explicit padding [begins..., ends...]; padded cells never win a MAX",
            ),
            AUTO_PAD,
            attr(
                "ceil_mode",
                K::Bool,
                Default::Bool(false),
                "round the output size up (a window must start inside input or begin padding)",
            ),
            attr(
                "count_include_pad",
                K::Bool,
                Default::Bool(false),
                "AVG: divide by the full window size including explicit padding",
            ),
            DATA_FORMAT,
        ],
        weights: &[],
        layout: Layout::DataFormat { kernel: None },
        infer: infer_pool,
    },
    OpDef {
        name: "GlobalPool",
        family: Family::Pool,
        doc: "Max or average over all spatial axes.",
        inputs: ONE_INPUT,
        outputs: ONE_OUTPUT,
        attrs: &[
            choice("pooling_type", "AVG", &["MAX", "AVG"], "max or average"),
            attr(
                "keepdims",
                K::Bool,
                Default::Bool(true),
                "keep spatial axes as size 1 (false: output [N, C])",
            ),
            DATA_FORMAT,
        ],
        weights: &[],
        layout: Layout::DataFormat { kernel: None },
        infer: infer_global_pool,
    },
];

fn infer_pool(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    if !(3..=5).contains(&x.rank()) {
        bail!("expects a rank 3 to 5 input, got {x}");
    }
    let (_, spatial) = spatial_axes(x.rank(), ctx.attrs.channels_last()?);
    let w = Window::read(&ctx.attrs, spatial.len())?;
    let ceil = ctx.attrs.bool("ceil_mode")?;
    if ceil && w.same.is_some() {
        bail!(
            "ceil_mode is given with auto_pad {}",
            ctx.attrs.str("auto_pad")?
        );
    }
    let mut shape = x.shape.clone();
    for (i, &a) in spatial.iter().enumerate() {
        shape[a] = w.out_size(i, x.shape[a], ceil)?;
    }
    Ok(vec![TensorType::new(x.dtype, shape)])
}

fn infer_global_pool(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    if x.rank() < 3 {
        bail!("expects an input of rank 3 or more, got {x}");
    }
    let (c_axis, spatial) = spatial_axes(x.rank(), ctx.attrs.channels_last()?);
    let shape = if ctx.attrs.bool("keepdims")? {
        let mut s = x.shape.clone();
        for a in spatial {
            s[a] = 1;
        }
        s
    } else {
        vec![x.shape[0], x.shape[c_axis]]
    };
    Ok(vec![TensorType::new(x.dtype, shape)])
}
