//! Resize (opsets 10, 11, 13, 18, 19) and the older Upsample (7, 9). Only spatial axes may be
//! resized: axes 2.. give channels_first, axes 1..rank-1 channels_last. Upsample and Resize-10
//! use ONNX Runtime's legacy rule: asymmetric coordinates, nearest rounding down when enlarging
//! and up when shrinking.
use super::OpFn;
use crate::frontends::onnx::builder::{not_constant_because, IntsArg, Val};
use crate::frontends::onnx::node::Ctx;
use crate::ir::dim;
use anyhow::{bail, Context, Result};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "Resize" => resize,
        "Upsample" => upsample,
        _ => return None,
    })
}

/// Scales or sizes over every axis of the input (a size of None keeps the input's dim).
enum Target {
    Scales(Vec<f32>),
    Sizes(Vec<Option<i64>>),
}

fn upsample(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let scales = if ctx.opset < 9 {
        ctx.opt_floats("scales")?.context("scales is missing")?
    } else {
        ctx.const_floats(1, "the scales")?
            .context("scales is missing")?
    };
    let mode = legacy_mode(ctx)?;
    legacy(ctx, &x, scales, &mode)
}

/// Mode of Upsample and Resize-10: nearest or linear.
fn legacy_mode(ctx: &Ctx) -> Result<String> {
    Ok(match ctx.string("mode", "nearest")?.as_str() {
        "nearest" => "nearest".to_string(),
        "linear" | "bilinear" => "linear".to_string(),
        m => bail!("mode '{m}' is not supported"),
    })
}

fn legacy(ctx: &mut Ctx, x: &Val, scales: Vec<f32>, mode: &str) -> Result<Vec<Val>> {
    let up = scales.iter().all(|&s| s >= 1.0);
    let down = scales.iter().all(|&s| s <= 1.0);
    if mode == "nearest" && !up && !down {
        bail!("scales {scales:?} enlarge some axes and shrink others, which ONNX Runtime rounds differently per axis");
    }
    let nearest = if up { "floor" } else { "ceil" };
    emit(
        ctx,
        x,
        Target::Scales(scales),
        mode,
        "asymmetric",
        nearest,
        (-0.75, false),
    )
}

/// The IR's data format for scales or sizes computed at run time: they must be given for the
/// spatial axes only (opset 18's `axes`), since which axes they change is unknown here.
fn runtime_format(x: &Val, v: &Val, name: &str, axes: &Option<Vec<i64>>) -> Result<&'static str> {
    let rank = x.rank() as i64;
    let given = match axes {
        Some(a) => a
            .iter()
            .map(|&v| if v < 0 { v + rank } else { v })
            .collect::<Vec<_>>(),
        None => vec![],
    };
    if rank >= 3 && given == (2..rank).collect::<Vec<_>>() {
        return Ok("channels_first");
    }
    if rank >= 3 && given == (1..rank - 1).collect::<Vec<_>>() {
        return Ok("channels_last");
    }
    let why = format!(
        "the IR resizes the spatial axes only, and which of the axes {given:?} of {} a run-time \
         tensor changes is unknown here; opset 18's `axes` naming the spatial axes lifts this",
        x.ty()
    );
    Err(not_constant_because(v, name, &why))
}

fn resize(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    if ctx.opset < 11 {
        let scales = ctx
            .const_floats(1, "the scales")?
            .context("scales is missing")?;
        let mode = legacy_mode(ctx)?;
        return legacy(ctx, &x, scales, &mode);
    }
    let rank = x.rank();
    let mode = ctx.string("mode", "nearest")?;
    let ctm = ctx.string("coordinate_transformation_mode", "half_pixel")?;
    let nearest = ctx.string("nearest_mode", "round_prefer_floor")?;
    let cubic_a = ctx.float("cubic_coeff_a", -0.75)?;
    let exclude = ctx.int("exclude_outside", 0)? != 0;
    if ctm == "tf_crop_and_resize" {
        bail!("coordinate_transformation_mode '{ctm}' has no IR equivalent");
    }
    // Only tf_crop_and_resize reads the region of interest and the extrapolation value.
    ctx.ignore(&["extrapolation_value"]);
    let policy = ctx.string("keep_aspect_ratio_policy", "stretch")?;
    let axes = ctx.opt_ints("axes")?;
    let shape = x.shape();
    let runtime = [(2, "scales"), (3, "sizes")]
        .into_iter()
        .find_map(|(i, name)| Some((name, ctx.opt_input(i).filter(Val::is_runtime)?)));
    if let Some((name, v)) = runtime {
        if policy != "stretch" || ctx.int("antialias", 0)? != 0 {
            let why = format!("keep_aspect_ratio_policy is '{policy}' or antialias is set");
            return Err(not_constant_because(&v, name, &why));
        }
        let format = runtime_format(&x, &v, name, &axes)?;
        let s = ctx
            .spec("Resize")
            .str("mode", &mode)
            .str("coordinate_transformation_mode", &ctm)
            .str("nearest_mode", &nearest)
            .float("cubic_coeff_a", cubic_a)
            .flag("exclude_outside", exclude)
            .str("data_format", format)
            .input(&x);
        let s = if name == "sizes" {
            s.ints_or_input("sizes", IntsArg::Runtime(v))
        } else {
            s.floats_input("scales", v)
        };
        return Ok(vec![ctx.emit1(s)?]);
    }
    let scales = ctx.const_floats(2, "the scales")?.filter(|s| !s.is_empty());
    // Sizes may be symbolic (`Concat(Shape(x)[:2], Shape(skip)[2:])`, as exporters write
    // them); an entry that is the input's own dim is kept as "unchanged".
    let sizes = ctx.ints_input(3, "the sizes")?.map(|s| {
        s.iter()
            .enumerate()
            .map(|(i, &d)| (!(dim::is_symbolic(d) && shape.get(i) == Some(&d))).then_some(d))
            .collect::<Vec<_>>()
    });
    let sizes = sizes.filter(|s| !s.is_empty());
    let target = match (scales, sizes) {
        (Some(s), None) => Target::Scales(spread(s, 1.0, &axes, rank)?),
        (None, Some(s)) => {
            let sizes = spread(s, None, &axes, rank)?;
            match policy.as_str() {
                "stretch" => Target::Sizes(sizes),
                "not_larger" | "not_smaller" => keep_aspect(&x, sizes, &axes, &policy)?,
                p => bail!(
                    "keep_aspect_ratio_policy '{p}' is not one of stretch, not_larger, not_smaller"
                ),
            }
        }
        _ => bail!("exactly one of scales and sizes must be given"),
    };
    if ctx.int("antialias", 0)? != 0 {
        let shrinks = match &target {
            Target::Scales(s) => s.iter().any(|&v| v < 1.0),
            Target::Sizes(s) => s
                .iter()
                .zip(&shape)
                .any(|(o, &i)| o.is_some_and(|o| i < 0 || o < i)),
        };
        if shrinks && mode != "nearest" {
            bail!("antialias = 1 when shrinking has no IR equivalent");
        }
    }
    emit(ctx, &x, target, &mode, &ctm, &nearest, (cubic_a, exclude))
}

/// keep_aspect_ratio_policy not_larger / not_smaller: one scale for the resized axes (`axes`,
/// else all), the smallest / largest of size / dim, and sizes round(scale · dim) (halves up).
/// The IR resamples with scale = size / dim given sizes, or with floor(dim · scale) samples given
/// a scale: the target is whichever of the two reproduces both the sizes and the scale.
fn keep_aspect(
    x: &Val,
    sizes: Vec<Option<i64>>,
    axes: &Option<Vec<i64>>,
    policy: &str,
) -> Result<Target> {
    let shape = x.shape();
    let rank = shape.len();
    let resized: Vec<usize> = match axes {
        Some(a) => a
            .iter()
            .map(|&a| super::axis(a, rank))
            .collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    let mut ratios = vec![];
    for &i in &resized {
        let (Some(size), true) = (sizes[i], shape[i] > 0) else {
            bail!(
                "keep_aspect_ratio_policy '{policy}' needs the dims of the resized axes, got {}",
                x.ty()
            );
        };
        ratios.push(size as f64 / shape[i] as f64);
    }
    let pick = if policy == "not_larger" {
        f64::min
    } else {
        f64::max
    };
    let Some(scale) = ratios.into_iter().reduce(pick) else {
        bail!("keep_aspect_ratio_policy '{policy}' with no resized axis");
    };
    let exact = resized
        .iter()
        .all(|&i| (scale * shape[i] as f64).fract() == 0.0);
    let out = |i: usize| (scale * shape[i] as f64 + 0.5).floor() as i64;
    if exact {
        return Ok(Target::Sizes(
            (0..rank)
                .map(|i| {
                    Some(if resized.contains(&i) {
                        out(i)
                    } else {
                        shape[i]
                    })
                })
                .collect(),
        ));
    }
    let s32 = scale as f32;
    if resized
        .iter()
        .all(|&i| (shape[i] as f64 * s32 as f64).floor() as i64 == out(i))
    {
        return Ok(Target::Scales(
            (0..rank)
                .map(|i| if resized.contains(&i) { s32 } else { 1.0 })
                .collect(),
        ));
    }
    bail!(
        "keep_aspect_ratio_policy '{policy}' gives scale {scale} and sizes rounded from it, \
         which the IR's Resize (sizes, or floor(dim · scale)) cannot both reproduce"
    )
}

/// Scales or sizes given for `axes` (opset 18) spread over every axis, `fill` elsewhere.
fn spread<T: Copy>(given: Vec<T>, fill: T, axes: &Option<Vec<i64>>, rank: usize) -> Result<Vec<T>> {
    let Some(axes) = axes else {
        return Ok(given);
    };
    if axes.len() != given.len() {
        bail!("axes {axes:?} and the scales/sizes differ in length");
    }
    let mut full = vec![fill; rank];
    for (&a, v) in axes.iter().zip(given) {
        full[super::axis(a, rank)?] = v;
    }
    Ok(full)
}

/// The IR Resize for a target over every axis; `taps` is (cubic_coeff_a, exclude_outside).
fn emit(
    ctx: &mut Ctx,
    x: &Val,
    target: Target,
    mode: &str,
    ctm: &str,
    nearest: &str,
    (cubic_a, exclude): (f32, bool),
) -> Result<Vec<Val>> {
    if !["nearest", "linear", "cubic"].contains(&mode) {
        bail!("mode '{mode}' is not one of nearest, linear, cubic");
    }
    let shape = x.shape();
    let rank = shape.len();
    let n = match &target {
        Target::Scales(s) => s.len(),
        Target::Sizes(s) => s.len(),
    };
    if n != rank || rank < 3 {
        bail!("the scales/sizes have {n} entries for input {}", x.ty());
    }
    let changed: Vec<usize> = (0..rank)
        .filter(|&i| match &target {
            Target::Scales(s) => s[i] != 1.0,
            Target::Sizes(s) => s[i].is_some_and(|v| v != shape[i]),
        })
        .collect();
    let (format, spatial): (&str, Vec<usize>) = if changed.iter().all(|&i| i >= 2) {
        ("channels_first", (2..rank).collect())
    } else if changed.iter().all(|&i| i >= 1 && i + 1 < rank) {
        ("channels_last", (1..rank - 1).collect())
    } else {
        bail!(
            "resizing axes {changed:?} of {} (batch or channels) has no IR equivalent",
            x.ty()
        );
    };
    let mut s = ctx
        .spec("Resize")
        .str("mode", mode)
        .str("coordinate_transformation_mode", ctm)
        .str("nearest_mode", nearest)
        .float("cubic_coeff_a", cubic_a)
        .flag("exclude_outside", exclude)
        .str("data_format", format)
        .input(x);
    s = match target {
        Target::Scales(v) => s.floats("scales", spatial.iter().map(|&i| v[i]).collect()),
        Target::Sizes(v) => {
            let sizes = spatial.iter().map(|&i| match v[i] {
                Some(n) => Ok(n),
                None if shape[i] != dim::UNKNOWN => Ok(shape[i]),
                None => bail!(
                    "the sizes keep axis {i} of {}, whose size is unknown",
                    x.ty()
                ),
            });
            s.ints("sizes", sizes.collect::<Result<_>>()?)
        }
    };
    Ok(vec![ctx.emit1(s)?])
}
