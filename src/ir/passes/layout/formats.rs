//! The rules at the layout's sources: graph inputs (which take the layout their first
//! `data_format` consumer wants), constants (emitted where used, in the form each use needs),
//! `data_format` ops (switched to the target format, convolution kernels permuted with them)
//! and source Transposes (absorbed into the tracked permutation).
use super::convert::Converter;
use super::perm::{compose, fmt_perm, format_perm, identity, inverse, is_identity, permute};
use super::perm::{switch_perm, transpose_perm};
use super::Perm;
use crate::ir::ops::{self, Attrs, AxisRule, Kernel, Layout};
use crate::ir::{AttrValue, Node, TensorRef};
use crate::weights::derived::Step;
use anyhow::{bail, Result};
use std::collections::{HashSet, VecDeque};

/// The data format of a tensor `t` when `transpose(t, m)` is in the format `last`
/// (`Some(channels_last)`), or `None` when `m` is neither the identity nor the switch.
fn layout_through(m: &[usize], last: bool) -> Option<bool> {
    if is_identity(m) {
        Some(last)
    } else if m == switch_perm(m.len(), !last) {
        Some(!last)
    } else {
        None
    }
}

/// Whether the same-rank outputs of an op following `layout` keep its input's axes, so that a
/// graph input's layout is chosen through it.
fn keeps_axes(layout: Layout) -> bool {
    matches!(
        layout,
        Layout::Agnostic
            | Layout::Elementwise { mask: false }
            | Layout::Concat
            | Layout::Axis(AxisRule::Kept | AxisRule::KeptPerSample)
            | Layout::PerAxis { .. }
            | Layout::Slice
            | Layout::PRelu
    )
}

impl Converter<'_, '_> {
    /// The data format of graph input `node` (`Some(channels_last)`): the format of the first
    /// data-format op reached through axis-preserving ops and Transposes, when the input is in
    /// that format or exactly the other one.
    fn input_layout(&self, node: &Node) -> Result<Option<bool>> {
        let rank = self.rank(&node.output(0))?;
        if !(3..=5).contains(&rank) {
            return Ok(None);
        }
        // Each queued tensor is `transpose(input, m)`.
        let mut queue = VecDeque::from([(node.output(0), identity(rank))]);
        let mut seen = HashSet::new();
        while let Some((r, m)) = queue.pop_front() {
            if !seen.insert(r.clone()) {
                continue;
            }
            for &i in self.consumers.get(&r).into_iter().flatten() {
                let user = &self.src.nodes[i];
                let layout = ops::layout_of(user)?;
                if let Layout::DataFormat { .. } = layout {
                    return Ok(layout_through(&m, Attrs::of(user)?.channels_last()?));
                }
                let next = if layout == Layout::Transpose {
                    compose(&m, &transpose_perm(user, rank)?)
                } else if keeps_axes(layout) {
                    m.clone()
                } else {
                    continue;
                };
                for k in 0..user.outputs.len() {
                    if self.rank(&user.output(k))? == rank {
                        queue.push_back((user.output(k), next.clone()));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The data format of source tensor `r` (`Some(channels_last)`), found back through
    /// axis-preserving ops and Transposes to a data-format op or a graph input.
    pub(super) fn output_layout(&self, r: &TensorRef) -> Result<Option<bool>> {
        let rank = self.rank(r)?;
        if !(3..=5).contains(&rank) {
            return Ok(None);
        }
        // `r` is `transpose(at, m)`.
        let (mut at, mut m) = (r.clone(), identity(rank));
        for _ in 0..=self.src.nodes.len() {
            let node = self.src_node(&at.node)?;
            let layout = ops::layout_of(node)?;
            let same_rank = |c: &Self, x: &TensorRef| c.rank(x).map(|k| k == rank);
            match layout {
                Layout::DataFormat { .. } if same_rank(self, &node.inputs[0])? => {
                    return Ok(layout_through(
                        &inverse(&m),
                        Attrs::of(node)?.channels_last()?,
                    ));
                }
                Layout::GraphInput => {
                    return Ok(self
                        .input_layout(node)?
                        .and_then(|last| layout_through(&inverse(&m), last)));
                }
                Layout::Transpose => {
                    m = compose(&transpose_perm(node, rank)?, &m);
                    at = node.inputs[0].clone();
                }
                _ if keeps_axes(layout) => {
                    let mut next = None;
                    for x in &node.inputs {
                        if same_rank(self, x)? {
                            next = Some(x.clone());
                            break;
                        }
                    }
                    match next {
                        Some(x) => at = x,
                        None => return Ok(None),
                    }
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    pub(super) fn data_input(&mut self, node: &Node) -> Result<()> {
        let layout = self.input_layout(node)?;
        let r = node.output(0);
        let rank = self.rank(&r)?;
        // `outer`: the interface's permutation (--io-layout); `inner`: the one the graph works in.
        let outer = self.io_perm(&node.name, layout, rank);
        let inner = match layout {
            Some(last) => format_perm(rank, last, self.target),
            None => identity(rank),
        };
        if is_identity(&outer) && is_identity(&inner) {
            return self.keep(node);
        }
        let mut new = node.clone();
        if !is_identity(&outer) {
            let shape = self.shape(&r)?;
            let new_shape = permute(&shape, &outer);
            new.attrs
                .insert("shape".into(), AttrValue::Shape(new_shape.clone()));
            self.input_perms.insert(node.name.clone(), outer.clone());
            self.log.push(format!(
                "{}: graph input shape {shape:?} → {new_shape:?} (--io-layout)",
                node.name
            ));
        }
        self.emit(new, vec![outer.clone()]);
        self.switched |= !is_identity(&inner);
        if inner != outer {
            let t = self.get(&r, &inner)?;
            self.tracked.insert(r, (t, inner.clone()));
            self.log.push(format!(
                "{}: graph input Transposed {} to {}",
                node.name,
                fmt_perm(&compose(&inverse(&outer), &inner)),
                self.target.data_format()
            ));
        }
        Ok(())
    }

    /// Constants are emitted where used, in the form each use needs; unused ones stay as they
    /// are.
    pub(super) fn source_constant(&mut self, node: &Node) -> Result<()> {
        if self.uses.get(&node.output(0)).copied().unwrap_or(0) == 0 {
            self.constant(node, &identity(self.rank(&node.output(0))?))?;
        }
        Ok(())
    }

    pub(super) fn data_format_op(&mut self, node: &Node, kernel: Option<Kernel>) -> Result<()> {
        let before = self.transposes;
        let rank = self.rank(&node.inputs[0])?;
        let from_last = Attrs::of(node)?.channels_last()?;
        let q = format_perm(rank, from_last, self.target);
        let x = self.get(&node.inputs[0], &q)?;
        let mut new = self.derived(node, x)?;
        let target = self.target.data_format();
        self.switched |= !is_identity(&q);
        let mut what = if is_identity(&q) {
            format!("already {target}")
        } else {
            let from = if from_last {
                "channels_last"
            } else {
                "channels_first"
            };
            format!("data_format {from}→{target}")
        };
        new.attrs
            .insert("data_format".into(), AttrValue::Str(target.into()));
        if let Some(kernel) = kernel.filter(|_| !is_identity(&q)) {
            what += &self.kernel_weights(node, kernel, rank - 2, from_last)?;
        }
        let out_rank = self.rank(&node.output(0))?;
        let out = if out_rank == rank {
            q
        } else {
            identity(out_rank)
        };
        self.emit(new, vec![out]);
        self.note(node, before, what);
        Ok(())
    }

    /// Registers the permutation of a kernel `weights` switching format; returns the log text.
    fn kernel_weights(
        &mut self,
        node: &Node,
        kernel: Kernel,
        spatial: usize,
        from_last: bool,
    ) -> Result<String> {
        let rank = spatial + 2;
        if let Some(info) = self.weights.info(&node.name, "weights") {
            if info.shape.len() != rank {
                bail!(
                    "weight 'weights' has shape {:?}; expected rank {rank}",
                    info.shape
                );
            }
        }
        let (a, b) = kernel.axis_names();
        let (perm, text): (Perm, _) = if from_last {
            (
                [spatial + 1, spatial]
                    .into_iter()
                    .chain(0..spatial)
                    .collect(),
                format!(", weights [*k,{b},{a}]→[{a},{b},*k]"),
            )
        } else {
            (
                (2..rank).chain([1, 0]).collect(),
                format!(", weights [{a},{b},*k]→[*k,{b},{a}]"),
            )
        };
        self.transform_weight(&node.name, &node.name, "weights", Step::Permute(perm));
        Ok(text)
    }

    /// A source Transpose is absorbed: its output is tracked as its input's form, permuted.
    pub(super) fn transpose_op(&mut self, node: &Node) -> Result<()> {
        let (x, p) = self.primary(node)?;
        let t = transpose_perm(node, p.len())?;
        // x = transpose(in, p) and out = transpose(in, t), so x = transpose(out, t⁻¹ ∘ p).
        let q = compose(&inverse(&t), &p);
        let out = node.output(0);
        self.forms.insert((out.clone(), q.clone()), x.clone());
        self.tracked.insert(out, (x, q.clone()));
        self.absorbed.insert(node.name.clone());
        self.log.push(format!(
            "{}: Transpose {} absorbed (output tracked as permuted {})",
            node.name,
            fmt_perm(&t),
            fmt_perm(&q)
        ));
        Ok(())
    }
}
