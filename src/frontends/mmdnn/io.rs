//! Graph inputs and constants: `DataInput` (its shape from `shape` or the recorded output
//! shape) and `Constant` (a value in the node's `value` attribute, or in the weights file).
use super::import::{dims, Importer, MapFn};
use super::node::{kind, MmNode};
use super::weights::Stored;
use crate::ir::ops::shape_rules::numel;
use crate::ir::serialize::shape_from_proto;
use crate::ir::{AttrValue, DType};
use crate::proto::attr_value::Value;
use crate::weights::Tensor;
use anyhow::{bail, Context, Result};

pub(super) fn lookup(op: &str) -> Option<MapFn> {
    Some(match op {
        "DataInput" => data_input,
        "Constant" => constant,
        _ => return None,
    })
}

fn data_input(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let shape = match n.attr("shape") {
        Some(Value::Shape(s)) if !s.unknown_rank => shape_from_proto(s),
        _ => cx
            .output_shape(n)
            .cloned()
            .context("neither `shape` nor `_output_shapes` gives the input's shape")?,
    };
    // MMdnn's emitters default to float32 when `dtype` is absent.
    let dtype = n.dtype("dtype")?.unwrap_or(DType::F32);
    cx.add(
        n.node("DataInput")
            .with_attr("dtype", AttrValue::Type(dtype))
            .with_attr("shape", AttrValue::Shape(shape)),
    );
    Ok(())
}

fn constant(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let dtype = n.dtype("dtype")?.unwrap_or(DType::F32);
    let recorded = cx
        .output_shape(n)
        .filter(|s| s.iter().all(|&d| d >= 0))
        .cloned();
    let shape = match n.attr("value") {
        Some(v) => {
            let (values, listed) = match v {
                Value::F(f) => (vec![f64::from(*f)], false),
                Value::I(i) => (vec![*i as f64], false),
                Value::List(l) if !l.f.is_empty() => {
                    (l.f.iter().map(|&f| f64::from(f)).collect(), true)
                }
                Value::List(l) => (l.i.iter().map(|&i| i as f64).collect(), true),
                v => bail!("attribute 'value' is {}, not numbers", kind(v)),
            };
            let shape = match recorded {
                Some(s) if numel(&s) == values.len() as i64 => s,
                _ if listed => vec![values.len() as i64],
                _ => vec![],
            };
            let t = literal(&values, dtype, dims(&shape))?;
            cx.weights.literal(n.name(), "value", t);
            shape
        }
        None => {
            let shape = recorded.context(
                "the value is in the weights file and `_output_shapes` does not give its shape",
            )?;
            let stored = Stored::new(n.name(), &["value"]).cast(dtype);
            cx.weight(n.name(), "value", stored);
            shape
        }
    };
    cx.add(
        n.node("Constant")
            .with_attr("dtype", AttrValue::Type(dtype))
            .with_attr("shape", AttrValue::Shape(shape)),
    );
    Ok(())
}

/// A tensor of `dtype` holding `values`.
fn literal(values: &[f64], dtype: DType, shape: Vec<usize>) -> Result<Tensor> {
    let data: Vec<u8> = match dtype {
        DType::F32 => values
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect(),
        DType::F64 => values.iter().flat_map(|&v| v.to_le_bytes()).collect(),
        DType::I32 => values
            .iter()
            .flat_map(|&v| (v as i32).to_le_bytes())
            .collect(),
        DType::I64 => values
            .iter()
            .flat_map(|&v| (v as i64).to_le_bytes())
            .collect(),
        d => bail!("constants of type {d} in attributes are not supported"),
    };
    Tensor::new(dtype, shape, data)
}
