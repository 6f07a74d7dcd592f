//! The lazy weight reader of a converted Keras model: each IR weight (node, param) is a derived
//! weight (`crate::weights::derived`) of HDF5 datasets, read from the weights file only when
//! asked for. Recurrent weights are the one multi-step case: Keras kernels per direction to the
//! IR's gate order and layout, stacked.
use super::h5::H5File;
use crate::ir::DType;
use crate::weights::derived::{Derived, DerivedWeights, Key, Source, Step, TensorFile};
use crate::weights::{Tensor, TensorInfo};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// A Keras weights file, and the directory it was extracted to (removed when dropped).
struct KerasFile {
    h5: H5File,
    _temp: Option<crate::output::TempDir>,
}

impl TensorFile for KerasFile {
    fn path(&self) -> &Path {
        &self.h5.path
    }
    fn info(&self, name: &str) -> Result<TensorInfo> {
        self.h5.info(name)
    }
    fn read(&self, name: &str) -> Result<Tensor> {
        self.h5.read(name)
    }
}

/// The weights of a converted model, read on demand from the Keras file (`temp`: the
/// directory of an extracted file, kept until the reader is dropped).
pub fn reader(
    file: Option<H5File>,
    entries: BTreeMap<Key, Derived>,
    temp: Option<crate::output::TempDir>,
) -> DerivedWeights<'static> {
    let weights: DerivedWeights = entries.into_iter().collect();
    match file {
        Some(h5) => weights.with_file(KerasFile { h5, _temp: temp }),
        None => weights,
    }
}

/// A recurrent kernel from one Keras matrix per direction ([F, G·H] or [H, G·H], gates in Keras
/// order) to the IR's [D, G·H, F or H]: each transposed and its gate blocks reordered
/// (`gates[i]` is the Keras gate of IR gate i), then stacked.
pub fn recurrent_matrix(directions: Vec<Source>, gates: &[usize]) -> Derived {
    Derived::stacked(directions)
        .then(Step::Permute(vec![1, 0]))
        .then(Step::Gates {
            axis: 0,
            order: gates.to_vec(),
        })
        .then(Step::Stack)
}

/// A recurrent bias from one Keras bias per direction to the IR's [D, 2·G·H] (input biases,
/// then recurrent biases, gates reordered): Keras stores [2, G·H] when it keeps a recurrent
/// bias (GRU with reset_after), else [G·H] and the recurrent biases are float32 zeros.
pub fn recurrent_bias(
    directions: Vec<Source>,
    gates: &[usize],
    units: usize,
    recurrent: bool,
) -> Derived {
    let gh = gates.len() * units;
    let d = directions.len();
    let order = gates.to_vec();
    if recurrent {
        // [D, 2, G·H]
        return Derived::stacked(directions)
            .then(Step::Stack)
            .then(Step::Gates { axis: 2, order })
            .then(Step::Reshape(vec![d, 2 * gh]));
    }
    let zeros = Source::Literal(Tensor {
        info: TensorInfo {
            dtype: DType::F32,
            shape: vec![gh],
        },
        data: vec![0u8; gh * DType::F32.size()].into(),
    });
    // [2·D, G·H]: each direction's bias, then its zeros.
    let sources = directions
        .into_iter()
        .flat_map(|b| [b, zeros.clone()])
        .collect();
    Derived::stacked(sources)
        .then(Step::Stack)
        .then(Step::Gates { axis: 1, order })
        .then(Step::Reshape(vec![d, 2 * gh]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::WeightReader;

    const LSTM: &[usize] = &[0, 3, 1, 2];

    /// The IR form of Keras recurrent weights, element by element: IR gate g, unit j of
    /// direction d comes from Keras column gates[g]·H + j.
    fn reference_matrix(dirs: &[Vec<f32>], f: usize, h: usize, gates: &[usize]) -> Vec<f32> {
        let gh = gates.len() * h;
        let mut out = vec![];
        for v in dirs {
            for &kg in gates {
                for j in 0..h {
                    out.extend((0..f).map(|r| v[r * gh + kg * h + j]));
                }
            }
        }
        out
    }

    fn literal(shape: &[usize], first: f32) -> (Source, Vec<f32>) {
        let n = shape.iter().product::<usize>();
        let values: Vec<f32> = (0..n).map(|i| first + i as f32).collect();
        let t = Tensor::from_f32(shape.to_vec(), &values).unwrap();
        (Source::Literal(t), values)
    }

    fn read(d: Derived) -> Tensor {
        let mut w = DerivedWeights::default();
        w.insert("rnn", "w", d);
        let info = w.info("rnn", "w").unwrap();
        let t = w.read("rnn", "w").unwrap();
        assert_eq!(t.info, info);
        t
    }

    #[test]
    fn kernels_reorder_gates_and_transpose_per_direction() {
        // F = 3, H = 2, LSTM gates, two directions.
        let (f, h) = (3, 2);
        let (fwd, a) = literal(&[f, 4 * h], 0.0);
        let (bwd, b) = literal(&[f, 4 * h], 100.0);
        let t = read(recurrent_matrix(vec![fwd, bwd], LSTM));
        assert_eq!(t.info.shape, vec![2, 4 * h, f]);
        assert_eq!(t.to_f32(), reference_matrix(&[a, b], f, h, LSTM));
        // F = 1, H = 1: Keras gates i f c o = 1 2 3 4 → IR i o f c.
        let k = Tensor::from_f32(vec![1, 4], &[1., 2., 3., 4.]).unwrap();
        let t = read(recurrent_matrix(vec![Source::Literal(k)], LSTM));
        assert_eq!(t.info.shape, vec![1, 4, 1]);
        assert_eq!(t.to_f32(), vec![1., 4., 2., 3.]);
    }

    #[test]
    fn biases_get_zero_recurrent_parts_unless_keras_kept_them() {
        let gru = &[1, 0, 2];
        let h = 2;
        // Input biases only: [G·H] per direction → [b reordered, zeros].
        let (fwd, a) = literal(&[3 * h], 0.0);
        let (bwd, b) = literal(&[3 * h], 10.0);
        let t = read(recurrent_bias(vec![fwd, bwd], gru, h, false));
        assert_eq!(t.info.shape, vec![2, 6 * h]);
        let reordered = |v: &[f32]| -> Vec<f32> {
            gru.iter()
                .flat_map(|&g| v[g * h..(g + 1) * h].to_vec())
                .collect()
        };
        let zeros = vec![0.0; 3 * h];
        let expected = [reordered(&a), zeros.clone(), reordered(&b), zeros].concat();
        assert_eq!(t.to_f32(), expected);
        // reset_after: [2, G·H] per direction, both rows reordered.
        let (fwd, a) = literal(&[2, 3 * h], 0.0);
        let t = read(recurrent_bias(vec![fwd], gru, h, true));
        assert_eq!(t.info.shape, vec![1, 6 * h]);
        let expected = [reordered(&a[..3 * h]), reordered(&a[3 * h..])].concat();
        assert_eq!(t.to_f32(), expected);
    }
}
