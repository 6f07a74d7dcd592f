//! The rules of ops that regroup axes: Reshape (rewritten when the permutation moves whole
//! blocks of axes the reshape maps onto each other), Flatten, and FullyConnected, whose weight
//! rows absorb the permuted columns of a flatten that feeds only FullyConnected layers.
use super::convert::{Converter, Rewrite};
use super::perm::{fmt_perm, identity, is_identity, permute, same_data_order, visit_permuted};
use super::Perm;
use crate::ir::ops::{self, Attrs, Layout};
use crate::ir::{AttrValue, Node};
use crate::weights::derived::Step;
use anyhow::{bail, Result};
use std::ops::Range;

/// The contiguous blocks a Reshape maps onto each other: (input axes, output axes) with equal
/// products. `None` when unknown or zero dims make the grouping ambiguous.
fn reshape_blocks(s: &[i64], o: &[i64]) -> Option<Vec<(Range<usize>, Range<usize>)>> {
    let (mut i, mut j) = (0, 0);
    let mut blocks: Vec<(Range<usize>, Range<usize>)> = vec![];
    while i < s.len() && j < o.len() {
        let (i0, j0) = (i, j);
        if s[i] < 0 && o[j] < 0 {
            i += 1;
            j += 1;
        } else {
            if s[i] <= 0 || o[j] <= 0 {
                return None;
            }
            let (mut pi, mut pj) = (s[i], o[j]);
            i += 1;
            j += 1;
            while pi != pj {
                let (p, dims, k) = if pi < pj {
                    (&mut pi, s, &mut i)
                } else {
                    (&mut pj, o, &mut j)
                };
                let d = *dims.get(*k).filter(|&&d| d > 0)?;
                *p *= d;
                *k += 1;
            }
        }
        blocks.push((i0..i, j0..j));
    }
    let last = blocks.last_mut()?;
    if s[i..].iter().chain(&o[j..]).any(|&d| d != 1) {
        return None;
    }
    last.0.end = s.len();
    last.1.end = o.len();
    Some(blocks)
}

/// The output permutation of a Reshape whose input is permuted by `p`, when `p` moves whole
/// blocks and keeps each block's axes in order.
fn block_perm(blocks: &[(Range<usize>, Range<usize>)], p: &[usize]) -> Option<Perm> {
    let mut q = vec![];
    let mut k = 0;
    while k < p.len() {
        let (ins, outs) = blocks.iter().find(|(ins, _)| ins.contains(&p[k]))?;
        if p.get(k..k + ins.len())?.iter().copied().ne(ins.clone()) {
            return None;
        }
        q.extend(outs.clone());
        k += ins.len();
    }
    Some(q)
}

/// The output dims of a Reshape of `shape` to `target`, carrying one unknown input dim (the
/// batch) symbolically: `[-1, 4, 4, 2]` to `[0, -1]` gives `[-1, 32]`, where the type rule can
/// only say `[-1, -1]`. `None` when that symbol would be split or scaled.
fn resolve_reshape(shape: &[i64], target: &[i64]) -> Option<Vec<i64>> {
    let unknown = shape.iter().filter(|&&d| d < 0).count();
    if unknown > 1 {
        return None;
    }
    let known: i64 = shape.iter().filter(|&&d| d >= 0).product();
    let mut carried = unknown == 0;
    let mut fill = None;
    let mut out = Vec::with_capacity(target.len());
    for (i, &t) in target.iter().enumerate() {
        let d = match t {
            0 => *shape.get(i)?,
            -1 => {
                fill = Some(i);
                -1
            }
            d => d,
        };
        carried |= t == 0 && d < 0;
        out.push(d);
    }
    let literal: i64 = out.iter().filter(|&&d| d >= 0).product();
    if let Some(f) = fill {
        if literal == 0 || known % literal != 0 {
            return None;
        }
        out[f] = match known / literal {
            q if carried => q,
            1 => -1,
            _ => return None,
        };
    }
    Some(out)
}

/// A Reshape target for the resolved output `dims`: at most one unknown dim, written -1.
fn reshape_target(dims: &[i64]) -> Option<Vec<i64>> {
    (dims.iter().filter(|&&d| d < 0).count() <= 1).then(|| dims.to_vec())
}

const COLUMNS_ABSORBED: &str = "columns permuted, absorbed by the FullyConnected weights";

impl Converter<'_, '_> {
    pub(super) fn fully_connected(&mut self, node: &Node) -> Result<()> {
        if let Some(cols) = self.columns.get(&node.inputs[0]).cloned() {
            let (x, _) = self.primary(node)?;
            self.transform_weight(&node.name, &node.name, "weights", Step::Rows(cols));
            let new = self.derived(node, x)?;
            self.emit(new, vec![identity(2)]);
            self.log.push(format!(
                "{}→{}: FullyConnected weight rows permuted",
                node.inputs[0].node, node.name
            ));
            return Ok(());
        }
        self.follow_input(node, |_, p| {
            if p[p.len() - 1] != p.len() - 1 {
                return Ok(None);
            }
            let what = format!("over the last axis, stays permuted {}", fmt_perm(p));
            Ok(Some(Rewrite::new(vec![p.to_vec()], what)))
        })
    }

    /// For a flatten of a tensor permuted by `p` at `axis` whose only consumers are
    /// FullyConnected layers: the source column of each new column.
    fn fc_columns(
        &self,
        node: &Node,
        shape: &[i64],
        p: &[usize],
        axis: usize,
    ) -> Result<Option<Vec<usize>>> {
        let out = node.output(0);
        let Some(consumers) = self.consumers.get(&out) else {
            return Ok(None);
        };
        let mut only_fc = true;
        for &i in consumers {
            only_fc &= ops::layout_of(&self.src.nodes[i])? == Layout::FullyConnected;
        }
        let fixed = (0..axis).all(|i| p[i] == i);
        if !only_fc || !fixed || self.uses.get(&out) != Some(&consumers.len()) {
            return Ok(None);
        }
        let Some(dims) = shape[axis..]
            .iter()
            .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
            .collect::<Option<Vec<usize>>>()
        else {
            return Ok(None);
        };
        let inner: Perm = p[axis..].iter().map(|&a| a - axis).collect();
        let mut cols = Vec::with_capacity(dims.iter().product());
        visit_permuted(&dims, &inner, |o| cols.push(o));
        Ok(Some(cols))
    }

    pub(super) fn flatten(&mut self, node: &Node) -> Result<()> {
        self.follow_input(node, |c, p| {
            let shape = c.shape(&node.inputs[0])?;
            let a = Attrs::of(node)?.int("axis")?;
            let rank = p.len() as i64;
            if !(-rank..=rank).contains(&a) {
                bail!("axis {a} is out of range for rank {rank}");
            }
            let axis = if a < 0 { a + rank } else { a } as usize;
            let non_unit = |axes: &[usize]| axes.iter().filter(|&&i| shape[i] != 1).count();
            let split_kept = non_unit(&p[..axis]) == non_unit(&identity(axis));
            if same_data_order(&shape, p) && split_kept {
                let what = "only size-1 axes moved, data order unchanged".to_string();
                return Ok(Some(Rewrite::new(vec![identity(2)], what)));
            }
            let Some(cols) = c.fc_columns(node, &shape, p, axis)? else {
                return Ok(None);
            };
            c.columns.insert(node.output(0), cols);
            let what = COLUMNS_ABSORBED.to_string();
            Ok(Some(Rewrite::new(vec![identity(2)], what)))
        })
    }

    pub(super) fn reshape(&mut self, node: &Node) -> Result<()> {
        self.follow_input(node, |c, p| {
            let shape = c.shape(&node.inputs[0])?;
            let target = Attrs::of(node)?.ints("shape")?;
            let out = match resolve_reshape(&shape, &target) {
                Some(out) => out,
                None => c.shape(&node.output(0))?,
            };
            let blocks = reshape_blocks(&shape, &out);
            let (q, cols) = if same_data_order(&shape, p) {
                (identity(out.len()), None)
            } else if let Some(q) = blocks.as_deref().and_then(|b| block_perm(b, p)) {
                (q, None)
            } else {
                let Some([first, _]) = blocks.as_deref().filter(|_| out.len() == 2) else {
                    return Ok(None);
                };
                match c.fc_columns(node, &shape, p, first.0.len())? {
                    Some(cols) => (identity(2), Some(cols)),
                    None => return Ok(None),
                }
            };
            let new_out = permute(&out, &q);
            let Some(target) = reshape_target(&new_out) else {
                return Ok(None);
            };
            let what = match cols {
                Some(cols) => {
                    c.columns.insert(node.output(0), cols);
                    COLUMNS_ABSORBED.to_string()
                }
                None if is_identity(&q) => format!("shape → {new_out:?}, data order unchanged"),
                None => format!("shape → {new_out:?}, output permuted {}", fmt_perm(&q)),
            };
            Ok(Some(
                Rewrite::new(vec![q], what).with_attr("shape", AttrValue::Ints(target)),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_blocks_group_equal_products() {
        // [N, 4, 4, 2] → [N, 16, 2]: H and W merge, C stays.
        let blocks = reshape_blocks(&[-1, 4, 4, 2], &[-1, 16, 2]).unwrap();
        assert_eq!(blocks, [(0..1, 0..1), (1..3, 1..2), (3..4, 2..3)]);
        // Moving C in front of the merged block moves whole blocks.
        assert_eq!(block_perm(&blocks, &[0, 3, 1, 2]), Some(vec![0, 2, 1]));
        // Swapping H and W splits the merged block.
        assert_eq!(block_perm(&blocks, &[0, 2, 1, 3]), None);
        assert_eq!(
            resolve_reshape(&[-1, 4, 4, 2], &[0, -1]),
            Some(vec![-1, 32])
        );
        assert_eq!(
            resolve_reshape(&[-1, 4, 4, 2], &[-1, 4, 8]),
            Some(vec![-1, 4, 8])
        );
        // The batch would be scaled.
        assert_eq!(resolve_reshape(&[-1, 4, 4, 2], &[-1, 8]), None);
        assert_eq!(reshape_target(&[-1, -1]), None);
    }
}
