//! Axis permutations: composing, inverting and applying them, renaming axes through them, and
//! the permutations between the two data formats.
use super::{Perm, Target};
use crate::ir::ops::{shape_rules::norm_axis, Attrs};
use crate::ir::{AttrValue, Node};
use anyhow::Result;

pub(super) fn identity(rank: usize) -> Perm {
    (0..rank).collect()
}

pub(super) fn is_identity(p: &[usize]) -> bool {
    p.iter().enumerate().all(|(i, &v)| i == v)
}

pub(super) fn inverse(p: &[usize]) -> Perm {
    let mut inv = vec![0; p.len()];
    for (i, &v) in p.iter().enumerate() {
        inv[v] = i;
    }
    inv
}

/// `a` then `b`: `transpose(transpose(x, a), b) == transpose(x, compose(a, b))`.
pub(super) fn compose(a: &[usize], b: &[usize]) -> Perm {
    b.iter().map(|&i| a[i]).collect()
}

pub(super) fn permute<T: Copy>(values: &[T], p: &[usize]) -> Vec<T> {
    p.iter().map(|&i| values[i]).collect()
}

/// `p` extended to `rank` axes by leading axes that stay in place (broadcasting's left padding).
pub(super) fn lift(p: &[usize], rank: usize) -> Perm {
    let extra = rank - p.len();
    (0..extra).chain(p.iter().map(|&v| v + extra)).collect()
}

/// `p` after the original axes `removed` are dropped from both sides.
pub(super) fn drop_axes(p: &[usize], removed: &[usize]) -> Perm {
    p.iter()
        .filter(|v| !removed.contains(v))
        .map(|&v| v - removed.iter().filter(|&&r| r < v).count())
        .collect()
}

/// Where the original axes `axes` are in a tensor permuted by `p`.
pub(super) fn renamed(axes: &[usize], p: &[usize]) -> Vec<usize> {
    let inv = inverse(p);
    axes.iter().map(|&a| inv[a]).collect()
}

/// Possibly negative `axes` normalised against `rank`.
pub(super) fn norm_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>> {
    axes.iter().map(|&a| norm_axis(a, rank)).collect()
}

/// The permutation taking a tensor of `rank` from one data format to the other.
pub(super) fn switch_perm(rank: usize, from_last: bool) -> Perm {
    if from_last {
        [0, rank - 1].into_iter().chain(1..rank - 1).collect()
    } else {
        [0].into_iter().chain(2..rank).chain([1]).collect()
    }
}

/// The permutation from a data format to the target (identity when they agree).
pub(super) fn format_perm(rank: usize, from_last: bool, target: Target) -> Perm {
    if from_last == target.is_last() {
        identity(rank)
    } else {
        switch_perm(rank, from_last)
    }
}

/// Calls `f` with the flat index in `x` (of shape `dims`) of each element of `transpose(x, perm)`,
/// in C order.
pub(super) fn visit_permuted(dims: &[usize], perm: &[usize], mut f: impl FnMut(usize)) {
    let mut strides = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * dims[i + 1];
    }
    let out_dims = permute(dims, perm);
    let out_strides = permute(&strides, perm);
    let total: usize = dims.iter().product();
    let mut index = vec![0; dims.len()];
    let mut offset = 0;
    for _ in 0..total {
        f(offset);
        for k in (0..index.len()).rev() {
            index[k] += 1;
            offset += out_strides[k];
            if index[k] < out_dims[k] {
                break;
            }
            offset -= out_strides[k] * index[k];
            index[k] = 0;
        }
    }
}

/// Whether `transpose(x, p)` has `x`'s elements in the same order (only size-1 axes move).
pub(super) fn same_data_order(shape: &[i64], p: &[usize]) -> bool {
    p.iter().filter(|&&a| shape[a] != 1).is_sorted()
}

/// The normalised `perm` of a Transpose node on a tensor of `rank`.
pub(super) fn transpose_perm(node: &Node, rank: usize) -> Result<Perm> {
    norm_axes(&Attrs::of(node)?.ints("perm")?, rank)
}

pub(super) fn fmt_perm(p: &[usize]) -> String {
    format!("{p:?}")
}

/// An axis list as an attribute value.
pub(super) fn ints(values: &[usize]) -> AttrValue {
    AttrValue::Ints(values.iter().map(|&v| v as i64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_compose_invert_and_rename() {
        let nhwc = switch_perm(4, false);
        assert_eq!(nhwc, [0, 2, 3, 1]);
        assert_eq!(switch_perm(4, true), inverse(&nhwc));
        assert!(is_identity(&compose(&nhwc, &inverse(&nhwc))));
        // The channel axis 1 of NCHW is axis 3 of NHWC.
        assert_eq!(renamed(&[1], &nhwc), [3]);
        assert_eq!(lift(&[1, 0], 4), [0, 1, 3, 2]);
        assert_eq!(drop_axes(&nhwc, &[1]), [0, 1, 2]);
        assert_eq!(format_perm(3, true, Target::ChannelsLast), [0, 1, 2]);
        let mut order = vec![];
        visit_permuted(&[2, 3], &[1, 0], |i| order.push(i));
        assert_eq!(order, [0, 3, 1, 4, 2, 5]);
        assert!(same_data_order(&[1, 1, 4, 4], &[1, 0, 2, 3]));
        assert!(!same_data_order(&[1, 3, 4, 4], &nhwc));
    }
}
