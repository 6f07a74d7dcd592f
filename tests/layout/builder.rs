//! Builds random graphs of layout-relevant ops in channels_first or channels_last layout: the
//! builder's state and helpers, the step choosing the next op, and the whole random graph. The
//! ops themselves are in `layers` (conv, pool, norm, dense, activation, elementwise, reduce,
//! resize) and `shape` (reshape, transpose, concat, split, slice, gather, pad, tile).
mod layers;
mod shape;

use crate::common::{ints, usizes, Rng};
use mmdnn::ir::ops::shape_rules::window_out;
use mmdnn::ir::{AttrValue, DType, Graph, Node, TensorRef};
use mmdnn::weights::{MemoryWeights, Tensor};

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
                .map(|&d| window_out(d, 2, 2, 1, 0, 0, true).expect("a window that fits"))
                .collect();
        self.push(r, x.c, sp);
    }
}

/// A random graph in channels_last (`last`) or channels_first layout, with its weights and the
/// batch size to feed.
pub fn random_graph(seed: u64, last: bool) -> (Graph, MemoryWeights, usize) {
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
