//! Reshape, Flatten, Permute, RepeatVector, ZeroPadding and Cropping.
use super::super::convert::Cx;
use super::{ints_of, LayerCall};
use crate::ir::ops::shape_rules::{reshape_dims, spatial_axes};
use crate::ir::{AttrValue, TensorRef};
use anyhow::{bail, Context, Result};
use serde_json::Value as Json;

/// Reshape to `[batch, *target]`. The batch is unknown, which keeps the IR's shape rule from
/// inferring a -1 of `target`: it is resolved here against the input's other dims when they are
/// known (`shape_rules::reshape_dims`). Keras has no "0 copies the input dim": a target with a
/// 0 is passed on as it is.
pub fn reshape_to(cx: &mut Cx, name: &str, x: TensorRef, target: &[i64]) -> Result<TensorRef> {
    let input = cx.shape(&x)?;
    let mut shape = vec![0];
    if target.contains(&0) {
        shape.extend(target);
    } else {
        shape.extend(reshape_dims(input.get(1..).unwrap_or_default(), target)?);
    }
    cx.op(
        name,
        "Reshape",
        &[x],
        vec![("shape", AttrValue::Ints(shape))],
    )
}

pub fn reshape(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let target = l.cfg.ints("target_shape", 0)?;
    Ok(vec![reshape_to(cx, &l.name, l.input()?, &target)?])
}

/// Flatten; a channels_first input is moved to channels_last first, as Keras does.
pub fn flatten(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let mut x = l.input()?;
    let rank = cx.rank(&x)?;
    if !l.cfg.channels_last()? && rank > 2 {
        let mut perm: Vec<i64> = vec![0];
        perm.extend(2..rank as i64);
        perm.push(1);
        x = cx.op(
            &l.sub("to_channels_last"),
            "Transpose",
            &[x],
            vec![("perm", AttrValue::Ints(perm))],
        )?;
    }
    Ok(vec![cx.op(
        &l.name,
        "Flatten",
        &[x],
        vec![("axis", AttrValue::Int(1))],
    )?])
}

pub fn permute(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let mut perm = vec![0];
    perm.extend(l.cfg.ints("dims", 0)?);
    let y = cx.op(
        &l.name,
        "Transpose",
        &[l.input()?],
        vec![("perm", AttrValue::Ints(perm))],
    )?;
    Ok(vec![y])
}

/// RepeatVector: [N, F] → [N, n, F].
pub fn repeat_vector(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let n = l.cfg.int("n")?;
    let x = cx.op(
        &l.sub("unsqueeze"),
        "Unsqueeze",
        &[l.input()?],
        vec![("axes", AttrValue::Ints(vec![1]))],
    )?;
    let y = cx.op(
        &l.name,
        "Tile",
        &[x],
        vec![("repeats", AttrValue::Ints(vec![1, n, 1]))],
    )?;
    Ok(vec![y])
}

/// (begin, end) per spatial axis from a Keras padding/cropping config: an int, one int per
/// axis (both sides; for 1-d layers a pair is (begin, end)), or one pair per axis.
fn sides(v: &Json, n: usize) -> Result<Vec<(i64, i64)>> {
    if let Some(p) = v.as_i64() {
        return Ok(vec![(p, p); n]);
    }
    let items = v
        .as_array()
        .with_context(|| format!("{v} is not an int or a list"))?;
    if n == 1 && items.len() == 2 && items.iter().all(Json::is_i64) {
        return Ok(vec![(
            items[0].as_i64().unwrap_or(0),
            items[1].as_i64().unwrap_or(0),
        )]);
    }
    if items.len() != n {
        bail!("{v} should have {n} entries");
    }
    items
        .iter()
        .map(|i| match i.as_i64() {
            Some(p) => Ok((p, p)),
            None => {
                let pair = ints_of(i, 2)?;
                Ok((pair[0], pair[1]))
            }
        })
        .collect()
}

/// ZeroPadding1D/2D/3D as a constant Pad.
pub fn zero_padding(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let rank = cx.rank(&x)?;
    let (_, axes) = spatial_axes(rank, l.cfg.channels_last()?);
    let sides = sides(
        l.cfg
            .get("padding")
            .context("config 'padding' is missing")?,
        axes.len(),
    )?;
    let mut pads = vec![0; 2 * rank];
    for (i, &a) in axes.iter().enumerate() {
        pads[a] = sides[i].0;
        pads[a + rank] = sides[i].1;
    }
    let y = cx.op(&l.name, "Pad", &[x], vec![("pads", AttrValue::Ints(pads))])?;
    Ok(vec![y])
}

/// Cropping1D/2D/3D as a Slice.
pub fn cropping(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let x = l.input()?;
    let rank = cx.rank(&x)?;
    let (_, axes) = spatial_axes(rank, l.cfg.channels_last()?);
    let sides = sides(
        l.cfg
            .get("cropping")
            .context("config 'cropping' is missing")?,
        axes.len(),
    )?;
    let y = cx.op(
        &l.name,
        "Slice",
        &[x],
        vec![
            (
                "starts",
                AttrValue::Ints(sides.iter().map(|s| s.0).collect()),
            ),
            (
                "ends",
                AttrValue::Ints(
                    sides
                        .iter()
                        .map(|s| if s.1 == 0 { i64::MAX } else { -s.1 })
                        .collect(),
                ),
            ),
            (
                "axes",
                AttrValue::Ints(axes.iter().map(|&a| a as i64).collect()),
            ),
        ],
    )?;
    Ok(vec![y])
}
