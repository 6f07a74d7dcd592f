//! Random-graph builder ops that move data around: concat, flatten, reshape, transpose, pad,
//! depth/space, split, slice, gather, squeeze and tile/expand.
use super::{Builder, Img};
use crate::common::{ints, usizes};
use mmdnn::ir::{AttrValue, DType, TensorRef};
use mmdnn::weights::Tensor;

impl Builder {
    pub(super) fn concat(&mut self, x: &Img) {
        let rank = x.sp.len() + 2;
        if let Some(y) = self
            .imgs
            .iter()
            .rev()
            .find(|y| y.sp == x.sp && y.r != x.r)
            .cloned()
        {
            let axis =
                self.c_axis(rank) as i64 - if self.rng.chance(0.5) { rank as i64 } else { 0 };
            let r = self.add(
                "Concat",
                [x.r.clone(), y.r],
                vec![("axis", AttrValue::Int(axis))],
            );
            self.push(r, x.c + y.c, x.sp.clone());
        } else {
            let i = self.rng.range(0, x.sp.len() as i64 - 1) as usize;
            let axis = self.sp_axis(i) as i64;
            let r = self.add(
                "Concat",
                [x.r.clone(), x.r.clone()],
                vec![("axis", AttrValue::Int(axis))],
            );
            let mut sp = x.sp.clone();
            sp[i] *= 2;
            self.push(r, x.c, sp);
        }
    }

    /// Flatten (or a flattening Reshape) into a FullyConnected output.
    pub(super) fn flatten_dense(&mut self, x: &Img) {
        let features = x.c * x.sp.iter().product::<i64>();
        let r = if self.rng.chance(0.5) {
            self.add("Flatten", [x.r.clone()], vec![("axis", AttrValue::Int(1))])
        } else {
            let shape = match self.rng.range(0, 2) {
                0 => vec![0, -1],
                1 => vec![-1, features],
                _ => vec![self.n, -1],
            };
            self.add("Reshape", [x.r.clone()], vec![("shape", ints(&shape))])
        };
        self.dense_output(r, features);
    }

    /// Reshape merging two adjacent non-batch axes. Merging two spatial axes keeps an image;
    /// otherwise the result ends in a Softmax output.
    pub(super) fn reshape_merge(&mut self, x: &Img) {
        let dims = self.dims(x);
        let rank = dims.len();
        let a = self.rng.range(1, rank as i64 - 2) as usize;
        let mut target: Vec<i64> = dims[..a].to_vec();
        target.push(dims[a] * dims[a + 1]);
        target.extend(&dims[a + 2..]);
        let unknown = self.rng.range(0, rank as i64 - 2) as usize;
        if self.rng.chance(0.5) {
            target[0] = 0;
        }
        if self.rng.chance(0.5) {
            target[unknown] = -1;
        }
        let r = self.add("Reshape", [x.r.clone()], vec![("shape", ints(&target))]);
        let c = self.c_axis(rank);
        if a != c && a + 1 != c && rank > 3 {
            let i = a - self.sp_axis(0);
            let mut sp = x.sp.clone();
            sp[i] *= sp[i + 1];
            sp.remove(i + 1);
            self.push(r, x.c, sp);
        } else {
            let s = self.add("Softmax", [r], vec![]);
            self.output(s);
        }
    }

    /// Reshape splitting an even spatial dim in two (rank grows).
    pub(super) fn reshape_split(&mut self, x: &Img) {
        let Some(i) = (0..x.sp.len()).find(|&i| x.sp[i] % 2 == 0) else {
            return self.unary(x);
        };
        if x.sp.len() >= 3 {
            return self.unary(x);
        }
        let mut sp = x.sp.clone();
        sp[i] /= 2;
        sp.insert(i, 2);
        let mut target = self.dims_of(x.c, &sp);
        target[0] = if self.rng.chance(0.5) { 0 } else { -1 };
        let r = self.add("Reshape", [x.r.clone()], vec![("shape", ints(&target))]);
        self.push(r, x.c, sp);
    }

    pub(super) fn transpose_spatial(&mut self, x: &Img) {
        let rank = x.sp.len() + 2;
        if x.sp.len() < 2 {
            return self.unary(x);
        }
        let (i, j) = (0, x.sp.len() - 1);
        let mut perm: Vec<i64> = (0..rank as i64).collect();
        perm.swap(self.sp_axis(i), self.sp_axis(j));
        let r = self.add("Transpose", [x.r.clone()], vec![("perm", ints(&perm))]);
        let mut sp = x.sp.clone();
        sp.swap(i, j);
        self.push(r, x.c, sp);
    }

    /// Transpose to the other layout, an activation, and back.
    pub(super) fn transpose_round_trip(&mut self, x: &Img) {
        let rank = x.sp.len() as i64 + 2;
        let to: Vec<i64> = if self.last {
            [0, rank - 1].into_iter().chain(1..rank - 1).collect()
        } else {
            [0].into_iter().chain(2..rank).chain([1]).collect()
        };
        let mut back = vec![0; to.len()];
        for (i, &v) in to.iter().enumerate() {
            back[v as usize] = i as i64;
        }
        let t = self.add("Transpose", [x.r.clone()], vec![("perm", ints(&to))]);
        let a = self.add("Relu", [t], vec![]);
        let r = self.add("Transpose", [a], vec![("perm", ints(&back))]);
        self.push(r, x.c, x.sp.clone());
    }

    pub(super) fn pad(&mut self, x: &Img) {
        let dims = self.dims(x);
        let rank = dims.len();
        let mode = ["constant", "reflect", "edge"][self.rng.range(0, 2) as usize];
        let c_axis = self.c_axis(rank);
        let mut pads = vec![0; 2 * rank];
        for a in 1..rank {
            let most = if a == c_axis { 1 } else { 2 };
            let most = if mode == "reflect" {
                most.min(dims[a] - 1)
            } else {
                most
            };
            pads[a] = self.rng.range(0, most);
            pads[a + rank] = self.rng.range(0, most);
        }
        let value = self.rng.uniform();
        let r = self.add(
            "Pad",
            [x.r.clone()],
            vec![
                ("pads", ints(&pads)),
                ("mode", AttrValue::Str(mode.into())),
                ("value", AttrValue::Float(value)),
            ],
        );
        let grown: Vec<i64> = (0..rank)
            .map(|a| dims[a] + pads[a] + pads[a + rank])
            .collect();
        let c = grown[c_axis];
        let sp = (0..x.sp.len()).map(|i| grown[self.sp_axis(i)]).collect();
        self.push(r, c, sp);
    }

    pub(super) fn depth_space(&mut self, x: &Img) {
        let fmt = self.format();
        if x.sp.len() == 2 && x.c % 4 == 0 {
            let mode = if self.rng.chance(0.5) { "DCR" } else { "CRD" };
            let r = self.add(
                "DepthToSpace",
                [x.r.clone()],
                vec![
                    ("blocksize", AttrValue::Int(2)),
                    ("mode", AttrValue::Str(mode.into())),
                    ("data_format", fmt),
                ],
            );
            self.push(r, x.c / 4, x.sp.iter().map(|d| d * 2).collect());
        } else if x.sp.len() == 2 && x.sp.iter().all(|d| d % 2 == 0) {
            let r = self.add(
                "SpaceToDepth",
                [x.r.clone()],
                vec![("blocksize", AttrValue::Int(2)), ("data_format", fmt)],
            );
            self.push(r, x.c * 4, x.sp.iter().map(|d| d / 2).collect());
        } else {
            self.conv(x)
        }
    }

    pub(super) fn split(&mut self, x: &Img) {
        let rank = x.sp.len() + 2;
        if x.c >= 2 {
            let a = self.rng.range(1, x.c - 1);
            let axis = self.c_axis(rank) as i64;
            let r = self.add(
                "Split",
                [x.r.clone()],
                vec![
                    ("axis", AttrValue::Int(axis)),
                    ("split", ints(&[a, x.c - a])),
                ],
            );
            self.push(r.clone(), a, x.sp.clone());
            self.push(TensorRef::new(r.node, 1), x.c - a, x.sp.clone());
        } else {
            let i = x.sp.len() - 1;
            let d = x.sp[i];
            if d < 2 {
                return self.unary(x);
            }
            let a = self.rng.range(1, d - 1);
            let r = self.add(
                "Split",
                [x.r.clone()],
                vec![
                    ("axis", AttrValue::Int(self.sp_axis(i) as i64)),
                    ("split", ints(&[a, d - a])),
                ],
            );
            let mut sp = x.sp.clone();
            sp[i] = a;
            self.push(r.clone(), x.c, sp.clone());
            sp[i] = d - a;
            self.push(TensorRef::new(r.node, 1), x.c, sp);
        }
    }

    pub(super) fn slice(&mut self, x: &Img) {
        let i = self.rng.range(0, x.sp.len() as i64 - 1) as usize;
        let d = x.sp[i];
        let start = self.rng.range(0, d - 1);
        let end = self.rng.range(start + 1, d);
        let step = if end - start > 2 && self.rng.chance(0.3) {
            2
        } else {
            1
        };
        let len = (end - start + step - 1) / step;
        let r = self.add(
            "Slice",
            [x.r.clone()],
            vec![
                ("starts", ints(&[start])),
                ("ends", ints(&[end])),
                ("axes", ints(&[self.sp_axis(i) as i64])),
                ("steps", ints(&[step])),
            ],
        );
        let mut sp = x.sp.clone();
        sp[i] = len;
        self.push(r, x.c, sp);
    }

    /// Gather channels by constant indices (or one spatial row, ending in an output).
    pub(super) fn gather(&mut self, x: &Img) {
        let rank = x.sp.len() + 2;
        let count = self.rng.range(1, 3);
        let idx: Vec<i64> = (0..count).map(|_| self.rng.range(0, x.c - 1)).collect();
        let scalar = self.rng.chance(0.3);
        let shape: Vec<i64> = if scalar { vec![] } else { vec![count] };
        let ind = self.add(
            "Constant",
            [],
            vec![
                ("dtype", AttrValue::Type(DType::I64)),
                ("shape", AttrValue::Shape(shape.clone())),
            ],
        );
        let values = if scalar { &idx[..1] } else { &idx[..] };
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.w.insert(
            &ind.node,
            "value",
            Tensor::new(DType::I64, usizes(&shape), bytes).unwrap(),
        );
        let axis = self.c_axis(rank) as i64;
        let r = self.add(
            "Gather",
            [x.r.clone(), ind],
            vec![("axis", AttrValue::Int(axis))],
        );
        if scalar {
            self.output(r);
        } else {
            self.push(r, count, x.sp.clone());
        }
    }

    /// Squeeze the spatial axes of a pooled image into a FullyConnected output.
    pub(super) fn squeeze_dense(&mut self, x: &Img) {
        let fmt = self.format();
        let p = self.add("GlobalPool", [x.r.clone()], vec![("data_format", fmt)]);
        let axes: Vec<i64> = (0..x.sp.len()).map(|i| self.sp_axis(i) as i64).collect();
        // Empty axes squeeze every size-1 axis: only when batch and channels are not 1.
        let all = x.c > 1 && self.n > 1 && self.rng.chance(0.5);
        let axes = if all { vec![] } else { axes };
        let s = self.add("Squeeze", [p], vec![("axes", ints(&axes))]);
        if self.rng.chance(0.3) {
            let u = self.add("Unsqueeze", [s], vec![("axes", ints(&[1]))]);
            let o = self.add("Softmax", [u], vec![("axis", AttrValue::Int(-1))]);
            self.output(o);
        } else {
            self.dense_output(s, x.c);
        }
    }

    pub(super) fn tile_or_expand(&mut self, x: &Img) {
        let dims = self.dims(x);
        if let Some(i) = x.sp.iter().position(|&d| d == 1) {
            let mut shape = dims.clone();
            shape[self.sp_axis(i)] = 3;
            let r = self.add("Expand", [x.r.clone()], vec![("shape", ints(&shape))]);
            let mut sp = x.sp.clone();
            sp[i] = 3;
            self.push(r, x.c, sp);
        } else {
            let reps: Vec<i64> = (0..dims.len())
                .map(|a| if a > 0 && self.rng.chance(0.3) { 2 } else { 1 })
                .collect();
            let r = self.add("Tile", [x.r.clone()], vec![("repeats", ints(&reps))]);
            let grown: Vec<i64> = dims.iter().zip(&reps).map(|(d, r)| d * r).collect();
            let c = grown[self.c_axis(dims.len())];
            let sp = (0..x.sp.len()).map(|i| grown[self.sp_axis(i)]).collect();
            self.push(r, c, sp);
        }
    }
}
