//! Resize, channels-first as the layout pass leaves it. ONNX takes full-rank scales (batch and
//! channels 1); sizes are spatial only with the `axes` attribute (opset 18), else completed at
//! run time from the input's batch and channel dims.
use super::{channels_first, Lower, A};
use crate::backends::onnx::builder::Ctx;
use crate::ir::DType;
use anyhow::{bail, Result};

pub fn find(op: &str) -> Option<Lower> {
    Some(match op {
        "Resize" => resize,
        _ => return None,
    })
}

fn resize(c: &mut Ctx) -> Result<()> {
    channels_first(c)?;
    let rank = c.in_ty(0)?.rank();
    let spatial = rank - 2;
    let mut coord = c.a.str("coordinate_transformation_mode")?;
    let mut nearest = c.a.str("nearest_mode")?;
    let mode = c.a.str("mode")?;
    if coord == "tf_half_pixel_for_nn" && c.opset() >= 18 {
        // Removed in opset 18. It maps x to (x + 0.5) / scale, half_pixel to 0.5 less: floor
        // of the former is round_prefer_ceil of the latter, round_prefer_floor is ceil.
        let same = match (mode.as_str(), nearest.as_str()) {
            ("nearest", "floor") => "round_prefer_ceil",
            ("nearest", "round_prefer_floor") => "ceil",
            _ => bail!(
                "coordinate mode tf_half_pixel_for_nn with {mode} mode and nearest_mode \
                 {nearest} has no equivalent in opset 18 or later; use --opset 17"
            ),
        };
        coord = "half_pixel".into();
        nearest = same.into();
    }
    if coord == "half_pixel_symmetric" && c.opset() < 19 {
        bail!("coordinate mode half_pixel_symmetric needs opset 19 or later");
    }
    let mut attrs = vec![
        A::S("mode", mode),
        A::S("coordinate_transformation_mode", coord),
        A::S("nearest_mode", nearest),
        A::F("cubic_coeff_a", c.a.float("cubic_coeff_a")?),
    ];
    // For linear taps, excluding the one past an edge leaves the edge sample alone, as
    // clamping does: exclude_outside changes only cubic (and onnxruntime refuses it elsewhere).
    if c.a.bool("exclude_outside")? && c.a.str("mode")? == "cubic" {
        attrs.push(A::I("exclude_outside", 1));
    }
    let x = c.x(0)?;
    if c.a.is_runtime("sizes") || c.a.is_runtime("scales") {
        return runtime_target(c, &x, rank, attrs);
    }
    let sizes = c.a.opt_ints("sizes")?;
    let scales = match c.a.get("scales")? {
        Some(crate::ir::AttrValue::Floats(v)) => Some(v),
        _ => None,
    };
    if let Some(sizes) = sizes {
        if sizes.len() != spatial {
            bail!("{} sizes for {spatial} spatial axes", sizes.len());
        }
        let sizes = if c.opset() >= 18 {
            attrs.push(A::Is("axes", (2..rank as i64).collect()));
            c.shape_ints("sizes", &sizes)?
        } else {
            // [N, C] of the input at run time, then the spatial sizes.
            let shape = c.op("Shape", &[&x], vec![]);
            let (s0, s2) = (c.ints("nc_start", &[0]), c.ints("nc_end", &[2]));
            let nc = c.op("Slice", &[&shape, &s0, &s2], vec![]);
            let sp = c.shape_ints("sizes", &sizes)?;
            c.op("Concat", &[&nc, &sp], vec![A::I("axis", 0)])
        };
        return c.last("Resize", &[&x, "", "", &sizes], attrs);
    }
    let Some(scales) = scales else {
        bail!("Resize has neither sizes nor scales");
    };
    if scales.len() != spatial {
        bail!("{} scales for {spatial} spatial axes", scales.len());
    }
    let full: Vec<f64> = [1.0, 1.0]
        .into_iter()
        .chain(scales.iter().map(|&s| s as f64))
        .collect();
    let s = c.consts("scales", crate::ir::DType::F32, vec![rank as i64], &full)?;
    c.last("Resize", &[&x, "", &s], attrs)
}

/// Resize to sizes, or by scales, computed at run time for the spatial axes: given with `axes`
/// from opset 18, else after the input's `[N, C]` (sizes) or `[1, 1]` (scales).
fn runtime_target(c: &mut Ctx, x: &str, rank: usize, mut attrs: Vec<A>) -> Result<()> {
    let sizes = c.a.is_runtime("sizes");
    let dtype = if sizes { DType::I64 } else { DType::F32 };
    let name = if sizes { "sizes" } else { "scales" };
    let Some(v) = c.runtime_attr(name, dtype)? else {
        bail!("internal: {name} is not a run-time tensor");
    };
    let v = if c.opset() >= 18 {
        attrs.push(A::Is("axes", (2..rank as i64).collect()));
        v
    } else if sizes {
        let shape = c.op("Shape", &[x], vec![]);
        let (s0, s2) = (c.ints("nc_start", &[0]), c.ints("nc_end", &[2]));
        let nc = c.op("Slice", &[&shape, &s0, &s2], vec![]);
        c.op("Concat", &[&nc, &v], vec![A::I("axis", 0)])
    } else {
        let ones = c.consts("nc_scales", DType::F32, vec![2], &[1.0, 1.0])?;
        c.op("Concat", &[&ones, &v], vec![A::I("axis", 0)])
    };
    if sizes {
        c.last("Resize", &[x, "", "", &v], attrs)
    } else {
        c.last("Resize", &[x, "", &v], attrs)
    }
}
