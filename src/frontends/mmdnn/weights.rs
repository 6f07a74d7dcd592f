//! MMdnn's weights under our (node, param) keys. The importer records where each of our weights
//! comes from: MMdnn's weight of a layer ([`Stored`]: the keys MMdnn's parsers store it under
//! and the steps that make it ours), or a tensor given with the graph. [`WeightMap::wrap`]
//! resolves each against MMdnn's weights into a derived weight (`crate::weights::derived`),
//! read lazily.
use crate::ir::DType;
use crate::weights::derived::{Derived, DerivedWeights, Key, LazyTensor, Step};
use crate::weights::{Sink, Tensor, TensorInfo, WeightReader};
use anyhow::{bail, Result};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// One of our weights made from MMdnn's weight of `layer`, stored under the first of `keys`
/// present in the file (MMdnn's parsers name some weights differently).
#[derive(Clone, Debug)]
pub(super) struct Stored {
    layer: String,
    keys: &'static [&'static str],
    /// The stored shape `steps` are written for (`None`: any). A tensor stored in another
    /// shape is passed on as it is, so shape checks report its real shape; reading it fails.
    shape: Option<Vec<usize>>,
    steps: Vec<Step>,
}

impl Stored {
    /// MMdnn's weight of `layer` under the first of `keys` present, as it is.
    pub(super) fn new(layer: &str, keys: &'static [&'static str]) -> Self {
        Stored {
            layer: layer.to_string(),
            keys,
            shape: None,
            steps: vec![],
        }
    }

    /// The same bytes stored as `from`, seen as `to`.
    pub(super) fn reshaped(mut self, from: Vec<usize>, to: Vec<usize>) -> Self {
        self.shape = Some(from);
        self.steps.push(Step::Reshape(to));
        self
    }

    /// The elements converted to `dtype` (MMdnn stored TensorFlow constants as float64/int64).
    pub(super) fn cast(mut self, dtype: DType) -> Self {
        self.steps.push(Step::Cast(dtype));
        self
    }

    /// This weight as derived from what `mmdnn` holds; `None` when no key is present.
    fn resolve(&self, mmdnn: &dyn WeightReader) -> Option<Derived> {
        let (key, info) = self
            .keys
            .iter()
            .find_map(|&k| Some((k, mmdnn.info(&self.layer, k)?)))?;
        Some(match &self.shape {
            Some(expected) if info.shape != *expected => Derived::lazy(Arc::new(Misshapen {
                layer: self.layer.clone(),
                key,
                info,
                expected: expected.clone(),
            })),
            _ => {
                (self.steps.iter().cloned()).fold(Derived::weight(&self.layer, key), Derived::then)
            }
        })
    }
}

/// How MMdnn's weights map onto the imported graph: each (our node, our param) is made from an
/// MMdnn weight or given as it is. A key is in one of the two maps.
#[derive(Clone, Debug, Default)]
pub struct WeightMap {
    stored: BTreeMap<Key, Stored>,
    given: BTreeMap<Key, Derived>,
}

impl WeightMap {
    /// Wraps MMdnn's weights (as read from its pickled .npy, keyed (layer, key)) into a reader
    /// keyed by our (node, param), in key order; the steps are applied lazily on read. Weights
    /// whose MMdnn key is in no form present are left out.
    pub fn wrap(&self, mmdnn: Box<dyn WeightReader>) -> Box<dyn WeightReader> {
        let mut resolved = self.given.clone();
        for (key, stored) in &self.stored {
            if let Some(derived) = stored.resolve(mmdnn.as_ref()) {
                resolved.insert(key.clone(), derived);
            }
        }
        let mut weights = DerivedWeights::over(MmdnnFile(mmdnn));
        for ((node, param), derived) in resolved {
            weights.insert(&node, &param, derived);
        }
        Box::new(weights)
    }

    /// MMdnn weights that no node of the imported graph reads (e.g. a TensorFlow `Mul`'s
    /// `alpha`): a converter should refuse or warn rather than drop them silently.
    pub fn unmapped(&self, mmdnn: &dyn WeightReader) -> Vec<(String, String)> {
        let used: HashSet<(&str, &str)> = self
            .stored
            .values()
            .flat_map(|s| s.keys.iter().map(move |k| (s.layer.as_str(), *k)))
            .collect();
        mmdnn
            .keys()
            .into_iter()
            .filter(|(l, k)| !used.contains(&(l.as_str(), k.as_str())))
            .collect()
    }

    /// Makes weight `param` of `node` from an MMdnn weight.
    pub(super) fn insert(&mut self, node: &str, param: &str, stored: Stored) {
        self.stored
            .insert((node.to_string(), param.to_string()), stored);
    }

    /// Gives weight `param` of `node` as `t` (a constant MMdnn kept in a node attribute).
    pub(super) fn literal(&mut self, node: &str, param: &str, t: Tensor) {
        self.given
            .insert((node.to_string(), param.to_string()), Derived::literal(t));
    }
}

/// MMdnn's weights as read from its file, owned by the weights derived from them.
struct MmdnnFile(Box<dyn WeightReader>);

impl WeightReader for MmdnnFile {
    fn info(&self, node: &str, param: &str) -> Option<TensorInfo> {
        self.0.info(node, param)
    }
    fn read(&self, node: &str, param: &str) -> Result<Tensor> {
        self.0.read(node, param)
    }
    fn keys(&self) -> Vec<(String, String)> {
        self.0.keys()
    }
    fn write_to(&self, node: &str, param: &str, w: &mut dyn Sink) -> Result<u64> {
        self.0.write_to(node, param, w)
    }
}

/// An MMdnn weight stored in another shape than its node's attributes promise: its info is
/// the stored one, so shape checks report it, and reading it fails.
struct Misshapen {
    layer: String,
    key: &'static str,
    info: TensorInfo,
    expected: Vec<usize>,
}

impl LazyTensor for Misshapen {
    fn info(&self) -> TensorInfo {
        self.info.clone()
    }
    fn read(&self) -> Result<Tensor> {
        bail!(
            "MMdnn '{}'/'{}' has shape {:?}, expected {:?}",
            self.layer,
            self.key,
            self.info.shape,
            self.expected
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::MemoryWeights;

    fn constant(t: Tensor, to: DType) -> Box<dyn WeightReader> {
        let mut mm = MemoryWeights::default();
        mm.insert("c", "value", t);
        let mut map = WeightMap::default();
        map.insert("c", "value", Stored::new("c", &["value"]).cast(to));
        map.wrap(Box::new(mm))
    }

    #[test]
    fn casts_constants() {
        let t = Tensor::new(
            DType::F64,
            vec![2],
            [1.5f64.to_le_bytes(), (-2f64).to_le_bytes()].concat(),
        )
        .unwrap();
        let w = constant(t, DType::F32);
        assert_eq!(w.info("c", "value").unwrap().dtype, DType::F32);
        assert_eq!(w.read("c", "value").unwrap().to_f32(), vec![1.5, -2.0]);
        let big = Tensor::new(DType::I64, vec![1], (1i64 << 40).to_le_bytes().to_vec()).unwrap();
        let err = format!(
            "{:#}",
            constant(big, DType::I32).read("c", "value").unwrap_err()
        );
        assert!(err.contains("weight 'value' of node 'c'"), "{err}");
        assert!(err.contains("does not fit int32"), "{err}");
    }

    #[test]
    fn the_first_key_present_is_read_and_every_key_counts_as_mapped() {
        let mut mm = MemoryWeights::default();
        let table = Tensor::from_f32(vec![2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        mm.insert("emb", "weights", table.clone());
        let mut map = WeightMap::default();
        let keys = &["embedding_weights", "weights"];
        map.insert("emb", "weights", Stored::new("emb", keys));
        map.insert("fc", "weights", Stored::new("fc", &["weights"]));
        assert!(map.unmapped(&mm).is_empty());
        let w = map.wrap(Box::new(mm));
        assert_eq!(w.keys(), [("emb".to_string(), "weights".to_string())]);
        assert_eq!(w.read("emb", "weights").unwrap().to_f32(), table.to_f32());
        assert!(w.info("fc", "weights").is_none());
    }
}
