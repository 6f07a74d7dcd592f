//! The steps of a derived weight: what each does to dtype and shape (checked without reading
//! bytes) and to the bytes. Byte moves release the pages of mapped sources they read.
use super::numeric;
use crate::ir::DType;
use crate::weights::mapped::{copy_releasing, release};
use crate::weights::permute::permute_bytes;
use crate::weights::{checked_numel, Tensor, TensorInfo};
use anyhow::{bail, Result};
use bytes::Bytes;

/// One step of a derived weight.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Same bytes, another shape (the same number of elements).
    Reshape(Vec<usize>),
    /// Left-padded with size-1 axes to the permutation's length, then transposed: output axis
    /// `i` is axis `perm[i]`.
    Permute(Vec<usize>),
    /// Rows (axis 0) gathered: output row `i` is row `rows[i]` (a reorder when `rows` is a
    /// permutation).
    Rows(Vec<usize>),
    /// Gate blocks reordered along `axis`, separately for every index of the axes before it
    /// (each direction of a recurrent weight): the axis is cut into `order.len()` equal blocks
    /// and block `i` of the result is block `order[i]`.
    Gates { axis: usize, order: Vec<usize> },
    /// The tensors so far (one per source: the directions of a recurrent weight) stacked along
    /// a new axis 0; they must have the same dtype and shape.
    Stack,
    /// Elements converted to another type (see [`numeric::cast`]).
    Cast(DType),
    /// `(x - zero_point) * scale` as float32: one scale (and zero point) for the tensor, or one
    /// per index of `axis`; no zero points means zero.
    Dequantize {
        scale: Vec<f32>,
        zero_point: Vec<i64>,
        axis: usize,
    },
}

impl Step {
    /// Whether the step leaves the bytes as they are (a reshape).
    pub fn keeps_bytes(&self) -> bool {
        matches!(self, Step::Reshape(_))
    }

    /// Dtypes and shapes after this step, from those before.
    pub fn infos(&self, infos: Vec<TensorInfo>) -> Result<Vec<TensorInfo>> {
        if *self == Step::Stack {
            return Ok(vec![stacked(&infos)?]);
        }
        infos.iter().map(|i| self.info(i)).collect()
    }

    /// The tensors after this step, from those before.
    pub fn apply(&self, tensors: Vec<Tensor>) -> Result<Vec<Tensor>> {
        if *self == Step::Stack {
            return Ok(vec![stack(tensors)?]);
        }
        tensors.into_iter().map(|t| self.apply_one(t)).collect()
    }

    /// Dtype and shape after this step of one tensor.
    fn info(&self, src: &TensorInfo) -> Result<TensorInfo> {
        let shape = &src.shape;
        let with_shape = |shape: Vec<usize>| TensorInfo {
            dtype: src.dtype,
            shape,
        };
        Ok(match self {
            Step::Reshape(to) => {
                if checked_numel(to) != Some(src.numel()) {
                    bail!("cannot view {shape:?} as {to:?}");
                }
                with_shape(to.clone())
            }
            Step::Permute(perm) => {
                if !is_permutation(perm) || perm.len() < shape.len() {
                    bail!("cannot permute {shape:?} by {perm:?}");
                }
                let dims = padded(shape, perm.len());
                with_shape(perm.iter().map(|&a| dims[a]).collect())
            }
            Step::Rows(rows) => {
                let n = *shape.first().unwrap_or(&0);
                if shape.is_empty() || rows.iter().any(|&r| r >= n) {
                    bail!("cannot take rows {} of {shape:?}", brief(rows));
                }
                let mut to = shape.clone();
                to[0] = rows.len();
                with_shape(to)
            }
            Step::Gates { axis, order } => {
                let fits = !order.is_empty()
                    && shape.get(*axis).is_some_and(|&len| len % order.len() == 0);
                if !fits || !is_permutation(order) {
                    bail!(
                        "cannot reorder {} gates {order:?} along axis {axis} of {shape:?}",
                        order.len()
                    );
                }
                src.clone()
            }
            Step::Stack => stacked(std::slice::from_ref(src))?,
            Step::Cast(to) => {
                if !numeric::castable(src.dtype, *to) {
                    bail!("cannot cast {} to {to}", src.dtype);
                }
                TensorInfo {
                    dtype: *to,
                    shape: shape.clone(),
                }
            }
            Step::Dequantize {
                scale,
                zero_point,
                axis,
            } => {
                numeric::check_quantization(src, scale, zero_point, *axis)?;
                TensorInfo {
                    dtype: DType::F32,
                    shape: shape.clone(),
                }
            }
        })
    }

    fn apply_one(&self, t: Tensor) -> Result<Tensor> {
        let out = self.info(&t.info)?;
        let data: Bytes = match self {
            Step::Reshape(_) => t.data,
            Step::Permute(perm) => {
                let dims = padded(&t.info.shape, perm.len());
                if perm.iter().enumerate().all(|(i, &a)| i == a) {
                    t.data
                } else {
                    let data = permute_bytes(&t.data, &dims, perm, t.info.dtype.size());
                    release(&t.data);
                    data.into()
                }
            }
            Step::Rows(rows) => {
                let row = row_bytes(&t.info);
                gather_rows(t.data, row, rows)
            }
            Step::Gates { axis, order } => {
                let data = reorder_blocks(&t.data, &t.info, *axis, order);
                release(&t.data);
                data.into()
            }
            Step::Stack => return stack(vec![t]),
            Step::Cast(to) => return numeric::cast(t, *to),
            Step::Dequantize {
                scale,
                zero_point,
                axis,
            } => {
                let values = numeric::dequantize(&t, scale, zero_point, *axis);
                release(&t.data);
                return Tensor::from_f32(out.shape, &values);
            }
        };
        Tensor::new(out.dtype, out.shape, data)
    }
}

/// `shape` left-padded with size-1 axes to `rank`.
fn padded(shape: &[usize], rank: usize) -> Vec<usize> {
    let mut dims = vec![1; rank.saturating_sub(shape.len())];
    dims.extend(shape);
    dims
}

/// The first few rows of a list, for messages.
fn brief(rows: &[usize]) -> String {
    match rows.len() {
        0..=8 => format!("{rows:?}"),
        n => format!("{:?}… ({n} rows)", &rows[..8]),
    }
}

/// Bytes per row (axis 0) of a tensor.
pub fn row_bytes(info: &TensorInfo) -> usize {
    match info.shape.first() {
        Some(&n) if n > 0 => info.nbytes() / n,
        _ => 0,
    }
}

fn stacked(infos: &[TensorInfo]) -> Result<TensorInfo> {
    let Some(first) = infos.first() else {
        bail!("nothing to stack");
    };
    if let Some(other) = infos.iter().find(|i| *i != first) {
        bail!(
            "cannot stack {}{:?} with {}{:?}",
            first.dtype,
            first.shape,
            other.dtype,
            other.shape
        );
    }
    let mut shape = vec![infos.len()];
    shape.extend(&first.shape);
    Ok(TensorInfo {
        dtype: first.dtype,
        shape,
    })
}

fn stack(tensors: Vec<Tensor>) -> Result<Tensor> {
    let infos: Vec<TensorInfo> = tensors.iter().map(|t| t.info.clone()).collect();
    let out = stacked(&infos)?;
    if let [t] = &tensors[..] {
        return Tensor::new(out.dtype, out.shape, t.data.clone());
    }
    let mut data = Vec::with_capacity(out.nbytes());
    for t in &tensors {
        data.extend_from_slice(&t.data);
        release(&t.data);
    }
    Tensor::new(out.dtype, out.shape, data)
}

/// Blocks of `axis` reordered (see [`Step::Gates`]) in a new buffer.
fn reorder_blocks(data: &[u8], info: &TensorInfo, axis: usize, order: &[usize]) -> Vec<u8> {
    let len = info.shape[axis];
    let inner = info.shape[axis + 1..].iter().product::<usize>() * info.dtype.size();
    let block = len / order.len() * inner;
    let mut out = Vec::with_capacity(data.len());
    for outer in data.chunks_exact((len * inner).max(1)) {
        for &b in order {
            out.extend_from_slice(&outer[b * block..(b + 1) * block]);
        }
    }
    out
}

/// Rows `rows` of `data` (rows of `row` bytes). A permutation of an owned buffer is applied in
/// place, so a large weight is never held twice; one of a mapped file is copied out (its pages
/// released as it goes) and permuted in the copy.
fn gather_rows(data: Bytes, row: usize, rows: &[usize]) -> Bytes {
    if !is_permutation(rows) || rows.len() * row != data.len() {
        let out = reorder_rows(&data, row, rows);
        release(&data);
        return out.into();
    }
    match data.try_into_mut() {
        Ok(mut buf) => {
            reorder_rows_in_place(&mut buf, row, rows);
            buf.freeze()
        }
        Err(data) => {
            let mut buf = copy_releasing(&data);
            drop(data);
            reorder_rows_in_place(&mut buf, row, rows);
            buf.into()
        }
    }
}

/// Rows `rows[0], rows[1], …` of `data` (rows of `row` bytes), in a new buffer.
fn reorder_rows(data: &[u8], row: usize, rows: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * row);
    for &r in rows {
        out.extend_from_slice(&data[r * row..(r + 1) * row]);
    }
    out
}

fn is_permutation(items: &[usize]) -> bool {
    let mut seen = vec![false; items.len()];
    items
        .iter()
        .all(|&r| r < items.len() && !std::mem::replace(&mut seen[r], true))
}

/// Makes row `i` of `data` its former row `rows[i]`, following each cycle of the permutation
/// with one row of scratch space.
fn reorder_rows_in_place(data: &mut [u8], row: usize, rows: &[usize]) {
    let mut done = vec![false; rows.len()];
    let mut first = vec![0u8; row];
    for start in 0..rows.len() {
        if done[start] || rows[start] == start {
            continue;
        }
        first.copy_from_slice(&data[start * row..(start + 1) * row]);
        let mut to = start;
        loop {
            done[to] = true;
            let from = rows[to];
            if from == start {
                data[to * row..(to + 1) * row].copy_from_slice(&first);
                break;
            }
            data.copy_within(from * row..(from + 1) * row, to * row);
            to = from;
        }
    }
}

#[cfg(test)]
#[path = "steps_tests.rs"]
mod tests;
