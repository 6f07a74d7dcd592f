//! Lowering of each IR op to PyTorch: a layer in `__init__` for ops with weights (with its
//! state-dict entries), statements in `forward` for all. Layout-sensitive ops must be
//! channels-first (the layout pass runs before). The meaning of every op is the reference
//! interpreter's; where a torch function differs (asymmetric padding, ceil-mode windows that
//! start in the end padding, even LRN sizes, Resize coordinate modes, recurrent gate orders) the
//! code computes the IR's result explicitly.
use super::names::quoted_name;
use super::state::{Entry, Source, View};
use super::{torch_dtype, tuple, Emitter, Helper};
use crate::ir::ops::shape_rules::{norm_axis, spatial_list, split_pads, window_out};
use crate::ir::ops::Attrs;
use crate::ir::{narrow, AttrValue, DType, Node, TensorType};
use crate::weights::TensorInfo;
use anyhow::{anyhow, bail, Context, Result};

/// Emits one node.
pub fn lower(e: &mut Emitter, node: &Node) -> Result<()> {
    let attrs = Attrs::of(node)?;
    let ident = e.idents[&node.name].clone();
    let mut l = L {
        e,
        node,
        a: attrs,
        id: ident,
        noted: false,
    };
    l.op()
}

struct L<'e, 'a> {
    e: &'e mut Emitter<'a>,
    node: &'e Node,
    a: Attrs<'e>,
    /// The node's identifier.
    id: String,
    /// Whether the rename comment has been written to `forward`.
    noted: bool,
}

/// Unary ops that are one torch call.
const UNARY: &[(&str, &str)] = &[
    ("Relu", "F.relu"),
    ("Sigmoid", "torch.sigmoid"),
    ("HardSwish", "F.hardswish"),
    ("SiLU", "F.silu"),
    ("Mish", "F.mish"),
    ("Tanh", "torch.tanh"),
    ("Softplus", "F.softplus"),
    ("Softsign", "F.softsign"),
    ("Exp", "torch.exp"),
    ("Log", "torch.log"),
    ("Sqrt", "torch.sqrt"),
    ("Rsqrt", "torch.rsqrt"),
    ("Reciprocal", "torch.reciprocal"),
    ("Square", "torch.square"),
    ("Abs", "torch.abs"),
    ("Sign", "torch.sign"),
    ("Floor", "torch.floor"),
    ("Ceil", "torch.ceil"),
    ("Round", "torch.round"),
    ("Erf", "torch.erf"),
    ("Sin", "torch.sin"),
    ("Cos", "torch.cos"),
    ("Not", "torch.logical_not"),
];

/// Binary ops that are one torch call.
const BINARY: &[(&str, &str)] = &[
    ("Pow", "torch.pow"),
    ("Maximum", "torch.maximum"),
    ("Minimum", "torch.minimum"),
    ("Equal", "torch.eq"),
    ("Greater", "torch.gt"),
    ("GreaterOrEqual", "torch.ge"),
    ("Less", "torch.lt"),
    ("LessOrEqual", "torch.le"),
    ("And", "torch.logical_and"),
    ("Or", "torch.logical_or"),
    ("Xor", "torch.logical_xor"),
];

impl L<'_, '_> {
    fn op(&mut self) -> Result<()> {
        let op = self.node.op.as_str();
        if let Some((_, f)) = UNARY.iter().find(|(o, _)| *o == op) {
            let f = self.func(f);
            let x = self.x(0)?;
            return self.set(format!("{f}({x})"));
        }
        if let Some((_, f)) = BINARY.iter().find(|(o, _)| *o == op) {
            let (a, b) = (self.x(0)?, self.x(1)?);
            return self.set(format!("{f}({a}, {b})"));
        }
        match op {
            "DataInput" => {
                self.bind(0, self.id.clone());
                Ok(())
            }
            "Constant" => self.constant(),
            "Conv" => self.conv(),
            "ConvTranspose" => self.conv_transpose(),
            "Pool" => self.pool(),
            "GlobalPool" => self.global_pool(),
            "FullyConnected" => self.fully_connected(),
            "MatMul" => {
                let (a, b) = (self.x(0)?, self.x(1)?);
                self.set(format!("torch.matmul({a}, {b})"))
            }
            "Gemm" => self.gemm(),
            "Embedding" => self.embedding(),
            "BatchNorm" => self.batch_norm(),
            "LayerNorm" => self.layer_norm(),
            "GroupNorm" => self.group_norm(),
            "InstanceNorm" => self.instance_norm(),
            "LRN" => self.lrn(),
            "LpNormalize" => {
                let x = self.x(0)?;
                let rank = self.in_ty(0)?.rank();
                let axis = norm_axis(self.a.int("axis")?, rank)?;
                let (p, eps) = (self.a.int("p")?, self.a.float("epsilon")?);
                let f = self.func("F.normalize");
                self.set(format!("{f}({x}, p={p}.0, dim={axis}, eps={})", float(eps)))
            }
            "LeakyRelu" => {
                let f = self.func("F.leaky_relu");
                let x = self.x(0)?;
                self.set(format!("{f}({x}, {})", float(self.a.float("alpha")?)))
            }
            "PRelu" => self.prelu(),
            "Elu" => {
                let f = self.func("F.elu");
                let (x, alpha) = (self.x(0)?, self.a.float("alpha")?);
                self.set(if alpha == 1.0 {
                    format!("{f}({x})")
                } else {
                    format!("{f}({x}, alpha={})", float(alpha))
                })
            }
            "Selu" => {
                let (x, alpha, gamma) =
                    (self.x(0)?, self.a.float("alpha")?, self.a.float("gamma")?);
                if alpha == 1.673_263_2 && gamma == 1.050_701 {
                    let f = self.func("F.selu");
                    self.set(format!("{f}({x})"))
                } else {
                    let f = self.func("F.elu");
                    self.set(format!(
                        "{} * {f}({x}, alpha={})",
                        float(gamma),
                        float(alpha)
                    ))
                }
            }
            "ThresholdedRelu" => {
                let f = self.func("F.threshold");
                let x = self.x(0)?;
                self.set(format!("{f}({x}, {}, 0.0)", float(self.a.float("alpha")?)))
            }
            "HardSigmoid" => {
                let (x, alpha, beta) = (self.x(0)?, self.a.float("alpha")?, self.a.float("beta")?);
                if alpha == 1.0 / 6.0 && beta == 0.5 {
                    let f = self.func("F.hardsigmoid");
                    self.set(format!("{f}({x})"))
                } else {
                    self.set(format!(
                        "torch.clamp({x} * {} + {}, 0.0, 1.0)",
                        float(alpha),
                        float(beta)
                    ))
                }
            }
            "Gelu" => {
                let f = self.func("F.gelu");
                let x = self.x(0)?;
                self.set(match self.a.str("approximate")?.as_str() {
                    "tanh" => format!("{f}({x}, approximate=\"tanh\")"),
                    _ => format!("{f}({x})"),
                })
            }
            "Clip" => self.clip(),
            "Softmax" | "LogSoftmax" => {
                let x = self.x(0)?;
                let axis = norm_axis(self.a.int("axis")?, self.in_ty(0)?.rank())?;
                let f = self.func(if op == "Softmax" {
                    "F.softmax"
                } else {
                    "F.log_softmax"
                });
                self.set(format!("{f}({x}, dim={axis})"))
            }
            "Neg" => {
                let x = self.x(0)?;
                self.set(format!("-{x}"))
            }
            "Identity" => {
                let x = self.x(0)?;
                self.bind(0, x);
                Ok(())
            }
            "Add" | "Sub" | "Mul" => {
                let sym = match op {
                    "Add" => "+",
                    "Sub" => "-",
                    _ => "*",
                };
                let (a, b) = (self.x(0)?, self.x(1)?);
                self.set(format!("{a} {sym} {b}"))
            }
            "Div" => {
                let (a, b) = (self.x(0)?, self.x(1)?);
                if self.in_ty(0)?.dtype.is_float() {
                    self.set(format!("{a} / {b}"))
                } else {
                    self.set(format!("torch.div({a}, {b}, rounding_mode=\"trunc\")"))
                }
            }
            "Mod" => {
                let (a, b) = (self.x(0)?, self.x(1)?);
                // remainder: the divisor's sign; fmod: the dividend's.
                let f = if self.a.int("fmod")? == 1 {
                    "torch.fmod"
                } else {
                    "torch.remainder"
                };
                self.set(format!("{f}({a}, {b})"))
            }
            "Where" => {
                let (c, a, b) = (self.x(0)?, self.x(1)?, self.x(2)?);
                self.set(format!("torch.where({c}, {a}, {b})"))
            }
            "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL2" => {
                self.reduce()
            }
            "ArgMax" | "ArgMin" => self.arg(),
            "Reshape" => self.reshape(),
            "Flatten" => self.flatten(),
            "Transpose" => {
                let x = self.x(0)?;
                let rank = self.in_ty(0)?.rank();
                let perm = self
                    .a
                    .ints("perm")?
                    .iter()
                    .map(|&p| norm_axis(p, rank).map(|a| a.to_string()))
                    .collect::<Result<Vec<_>>>()?;
                self.set(format!("{x}.permute({})", perm.join(", ")))
            }
            "Squeeze" => self.squeeze(),
            "Unsqueeze" => {
                let x = self.x(0)?;
                let rank = self.out_ty(0)?.rank();
                let mut axes = self
                    .a
                    .ints("axes")?
                    .iter()
                    .map(|&v| norm_axis(v, rank))
                    .collect::<Result<Vec<_>>>()?;
                axes.sort_unstable();
                let chain: String = axes.iter().map(|a| format!(".unsqueeze({a})")).collect();
                self.set(format!("{x}{chain}"))
            }
            "Concat" => {
                let rank = self.in_ty(0)?.rank();
                let axis = norm_axis(self.a.int("axis")?, rank)?;
                let xs = (0..self.node.inputs.len())
                    .map(|i| self.x(i))
                    .collect::<Result<Vec<_>>>()?;
                self.set(format!("torch.cat([{}], dim={axis})", xs.join(", ")))
            }
            "Split" => self.split(),
            "Slice" => self.slice(),
            "Pad" => self.pad(),
            "Tile" => {
                let x = self.x(0)?;
                let reps = self.a.ints("repeats")?;
                if reps.is_empty() {
                    self.bind(0, x);
                    return Ok(());
                }
                self.set(format!("{x}.repeat{}", tuple(&reps)))
            }
            "Expand" => self.expand(),
            "Gather" => self.gather(),
            "ScatterND" => self.scatter_nd(),
            "Shape" => {
                let x = self.x(0)?;
                self.set(format!("torch.tensor({x}.shape, dtype=torch.int64)"))
            }
            "Cast" => {
                let x = self.x(0)?;
                let dt = self.a.dtype("to")?;
                let to = torch_dtype(dt)?;
                // Out-of-range float8 values are made explicit rather than left to torch's
                // conversion: saturating clamps (NaN stays NaN); otherwise what rounds past
                // the largest finite value becomes NaN, or infinity for e5m2.
                if !dt.is_minifloat() {
                    return self.set(format!("{x}.to({to})"));
                }
                let y = format!("{x}.float()");
                let e = if self.a.bool("saturate")? {
                    let max = narrow::max(dt);
                    format!("{y}.clamp({:?}, {max:?})", -max)
                } else {
                    let (tie, stays) = narrow::overflow_tie(dt);
                    let cmp = if stays { "<=" } else { "<" };
                    let over = if dt == DType::F8E5M2 {
                        format!("{y}.sign() * float(\"inf\")")
                    } else {
                        format!("{y} * float(\"nan\")")
                    };
                    format!("torch.where({y}.abs() {cmp} {tie:?}, {y}, {over})")
                };
                self.set(format!("{e}.to({to})"))
            }
            "DepthToSpace" => self.depth_to_space(),
            "SpaceToDepth" => self.space_to_depth(),
            "Resize" => self.resize(),
            "LSTM" | "GRU" | "RNN" => self.recurrent(),
            other => bail!("the PyTorch emitter has no mapping for op {other}"),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Context helpers.

    /// Expression of input `i`.
    fn x(&self, i: usize) -> Result<String> {
        let r = self
            .node
            .inputs
            .get(i)
            .ok_or_else(|| anyhow!("input {i} is missing"))?;
        self.e.var(r)
    }

    fn in_ty(&self, i: usize) -> Result<TensorType> {
        let r = self
            .node
            .inputs
            .get(i)
            .ok_or_else(|| anyhow!("input {i} is missing"))?;
        self.e
            .graph
            .tensor_type(r)
            .cloned()
            .with_context(|| format!("the type of input '{r}' is unknown"))
    }

    fn out_ty(&self, k: usize) -> Result<TensorType> {
        self.node
            .outputs
            .get(k)
            .cloned()
            .with_context(|| format!("the type of output {k} is unknown"))
    }

    /// The comment naming the node when its identifier differs from its name.
    fn note(&self) -> Option<String> {
        (self.id != self.node.name)
            .then(|| format!("# {} ({})", quoted_name(&self.node.name), self.node.op))
    }

    /// A line of `forward`.
    fn line(&mut self, text: String) {
        if !self.noted {
            self.noted = true;
            if let Some(c) = self.note() {
                self.e.forward.push(c);
            }
        }
        self.e.forward.push(text);
    }

    /// `<id> = expr`, the node's (first) output.
    fn set(&mut self, expr: String) -> Result<()> {
        self.line(format!("{} = {expr}", self.id));
        self.bind(0, self.id.clone());
        Ok(())
    }

    fn bind(&mut self, k: usize, expr: String) {
        self.e.vars.insert(self.node.output(k), expr);
    }

    /// A fresh local variable name derived from the node's.
    fn local(&mut self, suffix: &str) -> String {
        self.e.namer.ident(&format!("{}_{suffix}", self.id))
    }

    /// Registers the node's layer; returns `self.<id>`.
    fn layer(&mut self, ctor: String) -> String {
        if let Some(c) = self.note() {
            self.e.init.push(c);
        }
        self.e.init.push(format!("self.{} = {ctor}", self.id));
        format!("self.{}", self.id)
    }

    /// A torch function, noting the `F` import.
    fn func(&mut self, f: &str) -> String {
        if f.starts_with("F.") {
            self.e.uses_f = true;
        }
        f.to_string()
    }

    fn info(&self, param: &str) -> Result<TensorInfo> {
        self.e
            .weights
            .info(&self.node.name, param)
            .with_context(|| format!("weight '{param}' is missing from the weights"))
    }

    fn has(&self, param: &str) -> bool {
        self.e.weights.info(&self.node.name, param).is_some()
    }

    /// A state-dict entry `<id>.<key>` read from weight `param`.
    fn entry(
        &mut self,
        key: &str,
        param: &str,
        view: View,
        shape: Option<Vec<usize>>,
    ) -> Result<()> {
        let info = self.info(param)?;
        let shape = shape.unwrap_or(info.shape);
        self.e.module_state.push(Entry {
            key: format!("{}.{key}", self.id),
            dtype: info.dtype,
            shape,
            source: Source::Weight {
                node: self.node.name.clone(),
                param: param.to_string(),
                view,
            },
        });
        Ok(())
    }

    /// A state-dict entry `<id>.<key>` filled with `value`.
    fn fill(&mut self, key: &str, dtype: DType, shape: Vec<usize>, value: f64) {
        self.e.module_state.push(Entry {
            key: format!("{}.{key}", self.id),
            dtype,
            shape,
            source: Source::Fill(value),
        });
    }

    fn channels_first(&self) -> Result<()> {
        if self.a.channels_last()? {
            bail!("internal: the layout pass left this node channels_last");
        }
        Ok(())
    }

    /// Number of spatial axes of input 0 (1 to 3).
    fn spatial(&self) -> Result<usize> {
        let rank = self.in_ty(0)?.rank();
        if !(3..=5).contains(&rank) {
            bail!("expects a 3-d to 5-d input, got rank {rank}");
        }
        Ok(rank - 2)
    }

    /// A dim of input 0: its size when known, else `x.shape[i]`.
    fn dim(&self, x: &str, i: usize) -> Result<String> {
        let d = self.in_ty(0)?.shape[i];
        Ok(if d >= 0 {
            d.to_string()
        } else {
            format!("{x}.shape[{i}]")
        })
    }

    // -----------------------------------------------------------------------------------------
    // Inputs, constants, convolution, pooling, dense.

    fn constant(&mut self) -> Result<()> {
        let info = self.info("value")?;
        let dims: Vec<i64> = info.shape.iter().map(|&d| d as i64).collect();
        if let Some(c) = self.note() {
            self.e.init.push(c);
        }
        self.e.init.push(format!(
            "self.register_buffer({}, torch.zeros({}, dtype={}))",
            super::names::py_str(&self.id),
            tuple(&dims),
            torch_dtype(info.dtype)?
        ));
        self.e.root_buffers.push(Entry {
            key: self.id.clone(),
            dtype: info.dtype,
            shape: info.shape,
            source: Source::Weight {
                node: self.node.name.clone(),
                param: "value".into(),
                view: View::AsIs,
            },
        });
        self.bind(0, format!("self.{}", self.id));
        Ok(())
    }

    fn conv(&mut self) -> Result<()> {
        self.channels_first()?;
        let ns = self.spatial()?;
        let w = self.info("weights")?;
        let group = self.a.int("group")?;
        let cout = self.a.int("out_channels")?;
        if w.shape.len() != ns + 2 {
            bail!(
                "weights of shape {:?} do not fit {ns} spatial axes",
                w.shape
            );
        }
        let cin = w.shape[1] as i64 * group;
        let kernel = self.a.ints("kernel_shape")?;
        let strides = spatial_list(self.a.ints("strides")?, ns, 1, "strides")?;
        let dilations = spatial_list(self.a.ints("dilations")?, ns, 1, "dilations")?;
        let (pb, pe) = split_pads(self.a.ints("pads")?, ns)?;
        let symmetric = pb == pe;
        let mut args = vec![
            cin.to_string(),
            cout.to_string(),
            format!("kernel_size={}", ints(&kernel)),
        ];
        push_unless(&mut args, "stride", &strides, 1);
        if symmetric {
            push_unless(&mut args, "padding", &pb, 0);
        }
        push_unless(&mut args, "dilation", &dilations, 1);
        if group != 1 {
            args.push(format!("groups={group}"));
        }
        let bias = self.a.bool("use_bias")?;
        if !bias {
            args.push("bias=False".into());
        }
        let layer = self.layer(format!("nn.Conv{ns}d({})", args.join(", ")));
        self.entry("weight", "weights", View::AsIs, None)?;
        if bias {
            self.entry("bias", "bias", View::AsIs, None)?;
        }
        let mut x = self.x(0)?;
        if !symmetric {
            let f = self.func("F.pad");
            x = format!("{f}({x}, {})", torch_pads(&pb, &pe));
        }
        self.set(format!("{layer}({x})"))
    }

    fn conv_transpose(&mut self) -> Result<()> {
        self.channels_first()?;
        let ns = self.spatial()?;
        let w = self.info("weights")?;
        if w.shape.len() != ns + 2 {
            bail!(
                "weights of shape {:?} do not fit {ns} spatial axes",
                w.shape
            );
        }
        let group = self.a.int("group")?;
        let cout = self.a.int("out_channels")?;
        let cin = w.shape[0] as i64;
        let kernel = self.a.ints("kernel_shape")?;
        let strides = spatial_list(self.a.ints("strides")?, ns, 1, "strides")?;
        let dilations = spatial_list(self.a.ints("dilations")?, ns, 1, "dilations")?;
        let (pb, pe) = split_pads(self.a.ints("pads")?, ns)?;
        let extra = spatial_list(self.a.ints("output_padding")?, ns, 0, "output_padding")?;
        // torch crops `padding` at both ends and adds `output_padding` at the end; the rest of
        // an asymmetric crop is a slice of its output.
        let (mut padding, mut out_pad, mut crops) = (vec![], vec![], vec![]);
        let mut cropped = false;
        for i in 0..ns {
            let p = pb[i].min(pe[i]);
            let q = (extra[i] - (pe[i] - p)).max(0);
            if q >= strides[i].max(dilations[i]) {
                bail!(
                    "output_padding {} on axis {i} is not below the stride or dilation",
                    extra[i]
                );
            }
            let begin = pb[i] - p;
            let end = (pe[i] - p - extra[i]).max(0);
            cropped |= begin > 0 || end > 0;
            crops.push(match (begin, end) {
                (0, 0) => ":".to_string(),
                (b, 0) => format!("{b}:"),
                (b, e) => format!(
                    "{}:-{e}",
                    if b == 0 { String::new() } else { b.to_string() }
                ),
            });
            padding.push(p);
            out_pad.push(q);
        }
        let mut args = vec![
            cin.to_string(),
            cout.to_string(),
            format!("kernel_size={}", ints(&kernel)),
        ];
        push_unless(&mut args, "stride", &strides, 1);
        push_unless(&mut args, "padding", &padding, 0);
        push_unless(&mut args, "output_padding", &out_pad, 0);
        if group != 1 {
            args.push(format!("groups={group}"));
        }
        let bias = self.a.bool("use_bias")?;
        if !bias {
            args.push("bias=False".into());
        }
        push_unless(&mut args, "dilation", &dilations, 1);
        let layer = self.layer(format!("nn.ConvTranspose{ns}d({})", args.join(", ")));
        self.entry("weight", "weights", View::AsIs, None)?;
        if bias {
            self.entry("bias", "bias", View::AsIs, None)?;
        }
        let x = self.x(0)?;
        if cropped {
            self.set(format!("{layer}({x})[:, :, {}]", crops.join(", ")))
        } else {
            self.set(format!("{layer}({x})"))
        }
    }

    fn pool(&mut self) -> Result<()> {
        self.channels_first()?;
        let ns = self.spatial()?;
        let is_max = self.a.str("pooling_type")? == "MAX";
        let kernel = self.a.ints("kernel_shape")?;
        if kernel.len() != ns {
            bail!("kernel_shape {kernel:?} does not fit {ns} spatial axes");
        }
        let strides = spatial_list(self.a.ints("strides")?, ns, 1, "strides")?;
        let dilations = spatial_list(self.a.ints("dilations")?, ns, 1, "dilations")?;
        let (pb, pe) = split_pads(self.a.ints("pads")?, ns)?;
        let ceil = self.a.bool("ceil_mode")?;
        if !is_max && dilations.iter().any(|&d| d != 1) {
            return self.dilated_avg_pool(&kernel, &strides, &dilations, &pb, &pe, ceil);
        }
        let include_pad = self.a.bool("count_include_pad")?;
        let f = self.func(&format!(
            "F.{}_pool{ns}d",
            if is_max { "max" } else { "avg" }
        ));
        let x = self.x(0)?;
        let mut common = vec![ints(&kernel), ints(&strides)];
        let native = pb == pe && pb.iter().zip(&kernel).all(|(&p, &k)| 2 * p <= k);
        if native && pb.iter().any(|&p| p != 0) {
            common.push(format!("padding={}", ints(&pb)));
        }
        if is_max && dilations.iter().any(|&d| d != 1) {
            common.push(format!("dilation={}", ints(&dilations)));
        }
        if ceil {
            common.push("ceil_mode=True".into());
        }
        if native {
            if !is_max && !include_pad && pb.iter().any(|&p| p != 0) {
                common.push("count_include_pad=False".into());
            }
            return self.set(format!("{f}({x}, {})", common.join(", ")));
        }
        // Explicit padding: torch keeps a ceil-mode window that starts in the end padding,
        // the IR does not; crop those.
        let shape = self.in_ty(0)?.shape;
        let mut crop = vec![];
        for i in 0..ns {
            let h = shape[2 + i];
            if !ceil || pe[i] == 0 {
                crop.push(":".to_string());
                continue;
            }
            if h < 0 {
                bail!("ceil_mode pooling with end padding on a spatial axis of unknown size");
            }
            let (k, s, d) = (kernel[i], strides[i], dilations[i]);
            let ir = window_out(h, k, s, d, pb[i], pe[i], true);
            let torch = window_out(h + pb[i] + pe[i], k, s, d, 0, 0, true);
            crop.push(if ir < torch {
                format!(":{ir}")
            } else {
                ":".to_string()
            });
        }
        let crop = if crop.iter().all(|c| c == ":") {
            String::new()
        } else {
            format!("[:, :, {}]", crop.join(", "))
        };
        let pad = self.func("F.pad");
        let pads = torch_pads(&pb, &pe);
        let common = common.join(", ");
        if is_max {
            self.set(format!(
                "{f}({pad}({x}, {pads}, value=float(\"-inf\")), {common}){crop}"
            ))
        } else if include_pad {
            self.set(format!("{f}({pad}({x}, {pads}), {common}){crop}"))
        } else {
            let ones = self.local("count");
            self.line(
                "# Average over the cells inside the input only: window sums over window counts."
                    .into(),
            );
            self.line(format!(
                "{ones} = {f}({pad}(torch.ones_like({x}[:1, :1]), {pads}), {common})"
            ));
            self.set(format!(
                "({f}({pad}({x}, {pads}), {common}) / {ones}){crop}"
            ))
        }
    }

    /// Average pooling with dilations, which torch's pools lack: window sums and window cell
    /// counts as depthwise convolutions with a ones kernel, over explicit padding (and extra end
    /// padding that lets ceil-mode windows exist), cropped to the IR's output size.
    fn dilated_avg_pool(
        &mut self,
        kernel: &[i64],
        strides: &[i64],
        dilations: &[i64],
        pb: &[i64],
        pe: &[i64],
        ceil: bool,
    ) -> Result<()> {
        let ns = kernel.len();
        let shape = self.in_ty(0)?.shape;
        let mut extra = vec![];
        let mut crop = vec![];
        for i in 0..ns {
            let (h, k, s, d) = (shape[2 + i], kernel[i], strides[i], dilations[i]);
            if !ceil {
                extra.push(0);
                crop.push(":".to_string());
                continue;
            }
            if h < 0 {
                bail!("ceil_mode average pooling with dilations on a spatial axis of unknown size");
            }
            let out = window_out(h, k, s, d, pb[i], pe[i], true);
            let covered = (out - 1) * s + d * (k - 1) + 1;
            extra.push((covered - (h + pb[i] + pe[i])).max(0));
            crop.push(format!(":{out}"));
        }
        let ends: Vec<i64> = pe.iter().zip(&extra).map(|(e, x)| e + x).collect();
        let include_pad = self.a.bool("count_include_pad")?;
        let x = self.x(0)?;
        let f = self.func(&format!("F.conv{ns}d"));
        let pad = self.func("F.pad");
        let k = kernel
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let conv = format!("stride={}, dilation={}", ints(strides), ints(dilations));
        let cells = self.local("cells");
        let counts = self.local("counts");
        self.line(format!(
            "# Dilated average pooling: window sums over the number of window cells {}.",
            if include_pad {
                "inside the padded input"
            } else {
                "inside the input"
            }
        ));
        // F.pad, left out when it pads nothing.
        let padded = |t: &str, b: &[i64], e: &[i64], value: &str| {
            if b.iter().chain(e).all(|&p| p == 0) {
                t.to_string()
            } else {
                format!("{pad}({t}, {}{value})", torch_pads(b, e))
            }
        };
        let ones = format!("torch.ones_like({x}[:1, :1])");
        let zero = vec![0; ns];
        let mask = if include_pad {
            let counted = padded(&ones, pb, pe, ", value=1.0");
            padded(&counted, &zero, &extra, "")
        } else {
            padded(&ones, pb, &ends, "")
        };
        self.line(format!("{cells} = {mask}"));
        self.line(format!(
            "{counts} = {f}({cells}, torch.ones(1, 1, {k}, dtype={x}.dtype), {conv})"
        ));
        let sums = format!(
            "{f}({}, torch.ones({x}.shape[1], 1, {k}, dtype={x}.dtype), {conv}, groups={x}.shape[1])",
            padded(&x, pb, &ends, "")
        );
        let crop = if crop.iter().all(|c| c == ":") {
            String::new()
        } else {
            format!("[:, :, {}]", crop.join(", "))
        };
        self.set(format!("({sums} / {counts}){crop}"))
    }

    fn global_pool(&mut self) -> Result<()> {
        let rank = self.in_ty(0)?.rank();
        if rank < 3 {
            bail!("expects an input of rank 3 or more");
        }
        let (_, spatial) = crate::ir::ops::shape_rules::spatial_axes(rank, self.a.channels_last()?);
        let dims: Vec<i64> = spatial.iter().map(|&a| a as i64).collect();
        let method = if self.a.str("pooling_type")? == "MAX" {
            "amax"
        } else {
            "mean"
        };
        let keep = if self.a.bool("keepdims")? {
            ", keepdim=True"
        } else {
            ""
        };
        let x = self.x(0)?;
        self.set(format!("{x}.{method}(dim={}{keep})", tuple(&dims)))
    }

    fn fully_connected(&mut self) -> Result<()> {
        let w = self.info("weights")?;
        if w.shape.len() != 2 {
            bail!("weights of shape {:?} are not [in, out]", w.shape);
        }
        let (cin, cout) = (w.shape[0], w.shape[1]);
        let bias = self.a.bool("use_bias")?;
        let layer = self.layer(format!(
            "nn.Linear({cin}, {cout}{})",
            if bias { "" } else { ", bias=False" }
        ));
        self.entry("weight", "weights", View::Transpose, Some(vec![cout, cin]))?;
        if bias {
            self.entry("bias", "bias", View::AsIs, None)?;
        }
        let x = self.x(0)?;
        self.set(format!("{layer}({x})"))
    }

    fn gemm(&mut self) -> Result<()> {
        let mut a = self.x(0)?;
        let mut b = self.x(1)?;
        if self.a.bool("trans_a")? {
            a = format!("{a}.t()");
        }
        if self.a.bool("trans_b")? {
            b = format!("{b}.t()");
        }
        let alpha = self.a.float("alpha")?;
        let beta = self.a.float("beta")?;
        let mut expr = format!("torch.matmul({a}, {b})");
        if alpha != 1.0 {
            expr = format!("{} * {expr}", float(alpha));
        }
        if self.node.inputs.len() > 2 {
            let c = self.x(2)?;
            expr = if beta == 1.0 {
                format!("{expr} + {c}")
            } else {
                format!("{expr} + {} * {c}", float(beta))
            };
        }
        self.set(expr)
    }

    fn embedding(&mut self) -> Result<()> {
        let (vocab, dim) = (self.a.int("input_dim")?, self.a.int("output_dim")?);
        let layer = self.layer(format!("nn.Embedding({vocab}, {dim})"));
        self.entry("weight", "weights", View::AsIs, None)?;
        let mut x = self.x(0)?;
        if !matches!(self.in_ty(0)?.dtype, DType::I64 | DType::I32) {
            x = format!("{x}.long()");
        }
        self.set(format!("{layer}({x})"))
    }

    // -----------------------------------------------------------------------------------------
    // Normalization.

    /// Scale and bias of a normalization layer as `weight` and `bias` entries of `channels`
    /// values (ones or zeros where the IR has none); returns whether the layer is affine.
    fn affine(&mut self, shape: Vec<usize>, bias_optional: bool) -> Result<(bool, bool)> {
        let scale = self.a.bool("use_scale")? && self.has("scale");
        let bias = self.a.bool("use_bias")? && self.has("bias");
        if !scale && !bias {
            return Ok((false, false));
        }
        if scale {
            self.entry("weight", "scale", View::AsIs, Some(shape.clone()))?;
        } else {
            self.fill("weight", DType::F32, shape.clone(), 1.0);
        }
        if bias {
            self.entry("bias", "bias", View::AsIs, Some(shape))?;
        } else if !bias_optional {
            self.fill("bias", DType::F32, shape, 0.0);
        }
        Ok((true, bias || !bias_optional))
    }

    /// `layer(x)` with axis `axis` moved to position 1 and back.
    fn channel_call(&mut self, layer: &str, axis: usize) -> Result<()> {
        let x = self.x(0)?;
        if axis == 1 {
            self.set(format!("{layer}({x})"))
        } else {
            self.set(format!(
                "{layer}({x}.movedim({axis}, 1)).movedim(1, {axis})"
            ))
        }
    }

    fn batch_norm(&mut self) -> Result<()> {
        let rank = self.in_ty(0)?.rank();
        let axis = norm_axis(self.a.int("axis")?, rank)?;
        let kind = match rank {
            2 | 3 => "1d",
            4 => "2d",
            5 => "3d",
            _ => bail!("BatchNorm on a rank-{rank} tensor is not supported by PyTorch"),
        };
        if axis == 0 {
            bail!("the channel axis cannot be the batch axis 0");
        }
        let mean = self.info("mean")?;
        let c = mean.numel();
        let eps = self.a.float("epsilon")?;
        // The layer is built before its entries so the rename comment comes first.
        let affine_flag = (self.a.bool("use_scale")? && self.has("scale"))
            || (self.a.bool("use_bias")? && self.has("bias"));
        let mut args = vec![c.to_string(), format!("eps={}", float(eps))];
        if !affine_flag {
            args.push("affine=False".into());
        }
        let layer = self.layer(format!("nn.BatchNorm{kind}({})", args.join(", ")));
        self.affine(vec![c], false)?;
        self.entry("running_mean", "mean", View::AsIs, Some(vec![c]))?;
        self.entry("running_var", "var", View::AsIs, Some(vec![c]))?;
        self.fill("num_batches_tracked", DType::I64, vec![], 0.0);
        self.channel_call(&layer, axis)
    }

    fn layer_norm(&mut self) -> Result<()> {
        let ty = self.in_ty(0)?;
        let rank = ty.rank();
        let mut axes = self
            .a
            .ints("axes")?
            .iter()
            .map(|&a| norm_axis(a, rank))
            .collect::<Result<Vec<_>>>()?;
        axes.sort_unstable();
        axes.dedup();
        let dims: Vec<i64> = axes.iter().map(|&a| ty.shape[a]).collect();
        if dims.iter().any(|&d| d < 0) {
            bail!("the normalised axes must have known sizes");
        }
        let shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
        let eps = self.a.float("epsilon")?;
        let scale = self.a.bool("use_scale")? && self.has("scale");
        let bias = self.a.bool("use_bias")? && self.has("bias");
        let mut args = vec![normalized_shape(&dims), format!("eps={}", float(eps))];
        if !scale && !bias {
            args.push("elementwise_affine=False".into());
        } else if !bias {
            args.push("bias=False".into());
        }
        let layer = self.layer(format!("nn.LayerNorm({})", args.join(", ")));
        self.affine(shape, true)?;
        let x = self.x(0)?;
        let trailing: Vec<usize> = (rank - axes.len()..rank).collect();
        if axes == trailing {
            return self.set(format!("{layer}({x})"));
        }
        // Move the normalised axes to the end and back.
        let mut perm: Vec<usize> = (0..rank).filter(|a| !axes.contains(a)).collect();
        perm.extend(&axes);
        let mut inv = vec![0; rank];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        let list = |p: &[usize]| {
            p.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        self.set(format!(
            "{layer}({x}.permute({})).permute({})",
            list(&perm),
            list(&inv)
        ))
    }

    fn group_norm(&mut self) -> Result<()> {
        let rank = self.in_ty(0)?.rank();
        let axis = norm_axis(self.a.int("axis")?, rank)?;
        if axis == 0 {
            bail!("the channel axis cannot be the batch axis 0");
        }
        let c = self.in_ty(0)?.shape[axis];
        if c < 0 {
            bail!("the channel count must be known");
        }
        let groups = self.a.int("groups")?;
        let eps = self.a.float("epsilon")?;
        let affine = (self.a.bool("use_scale")? && self.has("scale"))
            || (self.a.bool("use_bias")? && self.has("bias"));
        let layer = self.layer(format!(
            "nn.GroupNorm({groups}, {c}, eps={}{})",
            float(eps),
            if affine { "" } else { ", affine=False" }
        ));
        self.affine(vec![c as usize], false)?;
        self.channel_call(&layer, axis)
    }

    fn instance_norm(&mut self) -> Result<()> {
        let rank = self.in_ty(0)?.rank();
        let axis = norm_axis(self.a.int("axis")?, rank)?;
        if axis == 0 {
            bail!("the channel axis cannot be the batch axis 0");
        }
        let c = self.in_ty(0)?.shape[axis];
        if c < 0 {
            bail!("the channel count must be known");
        }
        if !(3..=5).contains(&rank) {
            bail!("InstanceNorm on a rank-{rank} tensor is not supported by PyTorch");
        }
        let eps = self.a.float("epsilon")?;
        let affine = (self.a.bool("use_scale")? && self.has("scale"))
            || (self.a.bool("use_bias")? && self.has("bias"));
        let layer = self.layer(format!(
            "nn.InstanceNorm{}d({c}, eps={}{})",
            rank - 2,
            float(eps),
            if affine { ", affine=True" } else { "" }
        ));
        self.affine(vec![c as usize], false)?;
        self.channel_call(&layer, axis)
    }

    fn lrn(&mut self) -> Result<()> {
        let rank = self.in_ty(0)?.rank();
        let axis = norm_axis(self.a.int("axis")?, rank)?;
        let size = self.a.int("size")?;
        let args = format!(
            "{size}, alpha={}, beta={}, k={}",
            float(self.a.float("alpha")?),
            float(self.a.float("beta")?),
            float(self.a.float("bias")?)
        );
        let f = self.func("F.local_response_norm");
        let mut x = self.x(0)?;
        if axis != 1 {
            x = format!("{x}.movedim({axis}, 1)");
        }
        if rank == 2 {
            x = format!("{x}.unsqueeze(-1)");
        }
        // torch's window has the extra channel of an even size before the centre, the IR's
        // after it: flipping the channels swaps the two.
        let even = size % 2 == 0;
        let mut expr = if even {
            format!("{f}({x}.flip(1), {args}).flip(1)")
        } else {
            format!("{f}({x}, {args})")
        };
        if rank == 2 {
            expr = format!("{expr}.squeeze(-1)");
        }
        if axis != 1 {
            expr = format!("{expr}.movedim(1, {axis})");
        }
        self.set(expr)
    }

    // -----------------------------------------------------------------------------------------
    // Activations.

    fn prelu(&mut self) -> Result<()> {
        let ty = self.in_ty(0)?;
        let slope = self.info("slope")?;
        let rank = ty.rank();
        let mut padded = vec![1; rank.saturating_sub(slope.shape.len())];
        padded.extend(&slope.shape);
        let numel = slope.numel();
        let per_channel = rank >= 2
            && padded.len() == rank
            && padded
                .iter()
                .enumerate()
                .all(|(i, &d)| d == 1 || (i == 1 && d as i64 == ty.shape[1]));
        let x = self.x(0)?;
        if numel == 1 || per_channel {
            let layer = self.layer(format!("nn.PReLU({numel})"));
            self.entry("weight", "slope", View::AsIs, Some(vec![numel]))?;
            return self.set(format!("{layer}({x})"));
        }
        // Any other broadcastable slope: a parameter of its own shape.
        let dims: Vec<i64> = slope.shape.iter().map(|&d| d as i64).collect();
        let p = self.layer(format!("nn.Parameter(torch.zeros({}))", tuple(&dims)));
        self.e.root_params.push(Entry {
            key: self.id.clone(),
            dtype: slope.dtype,
            shape: slope.shape,
            source: Source::Weight {
                node: self.node.name.clone(),
                param: "slope".into(),
                view: View::AsIs,
            },
        });
        self.set(format!("torch.where({x} >= 0, {x}, {p} * {x})"))
    }

    fn clip(&mut self) -> Result<()> {
        let x = self.x(0)?;
        let (lo, hi) = (self.a.opt_float("min")?, self.a.opt_float("max")?);
        let int = !self.in_ty(0)?.dtype.is_float();
        let bound = |v: f32, up: bool| {
            if int {
                (if up { v.floor() } else { v.ceil() } as i64).to_string()
            } else {
                float(v)
            }
        };
        match (lo, hi) {
            (None, None) => {
                self.bind(0, x);
                Ok(())
            }
            (Some(l), Some(h)) if l == 0.0 && h == 6.0 && !int => {
                let f = self.func("F.relu6");
                self.set(format!("{f}({x})"))
            }
            (Some(l), None) if l == 0.0 && !int => {
                let f = self.func("F.relu");
                self.set(format!("{f}({x})"))
            }
            (Some(l), None) => self.set(format!("torch.clamp({x}, min={})", bound(l, false))),
            (None, Some(h)) => self.set(format!("torch.clamp({x}, max={})", bound(h, true))),
            (Some(l), Some(h)) => self.set(format!(
                "torch.clamp({x}, {}, {})",
                bound(l, false),
                bound(h, true)
            )),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Reductions.

    fn reduce(&mut self) -> Result<()> {
        let x = self.x(0)?;
        let rank = self.in_ty(0)?.rank();
        let mut axes = self
            .a
            .ints("axes")?
            .iter()
            .map(|&a| norm_axis(a, rank))
            .collect::<Result<Vec<_>>>()?;
        if axes.is_empty() {
            axes = (0..rank).collect();
        }
        axes.sort_unstable();
        axes.dedup();
        if axes.is_empty() {
            self.bind(0, x);
            return Ok(());
        }
        let keep = self.a.bool("keepdims")?;
        let keep_arg = if keep { ", keepdim=True" } else { "" };
        let dims: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
        let dim = if dims.len() == 1 {
            dims[0].to_string()
        } else {
            tuple(&dims)
        };
        let expr = match self.node.op.as_str() {
            "ReduceMean" => format!("{x}.mean(dim={dim}{keep_arg})"),
            "ReduceSum" => format!("{x}.sum(dim={dim}{keep_arg})"),
            "ReduceMax" => format!("{x}.amax(dim={dim}{keep_arg})"),
            "ReduceMin" => format!("{x}.amin(dim={dim}{keep_arg})"),
            "ReduceL2" => format!("torch.linalg.vector_norm({x}, dim={dim}{keep_arg})"),
            _ => {
                // prod reduces one axis at a time; the last first keeps the others' indices.
                let chain: String = axes
                    .iter()
                    .rev()
                    .map(|a| format!(".prod(dim={a}{keep_arg})"))
                    .collect();
                format!("{x}{chain}")
            }
        };
        self.set(expr)
    }

    fn arg(&mut self) -> Result<()> {
        let x = self.x(0)?;
        let rank = self.in_ty(0)?.rank();
        let axis = norm_axis(self.a.int("axis")?, rank)?;
        let keep = if self.a.bool("keepdims")? {
            ", keepdim=True"
        } else {
            ""
        };
        let f = if self.node.op == "ArgMax" {
            "torch.argmax"
        } else {
            "torch.argmin"
        };
        if self.a.bool("select_last_index")? {
            // The last best index is the first one of the flipped axis, counted from the end.
            let n = self.dim(&x, axis)?;
            self.set(format!(
                "({n} - 1) - {f}({x}.flip({axis}), dim={axis}{keep})"
            ))
        } else {
            self.set(format!("{f}({x}, dim={axis}{keep})"))
        }
    }

    // -----------------------------------------------------------------------------------------
    // Shape and data movement.

    fn reshape(&mut self) -> Result<()> {
        let x = self.x(0)?;
        let target = self.a.ints("shape")?;
        let dims = target
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                if d == 0 {
                    self.dim(&x, i)
                } else {
                    Ok(d.to_string())
                }
            })
            .collect::<Result<Vec<_>>>()?;
        if dims.is_empty() {
            return self.set(format!("{x}.reshape(())"));
        }
        self.set(format!("{x}.reshape({})", dims.join(", ")))
    }

    fn flatten(&mut self) -> Result<()> {
        let x = self.x(0)?;
        let rank = self.in_ty(0)?.rank() as i64;
        let axis = self.a.int("axis")?;
        let axis = if axis < 0 { axis + rank } else { axis };
        if axis < 0 || axis > rank {
            bail!("axis is out of range for rank {rank}");
        }
        self.set(if axis == rank {
            format!("{x}.reshape(-1, 1)")
        } else if axis == 0 {
            format!("{x}.reshape(1, -1)")
        } else if axis == 1 {
            format!("torch.flatten({x}, 1)")
        } else {
            format!("{x}.flatten(0, {}).flatten(1)", axis - 1)
        })
    }

    fn squeeze(&mut self) -> Result<()> {
        let x = self.x(0)?;
        let rank = self.in_ty(0)?.rank();
        let axes = self
            .a
            .ints("axes")?
            .iter()
            .map(|&a| norm_axis(a, rank).map(|v| v as i64))
            .collect::<Result<Vec<_>>>()?;
        self.set(match axes.len() {
            0 => format!("{x}.squeeze()"),
            1 => format!("{x}.squeeze({})", axes[0]),
            _ => format!("{x}.squeeze({})", tuple(&axes)),
        })
    }

    fn split(&mut self) -> Result<()> {
        let x = self.x(0)?;
        let rank = self.in_ty(0)?.rank();
        let axis = norm_axis(self.a.int("axis")?, rank)?;
        let sizes = self.a.ints("split")?;
        let uses = self.e.graph.consumers();
        let mut names = vec![];
        for k in 0..sizes.len() {
            if uses.get(&self.node.output(k)).copied().unwrap_or(0) == 0 {
                names.push("_".to_string());
                continue;
            }
            let name = if k == 0 {
                self.id.clone()
            } else {
                self.local(&k.to_string())
            };
            self.bind(k, name.clone());
            names.push(name);
        }
        let targets = if names.len() == 1 {
            format!("({},)", names[0])
        } else {
            names.join(", ")
        };
        let list = sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        self.line(format!(
            "{targets} = torch.split({x}, [{list}], dim={axis})"
        ));
        Ok(())
    }

    fn slice(&mut self) -> Result<()> {
        let x = self.x(0)?;
        let shape = self.in_ty(0)?.shape;
        let rank = shape.len();
        let starts = self.a.ints("starts")?;
        let ends = self.a.ints("ends")?;
        let n = starts.len();
        let axes = self
            .a
            .opt_ints("axes")?
            .unwrap_or_else(|| (0..n as i64).collect());
        let steps = self.a.opt_ints("steps")?.unwrap_or(vec![1; n]);
        if ends.len() != n || axes.len() != n || steps.len() != n {
            bail!("starts, ends, axes and steps differ in length");
        }
        let mut index = vec![":".to_string(); rank];
        let mut flips = vec![];
        for k in 0..n {
            let ax = norm_axis(axes[k], rank)?;
            let (s, e, st) = (starts[k], ends[k], steps[k]);
            if st == 0 {
                bail!("slice step is 0");
            }
            let d = shape[ax];
            if st > 0 {
                index[ax] = py_slice(Some(s).filter(|&v| v != 0), big(e, d), st);
                continue;
            }
            // Negative steps: slice the flipped axis forward. Position i of the flipped
            // axis is position d - 1 - i of the original.
            flips.push(ax);
            let st = -st;
            if d >= 0 {
                let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
                let (s, e) = (norm(s).clamp(-1, d - 1), norm(e).clamp(-1, d - 1));
                let (fs, fe) = (d - 1 - s, d - 1 - e);
                index[ax] = py_slice(
                    Some(fs).filter(|&v| v != 0),
                    Some(fe).filter(|&v| v < d),
                    st,
                );
            } else if s < 0 && (e == i64::MIN || e < -(1 << 40)) {
                index[ax] = py_slice(Some(-1 - s).filter(|&v| v != 0), None, st);
            } else {
                bail!("a negative slice step on an axis of unknown size");
            }
        }
        let flip: String = if flips.is_empty() {
            String::new()
        } else {
            flips.sort_unstable();
            let dims: Vec<i64> = flips.iter().map(|&a| a as i64).collect();
            format!(
                ".flip({})",
                if dims.len() == 1 {
                    dims[0].to_string()
                } else {
                    tuple(&dims)
                }
            )
        };
        while index.last().is_some_and(|s| s == ":") {
            index.pop();
        }
        if index.is_empty() {
            return self.set(format!("{x}{flip}"));
        }
        self.set(format!("{x}{flip}[{}]", index.join(", ")))
    }

    fn pad(&mut self) -> Result<()> {
        let x = self.x(0)?;
        let shape = self.in_ty(0)?.shape;
        let rank = shape.len();
        let pads = self.a.ints("pads")?;
        if pads.len() != 2 * rank {
            bail!(
                "pads has {} values; rank {rank} needs {}",
                pads.len(),
                2 * rank
            );
        }
        let (b, e) = (&pads[..rank], &pads[rank..]);
        let mode = self.a.str("mode")?;
        let value = self.a.float("value")?;
        let f = self.func("F.pad");
        // F.pad lists (begin, end) from the last axis backwards; leading axes without
        // padding are left out.
        let first = (0..rank).find(|&i| b[i] != 0 || e[i] != 0);
        let Some(first) = first else {
            self.bind(0, x);
            return Ok(());
        };
        let list = torch_pads(&b[first..], &e[first..]);
        if mode == "constant" {
            return self.set(if value == 0.0 {
                format!("{f}({x}, {list})")
            } else {
                format!("{f}({x}, {list}, value={})", float(value))
            });
        }
        if b.iter().chain(e).any(|&p| p < 0) {
            bail!("negative pads in {mode} mode");
        }
        let k = rank - first;
        let fits = |i: usize| shape[i] < 0 || (b[i] < shape[i] && e[i] < shape[i]);
        let native = k <= 3 && rank <= k + 2 && rank > k && mode != "symmetric";
        if native && (mode == "edge" || (first..rank).all(fits)) {
            let m = if mode == "edge" {
                "replicate"
            } else {
                "reflect"
            };
            return self.set(format!("{f}({x}, {list}, mode=\"{m}\")"));
        }
        // Axis by axis: mirrored or repeated edges joined to the tensor.
        let mut cur = x;
        let padded: Vec<usize> = (0..rank).filter(|&i| b[i] != 0 || e[i] != 0).collect();
        for (n, &ax) in padded.iter().enumerate() {
            let (pb, pe) = (b[ax], e[ax]);
            if shape[ax] >= 0 {
                let limit = if mode == "reflect" {
                    shape[ax] - 1
                } else {
                    shape[ax]
                };
                if pb > limit || pe > limit {
                    bail!(
                        "{mode} padding of {pb}/{pe} on axis {ax} of size {}",
                        shape[ax]
                    );
                }
            }
            let at = |range: &str| {
                let mut idx = vec![":"; ax + 1];
                idx[ax] = range;
                format!("{cur}[{}]", idx.join(", "))
            };
            let mut parts = vec![];
            if pb > 0 {
                parts.push(match mode.as_str() {
                    "reflect" => format!("{}.flip({ax})", at(&format!("1:{}", pb + 1))),
                    "symmetric" => format!("{}.flip({ax})", at(&format!(":{pb}"))),
                    _ => format!("{}.repeat_interleave({pb}, dim={ax})", at(":1")),
                });
            }
            parts.push(cur.clone());
            if pe > 0 {
                parts.push(match mode.as_str() {
                    "reflect" => format!("{}.flip({ax})", at(&format!("-{}:-1", pe + 1))),
                    "symmetric" => format!("{}.flip({ax})", at(&format!("-{pe}:"))),
                    _ => format!("{}.repeat_interleave({pe}, dim={ax})", at("-1:")),
                });
            }
            let name = if n + 1 == padded.len() {
                self.id.clone()
            } else {
                self.local("pad")
            };
            self.line(format!(
                "{name} = torch.cat([{}], dim={ax})",
                parts.join(", ")
            ));
            cur = name;
        }
        self.bind(0, cur);
        Ok(())
    }

    fn expand(&mut self) -> Result<()> {
        let x = self.x(0)?;
        let in_rank = self.in_ty(0)?.rank();
        let out = self.out_ty(0)?.shape;
        let lead = out.len() - in_rank.min(out.len());
        for (i, &d) in out.iter().enumerate() {
            if d < 0 && i < lead {
                bail!("expanding to a new axis of unknown size");
            }
        }
        let dims: Vec<String> = out.iter().map(|d| d.to_string()).collect();
        self.set(format!("{x}.expand({})", dims.join(", ")))
    }

    fn gather(&mut self) -> Result<()> {
        let data = self.x(0)?;
        let mut idx = self.x(1)?;
        let rank = self.in_ty(0)?.rank();
        let axis = norm_axis(self.a.int("axis")?, rank)?;
        if !matches!(self.in_ty(1)?.dtype, DType::I64 | DType::I32) {
            idx = format!("{idx}.long()");
        }
        let mut index = vec![":".to_string(); axis];
        index.push(idx);
        self.set(format!("{data}[{}]", index.join(", ")))
    }

    fn depth_to_space(&mut self) -> Result<()> {
        self.channels_first()?;
        if self.in_ty(0)?.rank() != 4 {
            bail!("expects a 4-d input");
        }
        let b = self.a.int("blocksize")?;
        let x = self.x(0)?;
        if self.a.str("mode")? == "CRD" {
            let f = self.func("F.pixel_shuffle");
            return self.set(format!("{f}({x}, {b})"));
        }
        let (n, c, h, w) = (
            self.dim(&x, 0)?,
            self.dim(&x, 1)?,
            self.dim(&x, 2)?,
            self.dim(&x, 3)?,
        );
        let c2 = match c.parse::<i64>() {
            Ok(c) => (c / (b * b)).to_string(),
            Err(_) => format!("{c} // {}", b * b),
        };
        let (hb, wb) = (scaled(&h, b), scaled(&w, b));
        self.line("# depth-column-row order: channel blocks (row, column, depth).".into());
        self.set(format!(
            "{x}.reshape({n}, {b}, {b}, {c2}, {h}, {w}).permute(0, 3, 4, 1, 5, 2).reshape({n}, {c2}, {hb}, {wb})"
        ))
    }

    /// ScatterND: data viewed as rows `[prod(dims[..k]), *dims[k..]]`; each index tuple becomes
    /// a row number (negative entries wrapped), and the update rows are copied or reduced in.
    fn scatter_nd(&mut self) -> Result<()> {
        let (x, idx, upd) = (self.x(0)?, self.x(1)?, self.x(2)?);
        let k = *self.in_ty(1)?.shape.last().context("indices is a scalar")?;
        if k < 1 {
            bail!("indices with an empty last axis (updates replacing the whole tensor)");
        }
        let k = k as usize;
        let (i, row) = (self.local("idx"), self.local("row"));
        self.line(format!("{i} = {idx}.reshape(-1, {k}).long()"));
        for t in 0..k {
            let n = self.dim(&x, t)?;
            let wrapped = format!("torch.remainder({i}[:, {t}], {n})");
            self.line(if t == 0 {
                format!("{row} = {wrapped}")
            } else {
                format!("{row} = {row} * {n} + {wrapped}")
            });
        }
        // The updates' leading axes (the index tuples') become one.
        let u = match self.in_ty(1)?.rank() {
            1 => format!("{upd}.unsqueeze(0)"),
            q => format!("{upd}.flatten(0, {})", q - 2),
        };
        let call = match self.a.str("reduction")?.as_str() {
            "add" => format!("index_add(0, {row}, {u})"),
            "mul" => format!("index_reduce(0, {row}, {u}, \"prod\")"),
            "max" => format!("index_reduce(0, {row}, {u}, \"amax\")"),
            "min" => format!("index_reduce(0, {row}, {u}, \"amin\")"),
            _ => format!("index_copy(0, {row}, {u})"),
        };
        self.set(format!(
            "{x}.flatten(0, {}).{call}.reshape({x}.shape)",
            k - 1
        ))
    }

    fn space_to_depth(&mut self) -> Result<()> {
        self.channels_first()?;
        if self.in_ty(0)?.rank() != 4 {
            bail!("expects a 4-d input");
        }
        let b = self.a.int("blocksize")?;
        let x = self.x(0)?;
        let (n, c, h, w) = (
            self.dim(&x, 0)?,
            self.dim(&x, 1)?,
            self.dim(&x, 2)?,
            self.dim(&x, 3)?,
        );
        let div = |v: &str| match v.parse::<i64>() {
            Ok(v) => (v / b).to_string(),
            Err(_) => format!("{v} // {b}"),
        };
        let (h2, w2) = (div(&h), div(&w));
        let cb = scaled(&c, b * b);
        self.set(format!(
            "{x}.reshape({n}, {c}, {h2}, {b}, {w2}, {b}).permute(0, 3, 5, 1, 2, 4).reshape({n}, {cb}, {h2}, {w2})"
        ))
    }

    fn resize(&mut self) -> Result<()> {
        self.channels_first()?;
        let ty = self.in_ty(0)?;
        let rank = ty.rank();
        if rank < 3 {
            bail!("expects an input of rank 3 or more");
        }
        let ns = rank - 2;
        let mode = self.a.str("mode")?;
        let ctm = self.a.str("coordinate_transformation_mode")?;
        let nearest = self.a.str("nearest_mode")?;
        let cubic_a = self.a.float("cubic_coeff_a")?;
        let exclude = self.a.bool("exclude_outside")?;
        let sizes = self.a.opt_ints("sizes")?;
        let scales = match self.a.get("scales")? {
            Some(AttrValue::Floats(s)) => Some(s),
            _ => None,
        };
        if let Some(s) = &sizes {
            if s.len() != ns || s.iter().any(|&v| v <= 0) {
                bail!("sizes {s:?} do not fit {ns} spatial axes");
            }
        } else if let Some(s) = &scales {
            if s.len() != ns || s.iter().any(|&v| v <= 0.0) {
                bail!("scales {s:?} do not fit {ns} spatial axes");
            }
        } else {
            bail!("Resize needs `sizes` or `scales`");
        }
        let out = self.out_ty(0)?.shape;
        let x = self.x(0)?;
        let ins = &ty.shape[2..];
        // Per axis: the integer factor when the output repeats each input sample.
        let factor = |i: usize| -> Option<i64> {
            let f = match (&sizes, &scales) {
                (Some(s), _) if ins[i] > 0 && s[i] % ins[i] == 0 => s[i] / ins[i],
                (None, Some(s)) if s[i].fract() == 0.0 => s[i] as i64,
                _ => return None,
            };
            if f == 1 {
                return Some(1);
            }
            let floors = (ctm == "asymmetric" || ctm == "tf_half_pixel_for_nn")
                && nearest == "floor"
                || (ctm == "half_pixel" || ctm == "pytorch_half_pixel")
                    && nearest.starts_with("round_prefer");
            floors.then_some(f)
        };
        if mode == "nearest" {
            let factors: Option<Vec<i64>> = (0..ns).map(factor).collect();
            if let Some(factors) = factors {
                let chain: String = factors
                    .iter()
                    .enumerate()
                    .filter(|(_, &f)| f != 1)
                    .map(|(i, f)| format!(".repeat_interleave({f}, dim={})", i + 2))
                    .collect();
                return self.set(format!("{x}{chain}"));
            }
        }
        let half =
            ctm == "half_pixel" || (ctm == "pytorch_half_pixel" && out[2..].iter().all(|&m| m > 1));
        let interp_mode = match (mode.as_str(), ns) {
            ("linear", 1) => Some("linear"),
            ("linear", 2) => Some("bilinear"),
            ("linear", 3) => Some("trilinear"),
            ("cubic", 2) if cubic_a == -0.75 => Some("bicubic"),
            _ => None,
        };
        if let (Some(m), true, false) = (interp_mode, half || ctm == "align_corners", exclude) {
            let f = self.func("F.interpolate");
            let target = match (&sizes, &scales) {
                (Some(s), _) => format!("size={}", tuple(s)),
                (None, Some(s)) => format!(
                    "scale_factor={}",
                    if s.len() == 1 {
                        format!("({},)", f64_lit(s[0]))
                    } else {
                        format!(
                            "({})",
                            s.iter().map(|&v| f64_lit(v)).collect::<Vec<_>>().join(", ")
                        )
                    }
                ),
                _ => unreachable!("checked above"),
            };
            let corners = if ctm == "align_corners" {
                "True"
            } else {
                "False"
            };
            return self.set(format!(
                "{f}({x}, {target}, mode=\"{m}\", align_corners={corners})"
            ));
        }
        // Everything else: exact ONNX taps, one axis at a time.
        self.e.helpers.insert(Helper::Resample);
        self.e.uses_math = true;
        let mut cur = x;
        let mut lines = vec![];
        for i in 0..ns {
            let (size, scale) = match (&sizes, &scales) {
                (Some(s), _) => (s[i].to_string(), "None".to_string()),
                (None, Some(s)) => ("None".to_string(), f64_lit(s[i])),
                _ => unreachable!("checked above"),
            };
            if ins[i] >= 0 && out[2 + i] == ins[i] && (scales.as_ref().is_none_or(|s| s[i] == 1.0))
            {
                continue;
            }
            lines.push((i + 2, size, scale));
        }
        let count = lines.len();
        if count == 0 {
            self.bind(0, cur);
            return Ok(());
        }
        for (k, (dim, size, scale)) in lines.into_iter().enumerate() {
            let name = if k + 1 == count {
                self.id.clone()
            } else {
                self.local("rows")
            };
            self.line(format!(
                "{name} = resample({cur}, {dim}, {size}, {scale}, \"{mode}\", \"{ctm}\", \"{nearest}\", {}, {})",
                float(cubic_a),
                if exclude { "True" } else { "False" }
            ));
            cur = name;
        }
        self.bind(0, cur);
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Recurrent layers.

    fn recurrent(&mut self) -> Result<()> {
        let op = self.node.op.clone();
        let ty = self.in_ty(0)?;
        if ty.rank() != 3 {
            bail!("expects a [N, T, F] input");
        }
        let w = self.info("W")?;
        if w.shape.len() != 3 {
            bail!("weight 'W' of shape {:?} is not [D, G·H, F]", w.shape);
        }
        let (f, h) = (w.shape[2], self.a.int("hidden_size")? as usize);
        let direction = self.a.str("direction")?;
        let dirs: Vec<&str> = match direction.as_str() {
            "bidirectional" => vec!["forward", "reverse"],
            d => vec![if d == "reverse" { "reverse" } else { "forward" }],
        };
        let act = self.a.str("activation")?;
        let gate = if op == "RNN" {
            act.clone()
        } else {
            self.a.str("recurrent_activation")?
        };
        let lbr = op == "GRU" && self.a.bool("linear_before_reset")?;
        let standard = match op.as_str() {
            "LSTM" => act == "tanh" && gate == "sigmoid" && !self.has("P"),
            "GRU" => act == "tanh" && gate == "sigmoid" && lbr,
            _ => act == "tanh" || act == "relu",
        };
        let uses = self.e.graph.consumers();
        let used = |k: usize| uses.get(&self.node.output(k)).copied().unwrap_or(0) > 0;
        let n_out = if op == "LSTM" { 3 } else { 2 };
        let names: Vec<String> = (0..n_out)
            .map(|k| match k {
                _ if !used(k) => "_".to_string(),
                0 => self.id.clone(),
                1 => self.local("h"),
                _ => self.local("c"),
            })
            .collect();
        let x = self.x(0)?;
        if !standard {
            self.e.helpers.insert(Helper::Recurrent);
            let list = dirs
                .iter()
                .map(|d| format!("\"{d}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let layer = self.layer(format!(
                "Recurrent(\"{op}\", {f}, {h}, [{list}], \"{act}\", \"{gate}\", {})",
                if lbr { "True" } else { "False" }
            ));
            self.entry("W", "W", View::AsIs, None)?;
            self.entry("R", "R", View::AsIs, None)?;
            if self.has("B") {
                self.entry("B", "B", View::AsIs, None)?;
            } else {
                let g = w.shape[1];
                self.fill("B", w.dtype, vec![dirs.len(), 2 * g], 0.0);
            }
            if self.has("P") {
                self.entry("P", "P", View::AsIs, None)?;
            } else {
                self.fill("P", w.dtype, vec![dirs.len(), 3 * h], 0.0);
            }
            let mut targets = names.clone();
            targets.resize(3, "_".to_string());
            self.line(format!("{} = {layer}({x})", targets.join(", ")));
            for (k, n) in names.iter().enumerate() {
                if n != "_" {
                    self.bind(k, n.clone());
                }
            }
            return Ok(());
        }
        // nn.LSTM / nn.GRU / nn.RNN: gates reordered to torch's (LSTM i, f, g, o; GRU r, z, n).
        let order: Vec<usize> = match op.as_str() {
            "LSTM" => vec![0, 2, 3, 1],
            "GRU" => vec![1, 0, 2],
            _ => vec![0],
        };
        let bias = self.has("B");
        let bidir = dirs.len() == 2;
        let mut args = vec![f.to_string(), h.to_string(), "batch_first=True".to_string()];
        if op == "RNN" && act == "relu" {
            args.push("nonlinearity=\"relu\"".into());
        }
        if !bias {
            args.push("bias=False".into());
        }
        if bidir {
            args.push("bidirectional=True".into());
        }
        let layer = self.layer(format!("nn.{op}({})", args.join(", ")));
        let gh = order.len() * h;
        for (d, _) in dirs.iter().enumerate() {
            let suffix = if d == 1 { "_reverse" } else { "" };
            let gates = |offset: usize, len: usize| View::Gates {
                dir: d,
                offset,
                len,
                order: order.clone(),
            };
            self.entry(
                &format!("weight_ih_l0{suffix}"),
                "W",
                gates(0, gh * f),
                Some(vec![gh, f]),
            )?;
            self.entry(
                &format!("weight_hh_l0{suffix}"),
                "R",
                gates(0, gh * h),
                Some(vec![gh, h]),
            )?;
            if bias {
                self.entry(
                    &format!("bias_ih_l0{suffix}"),
                    "B",
                    gates(0, gh),
                    Some(vec![gh]),
                )?;
                self.entry(
                    &format!("bias_hh_l0{suffix}"),
                    "B",
                    gates(gh, gh),
                    Some(vec![gh]),
                )?;
            }
        }
        let reverse = dirs == ["reverse"];
        let input = if reverse { format!("{x}.flip(1)") } else { x };
        // torch's final states are [D, N, H]; the IR's are [N, D·H].
        let raw: Vec<String> = (0..n_out)
            .map(|k| {
                if names[k] == "_" {
                    "_".to_string()
                } else if k == 0 && !reverse {
                    names[0].clone()
                } else {
                    self.local(&format!("{}_raw", ["y", "h", "c"][k]))
                }
            })
            .collect();
        let targets = if op == "LSTM" {
            format!("{}, ({}, {})", raw[0], raw[1], raw[2])
        } else {
            format!("{}, {}", raw[0], raw[1])
        };
        self.line(format!("{targets} = {layer}({input})"));
        for k in 0..n_out {
            if names[k] == "_" {
                continue;
            }
            if k == 0 {
                if reverse {
                    self.line(format!("{} = {}.flip(1)", names[0], raw[0]));
                }
            } else {
                self.line(format!(
                    "{} = {}.transpose(0, 1).flatten(1)",
                    names[k], raw[k]
                ));
            }
            self.bind(k, names[k].clone());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting.

/// A float literal that reads back as the same f32 (`float("inf")` for infinities).
fn float(v: f32) -> String {
    if v.is_nan() {
        "float(\"nan\")".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "float(\"inf\")"
        } else {
            "-float(\"inf\")"
        }
        .into()
    } else {
        format!("{v:?}")
    }
}

/// The exact double value of an f32, as a literal (what ONNX-style f64 math on it sees).
fn f64_lit(v: f32) -> String {
    format!("{:?}", v as f64)
}

/// An int when all values agree (PyTorch's shorthand), else a tuple.
fn ints(v: &[i64]) -> String {
    if !v.is_empty() && v.iter().all(|&d| d == v[0]) {
        v[0].to_string()
    } else {
        tuple(v)
    }
}

/// Adds `name=values` unless every value is `default`.
fn push_unless(args: &mut Vec<String>, name: &str, values: &[i64], default: i64) {
    if values.iter().any(|&v| v != default) {
        args.push(format!("{name}={}", ints(values)));
    }
}

/// F.pad's list: (begin, end) pairs from the last axis to the first.
fn torch_pads(begin: &[i64], end: &[i64]) -> String {
    let v: Vec<String> = (0..begin.len())
        .rev()
        .flat_map(|i| [begin[i].to_string(), end[i].to_string()])
        .collect();
    format!("[{}]", v.join(", "))
}

/// A Python slice `start:stop:step`, parts left out when `None` (or the step is 1).
fn py_slice(start: Option<i64>, stop: Option<i64>, step: i64) -> String {
    let s = start.map(|v| v.to_string()).unwrap_or_default();
    let e = stop.map(|v| v.to_string()).unwrap_or_default();
    if step == 1 {
        format!("{s}:{e}")
    } else {
        format!("{s}:{e}:{step}")
    }
}

/// A slice end, or `None` when it reaches past the end of an axis of size `d`.
fn big(e: i64, d: i64) -> Option<i64> {
    if (d >= 0 && e >= d) || e >= 1 << 40 {
        None
    } else {
        Some(e)
    }
}

/// `dim * k` for a dim given as a literal or an expression.
fn scaled(dim: &str, k: i64) -> String {
    match dim.parse::<i64>() {
        Ok(v) => (v * k).to_string(),
        Err(_) => format!("{dim} * {k}"),
    }
}

/// LayerNorm's `normalized_shape`: an int for one axis, else a tuple.
fn normalized_shape(dims: &[i64]) -> String {
    match dims {
        [d] => d.to_string(),
        _ => tuple(dims),
    }
}
