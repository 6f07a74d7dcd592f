//! UpSampling1D/2D/3D and Resizing as Resize, with TensorFlow's interpolation rules.
use super::super::convert::Cx;
use super::{data_format, LayerCall};
use crate::ir::ops::shape_rules::spatial_axes;
use crate::ir::{AttrValue, TensorRef};
use anyhow::{bail, Result};

/// Resize attributes for a Keras/TensorFlow interpolation name.
fn interpolation(name: &str) -> Result<Vec<(&'static str, AttrValue)>> {
    let s = |v: &str| AttrValue::Str(v.into());
    Ok(match name {
        "nearest" => vec![
            ("mode", s("nearest")),
            ("coordinate_transformation_mode", s("tf_half_pixel_for_nn")),
            ("nearest_mode", s("floor")),
        ],
        "bilinear" => vec![
            ("mode", s("linear")),
            ("coordinate_transformation_mode", s("half_pixel")),
        ],
        "bicubic" => vec![
            ("mode", s("cubic")),
            ("coordinate_transformation_mode", s("half_pixel")),
            ("cubic_coeff_a", AttrValue::Float(-0.5)),
        ],
        other => bail!("interpolation '{other}' is not supported"),
    })
}

/// UpSampling1D/2D/3D: nearest repeats each cell; bilinear uses half-pixel centres.
pub fn upsampling(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let rank = cx.rank(&x)?;
    let channels_last = l.cfg.channels_last()?;
    let n = spatial_axes(rank, channels_last).1.len();
    let key = if l.cfg.get("size").is_some() {
        "size"
    } else {
        "length"
    };
    let size = l.cfg.ints_or(key, n, 2)?;
    let mut attrs = match l.cfg.str_or("interpolation", "nearest")?.as_str() {
        "nearest" => vec![
            ("mode", AttrValue::Str("nearest".into())),
            (
                "coordinate_transformation_mode",
                AttrValue::Str("asymmetric".into()),
            ),
            ("nearest_mode", AttrValue::Str("floor".into())),
        ],
        other => interpolation(other)?,
    };
    attrs.push((
        "scales",
        AttrValue::Floats(size.iter().map(|&s| s as f32).collect()),
    ));
    attrs.push(("data_format", data_format(channels_last)));
    Ok(vec![cx.op(&l.name, "Resize", &[x], attrs)?])
}

/// Resizing to (height, width) with TensorFlow's resize rules (no antialiasing).
pub fn resizing(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    for flag in ["crop_to_aspect_ratio", "pad_to_aspect_ratio", "antialias"] {
        if l.cfg.bool_or(flag, false)? {
            bail!("{flag} is not supported");
        }
    }
    let mut attrs = interpolation(&l.cfg.str_or("interpolation", "bilinear")?)?;
    attrs.push((
        "sizes",
        AttrValue::Ints(vec![l.cfg.int("height")?, l.cfg.int("width")?]),
    ));
    attrs.push(("data_format", data_format(l.cfg.channels_last()?)));
    Ok(vec![cx.op(&l.name, "Resize", &[l.input()?], attrs)?])
}
