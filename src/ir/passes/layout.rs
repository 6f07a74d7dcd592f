//! Layout conversion: rewrites a graph from channels_first to channels_last or back, exactly.
//!
//! Every tensor of the converted graph is tracked as its original permuted by some `perm`
//! (`new = transpose(original, perm)`: new axis i is original axis `perm[i]`). How each op
//! follows a permutation of its inputs is declared with the op in the catalogue
//! ([`crate::ir::ops::Layout`]); the pass dispatches on that declaration and implements each
//! rule once. Ops with a `data_format` switch to the target format (input wanted in the target
//! layout, kernel weights permuted); layout-agnostic ops pass the permutation through; ops with
//! axis attributes get them renamed; constants broadcast against a permuted tensor are permuted
//! themselves; Flatten (or a flattening Reshape) feeding only FullyConnected layers leaves its
//! columns permuted and permutes the layers' weight rows instead. A Transpose is inserted only
//! where no rewrite exists, and always from a tensor's tracked form, so inverse pairs cancel and
//! consecutive ones merge by construction (a source Transpose is absorbed into the tracked
//! permutation). Weights are transformed lazily, per tensor, on read ([`TransformedWeights`]).
//!
//! Parts: `perm` (permutation algebra), `convert` (the converter: tracked forms, inserted
//! Transposes, the dispatch, the result), `formats` (graph inputs, constants, `data_format` ops,
//! source Transposes), `rules` (the axis-renaming rules), `reshape` (Reshape, Flatten,
//! FullyConnected).
use crate::ir::{validate, Graph};
use crate::weights::mapped::{copy_releasing, release, write_rows};
use crate::weights::permute::permute_bytes;
use crate::weights::{write_tensor, Sink, Tensor, TensorInfo, WeightReader};
use anyhow::{bail, Context, Result};
use convert::Converter;
use perm::permute;
use std::collections::{HashMap, HashSet};

mod convert;
mod formats;
mod perm;
mod reshape;
mod rules;

/// The layout a graph is converted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    ChannelsFirst,
    ChannelsLast,
}

impl Target {
    /// The `data_format` value of this layout.
    pub fn data_format(self) -> &'static str {
        match self {
            Target::ChannelsFirst => "channels_first",
            Target::ChannelsLast => "channels_last",
        }
    }

    fn is_last(self) -> bool {
        self == Target::ChannelsLast
    }
}

/// An axis permutation: output axis i is input axis `perm[i]` (as the Transpose op).
pub type Perm = Vec<usize>;

/// The converted graph and what the conversion did.
pub struct LayoutResult<'w> {
    pub graph: Graph,
    pub weights: TransformedWeights<'w>,
    /// One line per decision (node rewrites, inserted Transposes, boundary changes).
    pub log: Vec<String>,
    /// Per graph input: the permutation its tensor now has (feed `transpose(x, perm)`), or
    /// `None` when it is unchanged.
    pub input_perms: Vec<Option<Perm>>,
    /// Per graph output: the permutation its tensor now has (`transpose(original, perm)`), or
    /// `None` when it is unchanged.
    pub output_perms: Vec<Option<Perm>>,
}

/// Converts `graph` to the `target` layout. With `keep_io`, graph inputs and outputs keep their
/// layout (Transposes are inserted at the boundary); otherwise image inputs and outputs (rank 3
/// to 5) take the target layout and `input_perms` / `output_perms` say how.
pub fn convert_layout<'w>(
    graph: &Graph,
    weights: &'w dyn WeightReader,
    target: Target,
    keep_io: bool,
) -> Result<LayoutResult<'w>> {
    let mut src = graph.clone();
    validate::infer_types(&mut src).context("layout conversion needs a valid graph")?;
    let mut c = Converter::new(&src, weights, target, keep_io);
    for node in &src.nodes {
        c.rewrite(node)
            .with_context(|| format!("layout: node '{}' ({})", node.name, node.op))?;
    }
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// Lazily transformed weights.

/// What is done to a source weight when it is read.
#[derive(Clone, Debug)]
enum Transform {
    /// Left-pad with size-1 axes to the permutation's length, then transpose.
    Permute(Perm),
    /// Reorder the rows (axis 0): new row i is source row `rows[i]`.
    Rows(Vec<usize>),
}

impl Transform {
    fn shape(&self, src: &[usize]) -> Option<Vec<usize>> {
        match self {
            Transform::Permute(p) => {
                let mut dims = vec![1; p.len().checked_sub(src.len())?];
                dims.extend(src);
                Some(permute(&dims, p))
            }
            Transform::Rows(rows) => (src.first() == Some(&rows.len())).then(|| src.to_vec()),
        }
    }
}

/// A weight of the converted graph computed from a source weight.
#[derive(Clone, Debug)]
struct Source {
    node: String,
    param: String,
    transform: Transform,
}

/// The weights of a converted graph: the source weights, with kernel and constant permutations
/// and FullyConnected row reorderings applied per tensor when it is read.
pub struct TransformedWeights<'w> {
    inner: &'w dyn WeightReader,
    keys: Vec<(String, String)>,
    present: HashSet<(String, String)>,
    sources: HashMap<(String, String), Source>,
}

/// How a weight of the converted graph is made from the source weights (for generated code
/// that recomputes it from the source weights file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Derivation<'a> {
    /// The source weight of the same key, unchanged.
    Same,
    /// Source weight (node, param), left-padded with size-1 axes to `perm`'s length and
    /// transposed by `perm`.
    Permute(&'a str, &'a str, &'a [usize]),
    /// Source weight (node, param) with its rows (axis 0) reordered: new row i is `rows[i]`.
    Rows(&'a str, &'a str, &'a [usize]),
}

impl TransformedWeights<'_> {
    /// How weight (node, param) is made, or `None` when the converted graph has no such weight.
    pub fn derivation(&self, node: &str, param: &str) -> Option<Derivation<'_>> {
        let key = (node.to_string(), param.to_string());
        match self.sources.get(&key) {
            Some(s) => Some(match &s.transform {
                Transform::Permute(p) => Derivation::Permute(&s.node, &s.param, p),
                Transform::Rows(r) => Derivation::Rows(&s.node, &s.param, r),
            }),
            None => self.present.contains(&key).then_some(Derivation::Same),
        }
    }
}

impl WeightReader for TransformedWeights<'_> {
    fn info(&self, node: &str, param: &str) -> Option<TensorInfo> {
        let key = (node.to_string(), param.to_string());
        match self.sources.get(&key) {
            Some(s) => {
                let info = self.inner.info(&s.node, &s.param)?;
                Some(TensorInfo {
                    dtype: info.dtype,
                    shape: s.transform.shape(&info.shape)?,
                })
            }
            None if self.present.contains(&key) => self.inner.info(node, param),
            None => None,
        }
    }

    fn read(&self, node: &str, param: &str) -> Result<Tensor> {
        let key = (node.to_string(), param.to_string());
        let Some(s) = self.sources.get(&key) else {
            if !self.present.contains(&key) {
                bail!("no weight '{param}' for node '{node}'");
            }
            return self.inner.read(node, param);
        };
        let t = self.inner.read(&s.node, &s.param)?;
        let src = &t.info.shape;
        let shape = s.transform.shape(src).with_context(|| {
            format!(
                "weight '{param}' of node '{node}': {:?} does not fit the source shape {src:?}",
                s.transform
            )
        })?;
        let elem = t.info.dtype.size();
        let dtype = t.info.dtype;
        match &s.transform {
            Transform::Permute(p) => {
                let mut dims = vec![1; p.len() - src.len()];
                dims.extend(src);
                let data = permute_bytes(&t.data, &dims, p, elem);
                release(&t.data);
                Tensor::new(dtype, shape, data)
            }
            Transform::Rows(rows) => {
                let row = t.data.len() / rows.len().max(1);
                // A tensor read into its own buffer (the usual case) is reordered in place, so a
                // large Dense kernel is never held twice.
                match t.data.try_into_mut() {
                    Ok(mut buf) if is_permutation(rows) => {
                        reorder_rows_in_place(&mut buf, row, rows);
                        Tensor::new(dtype, shape, buf.freeze())
                    }
                    Ok(buf) => Tensor::new(dtype, shape, reorder_rows(&buf, row, rows)),
                    // A slice of a mapped file: copied out (pages released as it goes) and
                    // reordered in the copy.
                    Err(data) if is_permutation(rows) => {
                        let mut buf = copy_releasing(&data);
                        drop(data);
                        reorder_rows_in_place(&mut buf, row, rows);
                        Tensor::new(dtype, shape, buf)
                    }
                    Err(data) => Tensor::new(dtype, shape, reorder_rows(&data, row, rows)),
                }
            }
        }
    }

    fn keys(&self) -> Vec<(String, String)> {
        self.keys.clone()
    }

    /// A row reordering is streamed from the source tensor without building the result.
    fn write_to(&self, node: &str, param: &str, w: &mut dyn Sink) -> Result<u64> {
        let key = (node.to_string(), param.to_string());
        let Some(Source {
            node: src_node,
            param: src_param,
            transform: Transform::Rows(rows),
        }) = self.sources.get(&key)
        else {
            return write_tensor(&self.read(node, param)?, w);
        };
        let t = self.inner.read(src_node, src_param)?;
        if t.info.shape.first() != Some(&rows.len()) {
            bail!(
                "weight '{param}' of node '{node}': a reordering of {} rows does not fit the \
                 source shape {:?}",
                rows.len(),
                t.info.shape
            );
        }
        let row = t.data.len() / rows.len().max(1);
        write_rows(w, &t.data, row, rows)?;
        Ok(t.data.len() as u64)
    }
}

/// Rows `rows[0], rows[1], …` of `data` (rows of `row` bytes), in a new buffer.
fn reorder_rows(data: &[u8], row: usize, rows: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for &r in rows {
        out.extend_from_slice(&data[r * row..(r + 1) * row]);
    }
    out
}

fn is_permutation(rows: &[usize]) -> bool {
    let mut seen = vec![false; rows.len()];
    rows.iter()
        .all(|&r| r < rows.len() && !std::mem::replace(&mut seen[r], true))
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
mod tests {
    use super::*;

    #[test]
    fn rows_reordered_in_place_match_a_copy() {
        // Permutations with fixed points, long cycles and 2-cycles (a simple LCG shuffle).
        let mut state = 12345u64;
        for n in [1usize, 2, 3, 7, 64, 1000] {
            let mut rows: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                rows.swap(i, (state >> 33) as usize % (i + 1));
            }
            let row = 3;
            let data: Vec<u8> = (0..n * row).map(|i| (i % 251) as u8).collect();
            let mut in_place = data.clone();
            reorder_rows_in_place(&mut in_place, row, &rows);
            assert_eq!(in_place, reorder_rows(&data, row, &rows), "n = {n}");
            for (i, &r) in rows.iter().enumerate() {
                assert_eq!(
                    in_place[i * row..(i + 1) * row],
                    data[r * row..(r + 1) * row]
                );
            }
        }
        assert!(!is_permutation(&[0, 0]));
        assert!(!is_permutation(&[2, 0]));
        assert!(is_permutation(&[1, 2, 0]));
    }
}
