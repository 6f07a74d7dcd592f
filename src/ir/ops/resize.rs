//! Resampling of the spatial axes (ONNX Resize semantics).
use super::shape_rules::spatial_axes;
use super::*;
use crate::ir::types::AttrKind as K;

pub const OPS: &[OpDef] = &[OpDef {
    name: "Resize",
    family: Family::Resize,
    doc: "Resamples the spatial axes to `sizes`, or by `scales`, with ONNX Resize semantics.",
    inputs: ONE_INPUT,
    outputs: ONE_OUTPUT,
    attrs: &[
        choice(
            "mode",
            "nearest",
            &["nearest", "linear", "cubic"],
            "interpolation",
        ),
        attr(
            "scales",
            K::Floats,
            Default::Optional,
            "scale per spatial axis",
        )
        .or_input(super::runtime_rules::resize),
        attr(
            "sizes",
            K::Ints,
            Default::Optional,
            "output size per spatial axis (wins over scales)",
        )
        .or_input(super::runtime_rules::resize),
        choice(
            "coordinate_transformation_mode",
            "half_pixel",
            &[
                "half_pixel",
                "pytorch_half_pixel",
                "align_corners",
                "asymmetric",
                "tf_half_pixel_for_nn",
                "half_pixel_symmetric",
            ],
            "how output coordinates map to input coordinates",
        ),
        choice(
            "nearest_mode",
            "round_prefer_floor",
            &["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"],
            "rounding of nearest mode",
        ),
        attr(
            "cubic_coeff_a",
            K::Float,
            Default::Float(-0.75),
            "cubic mode coefficient",
        ),
        attr(
            "exclude_outside",
            K::Bool,
            Default::Bool(false),
            "linear and cubic: taps outside the input get weight 0, the others are \
                 renormalised to sum 1",
        ),
        DATA_FORMAT,
    ],
    weights: &[],
    layout: Layout::DataFormat { kernel: None },
    infer: infer_resize,
}];

/// Output spatial sizes of a Resize node.
fn resize_sizes(attrs: &Attrs, input_spatial: &[i64]) -> Result<Vec<i64>> {
    if let Some(sizes) = attrs.opt_ints("sizes")? {
        if sizes.len() != input_spatial.len() {
            bail!(
                "sizes {sizes:?} does not match {} spatial axes",
                input_spatial.len()
            );
        }
        return Ok(sizes);
    }
    let scales = match attrs.get("scales")? {
        Some(AttrValue::Floats(s)) => s,
        _ => bail!("Resize needs `sizes` or `scales`"),
    };
    if scales.len() != input_spatial.len() {
        bail!(
            "scales {scales:?} does not match {} spatial axes",
            input_spatial.len()
        );
    }
    Ok(input_spatial
        .iter()
        .zip(&scales)
        .map(|(&d, &s)| {
            if d >= 0 {
                return (d as f64 * s as f64).floor() as i64;
            }
            // A symbolic size scales by a whole factor or its inverse; else it is unknown.
            let (up, down) = (s as f64, 1.0 / s as f64);
            let whole = |v: f64| (v >= 1.0 && v.fract() == 0.0 && v < 1e9).then_some(v as i64);
            match (whole(up), whole(down)) {
                (Some(k), _) => crate::ir::dim::mul(d, k).unwrap_or(-1),
                (_, Some(k)) => crate::ir::dim::floor_div(d, k).unwrap_or(-1),
                _ => -1,
            }
        })
        .collect())
}

fn infer_resize(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    if x.rank() < 3 {
        bail!("expects an input of rank 3 or more, got {x}");
    }
    let (_, spatial) = spatial_axes(x.rank(), ctx.attrs.channels_last()?);
    let dims: Vec<i64> = spatial.iter().map(|&a| x.shape[a]).collect();
    let sizes = resize_sizes(&ctx.attrs, &dims)?;
    let mut shape = x.shape.clone();
    for (i, a) in spatial.into_iter().enumerate() {
        shape[a] = sizes[i];
    }
    Ok(vec![TensorType::new(x.dtype, shape)])
}
