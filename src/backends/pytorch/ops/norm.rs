//! Normalization: `nn.BatchNormNd`, `nn.LayerNorm`, `nn.GroupNorm` and `nn.InstanceNormNd`
//! layers (the channel axis moved to position 1 and back when it is elsewhere; LayerNorm's axes
//! moved to the end), `F.local_response_norm` (with the IR's window for even sizes) and
//! `F.normalize`.
use super::{float, tuple, Ctx, Lower};
use crate::ir::ops::shape_rules::norm_axis;
use crate::ir::DType;
use anyhow::{bail, Result};

pub fn lookup(op: &str) -> Option<Lower> {
    Some(match op {
        "BatchNorm" => batch_norm,
        "LayerNorm" => layer_norm,
        "GroupNorm" => group_norm,
        "InstanceNorm" => instance_norm,
        "LRN" => lrn,
        "LpNormalize" => lp_normalize,
        _ => return None,
    })
}

/// Whether the IR node scales or shifts (has a scale or a bias in use).
fn is_affine(c: &Ctx) -> Result<bool> {
    Ok((c.a.bool("use_scale")? && c.has("scale")) || (c.a.bool("use_bias")? && c.has("bias")))
}

/// Scale and bias of an affine normalization layer as its `weight` and `bias` entries of shape
/// `shape` (ones or zeros where the IR has none; no bias entry when the layer's bias is
/// optional and the IR has none).
fn affine_entries(c: &mut Ctx, shape: Vec<usize>, bias_optional: bool) -> Result<()> {
    let scale = c.a.bool("use_scale")? && c.has("scale");
    let bias = c.a.bool("use_bias")? && c.has("bias");
    if !scale && !bias {
        return Ok(());
    }
    if scale {
        c.entry("weight", "scale", Some(shape.clone()))?;
    } else {
        c.fill("weight", DType::F32, shape.clone(), 1.0)?;
    }
    if bias {
        c.entry("bias", "bias", Some(shape))?;
    } else if !bias_optional {
        c.fill("bias", DType::F32, shape, 0.0)?;
    }
    Ok(())
}

/// `layer(x)` with axis `axis` moved to position 1 and back.
fn channel_call(c: &mut Ctx, layer: &str, axis: usize) -> Result<()> {
    let x = c.x(0)?;
    if axis == 1 {
        c.set(format!("{layer}({x})"))
    } else {
        c.set(format!(
            "{layer}({x}.movedim({axis}, 1)).movedim(1, {axis})"
        ))
    }
}

fn batch_norm(c: &mut Ctx) -> Result<()> {
    let rank = c.in_ty(0)?.rank();
    let axis = norm_axis(c.a.int("axis")?, rank)?;
    let kind = match rank {
        2 | 3 => "1d",
        4 => "2d",
        5 => "3d",
        _ => bail!("BatchNorm on a rank-{rank} tensor is not supported by PyTorch"),
    };
    if axis == 0 {
        bail!("the channel axis cannot be the batch axis 0");
    }
    let mean = c.info("mean")?;
    let channels = mean.numel();
    let eps = c.a.float("epsilon")?;
    // The layer is built before its entries so the rename comment comes first.
    let affine_flag = is_affine(c)?;
    let mut args = vec![channels.to_string(), format!("eps={}", float(eps))];
    if !affine_flag {
        args.push("affine=False".into());
    }
    let layer = c.layer(format!("nn.BatchNorm{kind}({})", args.join(", ")));
    affine_entries(c, vec![channels], false)?;
    c.entry("running_mean", "mean", Some(vec![channels]))?;
    c.entry("running_var", "var", Some(vec![channels]))?;
    c.fill("num_batches_tracked", DType::I64, vec![], 0.0)?;
    channel_call(c, &layer, axis)
}

fn layer_norm(c: &mut Ctx) -> Result<()> {
    let ty = c.in_ty(0)?;
    let rank = ty.rank();
    let mut axes =
        c.a.ints("axes")?
            .iter()
            .map(|&a| norm_axis(a, rank))
            .collect::<Result<Vec<_>>>()?;
    axes.sort_unstable();
    axes.dedup();
    let dims: Vec<i64> = axes.iter().map(|&a| ty.shape[a]).collect();
    if dims.iter().any(|&d| d < 0) {
        bail!("the normalised axes must have known sizes");
    }
    let shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    let eps = c.a.float("epsilon")?;
    let scale = c.a.bool("use_scale")? && c.has("scale");
    let bias = c.a.bool("use_bias")? && c.has("bias");
    let mut args = vec![normalized_shape(&dims), format!("eps={}", float(eps))];
    if !scale && !bias {
        args.push("elementwise_affine=False".into());
    } else if !bias {
        args.push("bias=False".into());
    }
    let layer = c.layer(format!("nn.LayerNorm({})", args.join(", ")));
    affine_entries(c, shape, true)?;
    let x = c.x(0)?;
    let trailing: Vec<usize> = (rank - axes.len()..rank).collect();
    if axes == trailing {
        return c.set(format!("{layer}({x})"));
    }
    // Move the normalised axes to the end and back.
    let mut perm: Vec<usize> = (0..rank).filter(|a| !axes.contains(a)).collect();
    perm.extend(&axes);
    let mut inv = vec![0; rank];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    let list = |p: &[usize]| {
        p.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    c.set(format!(
        "{layer}({x}.permute({})).permute({})",
        list(&perm),
        list(&inv)
    ))
}

fn group_norm(c: &mut Ctx) -> Result<()> {
    let rank = c.in_ty(0)?.rank();
    let axis = norm_axis(c.a.int("axis")?, rank)?;
    if axis == 0 {
        bail!("the channel axis cannot be the batch axis 0");
    }
    let channels = c.in_ty(0)?.shape[axis];
    if channels < 0 {
        bail!("the channel count must be known");
    }
    let groups = c.a.int("groups")?;
    let eps = c.a.float("epsilon")?;
    let affine = is_affine(c)?;
    let layer = c.layer(format!(
        "nn.GroupNorm({groups}, {channels}, eps={}{})",
        float(eps),
        if affine { "" } else { ", affine=False" }
    ));
    affine_entries(c, vec![channels as usize], false)?;
    channel_call(c, &layer, axis)
}

fn instance_norm(c: &mut Ctx) -> Result<()> {
    let rank = c.in_ty(0)?.rank();
    let axis = norm_axis(c.a.int("axis")?, rank)?;
    if axis == 0 {
        bail!("the channel axis cannot be the batch axis 0");
    }
    let channels = c.in_ty(0)?.shape[axis];
    if channels < 0 {
        bail!("the channel count must be known");
    }
    if !(3..=5).contains(&rank) {
        bail!("InstanceNorm on a rank-{rank} tensor is not supported by PyTorch");
    }
    let eps = c.a.float("epsilon")?;
    let affine = is_affine(c)?;
    let layer = c.layer(format!(
        "nn.InstanceNorm{}d({channels}, eps={}{})",
        rank - 2,
        float(eps),
        if affine { ", affine=True" } else { "" }
    ));
    affine_entries(c, vec![channels as usize], false)?;
    channel_call(c, &layer, axis)
}

fn lrn(c: &mut Ctx) -> Result<()> {
    let rank = c.in_ty(0)?.rank();
    let axis = norm_axis(c.a.int("axis")?, rank)?;
    let size = c.a.int("size")?;
    let args = format!(
        "{size}, alpha={}, beta={}, k={}",
        float(c.a.float("alpha")?),
        float(c.a.float("beta")?),
        float(c.a.float("bias")?)
    );
    let f = c.func("F.local_response_norm");
    let mut x = c.x(0)?;
    if axis != 1 {
        x = format!("{x}.movedim({axis}, 1)");
    }
    if rank == 2 {
        x = format!("{x}.unsqueeze(-1)");
    }
    // torch's window has the extra channel of an even size before the centre, the IR's
    // after it: flipping the channels swaps the two.
    let even = size % 2 == 0;
    let mut expr = if even {
        format!("{f}({x}.flip(1), {args}).flip(1)")
    } else {
        format!("{f}({x}, {args})")
    };
    if rank == 2 {
        expr = format!("{expr}.squeeze(-1)");
    }
    if axis != 1 {
        expr = format!("{expr}.movedim(1, {axis})");
    }
    c.set(expr)
}

fn lp_normalize(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let rank = c.in_ty(0)?.rank();
    let axis = norm_axis(c.a.int("axis")?, rank)?;
    let (p, eps) = (c.a.int("p")?, c.a.float("epsilon")?);
    let f = c.func("F.normalize");
    c.set(format!("{f}({x}, p={p}.0, dim={axis}, eps={})", float(eps)))
}

/// LayerNorm's `normalized_shape`: an int for one axis, else a tuple.
fn normalized_shape(dims: &[i64]) -> String {
    match dims {
        [d] => d.to_string(),
        _ => tuple(dims),
    }
}
