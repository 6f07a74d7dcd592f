//! Shape ops: `Flatten`, `Reshape`, `Concat`, `Squeeze`, `Unsqueeze`, `Transpose`, `Pad`,
//! `Crop` and `Slice` (TensorFlow's masks), and `Cast`.
use super::import::{Importer, MapFn};
use super::node::MmNode;
use crate::ir::types::shape_string;
use crate::ir::{AttrValue, DType, Node, TensorRef};
use anyhow::{bail, Context, Result};

pub(super) fn lookup(op: &str) -> Option<MapFn> {
    Some(match op {
        "Flatten" => flatten,
        "Reshape" => reshape,
        "Concat" => concat,
        "Squeeze" => squeeze,
        "Unsqueeze" => unsqueeze,
        "Transpose" => transpose,
        "Pad" => pad,
        "Crop" => crop,
        "Slice" => slice,
        "Cast" => cast_op,
        _ => return None,
    })
}

/// Flatten from axis 1; NHWC stays NHWC, so the flattened order is MMdnn's.
fn flatten(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(n.node("Flatten").with_attr("axis", AttrValue::Int(1)));
    Ok(())
}

/// Reshape to MMdnn's `shape` (NHWC, -1 batch first). When another entry is -1 too, the batch
/// is copied (0) so that entry can be inferred.
fn reshape(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let mut shape = n.req_ints("shape")?;
    if shape.first() == Some(&-1) && shape[1..].contains(&-1) {
        shape[0] = 0;
    }
    cx.add(n.node("Reshape").with_attr("shape", AttrValue::Ints(shape)));
    Ok(())
}

/// Concat. MMdnn's Keras parser writes axis -1 as 3 whatever the rank; on a tensor of lower
/// rank that can only mean the last axis.
fn concat(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let mut axis = n.req_int("axis")?;
    if axis == 3 && cx.output_shape(n).is_some_and(|s| s.len() < 4) {
        axis = -1;
    }
    cx.add(n.node("Concat").with_attr("axis", AttrValue::Int(axis)));
    Ok(())
}

fn squeeze(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let axes = match n.ints("axes")? {
        Some(a) => a,
        None => n.ints("squeeze_dims")?.unwrap_or_default(),
    };
    cx.add(n.node("Squeeze").with_attr("axes", AttrValue::Ints(axes)));
    Ok(())
}

fn unsqueeze(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let axes = n.req_ints("axes")?;
    cx.add(n.node("Unsqueeze").with_attr("axes", AttrValue::Ints(axes)));
    Ok(())
}

fn transpose(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let perm = n.ints("perm")?.context(
        "attribute 'perm' is missing (a permutation given as a tensor input is not supported)",
    )?;
    cx.add(n.node("Transpose").with_attr("perm", AttrValue::Ints(perm)));
    Ok(())
}

/// Pad: MMdnn's pads are already `[begins..., ends...]` over all axes.
fn pad(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let mode = match n.str("mode")?.map(|m| m.to_ascii_lowercase()).as_deref() {
        None | Some("constant") => "constant",
        Some("reflect") => "reflect",
        Some("symmetric") => "symmetric",
        Some(m) => bail!("padding mode '{m}' is not CONSTANT, REFLECT or SYMMETRIC"),
    };
    cx.add(
        n.node("Pad")
            .with_attr("pads", AttrValue::Ints(n.req_ints("pads")?))
            .with_attr("mode", AttrValue::Str(mode.into()))
            .with_attr(
                "value",
                AttrValue::Float(n.float("constant_values")?.unwrap_or(0.0)),
            ),
    );
    Ok(())
}

/// Crop → Slice of the spatial axes. The Keras parser writes `border` as (begin, end) per
/// spatial axis; the Caffe parser writes offsets and leaves the size to `_output_shapes`.
/// The recorded shapes decide between the two where they are known.
fn crop(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let border = n.req_ints("border")?;
    if border.is_empty() || border.len() % 2 != 0 {
        bail!("border {border:?} does not have a begin and end per spatial axis");
    }
    let k = border.len() / 2;
    let input = cx.spatial_dims(n.input(0)?, k);
    let output = cx.spatial_dims(&TensorRef::new(n.name(), 0), k);
    let pairs_fit =
        |i: &[i64], o: &[i64]| (0..k).all(|a| i[a] - border[2 * a] - border[2 * a + 1] == o[a]);
    let (starts, ends): (Vec<i64>, Vec<i64>) = match (input, output) {
        (Some(i), Some(o)) if !pairs_fit(&i, &o) => {
            if (0..k).any(|a| border[a] + o[a] > i[a]) {
                bail!(
                    "border {border:?} fits neither (begin, end) pairs nor offsets for input {} and output {}",
                    shape_string(&i),
                    shape_string(&o)
                );
            }
            (0..k).map(|a| (border[a], border[a] + o[a])).unzip()
        }
        _ => (0..k)
            .map(|a| {
                let end = border[2 * a + 1];
                (border[2 * a], if end == 0 { i64::MAX } else { -end })
            })
            .unzip(),
    };
    cx.add(
        n.node("Slice")
            .with_attr("starts", AttrValue::Ints(starts))
            .with_attr("ends", AttrValue::Ints(ends))
            .with_attr("axes", AttrValue::Ints((1..=k as i64).collect())),
    );
    Ok(())
}

/// Slice: starts/ends/strides over the leading axes. TensorFlow's begin and end masks are
/// applied; shrink_axis_mask adds a Squeeze (which keeps the name); new-axis and ellipsis
/// masks are refused.
fn slice(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let mut starts = n.req_ints("starts")?;
    let mut ends = n.req_ints("ends")?;
    let mut steps = n.ints("strides")?.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || steps.len() != starts.len() {
        bail!("starts {starts:?}, ends {ends:?} and strides {steps:?} differ in length");
    }
    for mask in ["new_axis_mask", "ellipsis_mask"] {
        if n.int(mask)?.unwrap_or(0) != 0 {
            bail!("{mask} is not supported");
        }
    }
    let bit = |mask: i64, i: usize| mask >> i & 1 == 1;
    let (begin_mask, end_mask) = (
        n.int("begin_mask")?.unwrap_or(0),
        n.int("end_mask")?.unwrap_or(0),
    );
    let shrink_mask = n.int("shrink_axis_mask")?.unwrap_or(0);
    let mut shrunk = vec![];
    for i in 0..starts.len() {
        let forward = steps[i] > 0;
        if bit(begin_mask, i) {
            starts[i] = if forward { 0 } else { i64::MAX };
        }
        if bit(end_mask, i) {
            ends[i] = if forward { i64::MAX } else { i64::MIN };
        }
        if bit(shrink_mask, i) {
            ends[i] = if starts[i] == -1 {
                i64::MAX
            } else {
                starts[i] + 1
            };
            steps[i] = 1;
            shrunk.push(i as i64);
        }
    }
    let mut sliced = Node::new(n.name(), "Slice")
        .with_inputs([n.input(0)?.clone()])
        .with_attr("starts", AttrValue::Ints(starts))
        .with_attr("ends", AttrValue::Ints(ends))
        .with_attr("steps", AttrValue::Ints(steps));
    if shrunk.is_empty() {
        cx.add(sliced);
        return Ok(());
    }
    sliced.name = format!("{}_slice", n.name());
    let sliced = cx.add_new(sliced);
    cx.add(
        Node::new(n.name(), "Squeeze")
            .with_inputs([sliced])
            .with_attr("axes", AttrValue::Ints(shrunk)),
    );
    Ok(())
}

/// Cast to MXNet's `dtype` or TensorFlow/PyTorch's `dstType` name.
fn cast_op(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let to = match (n.dtype("dtype")?, n.str("dstType")?.as_deref()) {
        (Some(t), _) => t,
        (None, Some("float")) => DType::F32,
        (None, Some("double")) => DType::F64,
        (None, Some("int")) => DType::I32,
        (None, Some(t)) => bail!("dstType '{t}' is not float, double or int"),
        (None, None) => bail!("neither `dtype` nor `dstType` gives the target type"),
    };
    cx.add(n.node("Cast").with_attr("to", AttrValue::Type(to)));
    Ok(())
}
