//! Resize: ONNX Resize semantics (every coordinate transformation, nearest rounding mode and
//! interpolation), one spatial axis at a time.
use super::util::{map_lanes, one};
use super::{OpCtx, OpFn, Value};
use crate::ir::ops::shape_rules::spatial_axes;
use crate::ir::types::AttrValue;
use anyhow::{bail, Result};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "Resize" => resize,
        _ => return None,
    })
}

/// Input taps and weights of each output index of one resized axis.
type Taps = Vec<Vec<(usize, f32)>>;

/// ONNX Resize along one axis from `n` to `m` samples with scale `scale`.
fn resize_taps(n: usize, m: usize, scale: f64, ctx: &OpCtx) -> Result<Taps> {
    let a = &ctx.attrs;
    let mode = a.str("mode")?;
    let ctm = a.str("coordinate_transformation_mode")?;
    let nearest = a.str("nearest_mode")?;
    let cubic_a = a.float("cubic_coeff_a")? as f64;
    let exclude = a.bool("exclude_outside")?;
    let clamp = |i: i64| i.clamp(0, n as i64 - 1) as usize;
    // Interpolation taps (input index, weight); with exclude_outside, those outside the input
    // get weight 0 and the rest sum to 1.
    let taps = |raw: Vec<(i64, f64)>| -> Vec<(usize, f32)> {
        let inside = |i: i64| (0..n as i64).contains(&i);
        let total: f64 = raw.iter().filter(|t| inside(t.0)).map(|t| t.1).sum();
        raw.into_iter()
            .map(|(i, w)| match exclude {
                false => (clamp(i), w as f32),
                true if inside(i) => (clamp(i), (w / total) as f32),
                true => (clamp(i), 0.0),
            })
            .collect()
    };
    (0..m)
        .map(|o| {
            let x = o as f64;
            let xo = match ctm.as_str() {
                "half_pixel" => (x + 0.5) / scale - 0.5,
                "pytorch_half_pixel" if m > 1 => (x + 0.5) / scale - 0.5,
                "pytorch_half_pixel" => 0.0,
                // Over the integer output length, as onnxruntime and PyTorch compute it. (ONNX's
                // reference implementation divides by the unrounded n·scale − 1 when the output
                // size comes from scales; the two differ only for scales giving a fractional
                // length.)
                "align_corners" if m > 1 => x * (n as f64 - 1.0) / (m as f64 - 1.0),
                "align_corners" => 0.0,
                "asymmetric" => x / scale,
                "tf_half_pixel_for_nn" => (x + 0.5) / scale,
                // half_pixel about the input's centre when m differs from n · scale.
                "half_pixel_symmetric" => {
                    let offset = n as f64 / 2.0 * (1.0 - m as f64 / (n as f64 * scale));
                    offset + (x + 0.5) / scale - 0.5
                }
                other => bail!("unknown coordinate_transformation_mode '{other}'"),
            };
            let fl = xo.floor();
            let r = xo - fl;
            let fi = fl as i64;
            Ok(match mode.as_str() {
                "nearest" => {
                    let up = match nearest.as_str() {
                        _ if r == 0.0 => false,
                        "round_prefer_floor" => r > 0.5,
                        "round_prefer_ceil" => r >= 0.5,
                        "floor" => false,
                        "ceil" => true,
                        other => bail!("unknown nearest_mode '{other}'"),
                    };
                    vec![(clamp(fi + up as i64), 1.0)]
                }
                "linear" => taps(vec![(fi, 1.0 - r), (fi + 1, r)]),
                "cubic" => {
                    let c = |t: f64| {
                        let t = t.abs();
                        if t <= 1.0 {
                            ((cubic_a + 2.0) * t - (cubic_a + 3.0)) * t * t + 1.0
                        } else if t < 2.0 {
                            ((cubic_a * t - 5.0 * cubic_a) * t + 8.0 * cubic_a) * t - 4.0 * cubic_a
                        } else {
                            0.0
                        }
                    };
                    taps((-1..=2).map(|k| (fi + k, c(r - k as f64))).collect())
                }
                other => bail!("unknown mode '{other}'"),
            })
        })
        .collect()
}

fn resize(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(i)?.into_f32()?;
    let rank = x.ndim();
    if rank < 3 {
        bail!(
            "expects an input of rank 3 or more, got shape {:?}",
            x.shape()
        );
    }
    let cl = ctx.attrs.channels_last()?;
    let (_, spatial) = spatial_axes(rank, cl);
    let sizes = ctx.attrs.opt_ints("sizes")?;
    let scales = match ctx.attrs.get("scales")? {
        Some(AttrValue::Floats(s)) => Some(s),
        _ => None,
    };
    let mut y = x;
    for (k, &ax) in spatial.iter().enumerate() {
        let n = y.shape()[ax];
        let (m, scale) = match (&sizes, &scales) {
            (Some(s), _) => {
                if s.len() != spatial.len() || s[k] < 0 {
                    bail!("sizes {s:?} does not fit {} spatial axes", spatial.len());
                }
                (s[k] as usize, s[k] as f64 / n as f64)
            }
            (None, Some(s)) => {
                if s.len() != spatial.len() || s[k] <= 0.0 {
                    bail!("scales {s:?} does not fit {} spatial axes", spatial.len());
                }
                ((n as f64 * s[k] as f64).floor() as usize, s[k] as f64)
            }
            (None, None) => bail!("Resize needs `sizes` or `scales`"),
        };
        if n == m && (scale - 1.0).abs() < f64::EPSILON {
            continue;
        }
        if n == 0 {
            bail!("cannot resize an empty axis");
        }
        let taps = resize_taps(n, m, scale, ctx)?;
        y = map_lanes(y.view(), ax, m, |src, dst| {
            for (d, t) in dst.iter_mut().zip(&taps) {
                *d = t
                    .iter()
                    .map(|&(j, w)| src[j] as f64 * w as f64)
                    .sum::<f64>() as f32;
            }
        });
    }
    Ok(vec![Value::F32(y)])
}
