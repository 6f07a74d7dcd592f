//! The rules that rename axes: layout-agnostic and elementwise ops, Concat, ops with one `axis`
//! (by [`AxisRule`]), reductions over `axes`, per-axis lists (Pad, Tile), Squeeze, Unsqueeze,
//! Slice, Expand, LayerNorm and PRelu. Each follows a permuted input through
//! [`Converter::follow_input`] or [`Converter::follow_lead`].
use super::convert::{Converter, Rewrite};
use super::perm::{drop_axes, fmt_perm, identity, ints, is_identity, lift, norm_axes, permute};
use super::perm::{inverse, renamed};
use super::Perm;
use crate::ir::ops::{shape_rules::norm_axis, Attrs, AxisRule};
use crate::ir::{AttrValue, Node};
use crate::weights::derived::Step;
use anyhow::{bail, Result};

impl Converter<'_, '_> {
    pub(super) fn pass_through(&mut self, node: &Node) -> Result<()> {
        self.follow_input(node, |_, p| {
            let what = format!("layout-agnostic, stays permuted {}", fmt_perm(p));
            Ok(Some(Rewrite::new(vec![p.to_vec()], what)))
        })
    }

    pub(super) fn elementwise(&mut self, node: &Node) -> Result<()> {
        self.follow_lead(node, |lead| {
            let what = format!("elementwise, operands taken permuted {}", fmt_perm(lead));
            Ok(Rewrite::new(vec![lead.to_vec()], what))
        })
    }

    pub(super) fn concat(&mut self, node: &Node) -> Result<()> {
        self.follow_lead(node, |lead| {
            let axis = norm_axis(Attrs::of(node)?.int("axis")?, lead.len())?;
            let new_axis = inverse(lead)[axis];
            Ok(
                Rewrite::new(vec![lead.to_vec()], format!("axis {axis}→{new_axis}"))
                    .with_attr("axis", AttrValue::Int(new_axis as i64)),
            )
        })
    }

    /// Ops with one `axis` attribute: the axis is renamed.
    pub(super) fn axis_op(&mut self, node: &Node, rule: AxisRule) -> Result<()> {
        self.follow_input(node, |c, p| {
            if rule == AxisRule::KeptPerSample && p[0] != 0 {
                return Ok(None);
            }
            let attrs = Attrs::of(node)?;
            let axis = norm_axis(attrs.int("axis")?, p.len())?;
            let new_axis = inverse(p)[axis];
            let outputs = match rule {
                AxisRule::Reduced if !attrs.bool("keepdims")? => vec![drop_axes(p, &[axis])],
                AxisRule::Indexed => {
                    let k = c.rank(&node.inputs[1])?;
                    let data = |d: usize| if d < axis { d } else { d - 1 + k };
                    let mut q: Perm = p[..new_axis].iter().map(|&d| data(d)).collect();
                    q.extend(axis..axis + k);
                    q.extend(p[new_axis + 1..].iter().map(|&d| data(d)));
                    vec![q]
                }
                _ => vec![p.to_vec(); node.outputs.len()],
            };
            Ok(Some(
                Rewrite::new(outputs, format!("axis {axis}→{new_axis}"))
                    .with_attr("axis", AttrValue::Int(new_axis as i64)),
            ))
        })
    }

    /// Reductions over `axes` (empty: all), with `keepdims`.
    pub(super) fn reduce(&mut self, node: &Node) -> Result<()> {
        self.follow_input(node, |_, p| {
            let attrs = Attrs::of(node)?;
            let listed = attrs.ints("axes")?;
            let axes = if listed.is_empty() {
                identity(p.len())
            } else {
                norm_axes(&listed, p.len())?
            };
            let mut new_axes = renamed(&axes, p);
            new_axes.sort_unstable();
            new_axes.dedup();
            let out = if attrs.bool("keepdims")? {
                p.to_vec()
            } else {
                drop_axes(p, &axes)
            };
            let rewrite = Rewrite::new(vec![out], format!("axes {axes:?}→{new_axes:?}"));
            Ok(Some(if listed.is_empty() {
                rewrite
            } else {
                rewrite.with_attr("axes", ints(&new_axes))
            }))
        })
    }

    pub(super) fn squeeze(&mut self, node: &Node) -> Result<()> {
        self.follow_input(node, |c, p| {
            let shape = c.shape(&node.inputs[0])?;
            let listed = Attrs::of(node)?.ints("axes")?;
            if listed.is_empty() && shape.contains(&-1) {
                // Which axes go depends on the data.
                return Ok(None);
            }
            let axes: Vec<usize> = if listed.is_empty() {
                (0..shape.len()).filter(|&a| shape[a] == 1).collect()
            } else {
                norm_axes(&listed, p.len())?
            };
            let mut new_axes = renamed(&axes, p);
            new_axes.sort_unstable();
            let what = format!("axes {axes:?}→{new_axes:?}");
            Ok(Some(
                Rewrite::new(vec![drop_axes(p, &axes)], what).with_attr("axes", ints(&new_axes)),
            ))
        })
    }

    pub(super) fn unsqueeze(&mut self, node: &Node) -> Result<()> {
        self.follow_input(node, |c, p| {
            let out_rank = c.rank(&node.output(0))?;
            let inserted = norm_axes(&Attrs::of(node)?.ints("axes")?, out_rank)?;
            let kept: Vec<usize> = (0..out_rank).filter(|a| !inserted.contains(a)).collect();
            let mut q = identity(out_rank);
            for (i, &pos) in kept.iter().enumerate() {
                q[pos] = kept[p[i]];
            }
            let what = format!("inserted axes kept, output permuted {}", fmt_perm(&q));
            Ok(Some(Rewrite::new(vec![q], what)))
        })
    }

    pub(super) fn slice(&mut self, node: &Node) -> Result<()> {
        self.follow_input(node, |_, p| {
            let attrs = Attrs::of(node)?;
            let n = attrs.ints("starts")?.len();
            let axes: Vec<usize> = match attrs.opt_ints("axes")? {
                Some(a) => norm_axes(&a, p.len())?,
                None => (0..n).collect(),
            };
            let new_axes = renamed(&axes, p);
            let what = format!("axes {axes:?}→{new_axes:?}");
            Ok(Some(
                Rewrite::new(vec![p.to_vec()], what).with_attr("axes", ints(&new_axes)),
            ))
        })
    }

    /// An attribute of `lists` consecutive lists with one entry per axis (Pad's begins then
    /// ends, Tile's repeats): each list is reordered.
    pub(super) fn per_axis_list(
        &mut self,
        node: &Node,
        attr: &'static str,
        lists: usize,
    ) -> Result<()> {
        self.follow_input(node, |_, p| {
            let list = Attrs::of(node)?.ints(attr)?;
            let r = p.len();
            if list.len() != lists * r {
                bail!(
                    "{attr} has {} values; a rank-{r} input needs {}",
                    list.len(),
                    lists * r
                );
            }
            let new_list: Vec<i64> = list.chunks(r).flat_map(|l| permute(l, p)).collect();
            let what = format!("{attr} {list:?}→{new_list:?}");
            Ok(Some(
                Rewrite::new(vec![p.to_vec()], what).with_attr(attr, AttrValue::Ints(new_list)),
            ))
        })
    }

    pub(super) fn expand(&mut self, node: &Node) -> Result<()> {
        self.follow_input(node, |_, p| {
            let shape = Attrs::of(node)?.ints("shape")?;
            let rank = shape.len().max(p.len());
            let q = lift(p, rank);
            let mut padded = vec![1; rank - shape.len()];
            padded.extend(&shape);
            let new_shape = permute(&padded, &q);
            let what = format!("shape {shape:?}→{new_shape:?}");
            Ok(Some(
                Rewrite::new(vec![q], what).with_attr("shape", AttrValue::Ints(new_shape)),
            ))
        })
    }

    pub(super) fn layer_norm(&mut self, node: &Node) -> Result<()> {
        self.follow_input(node, |c, p| {
            let mut axes = norm_axes(&Attrs::of(node)?.ints("axes")?, p.len())?;
            axes.sort_unstable();
            axes.dedup();
            let mut new_axes = renamed(&axes, p);
            new_axes.sort_unstable();
            // New normalised axis k is source axis p[new_axes[k]]: its place in `axes`.
            let wperm: Perm = new_axes
                .iter()
                .map(|&a| axes.iter().position(|&s| s == p[a]).expect("same axis set"))
                .collect();
            let mut what = format!("axes {axes:?}→{new_axes:?}");
            if !is_identity(&wperm) {
                let present: Vec<&str> = ["scale", "bias"]
                    .into_iter()
                    .filter(|w| c.weights.info(&node.name, w).is_some())
                    .collect();
                let fits = |w: &&str| {
                    c.weights
                        .info(&node.name, w)
                        .is_some_and(|i| i.shape.len() == axes.len())
                };
                if !present.iter().all(fits) {
                    return Ok(None);
                }
                for w in present {
                    let permuted = Step::Permute(wperm.clone());
                    c.transform_weight(&node.name, &node.name, w, permuted);
                }
                what += &format!(", scale/bias permuted {}", fmt_perm(&wperm));
            }
            Ok(Some(
                Rewrite::new(vec![p.to_vec()], what).with_attr("axes", ints(&new_axes)),
            ))
        })
    }

    /// PRelu: follows its input; a `slope` of more than one value is permuted with it.
    pub(super) fn prelu(&mut self, node: &Node) -> Result<()> {
        self.follow_input(node, |c, p| {
            let Some(info) = c.weights.info(&node.name, "slope") else {
                return Ok(None);
            };
            if info.shape.len() > p.len() {
                return Ok(None);
            }
            let mut what = format!("stays permuted {}", fmt_perm(p));
            if info.numel() != 1 {
                c.transform_weight(&node.name, &node.name, "slope", Step::Permute(p.to_vec()));
                what += ", slope permuted";
            }
            Ok(Some(Rewrite::new(vec![p.to_vec()], what)))
        })
    }
}
