//! MMdnn's weights under our (node, param) keys: the map the importer builds from MMdnn's
//! (layer, key) pairs, and the reader that applies each weight's transform lazily on read.
use crate::ir::DType;
use crate::weights::{Tensor, TensorInfo, WeightReader};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, HashSet};

/// Where one of our weights comes from.
#[derive(Clone, Debug)]
pub(super) enum Source {
    /// MMdnn's weight of `layer` under the first of `keys` present, then transformed.
    Mmdnn {
        layer: String,
        keys: &'static [&'static str],
        transform: Transform,
    },
    /// A constant MMdnn kept in its node's `value` attribute.
    Literal(Tensor),
}

/// What is done to an MMdnn weight on its way to our node.
#[derive(Clone, Debug)]
pub(super) enum Transform {
    /// Nothing: MMdnn's layout is ours.
    None,
    /// Same bytes, new shape; the MMdnn tensor must have shape `from`.
    Reshape { from: Vec<usize>, to: Vec<usize> },
    /// Converts the elements (MMdnn stored TensorFlow constants as float64/int64).
    Cast(DType),
}

/// How MMdnn's weights map onto the imported graph: for each (our node, our param) the MMdnn
/// (layer, key) it comes from, and an optional transform.
#[derive(Clone, Debug, Default)]
pub struct WeightMap {
    entries: BTreeMap<(String, String), Source>,
}

impl WeightMap {
    /// Wraps MMdnn's weights (as read from its pickled .npy, keyed (layer, key)) into a reader
    /// keyed by our (node, param), applying the transforms lazily on read.
    pub fn wrap(&self, mmdnn: Box<dyn WeightReader>) -> Box<dyn WeightReader> {
        Box::new(Mapped {
            map: self.clone(),
            inner: mmdnn,
        })
    }

    /// MMdnn weights that no node of the imported graph reads (e.g. a TensorFlow `Mul`'s
    /// `alpha`): a converter should refuse or warn rather than drop them silently.
    pub fn unmapped(&self, mmdnn: &dyn WeightReader) -> Vec<(String, String)> {
        let used: HashSet<(&str, &str)> = self
            .entries
            .values()
            .filter_map(|s| match s {
                Source::Mmdnn { layer, keys, .. } => Some((layer, keys)),
                Source::Literal(_) => None,
            })
            .flat_map(|(layer, keys)| keys.iter().map(move |k| (layer.as_str(), *k)))
            .collect();
        mmdnn
            .keys()
            .into_iter()
            .filter(|(l, k)| !used.contains(&(l.as_str(), k.as_str())))
            .collect()
    }

    pub(super) fn insert(&mut self, node: &str, param: &str, source: Source) {
        self.entries
            .insert((node.to_string(), param.to_string()), source);
    }
}

/// MMdnn's weights seen through a [`WeightMap`].
struct Mapped {
    map: WeightMap,
    inner: Box<dyn WeightReader>,
}

/// Where a mapped weight is found.
enum Located<'a> {
    Literal(&'a Tensor),
    Mmdnn {
        layer: &'a str,
        key: &'static str,
        transform: &'a Transform,
    },
}

impl Mapped {
    /// The source of (node, param); for MMdnn weights, the first key present in the file.
    fn locate(&self, node: &str, param: &str) -> Option<Located<'_>> {
        match self
            .map
            .entries
            .get(&(node.to_string(), param.to_string()))?
        {
            Source::Literal(t) => Some(Located::Literal(t)),
            Source::Mmdnn {
                layer,
                keys,
                transform,
            } => keys
                .iter()
                .find(|k| self.inner.info(layer, k).is_some())
                .map(|key| Located::Mmdnn {
                    layer,
                    key,
                    transform,
                }),
        }
    }
}

impl WeightReader for Mapped {
    fn info(&self, node: &str, param: &str) -> Option<TensorInfo> {
        let (layer, key, transform) = match self.locate(node, param)? {
            Located::Literal(t) => return Some(t.info.clone()),
            Located::Mmdnn {
                layer,
                key,
                transform,
            } => (layer, key, transform),
        };
        let info = self.inner.info(layer, key)?;
        Some(match transform {
            Transform::Reshape { from, to } if info.shape == *from => TensorInfo {
                dtype: info.dtype,
                shape: to.clone(),
            },
            // A stored shape that does not fit is left as it is, so shape checks report the
            // real shape; `read` fails.
            Transform::None | Transform::Reshape { .. } => info,
            Transform::Cast(dtype) => TensorInfo {
                dtype: *dtype,
                shape: info.shape,
            },
        })
    }

    fn read(&self, node: &str, param: &str) -> Result<Tensor> {
        let (layer, key, transform) = match self.locate(node, param) {
            None => bail!("no weight '{param}' for node '{node}' in the MMdnn weights"),
            Some(Located::Literal(t)) => return Ok(t.clone()),
            Some(Located::Mmdnn {
                layer,
                key,
                transform,
            }) => (layer, key, transform),
        };
        let t = self.inner.read(layer, key)?;
        let at = || format!("weight '{param}' of node '{node}' (MMdnn '{layer}'/'{key}')");
        match transform {
            Transform::None => Ok(t),
            Transform::Reshape { from, to } => {
                if t.info.shape != *from {
                    bail!(
                        "{}: MMdnn stored shape {:?}, expected {from:?}",
                        at(),
                        t.info.shape
                    );
                }
                Tensor::new(t.info.dtype, to.clone(), t.data).with_context(at)
            }
            Transform::Cast(dtype) => cast(&t, *dtype).with_context(at),
        }
    }

    fn keys(&self) -> Vec<(String, String)> {
        self.map
            .entries
            .keys()
            .filter(|(n, p)| self.locate(n, p).is_some())
            .cloned()
            .collect()
    }
}

/// Converts a constant's elements to `to` (floats to f32, integers between 32 and 64 bits).
fn cast(t: &Tensor, to: DType) -> Result<Tensor> {
    let from = t.info.dtype;
    let data: Vec<u8> = match (from, to) {
        _ if from == to => return Ok(t.clone()),
        (_, DType::F32) if from.is_float() => {
            t.to_f32().iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        (DType::I64, DType::I32) => t
            .data
            .chunks_exact(8)
            .map(|c| {
                let v = i64::from_le_bytes(c.try_into().expect("chunk of 8"));
                i32::try_from(v).map(i32::to_le_bytes)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| anyhow!("a value does not fit in int32"))?
            .concat(),
        (DType::I32, DType::I64) => t
            .data
            .chunks_exact(4)
            .flat_map(|c| {
                i64::from(i32::from_le_bytes(c.try_into().expect("chunk of 4"))).to_le_bytes()
            })
            .collect(),
        _ => bail!("cannot convert {from} to {to}"),
    };
    Tensor::new(to, t.info.shape.clone(), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_constants() {
        let t = Tensor::new(
            DType::F64,
            vec![2],
            [1.5f64.to_le_bytes(), (-2f64).to_le_bytes()].concat(),
        )
        .unwrap();
        assert_eq!(cast(&t, DType::F32).unwrap().to_f32(), vec![1.5, -2.0]);
        let big = Tensor::new(DType::I64, vec![1], (1i64 << 40).to_le_bytes().to_vec()).unwrap();
        assert!(cast(&big, DType::I32).is_err());
    }
}
