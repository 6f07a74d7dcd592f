//! Pooling: `F.max_poolNd` / `F.avg_poolNd` where torch computes the IR's windows, explicit
//! padding (SAME padding over spatial dims not known before run time: the module's `same_pad`
//! of the input's shape) and crops where it does not, depthwise ones-kernel convolutions for
//! dilated average pooling (which torch lacks); GlobalPool is a mean or amax over the spatial
//! axes.
use super::{ints, torch_pads, tuple, Ctx, Lower, WindowPads};
use crate::ir::ops::shape_rules::{spatial_axes, spatial_list, window_out};
use anyhow::{bail, Result};

pub fn lookup(op: &str) -> Option<Lower> {
    Some(match op {
        "Pool" => pool,
        "GlobalPool" => global_pool,
        _ => return None,
    })
}

fn pool(c: &mut Ctx) -> Result<()> {
    c.channels_first()?;
    let ns = c.spatial()?;
    let is_max = c.a.str("pooling_type")? == "MAX";
    let kernel = c.a.ints("kernel_shape")?;
    if kernel.len() != ns {
        bail!("kernel_shape {kernel:?} does not fit {ns} spatial axes");
    }
    let strides = spatial_list(c.a.ints("strides")?, ns, 1, "strides")?;
    let dilations = spatial_list(c.a.ints("dilations")?, ns, 1, "dilations")?;
    let pads = c.window_pads(ns)?;
    let (pb, pe) = match &pads {
        WindowPads::Explicit(pb, pe) => (pb.clone(), pe.clone()),
        WindowPads::RunTime(_) => (vec![0; ns], vec![0; ns]),
    };
    let ceil = c.a.bool("ceil_mode")?;
    if !is_max && dilations.iter().any(|&d| d != 1) {
        return dilated_avg_pool(c, &kernel, &strides, &dilations, &pads, ceil);
    }
    let include_pad = c.a.bool("count_include_pad")?;
    let f = c.func(&format!(
        "F.{}_pool{ns}d",
        if is_max { "max" } else { "avg" }
    ));
    let x = c.x(0)?;
    let mut common = vec![ints(&kernel), ints(&strides)];
    let native = matches!(pads, WindowPads::Explicit(..))
        && pb == pe
        && pb.iter().zip(&kernel).all(|(&p, &k)| 2 * p <= k);
    if native && pb.iter().any(|&p| p != 0) {
        common.push(format!("padding={}", ints(&pb)));
    }
    if is_max && dilations.iter().any(|&d| d != 1) {
        common.push(format!("dilation={}", ints(&dilations)));
    }
    if ceil {
        common.push("ceil_mode=True".into());
    }
    if native {
        if !is_max && !include_pad && pb.iter().any(|&p| p != 0) {
            common.push("count_include_pad=False".into());
        }
        return c.set(format!("{f}({x}, {})", common.join(", ")));
    }
    // Explicit padding: torch keeps a ceil-mode window that starts in the end padding,
    // the IR does not; crop those.
    let shape = c.in_ty(0)?.shape;
    let mut crop = vec![];
    for i in 0..ns {
        let h = shape[2 + i];
        if !ceil || pe[i] == 0 {
            crop.push(":".to_string());
            continue;
        }
        if h < 0 {
            bail!("ceil_mode pooling with end padding on a spatial axis of unknown size");
        }
        let (k, s, d) = (kernel[i], strides[i], dilations[i]);
        let ir = window_out(h, k, s, d, pb[i], pe[i], true)?;
        let torch = window_out(h + pb[i] + pe[i], k, s, d, 0, 0, true)?;
        crop.push(if ir < torch {
            format!(":{ir}")
        } else {
            ":".to_string()
        });
    }
    let crop = if crop.iter().all(|c| c == ":") {
        String::new()
    } else {
        format!("[:, :, {}]", crop.join(", "))
    };
    let pad = c.func("F.pad");
    let pads = pads.torch();
    let common = common.join(", ");
    if is_max {
        c.set(format!(
            "{f}({pad}({x}, {pads}, value=float(\"-inf\")), {common}){crop}"
        ))
    } else if include_pad {
        c.set(format!("{f}({pad}({x}, {pads}), {common}){crop}"))
    } else {
        let ones = c.local("count");
        c.line(
            "# Average over the cells inside the input only: window sums over window counts."
                .into(),
        );
        c.line(format!(
            "{ones} = {f}({pad}(torch.ones_like({x}[:1, :1]), {pads}), {common})"
        ));
        c.set(format!(
            "({f}({pad}({x}, {pads}), {common}) / {ones}){crop}"
        ))
    }
}

/// Average pooling with dilations, which torch's pools lack: window sums and window cell
/// counts as depthwise convolutions with a ones kernel, over explicit padding (and extra end
/// padding that lets ceil-mode windows exist), cropped to the IR's output size.
fn dilated_avg_pool(
    c: &mut Ctx,
    kernel: &[i64],
    strides: &[i64],
    dilations: &[i64],
    pads: &WindowPads,
    ceil: bool,
) -> Result<()> {
    let ns = kernel.len();
    let zeros = vec![0; ns];
    let (pb, pe, run_time) = match pads {
        WindowPads::Explicit(pb, pe) => (&pb[..], &pe[..], None),
        // Not in ceil mode (validation): no extra end padding, no crop.
        WindowPads::RunTime(var) => (&zeros[..], &zeros[..], Some(var)),
    };
    let shape = c.in_ty(0)?.shape;
    let mut extra = vec![];
    let mut crop = vec![];
    for i in 0..ns {
        let (h, k, s, d) = (shape[2 + i], kernel[i], strides[i], dilations[i]);
        if !ceil {
            extra.push(0);
            crop.push(":".to_string());
            continue;
        }
        if h < 0 {
            bail!("ceil_mode average pooling with dilations on a spatial axis of unknown size");
        }
        let out = window_out(h, k, s, d, pb[i], pe[i], true)?;
        let covered = (out - 1) * s + d * (k - 1) + 1;
        extra.push((covered - (h + pb[i] + pe[i])).max(0));
        crop.push(format!(":{out}"));
    }
    let ends: Vec<i64> = pe.iter().zip(&extra).map(|(e, x)| e + x).collect();
    let include_pad = c.a.bool("count_include_pad")?;
    let x = c.x(0)?;
    let f = c.func(&format!("F.conv{ns}d"));
    let pad = c.func("F.pad");
    let k = kernel
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let conv = format!("stride={}, dilation={}", ints(strides), ints(dilations));
    let cells = c.local("cells");
    let counts = c.local("counts");
    c.line(format!(
        "# Dilated average pooling: window sums over the number of window cells {}.",
        if include_pad {
            "inside the padded input"
        } else {
            "inside the input"
        }
    ));
    // F.pad, left out when it pads nothing.
    let padded = |t: &str, b: &[i64], e: &[i64], value: &str| {
        if b.iter().chain(e).all(|&p| p == 0) {
            t.to_string()
        } else {
            format!("{pad}({t}, {}{value})", torch_pads(b, e))
        }
    };
    // The window's own padding (computed when the module runs, or pb and `end`).
    let own = |t: &str, end: &[i64], value: &str| match run_time {
        Some(var) => format!("{pad}({t}, {var}{value})"),
        None => padded(t, pb, end, value),
    };
    let ones = format!("torch.ones_like({x}[:1, :1])");
    let mask = if include_pad {
        let counted = own(&ones, pe, ", value=1.0");
        padded(&counted, &zeros, &extra, "")
    } else {
        own(&ones, &ends, "")
    };
    c.line(format!("{cells} = {mask}"));
    c.line(format!(
        "{counts} = {f}({cells}, torch.ones(1, 1, {k}, dtype={x}.dtype), {conv})"
    ));
    let sums = format!(
        "{f}({}, torch.ones({x}.shape[1], 1, {k}, dtype={x}.dtype), {conv}, groups={x}.shape[1])",
        own(&x, &ends, "")
    );
    let crop = if crop.iter().all(|c| c == ":") {
        String::new()
    } else {
        format!("[:, :, {}]", crop.join(", "))
    };
    c.set(format!("({sums} / {counts}){crop}"))
}

fn global_pool(c: &mut Ctx) -> Result<()> {
    let rank = c.in_ty(0)?.rank();
    if rank < 3 {
        bail!("expects an input of rank 3 or more");
    }
    let (_, spatial) = spatial_axes(rank, c.a.channels_last()?);
    let dims: Vec<i64> = spatial.iter().map(|&a| a as i64).collect();
    let method = if c.a.str("pooling_type")? == "MAX" {
        "amax"
    } else {
        "mean"
    };
    let keep = if c.a.bool("keepdims")? {
        ", keepdim=True"
    } else {
        ""
    };
    let x = c.x(0)?;
    c.set(format!("{x}.{method}(dim={}{keep})", tuple(&dims)))
}
