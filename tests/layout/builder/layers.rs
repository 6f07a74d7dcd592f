//! Random-graph builder ops that compute on images: conv, pool, norm, dense, activation,
//! elementwise, reduce and resize.
use super::{Builder, Img};
use crate::common::{ints, usizes};
use mmdnn::ir::ops::shape_rules::window_out;
use mmdnn::ir::AttrValue;

impl Builder {
    pub(super) fn conv(&mut self, x: &Img) {
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
                if window_out(d, cand.0, cand.1, cand.2, cand.3, cand.4, false)
                    .is_ok_and(|o| o >= 1)
                {
                    pick = cand;
                    break;
                }
            }
            k.push(pick.0);
            st.push(pick.1);
            dil.push(pick.2);
            pb.push(pick.3);
            pe.push(pick.4);
            sp.push(
                window_out(d, pick.0, pick.1, pick.2, pick.3, pick.4, false)
                    .expect("a window that fits"),
            );
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

    pub(super) fn conv_transpose(&mut self, x: &Img) {
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

    pub(super) fn pool(&mut self, x: &Img) {
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
            sp.push(window_out(d, kk, s, 1, b, e, ceil).expect("a window that fits"));
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

    pub(super) fn global_pool(&mut self, x: &Img) {
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

    pub(super) fn batch_norm(&mut self, x: &Img) {
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

    pub(super) fn unary(&mut self, x: &Img) {
        let op = ["Relu", "Sigmoid", "Tanh"][self.rng.range(0, 2) as usize];
        let r = self.add(op, [x.r.clone()], vec![]);
        self.push(r, x.c, x.sp.clone());
    }

    /// Add/Sub/Mul with a broadcast constant, or with another image of the same shape.
    pub(super) fn binary(&mut self, x: &Img) {
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

    pub(super) fn softmax(&mut self, x: &Img) {
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

    pub(super) fn resize(&mut self, x: &Img) {
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

    pub(super) fn reduce(&mut self, x: &Img) {
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
    pub(super) fn dense_image(&mut self, x: &Img) {
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

    pub(super) fn layer_norm(&mut self, x: &Img) {
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

    pub(super) fn channel_norm(&mut self, x: &Img) {
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
}
