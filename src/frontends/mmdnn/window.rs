//! The spatial geometry of MMdnn's windowed ops (conv and pool): per-axis lists written over
//! all NHWC axes (`[1, s..., 1]`), 8-element pads, and SAME padding recomputed the TensorFlow
//! way from the recorded input size.
use super::import::Importer;
use super::node::MmNode;
use crate::ir::ops::shape_rules::{same_pads, spatial_axes};
use crate::ir::{AttrValue, Node};
use anyhow::{bail, Context, Result};

/// The entries of the spatial axes of a list over all NHWC axes (`[N, *spatial, C]`, at least
/// two entries).
pub(super) fn nhwc_spatial(v: &[i64]) -> Vec<i64> {
    let (_, axes) = spatial_axes(v.len(), true);
    axes.iter().map(|&a| v[a]).collect()
}

/// Spatial entries of an MMdnn per-axis list: `[1, s..., 1]` (or already `[s...]`); absent = 1s.
fn spatial(list: Option<Vec<i64>>, n: usize, what: &str) -> Result<Vec<i64>> {
    match list {
        None => Ok(vec![1; n]),
        Some(v) if v.is_empty() => Ok(vec![1; n]),
        Some(v) if v.len() == n + 2 => Ok(nhwc_spatial(&v)),
        Some(v) if v.len() == n => Ok(v),
        Some(v) => bail!("{what} {v:?} does not fit {n} spatial axes"),
    }
}

/// Spatial pads `[begins..., ends...]` from MMdnn's pads over all axes (`2·(n+2)` values,
/// or already `2·n`); absent = none.
fn spatial_pads(pads: Option<Vec<i64>>, n: usize) -> Result<Vec<i64>> {
    match pads {
        None => Ok(vec![0; 2 * n]),
        Some(p) if p.is_empty() => Ok(vec![0; 2 * n]),
        Some(p) if p.len() == 2 * (n + 2) => {
            let (begins, ends) = p.split_at(n + 2);
            Ok([nhwc_spatial(begins), nhwc_spatial(ends)].concat())
        }
        Some(p) if p.len() == 2 * n => Ok(p),
        Some(p) => bail!("pads {p:?} do not fit {n} spatial axes"),
    }
}

/// Kernel, strides, dilations and spatial pads of a windowed MMdnn op.
pub(super) struct Window {
    pub(super) kernel: Vec<i64>,
    pub(super) strides: Vec<i64>,
    pub(super) dilations: Vec<i64>,
    pub(super) pads: Vec<i64>,
}

impl Window {
    /// Reads the window of `n` with the given spatial kernel. Where MMdnn says SAME and the
    /// input's size is recorded, pads are recomputed the TensorFlow way (MMdnn's ignore
    /// dilation); otherwise MMdnn's pads are taken as they are.
    pub(super) fn read(cx: &Importer, n: &MmNode, kernel: Vec<i64>) -> Result<Window> {
        let mut w = Window::as_written(n, kernel)?;
        if n.same_padding()? {
            if let Some(input) = cx.spatial_dims(n.input(0)?, w.kernel.len()) {
                w.pads = same_pads(&input, &w.kernel, &w.strides, &w.dilations, true)
                    .context("SAME padding needs the input size")?;
            }
        }
        Ok(w)
    }

    /// The window with MMdnn's pads as they are.
    pub(super) fn as_written(n: &MmNode, kernel: Vec<i64>) -> Result<Window> {
        let k = kernel.len();
        let w = Window {
            strides: spatial(n.ints("strides")?, k, "strides")?,
            dilations: spatial(n.ints("dilations")?, k, "dilations")?,
            pads: spatial_pads(n.ints("pads")?, k)?,
            kernel,
        };
        if [&w.kernel, &w.strides, &w.dilations]
            .iter()
            .any(|v| v.iter().any(|&d| d < 1))
        {
            bail!(
                "kernel {:?}, strides {:?} and dilations {:?} must be positive",
                w.kernel,
                w.strides,
                w.dilations
            );
        }
        Ok(w)
    }

    pub(super) fn attrs(&self, node: Node) -> Node {
        node.with_attr("kernel_shape", AttrValue::Ints(self.kernel.clone()))
            .with_attr("strides", AttrValue::Ints(self.strides.clone()))
            .with_attr("dilations", AttrValue::Ints(self.dilations.clone()))
            .with_attr("pads", AttrValue::Ints(self.pads.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_pads_follow_tensorflow() {
        // 8 wide, kernel 3, dilation 2: effective 5, total 4.
        assert_eq!(same_pads(&[8], &[3], &[1], &[2], true), Some(vec![2, 2]));
        // Stride 2 on 8: out 4, total 1, extra at the end.
        assert_eq!(same_pads(&[8], &[3], &[2], &[1], true), Some(vec![0, 1]));
    }

    #[test]
    fn pads_over_all_axes_become_spatial() {
        let p = spatial_pads(Some(vec![0, 1, 2, 0, 0, 3, 4, 0]), 2).unwrap();
        assert_eq!(p, vec![1, 2, 3, 4]);
        assert!(spatial_pads(Some(vec![1, 2, 3]), 2).is_err());
        assert_eq!(
            spatial(Some(vec![1, 2, 3, 1]), 2, "strides").unwrap(),
            vec![2, 3]
        );
    }
}
