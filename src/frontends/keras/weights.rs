//! The lazy weight reader of a converted Keras model: each IR weight (node, param) names the
//! HDF5 datasets it comes from and how they are transformed (same bytes with a new shape, a
//! transpose, Keras recurrent kernels to the IR's gate layout), applied only when read.
use super::h5::H5File;
use crate::ir::DType;
use crate::weights::mapped::release;
use crate::weights::permute::permute_bytes;
use crate::weights::{Tensor, TensorInfo, WeightReader};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;

/// Which recurrent tensor a transform produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RnnPart {
    /// Keras kernel [F, G·H] or recurrent kernel [H, G·H] per direction → [D, G·H, F or H].
    Matrix,
    /// Keras bias [G·H] (input bias only) or [2, G·H] (GRU reset_after: input, recurrent) per
    /// direction → [D, 2·G·H].
    Bias,
}

/// What is done to the source datasets on their way to the IR.
#[derive(Clone, Debug)]
pub enum Transform {
    /// The dataset as stored.
    None,
    /// Same bytes, another shape.
    Reshape(Vec<usize>),
    /// Axes permuted (output axis i is input axis perm[i]), then viewed as `to` if given.
    Permute {
        perm: Vec<usize>,
        to: Option<Vec<usize>>,
    },
    /// One dataset per direction; `gates[i]` is the Keras gate that IR gate i comes from.
    Rnn {
        part: RnnPart,
        gates: &'static [usize],
    },
}

/// Where one IR weight comes from.
#[derive(Clone, Debug)]
pub enum Source {
    Datasets {
        paths: Vec<String>,
        transform: Transform,
    },
    Literal(Tensor),
}

/// The weights of a converted model, read on demand from the Keras file.
pub struct KerasWeights {
    file: Option<H5File>,
    entries: BTreeMap<(String, String), Source>,
    /// The directory of an extracted weights file, removed when the reader is dropped.
    _temp: Option<tempfile::TempDir>,
}

impl KerasWeights {
    pub fn new(
        file: Option<H5File>,
        entries: BTreeMap<(String, String), Source>,
        temp: Option<tempfile::TempDir>,
    ) -> Self {
        KerasWeights {
            file,
            entries,
            _temp: temp,
        }
    }

    fn file(&self) -> Result<&H5File> {
        self.file
            .as_ref()
            .context("the model has weights but no weights file was given")
    }

    fn source_info(&self, path: &str) -> Result<TensorInfo> {
        self.file()?.info(path)
    }
}

/// Output dtype and shape of a transform applied to sources of the given infos.
fn transformed_info(infos: &[TensorInfo], t: &Transform) -> Result<TensorInfo> {
    let first = infos.first().context("a weight with no source")?;
    let shape = match t {
        Transform::None => first.shape.clone(),
        Transform::Reshape(to) => {
            if to.iter().product::<usize>() != first.numel() {
                bail!("cannot view {:?} as {:?}", first.shape, to);
            }
            to.clone()
        }
        Transform::Permute { perm, to } => {
            if perm.len() != first.shape.len() {
                bail!("cannot permute {:?} by {:?}", first.shape, perm);
            }
            match to {
                Some(to) if to.iter().product::<usize>() != first.numel() => {
                    bail!("cannot view {:?} as {:?}", first.shape, to)
                }
                Some(to) => to.clone(),
                None => perm.iter().map(|&p| first.shape[p]).collect(),
            }
        }
        Transform::Rnn { part, gates } => {
            let d = infos.len();
            let g = gates.len();
            match part {
                RnnPart::Matrix => {
                    let [f, gh] = first.shape[..] else {
                        bail!("expected a 2-d recurrent kernel, got {:?}", first.shape)
                    };
                    if gh % g != 0 {
                        bail!("kernel {:?} does not split into {g} gates", first.shape);
                    }
                    vec![d, gh, f]
                }
                RnnPart::Bias => {
                    let gh = *first.shape.last().context("a 0-d bias")?;
                    vec![d, 2 * gh]
                }
            }
        }
    };
    for i in infos {
        if i.shape != first.shape || i.dtype != first.dtype {
            bail!("the directions differ: {:?} and {:?}", first.shape, i.shape);
        }
    }
    Ok(TensorInfo {
        dtype: first.dtype,
        shape,
    })
}

/// Applies a transform to the read source tensors.
fn apply(sources: Vec<Tensor>, t: &Transform) -> Result<Tensor> {
    let infos: Vec<TensorInfo> = sources.iter().map(|s| s.info.clone()).collect();
    let out = transformed_info(&infos, t)?;
    if let Transform::Rnn { part, gates } = t {
        return rnn(&sources, &out, *part, gates);
    }
    let src = sources.into_iter().next().context("no source")?;
    match t {
        Transform::Reshape(to) => Tensor::new(src.info.dtype, to.clone(), src.data),
        Transform::Permute { perm, .. } => {
            let p = permute(&src, perm)?;
            Tensor::new(out.dtype, out.shape, p.data)
        }
        _ => Ok(src),
    }
}

fn permute(src: &Tensor, perm: &[usize]) -> Result<Tensor> {
    let out_shape: Vec<usize> = perm.iter().map(|&p| src.info.shape[p]).collect();
    let out = permute_bytes(&src.data, &src.info.shape, perm, src.info.dtype.size());
    release(&src.data);
    Tensor::new(src.info.dtype, out_shape, out)
}

/// Keras recurrent weights of each direction → the IR layout (gates reordered, matrices
/// transposed to [G·H, F], biases padded with zero recurrent biases).
fn rnn(dirs: &[Tensor], out: &TensorInfo, part: RnnPart, gates: &[usize]) -> Result<Tensor> {
    if out.dtype != DType::F32 {
        bail!("recurrent weights must be float32, got {}", out.dtype);
    }
    let g = gates.len();
    let mut values: Vec<f32> = Vec::with_capacity(out.numel());
    for t in dirs {
        let v = t.to_f32();
        match part {
            RnnPart::Matrix => {
                let (f, gh) = (t.info.shape[0], t.info.shape[1]);
                let h = gh / g;
                for &kg in gates {
                    for j in 0..h {
                        let col = kg * h + j;
                        values.extend((0..f).map(|r| v[r * gh + col]));
                    }
                }
            }
            RnnPart::Bias => {
                let gh = *t.info.shape.last().expect("checked");
                let h = gh / g;
                let rows = t.info.numel() / gh;
                for row in 0..2 {
                    for &kg in gates {
                        for j in 0..h {
                            values.push(if row < rows {
                                v[row * gh + kg * h + j]
                            } else {
                                0.0
                            });
                        }
                    }
                }
            }
        }
    }
    Tensor::from_f32(out.shape.clone(), &values)
}

impl WeightReader for KerasWeights {
    fn info(&self, node: &str, param: &str) -> Option<TensorInfo> {
        match self.entries.get(&(node.to_string(), param.to_string()))? {
            Source::Literal(t) => Some(t.info.clone()),
            Source::Datasets { paths, transform } => {
                let infos: Vec<TensorInfo> = paths
                    .iter()
                    .map(|p| self.source_info(p))
                    .collect::<Result<_>>()
                    .ok()?;
                transformed_info(&infos, transform).ok()
            }
        }
    }

    fn read(&self, node: &str, param: &str) -> Result<Tensor> {
        let source = self
            .entries
            .get(&(node.to_string(), param.to_string()))
            .with_context(|| format!("no weight '{param}' for node '{node}'"))?;
        let (paths, transform) = match source {
            Source::Literal(t) => return Ok(t.clone()),
            Source::Datasets { paths, transform } => (paths, transform),
        };
        let file = self.file()?;
        let at = || {
            format!(
                "weight '{param}' of node '{node}' from {} ({})",
                file.path.display(),
                paths.join(", ")
            )
        };
        let sources: Vec<Tensor> = paths
            .iter()
            .map(|p| file.read(p))
            .collect::<Result<_>>()
            .with_context(at)?;
        apply(sources, transform).with_context(at)
    }

    fn keys(&self) -> Vec<(String, String)> {
        self.entries.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_moves_axes() {
        let t = Tensor::from_f32(vec![2, 3], &[0., 1., 2., 3., 4., 5.]).unwrap();
        let p = permute(&t, &[1, 0]).unwrap();
        assert_eq!(p.info.shape, vec![3, 2]);
        assert_eq!(p.to_f32(), vec![0., 3., 1., 4., 2., 5.]);
    }

    #[test]
    fn lstm_kernels_reorder_gates_and_transpose() {
        // F = 1, H = 1, Keras gates i f c o = 1 2 3 4 → IR i o f c.
        let k = Tensor::from_f32(vec![1, 4], &[1., 2., 3., 4.]).unwrap();
        let info = transformed_info(
            std::slice::from_ref(&k.info),
            &Transform::Rnn {
                part: RnnPart::Matrix,
                gates: &[0, 3, 1, 2],
            },
        )
        .unwrap();
        assert_eq!(info.shape, vec![1, 4, 1]);
        let w = rnn(
            std::slice::from_ref(&k),
            &info,
            RnnPart::Matrix,
            &[0, 3, 1, 2],
        )
        .unwrap();
        assert_eq!(w.to_f32(), vec![1., 4., 2., 3.]);
        let b = rnn(
            &[k],
            &TensorInfo {
                dtype: DType::F32,
                shape: vec![1, 8],
            },
            RnnPart::Bias,
            &[0, 3, 1, 2],
        )
        .unwrap();
        assert_eq!(b.to_f32(), vec![1., 4., 2., 3., 0., 0., 0., 0.]);
    }
}
