//! Merge layers: Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, Dot; and the
//! small scaling layers of keras.applications (InceptionResNetV2's CustomScaleLayer, ConvNeXt's
//! LayerScale).
use super::super::convert::Cx;
use super::{ints_of, LayerCall};
use crate::ir::{AttrValue, TensorRef};
use anyhow::{bail, Result};

pub fn concatenate(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let axis = l.cfg.int_or("axis", -1)?;
    Ok(vec![cx.op(
        &l.name,
        "Concat",
        &l.inputs,
        vec![("axis", AttrValue::Int(axis))],
    )?])
}

/// Folds the inputs with a binary op; the last node carries the layer's name.
fn fold(cx: &mut Cx, l: &LayerCall, op: &str) -> Result<TensorRef> {
    let Some((first, rest)) = l.inputs.split_first() else {
        bail!("expects at least one input");
    };
    if rest.is_empty() {
        return cx.op(&l.name, "Identity", std::slice::from_ref(first), vec![]);
    }
    let mut acc = first.clone();
    for (i, x) in rest.iter().enumerate() {
        let name = if i + 1 == rest.len() {
            l.name.clone()
        } else {
            l.sub(&format!("{}_{i}", op.to_lowercase()))
        };
        acc = cx.op(&name, op, &[acc, x.clone()], vec![])?;
    }
    Ok(acc)
}

pub fn add(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    Ok(vec![fold(cx, l, "Add")?])
}

pub fn subtract(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    if l.inputs.len() != 2 {
        bail!("expects two inputs, got {}", l.inputs.len());
    }
    Ok(vec![fold(cx, l, "Sub")?])
}

pub fn multiply(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    Ok(vec![fold(cx, l, "Mul")?])
}

pub fn maximum(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    Ok(vec![fold(cx, l, "Maximum")?])
}

pub fn minimum(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    Ok(vec![fold(cx, l, "Minimum")?])
}

/// Average: the sum times 1/n.
pub fn average(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let mut sum = l.inputs[0].clone();
    for (i, x) in l.inputs[1..].iter().enumerate() {
        sum = cx.op(
            &l.sub(&format!("add_{i}")),
            "Add",
            &[sum, x.clone()],
            vec![],
        )?;
    }
    let k = cx.scalar(&l.sub("scale"), 1.0 / l.inputs.len() as f32)?;
    Ok(vec![cx.op(&l.name, "Mul", &[sum, k], vec![])?])
}

/// Dot of two batches of vectors ([N, F]) or matrices ([N, A, B]) along `axes`.
pub fn dot(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let [a, b] = &l.inputs[..] else {
        bail!("expects two inputs, got {}", l.inputs.len());
    };
    let (ra, rb) = (cx.rank(a)?, cx.rank(b)?);
    let axes = ints_of(l.cfg.get("axes").unwrap_or(&serde_json::json!(-1)), 2)?;
    let norm = |ax: i64, r: usize| if ax < 0 { ax + r as i64 } else { ax };
    let (xa, xb) = (norm(axes[0], ra), norm(axes[1], rb));
    let (mut a, mut b) = (a.clone(), b.clone());
    if l.cfg.bool_or("normalize", false)? {
        a = cx.op(
            &l.sub("normalize_a"),
            "LpNormalize",
            &[a],
            vec![("axis", AttrValue::Int(xa))],
        )?;
        b = cx.op(
            &l.sub("normalize_b"),
            "LpNormalize",
            &[b],
            vec![("axis", AttrValue::Int(xb))],
        )?;
    }
    let y = match (ra, rb) {
        (2, 2) => {
            let prod = cx.op(&l.sub("mul"), "Mul", &[a, b], vec![])?;
            cx.op(
                &l.name,
                "ReduceSum",
                &[prod],
                vec![
                    ("axes", AttrValue::Ints(vec![1])),
                    ("keepdims", AttrValue::Bool(true)),
                ],
            )?
        }
        (3, 3) => {
            let swap = |cx: &mut Cx, x: TensorRef, name: &str| {
                cx.op(
                    name,
                    "Transpose",
                    &[x],
                    vec![("perm", AttrValue::Ints(vec![0, 2, 1]))],
                )
            };
            if xa == 1 {
                a = swap(cx, a, &l.sub("transpose_a"))?;
            }
            if xb == 2 {
                b = swap(cx, b, &l.sub("transpose_b"))?;
            }
            cx.op(&l.name, "MatMul", &[a, b], vec![])?
        }
        _ => bail!("Dot of rank {ra} and rank {rb} inputs is not supported (ranks 2 or 3 only)"),
    };
    Ok(vec![y])
}

/// InceptionResNetV2's CustomScaleLayer: x[0] + x[1] · scale.
pub fn custom_scale(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let [a, b] = &l.inputs[..] else {
        bail!("expects two inputs, got {}", l.inputs.len());
    };
    let scale = cx.scalar(&l.sub("scale"), l.cfg.f32_or("scale", 1.0)?)?;
    let scaled = cx.op(&l.sub("scaled"), "Mul", &[b.clone(), scale], vec![])?;
    Ok(vec![cx.op(&l.name, "Add", &[a.clone(), scaled], vec![])?])
}

/// ConvNeXt's LayerScale: x · gamma (a learned per-channel vector).
pub fn layer_scale(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let dim = l.cfg.int("projection_dim")?;
    let gamma = cx.op(
        &l.sub("gamma"),
        "Constant",
        &[],
        vec![
            ("dtype", AttrValue::Type(crate::ir::DType::F32)),
            ("shape", AttrValue::Shape(vec![dim])),
        ],
    )?;
    cx.weight(&gamma, "value", l.var(0)?, vec![]);
    Ok(vec![cx.op(&l.name, "Mul", &[l.input()?, gamma], vec![])?])
}
