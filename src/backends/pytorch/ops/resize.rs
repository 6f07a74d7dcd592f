//! Resize: `repeat_interleave` for nearest upsampling by integer factors that repeat each
//! sample, `F.interpolate` where its coordinate mapping is the IR's, and otherwise the exact
//! ONNX taps of the `resample` helper (`templates/pytorch/resample.py.tera`), one axis at a time.
use super::{float, Ctx, Lower};
use crate::backends::pytorch::Helper;
use crate::ir::AttrValue;
use anyhow::{bail, Result};

pub fn lookup(op: &str) -> Option<Lower> {
    Some(match op {
        "Resize" => resize,
        _ => return None,
    })
}

fn resize(c: &mut Ctx) -> Result<()> {
    c.channels_first()?;
    let ty = c.in_ty(0)?;
    let rank = ty.rank();
    if rank < 3 {
        bail!("expects an input of rank 3 or more");
    }
    let ns = rank - 2;
    let mode = c.a.str("mode")?;
    let ctm = c.a.str("coordinate_transformation_mode")?;
    let nearest = c.a.str("nearest_mode")?;
    let cubic_a = c.a.float("cubic_coeff_a")?;
    let exclude = c.a.bool("exclude_outside")?;
    if c.node.runtime_inputs() > 0 {
        let taps = (mode, ctm, nearest, cubic_a, exclude);
        return resample_at_run_time(c, ns, taps);
    }
    let sizes = c.a.opt_ints("sizes")?;
    let scales = match c.a.get("scales")? {
        Some(AttrValue::Floats(s)) => Some(s),
        _ => None,
    };
    if let Some(s) = &sizes {
        if s.len() != ns || s.iter().any(|&v| v <= 0 && !crate::ir::dim::is_symbolic(v)) {
            bail!("sizes {s:?} do not fit {ns} spatial axes");
        }
    } else if let Some(s) = &scales {
        if s.len() != ns || s.iter().any(|&v| v <= 0.0) {
            bail!("scales {s:?} do not fit {ns} spatial axes");
        }
    } else {
        bail!("Resize needs `sizes` or `scales`");
    }
    let out = c.out_ty(0)?.shape;
    let x = c.x(0)?;
    let ins = &ty.shape[2..];
    // Per axis: the integer factor when the output repeats each input sample.
    let factor = |i: usize| -> Option<i64> {
        let f = match (&sizes, &scales) {
            (Some(s), _) if ins[i] > 0 && s[i] >= 0 && s[i] % ins[i] == 0 => s[i] / ins[i],
            (None, Some(s)) if s[i].fract() == 0.0 => s[i] as i64,
            _ => return None,
        };
        if f == 1 {
            return Some(1);
        }
        let floors = (ctm == "asymmetric" || ctm == "tf_half_pixel_for_nn") && nearest == "floor"
            || (ctm == "half_pixel" || ctm == "pytorch_half_pixel")
                && nearest.starts_with("round_prefer");
        floors.then_some(f)
    };
    if mode == "nearest" {
        let factors: Option<Vec<i64>> = (0..ns).map(factor).collect();
        if let Some(factors) = factors {
            let chain: String = factors
                .iter()
                .enumerate()
                .filter(|(_, &f)| f != 1)
                .map(|(i, f)| format!(".repeat_interleave({f}, dim={})", i + 2))
                .collect();
            return c.set(format!("{x}{chain}"));
        }
    }
    let half =
        ctm == "half_pixel" || (ctm == "pytorch_half_pixel" && out[2..].iter().all(|&m| m > 1));
    let interp_mode = match (mode.as_str(), ns) {
        ("linear", 1) => Some("linear"),
        ("linear", 2) => Some("bilinear"),
        ("linear", 3) => Some("trilinear"),
        ("cubic", 2) if cubic_a == -0.75 => Some("bicubic"),
        _ => None,
    };
    if let (Some(m), true, false) = (interp_mode, half || ctm == "align_corners", exclude) {
        let f = c.func("F.interpolate");
        let target = match (&sizes, &scales) {
            (Some(s), _) => {
                let dims: Vec<String> = s.iter().map(|&d| c.py_dim(d)).collect::<Result<_>>()?;
                match &dims[..] {
                    [one] => format!("size=({one},)"),
                    _ => format!("size=({})", dims.join(", ")),
                }
            }
            (None, Some(s)) => format!(
                "scale_factor={}",
                if s.len() == 1 {
                    format!("({},)", f64_lit(s[0]))
                } else {
                    format!(
                        "({})",
                        s.iter().map(|&v| f64_lit(v)).collect::<Vec<_>>().join(", ")
                    )
                }
            ),
            _ => unreachable!("checked above"),
        };
        let corners = if ctm == "align_corners" {
            "True"
        } else {
            "False"
        };
        return c.set(format!(
            "{f}({x}, {target}, mode=\"{m}\", align_corners={corners})"
        ));
    }
    // Everything else: exact ONNX taps, one axis at a time.
    c.e.helpers.insert(Helper::Resample);
    c.e.uses_math = true;
    let cur = x;
    let mut lines = vec![];
    for i in 0..ns {
        let (size, scale) = match (&sizes, &scales) {
            (Some(s), _) => (c.py_dim(s[i])?, "None".to_string()),
            (None, Some(s)) => ("None".to_string(), f64_lit(s[i])),
            _ => unreachable!("checked above"),
        };
        if ins[i] >= 0 && out[2 + i] == ins[i] && (scales.as_ref().is_none_or(|s| s[i] == 1.0)) {
            continue;
        }
        lines.push((i + 2, size, scale));
    }
    resample_lines(c, cur, lines, &(mode, ctm, nearest, cubic_a, exclude))
}

/// Resize's mode, coordinate transformation, nearest rounding, cubic coefficient and
/// exclude_outside, as `resample` takes them.
type Taps = (String, String, String, f32, bool);

/// `resample` of `x` along each `(axis, size, scale)` in turn; the last line is the node's.
fn resample_lines(
    c: &mut Ctx,
    mut cur: String,
    lines: Vec<(usize, String, String)>,
    (mode, ctm, nearest, cubic_a, exclude): &Taps,
) -> Result<()> {
    let count = lines.len();
    for (k, (dim, size, scale)) in lines.into_iter().enumerate() {
        let name = if k + 1 == count {
            c.id.clone()
        } else {
            c.local("rows")
        };
        c.line(format!(
            "{name} = resample({cur}, {dim}, {size}, {scale}, \"{mode}\", \"{ctm}\", \"{nearest}\", {}, {})",
            float(*cubic_a),
            if *exclude { "True" } else { "False" }
        ));
        cur = name;
    }
    c.bind(0, cur);
    Ok(())
}

/// Sizes or scales computed at run time: the exact ONNX taps of `resample`, one spatial axis at
/// a time, each reading its entry of the run-time tensor.
fn resample_at_run_time(c: &mut Ctx, ns: usize, taps: Taps) -> Result<()> {
    c.e.helpers.insert(Helper::Resample);
    c.e.uses_math = true;
    let sizes = c.runtime_var("sizes")?;
    let scales = c.runtime_var("scales")?;
    let mut lines = vec![];
    for i in 0..ns {
        lines.push(match (&sizes, &scales) {
            (Some(t), _) => (i + 2, format!("int({t}[{i}])"), "None".to_string()),
            (None, Some(t)) => (i + 2, "None".to_string(), format!("float({t}[{i}])")),
            _ => bail!("Resize needs `sizes` or `scales`"),
        });
    }
    let x = c.x(0)?;
    resample_lines(c, x, lines, &taps)
}

/// The exact double value of an f32, as a literal (what ONNX-style f64 math on it sees).
fn f64_lit(v: f32) -> String {
    format!("{:?}", v as f64)
}
