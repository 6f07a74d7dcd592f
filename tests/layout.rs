//! The layout pass: unit tests of its rewrites, and the property test that a converted graph
//! computes exactly what the source graph computes (inputs and outputs transposed as reported),
//! on random graphs of layout-relevant ops, in both directions.
use mmdnn::interp::{Interpreter, Value};
use mmdnn::ir::ops::shape_rules::window_out;
use mmdnn::ir::passes::layout::{convert_layout, LayoutResult, Target};
use mmdnn::ir::{validate, AttrValue, DType, Graph, Node, TensorRef};
use mmdnn::weights::{MemoryWeights, Tensor, WeightReader};
use ndarray::{ArrayD, IxDyn};

// ---------------------------------------------------------------------------------------------
// A tiny deterministic PRNG (SplitMix64).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

// ---------------------------------------------------------------------------------------------
// Graph building helpers.

/// An image tensor of the graph being built: channels and spatial dims, laid out in the
/// builder's format.
#[derive(Clone)]
struct Img {
    r: TensorRef,
    c: i64,
    sp: Vec<i64>,
}

struct Builder {
    g: Graph,
    w: MemoryWeights,
    rng: Rng,
    last: bool,
    n: i64,
    imgs: Vec<Img>,
    outputs: Vec<TensorRef>,
    count: usize,
}

fn ints(v: &[i64]) -> AttrValue {
    AttrValue::Ints(v.to_vec())
}

fn usizes(v: &[i64]) -> Vec<usize> {
    v.iter().map(|&d| d as usize).collect()
}

impl Builder {
    fn new(seed: u64, last: bool) -> Builder {
        Builder {
            g: Graph::default(),
            w: MemoryWeights::default(),
            rng: Rng(seed),
            last,
            n: 1,
            imgs: vec![],
            outputs: vec![],
            count: 0,
        }
    }

    fn format(&self) -> AttrValue {
        AttrValue::Str(
            if self.last {
                "channels_last"
            } else {
                "channels_first"
            }
            .into(),
        )
    }

    fn c_axis(&self, rank: usize) -> usize {
        if self.last {
            rank - 1
        } else {
            1
        }
    }

    /// Tensor axis of spatial dim `i` for an image of `rank`.
    fn sp_axis(&self, i: usize) -> usize {
        if self.last {
            1 + i
        } else {
            2 + i
        }
    }

    fn dims_of(&self, c: i64, sp: &[i64]) -> Vec<i64> {
        let mut d = vec![self.n];
        if self.last {
            d.extend(sp);
            d.push(c);
        } else {
            d.push(c);
            d.extend(sp);
        }
        d
    }

    fn dims(&self, x: &Img) -> Vec<i64> {
        self.dims_of(x.c, &x.sp)
    }

    fn add<const K: usize>(
        &mut self,
        op: &str,
        inputs: [TensorRef; K],
        attrs: Vec<(&str, AttrValue)>,
    ) -> TensorRef {
        self.count += 1;
        let mut node =
            Node::new(format!("{}_{}", op.to_lowercase(), self.count), op).with_inputs(inputs);
        for (k, v) in attrs {
            node = node.with_attr(k, v);
        }
        self.g.add(node).unwrap()
    }

    fn weight(&mut self, node: &TensorRef, param: &str, shape: &[usize], lo: f32, hi: f32) {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| lo + (hi - lo) * (self.rng.uniform() + 1.0) / 2.0)
            .collect();
        self.w.insert(
            &node.node,
            param,
            Tensor::from_f32(shape.to_vec(), &v).unwrap(),
        );
    }

    fn constant(&mut self, shape: &[i64]) -> TensorRef {
        let r = self.add(
            "Constant",
            [],
            vec![
                ("dtype", AttrValue::Type(DType::F32)),
                ("shape", AttrValue::Shape(shape.to_vec())),
            ],
        );
        self.weight(&r, "value", &usizes(shape), -1.0, 1.0);
        r
    }

    fn push(&mut self, r: TensorRef, c: i64, sp: Vec<i64>) {
        self.imgs.push(Img { r, c, sp });
    }

    fn output(&mut self, r: TensorRef) {
        if !self.outputs.contains(&r) {
            self.outputs.push(r);
        }
    }

    /// A FullyConnected layer on a rank-2 tensor of `features` columns, made a graph output.
    fn dense_output(&mut self, x: TensorRef, features: i64) {
        let units = self.rng.range(1, 4);
        let bias = self.rng.chance(0.5);
        let fc = self.add(
            "FullyConnected",
            [x],
            vec![
                ("units", AttrValue::Int(units)),
                ("use_bias", AttrValue::Bool(bias)),
            ],
        );
        let s = 1.0 / (features as f32).sqrt();
        self.weight(&fc, "weights", &[features as usize, units as usize], -s, s);
        if bias {
            self.weight(&fc, "bias", &[units as usize], -1.0, 1.0);
        }
        self.output(fc);
    }

    fn input(&mut self, rank: usize, unknown_batch: bool) -> Img {
        let (lo, hi) = match rank {
            3 => (4, 9),
            4 => (3, 7),
            _ => (2, 4),
        };
        let sp: Vec<i64> = (0..rank - 2).map(|_| self.rng.range(lo, hi)).collect();
        let c = self.rng.range(1, 5);
        let mut shape = self.dims_of(c, &sp);
        if unknown_batch {
            shape[0] = -1;
        }
        let name = format!("input_{}", self.g.inputs.len());
        let r = self
            .g
            .add(
                Node::new(name.clone(), "DataInput")
                    .with_attr("dtype", AttrValue::Type(DType::F32))
                    .with_attr("shape", AttrValue::Shape(shape)),
            )
            .unwrap();
        self.g.inputs.push(name);
        Img { r, c, sp }
    }

    // -- the ops ---------------------------------------------------------------------------------

    fn conv(&mut self, x: &Img) {
        let (group, out) = match self.rng.range(0, 3) {
            0 => (x.c, x.c * self.rng.range(1, 2)),
            1 if x.c % 2 == 0 => (2, 2 * self.rng.range(1, 3)),
            _ => (1, self.rng.range(1, 6)),
        };
        let (mut k, mut st, mut dil, mut pb, mut pe, mut sp) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for &d in &x.sp {
            let mut pick = (1, 1, 1, 0, 0);
            for _ in 0..8 {
                let kk = self.rng.range(1, 3);
                let dd = if kk > 1 && self.rng.chance(0.2) { 2 } else { 1 };
                let cand = (
                    kk,
                    self.rng.range(1, 2),
                    dd,
                    self.rng.range(0, 2),
                    self.rng.range(0, 2),
                );
                if window_out(d, cand.0, cand.1, cand.2, cand.3, cand.4, false) >= 1 {
                    pick = cand;
                    break;
                }
            }
            k.push(pick.0);
            st.push(pick.1);
            dil.push(pick.2);
            pb.push(pick.3);
            pe.push(pick.4);
            sp.push(window_out(d, pick.0, pick.1, pick.2, pick.3, pick.4, false));
        }
        let bias = self.rng.chance(0.5);
        let fmt = self.format();
        let r = self.add(
            "Conv",
            [x.r.clone()],
            vec![
                ("kernel_shape", ints(&k)),
                ("strides", ints(&st)),
                ("dilations", ints(&dil)),
                ("pads", ints(&[pb, pe].concat())),
                ("group", AttrValue::Int(group)),
                ("out_channels", AttrValue::Int(out)),
                ("use_bias", AttrValue::Bool(bias)),
                ("data_format", fmt),
            ],
        );
        let cin = (x.c / group) as usize;
        let fan: f32 = cin as f32 * k.iter().product::<i64>() as f32;
        let shape: Vec<usize> = if self.last {
            usizes(&k).into_iter().chain([cin, out as usize]).collect()
        } else {
            [out as usize, cin].into_iter().chain(usizes(&k)).collect()
        };
        let s = 1.0 / fan.sqrt();
        self.weight(&r, "weights", &shape, -s, s);
        if bias {
            self.weight(&r, "bias", &[out as usize], -1.0, 1.0);
        }
        self.push(r, out, sp);
    }

    fn conv_transpose(&mut self, x: &Img) {
        let group = if x.c % 2 == 0 && self.rng.chance(0.3) {
            2
        } else {
            1
        };
        let out = group * self.rng.range(1, 3);
        let (mut k, mut st, mut pb, mut pe, mut op, mut sp) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for &d in &x.sp {
            let mut pick = (1, 1, 0, 0, 0, d);
            for _ in 0..8 {
                let (kk, s) = (self.rng.range(1, 3), self.rng.range(1, 2));
                let (b, e, o) = (
                    self.rng.range(0, 1),
                    self.rng.range(0, 1),
                    self.rng.range(0, s - 1),
                );
                let size = (d - 1) * s - b - e + (kk - 1) + o + 1;
                if size >= 1 {
                    pick = (kk, s, b, e, o, size);
                    break;
                }
            }
            k.push(pick.0);
            st.push(pick.1);
            pb.push(pick.2);
            pe.push(pick.3);
            op.push(pick.4);
            sp.push(pick.5);
        }
        let bias = self.rng.chance(0.5);
        let fmt = self.format();
        let r = self.add(
            "ConvTranspose",
            [x.r.clone()],
            vec![
                ("kernel_shape", ints(&k)),
                ("strides", ints(&st)),
                ("pads", ints(&[pb, pe].concat())),
                ("output_padding", ints(&op)),
                ("group", AttrValue::Int(group)),
                ("out_channels", AttrValue::Int(out)),
                ("use_bias", AttrValue::Bool(bias)),
                ("data_format", fmt),
            ],
        );
        let og = (out / group) as usize;
        let shape: Vec<usize> = if self.last {
            usizes(&k).into_iter().chain([og, x.c as usize]).collect()
        } else {
            [x.c as usize, og].into_iter().chain(usizes(&k)).collect()
        };
        let s = 1.0 / (x.c as f32 * k.iter().product::<i64>() as f32).sqrt();
        self.weight(&r, "weights", &shape, -s, s);
        if bias {
            self.weight(&r, "bias", &[out as usize], -1.0, 1.0);
        }
        self.push(r, out, sp);
    }

    fn pool(&mut self, x: &Img) {
        let max = self.rng.chance(0.5);
        let ceil = self.rng.chance(0.5);
        let (mut k, mut st, mut pb, mut pe, mut sp) = (vec![], vec![], vec![], vec![], vec![]);
        for &d in &x.sp {
            let kk = self.rng.range(1, 3.min(d));
            let s = self.rng.range(1, 2);
            let (b, e) = (self.rng.range(0, kk / 2), self.rng.range(0, kk / 2));
            k.push(kk);
            st.push(s);
            pb.push(b);
            pe.push(e);
            sp.push(window_out(d, kk, s, 1, b, e, ceil));
        }
        let include = self.rng.chance(0.5);
        let fmt = self.format();
        let r = self.add(
            "Pool",
            [x.r.clone()],
            vec![
                (
                    "pooling_type",
                    AttrValue::Str(if max { "MAX" } else { "AVG" }.into()),
                ),
                ("kernel_shape", ints(&k)),
                ("strides", ints(&st)),
                ("pads", ints(&[pb, pe].concat())),
                ("ceil_mode", AttrValue::Bool(ceil)),
                ("count_include_pad", AttrValue::Bool(include)),
                ("data_format", fmt),
            ],
        );
        self.push(r, x.c, sp);
    }

    fn global_pool(&mut self, x: &Img) {
        let keep = self.rng.chance(0.6);
        let max = self.rng.chance(0.5);
        let fmt = self.format();
        let r = self.add(
            "GlobalPool",
            [x.r.clone()],
            vec![
                (
                    "pooling_type",
                    AttrValue::Str(if max { "MAX" } else { "AVG" }.into()),
                ),
                ("keepdims", AttrValue::Bool(keep)),
                ("data_format", fmt),
            ],
        );
        if keep {
            self.push(r, x.c, vec![1; x.sp.len()]);
        } else {
            self.dense_output(r, x.c);
        }
    }

    fn batch_norm(&mut self, x: &Img) {
        let axis = self.c_axis(x.sp.len() + 2) as i64;
        let r = self.add(
            "BatchNorm",
            [x.r.clone()],
            vec![("axis", AttrValue::Int(axis))],
        );
        let c = [x.c as usize];
        self.weight(&r, "mean", &c, -0.5, 0.5);
        self.weight(&r, "var", &c, 0.5, 1.5);
        self.weight(&r, "scale", &c, 0.5, 1.5);
        self.weight(&r, "bias", &c, -0.5, 0.5);
        self.push(r, x.c, x.sp.clone());
    }

    fn unary(&mut self, x: &Img) {
        let op = ["Relu", "Sigmoid", "Tanh"][self.rng.range(0, 2) as usize];
        let r = self.add(op, [x.r.clone()], vec![]);
        self.push(r, x.c, x.sp.clone());
    }

    /// Add/Sub/Mul with a broadcast constant, or with another image of the same shape.
    fn binary(&mut self, x: &Img) {
        let op = ["Add", "Sub", "Mul"][self.rng.range(0, 2) as usize];
        let rank = x.sp.len() + 2;
        let dims = self.dims(x);
        let other = match self.rng.range(0, 4) {
            0 => {
                // per channel: [C] channels_last, [C, 1, ...] channels_first
                let shape = if self.last {
                    vec![x.c]
                } else {
                    [x.c].into_iter().chain(vec![1; rank - 2]).collect()
                };
                self.constant(&shape)
            }
            1 => self.constant(&dims[1..]),
            2 => {
                let scalar: &[i64] = if self.rng.chance(0.5) { &[] } else { &[1] };
                self.constant(scalar)
            }
            3 => {
                let mut shape = dims.clone();
                shape[0] = 1;
                shape[self.sp_axis(0)] = 1;
                self.constant(&shape)
            }
            _ => match self
                .imgs
                .iter()
                .rev()
                .find(|y| y.c == x.c && y.sp == x.sp && y.r != x.r)
            {
                Some(y) => y.r.clone(),
                None => self.add("Relu", [x.r.clone()], vec![]),
            },
        };
        let inputs = if self.rng.chance(0.5) {
            [x.r.clone(), other]
        } else {
            [other, x.r.clone()]
        };
        let r = self.add(op, inputs, vec![]);
        self.push(r, x.c, x.sp.clone());
    }

    fn concat(&mut self, x: &Img) {
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
    fn flatten_dense(&mut self, x: &Img) {
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
    fn reshape_merge(&mut self, x: &Img) {
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
    fn reshape_split(&mut self, x: &Img) {
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

    fn transpose_spatial(&mut self, x: &Img) {
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
    fn transpose_round_trip(&mut self, x: &Img) {
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

    fn softmax(&mut self, x: &Img) {
        let rank = x.sp.len() as i64 + 2;
        let axis = if self.rng.chance(0.5) {
            self.c_axis(rank as usize) as i64
        } else {
            self.rng.range(-rank, rank - 1)
        };
        let op = if self.rng.chance(0.8) {
            "Softmax"
        } else {
            "LogSoftmax"
        };
        let r = self.add(op, [x.r.clone()], vec![("axis", AttrValue::Int(axis))]);
        self.push(r, x.c, x.sp.clone());
    }

    fn pad(&mut self, x: &Img) {
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

    fn resize(&mut self, x: &Img) {
        let linear = self.rng.chance(0.5);
        let ctm = ["half_pixel", "asymmetric", "align_corners"][self.rng.range(0, 2) as usize];
        let fmt = self.format();
        let mut attrs = vec![
            (
                "mode",
                AttrValue::Str(if linear { "linear" } else { "nearest" }.into()),
            ),
            ("coordinate_transformation_mode", AttrValue::Str(ctm.into())),
            ("nearest_mode", AttrValue::Str("floor".into())),
            ("data_format", fmt),
        ];
        let sp: Vec<i64> = if self.rng.chance(0.5) {
            attrs.push(("scales", AttrValue::Floats(vec![2.0; x.sp.len()])));
            x.sp.iter().map(|d| d * 2).collect()
        } else {
            let sizes: Vec<i64> =
                x.sp.iter()
                    .map(|&d| d + self.rng.range(-1, 2).max(1 - d))
                    .collect();
            attrs.push(("sizes", ints(&sizes)));
            sizes
        };
        let r = self.add("Resize", [x.r.clone()], attrs);
        self.push(r, x.c, sp);
    }

    fn depth_space(&mut self, x: &Img) {
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

    fn split(&mut self, x: &Img) {
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

    fn reduce(&mut self, x: &Img) {
        let rank = x.sp.len() + 2;
        let op = ["ReduceMean", "ReduceMax", "ReduceSum"][self.rng.range(0, 2) as usize];
        match self.rng.range(0, 3) {
            0 => {
                let axes: Vec<i64> = (0..x.sp.len()).map(|i| self.sp_axis(i) as i64).collect();
                let r = self.add(op, [x.r.clone()], vec![("axes", ints(&axes))]);
                self.push(r, x.c, vec![1; x.sp.len()]);
            }
            1 => {
                let axis = self.c_axis(rank) as i64;
                let r = self.add(op, [x.r.clone()], vec![("axes", ints(&[axis]))]);
                self.push(r, 1, x.sp.clone());
            }
            2 => {
                let axis = self.c_axis(rank) as i64;
                let r = self.add(
                    op,
                    [x.r.clone()],
                    vec![
                        ("axes", ints(&[axis])),
                        ("keepdims", AttrValue::Bool(false)),
                    ],
                );
                self.output(r);
            }
            _ => {
                // ArgMax over channels or a spatial axis, an int64 output.
                let axis = if self.rng.chance(0.5) {
                    self.c_axis(rank)
                } else {
                    self.sp_axis(0)
                };
                let keep = self.rng.chance(0.5);
                let r = self.add(
                    "ArgMax",
                    [x.r.clone()],
                    vec![
                        ("axis", AttrValue::Int(axis as i64)),
                        ("keepdims", AttrValue::Bool(keep)),
                    ],
                );
                self.output(r);
            }
        }
    }

    /// FullyConnected over the last axis of an image: channels in channels_last, the last
    /// spatial axis in channels_first.
    fn dense_image(&mut self, x: &Img) {
        let units = self.rng.range(1, 4);
        let features = *self.dims(x).last().unwrap();
        let r = self.add(
            "FullyConnected",
            [x.r.clone()],
            vec![("units", AttrValue::Int(units))],
        );
        let s = 1.0 / (features as f32).sqrt();
        self.weight(&r, "weights", &[features as usize, units as usize], -s, s);
        if self.last {
            self.push(r, units, x.sp.clone());
        } else {
            let mut sp = x.sp.clone();
            *sp.last_mut().unwrap() = units;
            self.push(r, x.c, sp);
        }
    }

    fn layer_norm(&mut self, x: &Img) {
        let dims = self.dims(x);
        let rank = dims.len();
        let axes: Vec<usize> = if self.rng.chance(0.5) {
            vec![self.c_axis(rank)]
        } else {
            (1..rank).collect()
        };
        let r = self.add(
            "LayerNorm",
            [x.r.clone()],
            vec![(
                "axes",
                AttrValue::Ints(axes.iter().map(|&a| a as i64).collect()),
            )],
        );
        let shape: Vec<usize> = axes.iter().map(|&a| dims[a] as usize).collect();
        self.weight(&r, "scale", &shape, 0.5, 1.5);
        self.weight(&r, "bias", &shape, -0.5, 0.5);
        self.push(r, x.c, x.sp.clone());
    }

    fn channel_norm(&mut self, x: &Img) {
        let axis = AttrValue::Int(self.c_axis(x.sp.len() + 2) as i64);
        let r = match self.rng.range(0, 2) {
            0 => self.add(
                "LRN",
                [x.r.clone()],
                vec![("size", AttrValue::Int(3)), ("axis", axis)],
            ),
            1 => {
                let r = self.add("InstanceNorm", [x.r.clone()], vec![("axis", axis)]);
                self.weight(&r, "scale", &[x.c as usize], 0.5, 1.5);
                self.weight(&r, "bias", &[x.c as usize], -0.5, 0.5);
                r
            }
            _ => {
                let r = self.add("PRelu", [x.r.clone()], vec![]);
                let shape: Vec<usize> = if self.last {
                    vec![x.c as usize]
                } else {
                    [x.c as usize]
                        .into_iter()
                        .chain(vec![1; x.sp.len()])
                        .collect()
                };
                self.weight(&r, "slope", &shape, -0.5, 0.5);
                r
            }
        };
        self.push(r, x.c, x.sp.clone());
    }

    fn slice(&mut self, x: &Img) {
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
    fn gather(&mut self, x: &Img) {
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
    fn squeeze_dense(&mut self, x: &Img) {
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

    fn tile_or_expand(&mut self, x: &Img) {
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

    fn step(&mut self) {
        let x = if self.rng.chance(0.7) {
            self.imgs.last().unwrap().clone()
        } else {
            let i = self.rng.range(0, self.imgs.len() as i64 - 1) as usize;
            self.imgs[i].clone()
        };
        // Keep tensors small.
        if x.c * x.sp.iter().product::<i64>() > 1500 {
            return self.pool_down(&x);
        }
        match self.rng.range(0, 27) {
            0..=3 => self.conv(&x),
            4 => self.conv_transpose(&x),
            5 | 6 => self.pool(&x),
            7 => self.global_pool(&x),
            8 => self.batch_norm(&x),
            9 => self.unary(&x),
            10 | 11 => self.binary(&x),
            12 => self.concat(&x),
            13 => self.flatten_dense(&x),
            14 => self.reshape_merge(&x),
            15 => self.reshape_split(&x),
            16 => self.transpose_spatial(&x),
            17 => self.transpose_round_trip(&x),
            18 => self.softmax(&x),
            19 => self.pad(&x),
            20 => self.resize(&x),
            21 => self.depth_space(&x),
            22 => self.split(&x),
            23 => self.reduce(&x),
            24 => self.layer_norm(&x),
            25 => self.channel_norm(&x),
            26 => self.slice(&x),
            _ => match self.rng.range(0, 3) {
                0 => self.gather(&x),
                1 => self.squeeze_dense(&x),
                2 => self.dense_image(&x),
                _ => self.tile_or_expand(&x),
            },
        }
    }

    fn pool_down(&mut self, x: &Img) {
        let fmt = self.format();
        let k = vec![2; x.sp.len()];
        let r = self.add(
            "Pool",
            [x.r.clone()],
            vec![
                ("kernel_shape", ints(&k)),
                ("strides", ints(&k)),
                ("ceil_mode", AttrValue::Bool(true)),
                ("data_format", fmt),
            ],
        );
        let sp =
            x.sp.iter()
                .map(|&d| window_out(d, 2, 2, 1, 0, 0, true))
                .collect();
        self.push(r, x.c, sp);
    }
}

/// A random graph in channels_last (`last`) or channels_first layout, with its weights and the
/// batch size to feed.
fn random_graph(seed: u64, last: bool) -> (Graph, MemoryWeights, usize) {
    let mut b = Builder::new(seed, last);
    b.n = b.rng.range(1, 2);
    let rank = match b.rng.range(0, 9) {
        0 => 3,
        1 => 5,
        _ => 4,
    };
    let unknown = b.rng.chance(0.3);
    let x = b.input(rank, unknown);
    b.imgs.push(x.clone());
    if b.rng.chance(0.15) {
        // a second input of the same shape, joined in
        let mut shape = b.dims(&x);
        if unknown {
            shape[0] = -1;
        }
        let name = "input_1".to_string();
        let r =
            b.g.add(
                Node::new(name.clone(), "DataInput")
                    .with_attr("dtype", AttrValue::Type(DType::F32))
                    .with_attr("shape", AttrValue::Shape(shape)),
            )
            .unwrap();
        b.g.inputs.push(name);
        b.push(r, x.c, x.sp.clone());
    }
    let steps = b.rng.range(2, 7);
    for _ in 0..steps {
        b.step();
    }
    let last_img = b.imgs.last().unwrap().r.clone();
    b.output(last_img);
    if b.rng.chance(0.3) {
        let i = b.rng.range(0, b.imgs.len() as i64 - 1) as usize;
        let r = b.imgs[i].r.clone();
        b.output(r);
    }
    b.g.outputs = b.outputs.clone();
    let n = b.n as usize;
    (b.g, b.w, n)
}

// ---------------------------------------------------------------------------------------------
// Running and comparing.

fn transpose(a: &ArrayD<f32>, perm: &[usize]) -> ArrayD<f32> {
    a.view()
        .permuted_axes(IxDyn(perm))
        .as_standard_layout()
        .into_owned()
}

fn random_inputs(g: &Graph, batch: usize, seed: u64) -> Vec<(String, ArrayD<f32>)> {
    let mut rng = Rng(seed ^ 0xABCD);
    g.inputs
        .iter()
        .map(|name| {
            let node = g.node(name).unwrap();
            let Some(AttrValue::Shape(shape)) = node.attrs.get("shape") else {
                panic!("input without shape");
            };
            let dims: Vec<usize> = shape
                .iter()
                .map(|&d| if d < 0 { batch } else { d as usize })
                .collect();
            let n = dims.iter().product();
            let v = (0..n).map(|_| rng.uniform()).collect();
            (
                name.clone(),
                ArrayD::from_shape_vec(IxDyn(&dims), v).unwrap(),
            )
        })
        .collect()
}

fn run(g: &Graph, w: &dyn WeightReader, feeds: &[(String, ArrayD<f32>)]) -> Vec<ArrayD<f32>> {
    let feeds: Vec<(String, Value)> = feeds
        .iter()
        .map(|(n, a)| (n.clone(), Value::F32(a.clone())))
        .collect();
    Interpreter::new(g, w)
        .run(&feeds)
        .unwrap_or_else(|e| panic!("interpreter failed: {e:#}"))
        .iter()
        .map(|v| v.to_f32())
        .collect()
}

/// Max of |a - b| / max(1, |a|).
fn max_error(reference: &ArrayD<f32>, got: &ArrayD<f32>) -> f32 {
    assert_eq!(reference.shape(), got.shape(), "output shapes differ");
    reference
        .iter()
        .zip(got)
        .map(|(&a, &b)| {
            if a.is_nan() && b.is_nan() {
                0.0
            } else {
                (a - b).abs() / a.abs().max(1.0)
            }
        })
        .fold(0.0, f32::max)
}

/// Runs `g` and its conversion on the same inputs (transposed as reported) and returns the
/// largest relative error over all outputs (transposed back as reported).
fn compare(
    g: &Graph,
    w: &dyn WeightReader,
    res: &LayoutResult,
    feeds: &[(String, ArrayD<f32>)],
) -> f32 {
    let expected = run(g, w, feeds);
    let new_feeds: Vec<(String, ArrayD<f32>)> = feeds
        .iter()
        .zip(&res.input_perms)
        .map(|((n, a), p)| (n.clone(), p.as_ref().map_or(a.clone(), |p| transpose(a, p))))
        .collect();
    let got = run(&res.graph, &res.weights, &new_feeds);
    assert_eq!(expected.len(), got.len());
    expected
        .iter()
        .zip(&got)
        .zip(&res.output_perms)
        .map(|((e, o), p)| {
            let e = p.as_ref().map_or(e.clone(), |p| transpose(e, p));
            max_error(&e, o)
        })
        .fold(0.0, f32::max)
}

fn transposes(g: &Graph) -> usize {
    g.nodes.iter().filter(|n| n.op == "Transpose").count()
}

fn describe(g: &Graph) -> String {
    g.nodes
        .iter()
        .map(|n| {
            let ins: Vec<String> = n.inputs.iter().map(|r| r.to_string()).collect();
            let attrs: Vec<String> = n.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "  {} = {}({}) {}  -> {}",
                n.name,
                n.op,
                ins.join(", "),
                attrs.join(" "),
                n.outputs
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn random_graphs_convert_exactly_both_ways() {
    const GRAPHS: u64 = 1000;
    let mut checked = 0;
    let mut inserted = 0;
    let mut round_trips = 0;
    for seed in 0..GRAPHS {
        for last in [false, true] {
            let seed = seed * 2 + last as u64;
            let (mut g, w, batch) = random_graph(seed, last);
            validate::check(&mut g, Some(&w))
                .unwrap_or_else(|e| panic!("seed {seed}: generator made an invalid graph: {e:#}"));
            let target = if last {
                Target::ChannelsFirst
            } else {
                Target::ChannelsLast
            };
            let keep_io = seed % 3 == 0;
            let res = convert_layout(&g, &w, target, keep_io)
                .unwrap_or_else(|e| panic!("seed {seed}: {e:#}\n{}", describe(&g)));
            let mut check = res.graph.clone();
            validate::check(&mut check, Some(&res.weights))
                .unwrap_or_else(|e| panic!("seed {seed}: converted graph invalid: {e:#}"));
            if keep_io {
                assert!(res
                    .input_perms
                    .iter()
                    .chain(&res.output_perms)
                    .all(Option::is_none));
            }
            let feeds = random_inputs(&g, batch, seed);
            let err = compare(&g, &w, &res, &feeds);
            assert!(
                err <= 1e-5,
                "seed {seed} ({} → {}, keep_io {keep_io}): error {err}\nsource:\n{}\nconverted:\n{}\nlog:\n  {}",
                if last { "channels_last" } else { "channels_first" },
                target.data_format(),
                describe(&g),
                describe(&res.graph),
                res.log.join("\n  ")
            );
            inserted += transposes(&res.graph).saturating_sub(transposes(&g));
            checked += 1;
            if seed % 10 == 0 {
                // Converting back (weights transformed twice, lazily) gives the source again.
                let back_target = if last {
                    Target::ChannelsLast
                } else {
                    Target::ChannelsFirst
                };
                let back = convert_layout(&res.graph, &res.weights, back_target, true).unwrap();
                let feeds2: Vec<(String, ArrayD<f32>)> = feeds
                    .iter()
                    .zip(&res.input_perms)
                    .map(|((n, a), p)| {
                        (n.clone(), p.as_ref().map_or(a.clone(), |p| transpose(a, p)))
                    })
                    .collect();
                let err = compare(&res.graph, &res.weights, &back, &feeds2);
                assert!(err <= 1e-5, "seed {seed}: round trip error {err}");
                round_trips += 1;
            }
        }
    }
    eprintln!(
        "{checked} random graphs converted exactly ({round_trips} also converted back); \
         {inserted} Transposes inserted in all"
    );
    assert!(checked >= 1000);
}

// ---------------------------------------------------------------------------------------------
// Unit tests of the rewrites.

/// Builds a graph from (name, op, inputs, attrs) rows; the first row must be the input.
fn graph(rows: Vec<Node>, outputs: &[&str]) -> Graph {
    let mut g = Graph::default();
    for n in rows {
        if n.op == "DataInput" {
            g.inputs.push(n.name.clone());
        }
        g.add(n).unwrap();
    }
    g.outputs = outputs.iter().map(|o| TensorRef::parse(o)).collect();
    g
}

fn input(name: &str, shape: &[i64]) -> Node {
    Node::new(name, "DataInput")
        .with_attr("dtype", AttrValue::Type(DType::F32))
        .with_attr("shape", AttrValue::Shape(shape.to_vec()))
}

fn op(name: &str, op: &str, inputs: &[&str]) -> Node {
    Node::new(name, op).with_inputs(inputs.iter().map(|i| TensorRef::parse(i)))
}

fn conv_cl(name: &str, x: &str, cin: usize, out: usize, w: &mut MemoryWeights) -> Node {
    let mut rng = Rng(name.len() as u64);
    let v: Vec<f32> = (0..9 * cin * out).map(|_| rng.uniform()).collect();
    w.insert(
        name,
        "weights",
        Tensor::from_f32(vec![3, 3, cin, out], &v).unwrap(),
    );
    op(name, "Conv", &[x])
        .with_attr("kernel_shape", ints(&[3, 3]))
        .with_attr("pads", ints(&[1, 0, 1, 2]))
        .with_attr("out_channels", AttrValue::Int(out as i64))
        .with_attr("data_format", AttrValue::Str("channels_last".into()))
}

fn assert_same(g: &Graph, w: &dyn WeightReader, res: &LayoutResult) {
    let feeds = random_inputs(g, 2, 7);
    let err = compare(g, w, res, &feeds);
    assert!(err <= 1e-5, "error {err}\n{}", describe(&res.graph));
}

fn logged(res: &LayoutResult, text: &str) -> bool {
    res.log.iter().any(|l| l.contains(text))
}

#[test]
fn conv_switches_format_and_permutes_kernel_lazily() {
    let mut w = MemoryWeights::default();
    let g = graph(
        vec![
            input("x", &[-1, 6, 5, 3]),
            conv_cl("conv1", "x", 3, 4, &mut w),
        ],
        &["conv1"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, false).unwrap();
    assert!(
        logged(
            &res,
            "conv1: data_format channels_last→channels_first, weights [*k,in,out]→[out,in,*k]"
        ),
        "{:?}",
        res.log
    );
    assert_eq!(res.input_perms, vec![Some(vec![0, 3, 1, 2])]);
    assert_eq!(res.output_perms, vec![Some(vec![0, 3, 1, 2])]);
    assert_eq!(transposes(&res.graph), 0);
    let x = res.graph.node("x").unwrap();
    assert_eq!(x.attrs["shape"], AttrValue::Shape(vec![-1, 3, 6, 5]));
    let info = res.weights.info("conv1", "weights").unwrap();
    assert_eq!(info.shape, vec![4, 3, 3, 3]);
    let t = res.weights.read("conv1", "weights").unwrap();
    assert_eq!(t.info, info);
    // [out, in, kh, kw] element (o, i, a, b) is the source's (a, b, i, o).
    let src = w.read("conv1", "weights").unwrap().to_f32();
    let got = t.to_f32();
    let (o, i, a, b) = (3, 1, 2, 0);
    assert_eq!(
        got[((o * 3 + i) * 3 + a) * 3 + b],
        src[((a * 3 + b) * 3 + i) * 4 + o]
    );
    assert_eq!(
        res.weights.keys(),
        vec![("conv1".to_string(), "weights".to_string())]
    );
    assert_same(&g, &w, &res);
}

#[test]
fn keep_io_inserts_transposes_only_at_the_boundary() {
    let mut w = MemoryWeights::default();
    let g = graph(
        vec![
            input("x", &[2, 6, 5, 3]),
            conv_cl("c1", "x", 3, 4, &mut w),
            op("r", "Relu", &["c1"]),
            conv_cl("c2", "r", 4, 2, &mut w),
        ],
        &["c2"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, true).unwrap();
    assert_eq!(transposes(&res.graph), 2, "{}", describe(&res.graph));
    assert_eq!(res.input_perms, vec![None]);
    assert_eq!(res.output_perms, vec![None]);
    assert_eq!(
        res.graph.node("x").unwrap().attrs["shape"],
        AttrValue::Shape(vec![2, 6, 5, 3])
    );
    assert_same(&g, &w, &res);
}

#[test]
fn inverse_transpose_pairs_cancel() {
    // NHWC input transposed to NCHW for a channels_first conv and back: converting to
    // channels_last leaves no Transpose at all.
    let mut w = MemoryWeights::default();
    let v: Vec<f32> = (0..2 * 3 * 9).map(|i| i as f32 / 50.0).collect();
    w.insert(
        "conv",
        "weights",
        Tensor::from_f32(vec![2, 3, 3, 3], &v).unwrap(),
    );
    let g = graph(
        vec![
            input("x", &[1, 5, 5, 3]),
            op("to_cf", "Transpose", &["x"]).with_attr("perm", ints(&[0, 3, 1, 2])),
            op("conv", "Conv", &["to_cf"])
                .with_attr("kernel_shape", ints(&[3, 3]))
                .with_attr("out_channels", AttrValue::Int(2)),
            op("to_cl", "Transpose", &["conv"]).with_attr("perm", ints(&[0, 2, 3, 1])),
            op("relu", "Relu", &["to_cl"]),
        ],
        &["relu"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsLast, false).unwrap();
    assert_eq!(transposes(&res.graph), 0, "{}", describe(&res.graph));
    assert_eq!(res.input_perms, vec![None]);
    assert_eq!(res.output_perms, vec![None]);
    assert!(logged(&res, "to_cf: Transpose [0, 3, 1, 2] absorbed"));
    assert_same(&g, &w, &res);
}

#[test]
fn flatten_into_dense_permutes_weight_rows() {
    let mut w = MemoryWeights::default();
    let mut rng = Rng(3);
    let fc: Vec<f32> = (0..4 * 4 * 2 * 3).map(|_| rng.uniform()).collect();
    w.insert(
        "fc1",
        "weights",
        Tensor::from_f32(vec![32, 3], &fc).unwrap(),
    );
    let g = graph(
        vec![
            input("x", &[1, 4, 4, 3]),
            conv_cl("conv", "x", 3, 2, &mut w),
            op("flatten_1", "Flatten", &["conv"]),
            op("fc1", "FullyConnected", &["flatten_1"]).with_attr("units", AttrValue::Int(3)),
        ],
        &["fc1"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, false).unwrap();
    assert!(
        logged(&res, "flatten_1→fc1: FullyConnected weight rows permuted"),
        "{:?}",
        res.log
    );
    assert_eq!(transposes(&res.graph), 0);
    assert_eq!(res.output_perms, vec![None]);
    assert_same(&g, &w, &res);

    // A flattening Reshape does the same, also with an unknown batch.
    let mut g2 = g.clone();
    g2.nodes[0] = input("x", &[-1, 4, 4, 3]);
    let i = g2.nodes.iter().position(|n| n.name == "flatten_1").unwrap();
    g2.nodes[i] = op("flatten_1", "Reshape", &["conv"]).with_attr("shape", ints(&[0, -1]));
    let res = convert_layout(&g2, &w, Target::ChannelsFirst, false).unwrap();
    assert!(logged(
        &res,
        "flatten_1→fc1: FullyConnected weight rows permuted"
    ));
    assert_eq!(transposes(&res.graph), 0);
    assert_same(&g2, &w, &res);
}

#[test]
fn flatten_with_other_consumers_gets_a_transpose() {
    let mut w = MemoryWeights::default();
    let g = graph(
        vec![
            input("x", &[1, 4, 4, 3]),
            conv_cl("conv", "x", 3, 2, &mut w),
            op("flat", "Flatten", &["conv"]),
            op("soft", "Softmax", &["flat"]),
        ],
        &["soft"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, false).unwrap();
    assert!(logged(&res, "flat: Transpose inserted"), "{:?}", res.log);
    assert_eq!(transposes(&res.graph), 1);
    assert_same(&g, &w, &res);
}

#[test]
fn axis_attributes_are_renamed() {
    let mut w = MemoryWeights::default();
    let g = graph(
        vec![
            input("x", &[1, 5, 5, 3]),
            conv_cl("a", "x", 3, 2, &mut w),
            conv_cl("b", "x", 3, 4, &mut w),
            op("concat", "Concat", &["a", "b"]).with_attr("axis", AttrValue::Int(3)),
            op("soft", "Softmax", &["concat"]).with_attr("axis", AttrValue::Int(-1)),
            op("pad", "Pad", &["soft"]).with_attr("pads", ints(&[0, 1, 2, 0, 0, 0, 1, 1])),
            op("mean", "ReduceMean", &["pad"])
                .with_attr("axes", ints(&[1, 2]))
                .with_attr("keepdims", AttrValue::Bool(false)),
        ],
        &["mean"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, false).unwrap();
    assert!(logged(&res, "concat: axis 3→1"), "{:?}", res.log);
    assert!(logged(&res, "soft: axis 3→1"));
    assert!(logged(
        &res,
        "pad: pads [0, 1, 2, 0, 0, 0, 1, 1]→[0, 0, 1, 2, 0, 1, 0, 1]"
    ));
    assert!(logged(&res, "mean: axes [1, 2]→[2, 3]"));
    assert_eq!(transposes(&res.graph), 0);
    // ReduceMean without keepdims leaves [N, C]: not an image, so nothing to report.
    assert_eq!(res.output_perms, vec![None]);
    assert_same(&g, &w, &res);
}

#[test]
fn reshape_is_rewritten_or_gets_a_transpose() {
    let mut w = MemoryWeights::default();
    let g = graph(
        vec![
            input("x", &[2, 4, 6, 3]),
            conv_cl("conv", "x", 3, 2, &mut w),
            // [N, H, W, C] → [N, H·W, C]: only spatial dims merge.
            op("reshape_1", "Reshape", &["conv"]).with_attr("shape", ints(&[0, -1, 2])),
            op("s1", "Softmax", &["reshape_1"]).with_attr("axis", AttrValue::Int(2)),
            // [N, H, W, C] → [N, H, W·C]: mixes the channels in.
            op("reshape_2", "Reshape", &["conv"]).with_attr("shape", ints(&[0, 4, -1])),
        ],
        &["s1", "reshape_2"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, false).unwrap();
    assert!(
        logged(
            &res,
            "reshape_1: shape → [2, 2, 24], output permuted [0, 2, 1]"
        ),
        "{:?}",
        res.log
    );
    assert!(logged(&res, "s1: axis 2→1"));
    assert!(logged(&res, "reshape_2: Transpose inserted"));
    assert_eq!(transposes(&res.graph), 1, "{}", describe(&res.graph));
    // s1 is [N, L, C]: a 1-d channels_last image, reported in channels_first.
    assert_eq!(res.output_perms, vec![Some(vec![0, 2, 1]), None]);
    assert_same(&g, &w, &res);
}

#[test]
fn broadcast_constants_are_permuted() {
    let mut w = MemoryWeights::default();
    w.insert(
        "bias",
        "value",
        Tensor::from_f32(vec![2], &[0.5, -1.0]).unwrap(),
    );
    w.insert("one", "value", Tensor::from_f32(vec![1], &[2.0]).unwrap());
    let constant = |name: &str, shape: &[i64]| {
        Node::new(name, "Constant")
            .with_attr("dtype", AttrValue::Type(DType::F32))
            .with_attr("shape", AttrValue::Shape(shape.to_vec()))
    };
    let g = graph(
        vec![
            input("x", &[1, 4, 4, 3]),
            conv_cl("conv", "x", 3, 2, &mut w),
            constant("bias", &[2]),
            constant("one", &[1]),
            op("add", "Add", &["conv", "bias"]),
            op("mul", "Mul", &["one", "add"]),
            op("bias_user", "Relu", &["bias"]),
            op("other", "Sub", &["conv", "bias_user"]),
        ],
        &["mul", "other"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, false).unwrap();
    assert!(
        logged(
            &res,
            "bias: constant value [2] → [1, 2, 1, 1] as 'bias_permuted'"
        ),
        "{:?}",
        res.log
    );
    assert_eq!(
        res.weights.info("bias_permuted", "value").unwrap().shape,
        vec![1, 2, 1, 1]
    );
    assert_eq!(res.weights.info("bias", "value").unwrap().shape, vec![2]);
    assert_eq!(
        res.weights.read("bias_permuted", "value").unwrap().to_f32(),
        vec![0.5, -1.0]
    );
    // The computed [2] operand of `other` is lifted and transposed instead.
    assert_eq!(transposes(&res.graph), 1, "{}", describe(&res.graph));
    assert!(res.graph.node("bias_user_unsqueeze").is_some());
    assert_same(&g, &w, &res);
}

#[test]
fn graphs_already_in_the_target_layout_are_unchanged() {
    let mut tried = 0;
    for seed in 0..40 {
        let (g, w, _) = random_graph(seed, seed % 2 == 1);
        if transposes(&g) > 0 {
            continue; // a source Transpose pair would be cancelled
        }
        tried += 1;
        let target = if seed % 2 == 1 {
            Target::ChannelsLast
        } else {
            Target::ChannelsFirst
        };
        let res = convert_layout(&g, &w, target, false).unwrap();
        assert!(res
            .input_perms
            .iter()
            .chain(&res.output_perms)
            .all(Option::is_none));
        let key = |n: &Node| {
            (
                n.name.clone(),
                n.op.clone(),
                n.inputs.clone(),
                n.attrs.clone(),
            )
        };
        let mut a: Vec<_> = g.nodes.iter().map(key).collect();
        let mut b: Vec<_> = res.graph.nodes.iter().map(key).collect();
        a.sort_by(|x, y| x.0.cmp(&y.0));
        b.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(a, b, "seed {seed}");
        assert_eq!(res.graph.outputs, g.outputs);
    }
    assert!(tried >= 10);
}

#[test]
fn source_transposes_of_graphs_already_in_the_target_layout_stay() {
    // A channels_first graph whose output is a Transpose that looks like a layout switch: it is
    // no image output of a switched graph, so its data keeps the source's order.
    let w = MemoryWeights::default();
    let g = graph(
        vec![
            input("x", &[2, 3, 4]),
            op("t", "Transpose", &["x"]).with_attr("perm", ints(&[0, 2, 1])),
        ],
        &["t"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, false).unwrap();
    assert_eq!(res.output_perms, vec![None]);
    assert_eq!(transposes(&res.graph), 1, "{}", describe(&res.graph));
    assert_same(&g, &w, &res);
}

#[test]
fn errors_name_the_node() {
    let mut w = MemoryWeights::default();
    let mut g = graph(
        vec![
            input("x", &[1, 5, 5, 3]),
            conv_cl("bad_conv", "x", 3, 2, &mut w),
        ],
        &["bad_conv"],
    );
    w.insert(
        "bad_conv",
        "weights",
        Tensor::from_f32(vec![18, 2], &[0.0; 36]).unwrap(),
    );
    let err = convert_layout(&g, &w, Target::ChannelsFirst, false)
        .err()
        .unwrap();
    let text = format!("{err:#}");
    assert!(text.contains("'bad_conv' (Conv)"), "{text}");
    g.outputs.clear();
    let err = convert_layout(&g, &w, Target::ChannelsFirst, false)
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("needs a valid graph"));
}
