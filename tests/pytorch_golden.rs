//! The PyTorch emitter's output for ResNet-50 is pinned by `examples/pytorch/resnet50.py`.
//!
//! The IR is built here exactly as the ONNX frontend reads `resnet50` of
//! tests/e2e/onnx_models.py (same node names, ops and attributes; tests/e2e/test_pytorch_zoo.py
//! checks that the real conversion gives the same file). When the emitter changes on purpose,
//! regenerate the file with `MMDNN_UPDATE_GOLDEN=1 cargo test --test pytorch_golden`.
use mmdnn::backends::pytorch;
use mmdnn::ir::passes::layout::Target;
use mmdnn::ir::passes::{self, Wants};
use mmdnn::ir::{validate, AttrValue, DType, Graph, Node, TensorRef};
use mmdnn::weights::{Tensor, TensorInfo, WeightReader};
use std::collections::BTreeMap;
use std::path::Path;

/// Weights known by shape only; reading gives zeros.
#[derive(Default)]
struct Shapes(BTreeMap<(String, String), Vec<usize>>);

impl WeightReader for Shapes {
    fn info(&self, node: &str, param: &str) -> Option<TensorInfo> {
        self.0
            .get(&(node.to_string(), param.to_string()))
            .map(|s| TensorInfo {
                dtype: DType::F32,
                shape: s.clone(),
            })
    }
    fn read(&self, node: &str, param: &str) -> anyhow::Result<Tensor> {
        let info = self
            .info(node, param)
            .ok_or_else(|| anyhow::anyhow!("no weight {node}/{param}"))?;
        Tensor::new(info.dtype, info.shape.clone(), vec![0u8; info.nbytes()])
    }
    fn keys(&self) -> Vec<(String, String)> {
        self.0.keys().cloned().collect()
    }
}

/// Mirrors onnx_models.Net: one counter names initializers and nodes alike.
struct Net {
    g: Graph,
    w: Shapes,
    count: usize,
}

fn ints(v: &[i64]) -> AttrValue {
    AttrValue::Ints(v.to_vec())
}

fn s(v: &str) -> AttrValue {
    AttrValue::Str(v.to_string())
}

impl Net {
    fn name(&mut self, base: &str) -> String {
        self.count += 1;
        format!("{base}_{}", self.count)
    }

    fn add(&mut self, node: Node) -> TensorRef {
        self.g.add(node).expect("unique names")
    }

    fn weight(&mut self, node: &str, param: &str, shape: &[usize]) {
        self.w
            .0
            .insert((node.to_string(), param.to_string()), shape.to_vec());
    }

    fn conv(
        &mut self,
        x: TensorRef,
        cin: usize,
        cout: usize,
        k: i64,
        stride: i64,
        pad: i64,
    ) -> TensorRef {
        self.count += 1; // the weight initializer
        let name = self.name("conv");
        self.weight(&name, "weights", &[cout, cin, k as usize, k as usize]);
        self.add(
            Node::new(&name, "Conv")
                .with_inputs([x])
                .with_attr("pads", ints(&[pad; 4]))
                .with_attr("dilations", ints(&[1, 1]))
                .with_attr("kernel_shape", ints(&[k, k]))
                .with_attr("data_format", s("channels_first"))
                .with_attr("strides", ints(&[stride, stride]))
                .with_attr("group", AttrValue::Int(1))
                .with_attr("out_channels", AttrValue::Int(cout as i64)),
        )
    }

    fn bn(&mut self, x: TensorRef, c: usize) -> TensorRef {
        self.count += 4; // scale, bias, mean, var
        let name = self.name("batchnormalization");
        for p in ["scale", "bias", "mean", "var"] {
            self.weight(&name, p, &[c]);
        }
        self.add(
            Node::new(&name, "BatchNorm")
                .with_inputs([x])
                .with_attr("axis", AttrValue::Int(1))
                .with_attr("epsilon", AttrValue::Float(1e-5))
                .with_attr("use_bias", AttrValue::Bool(true))
                .with_attr("use_scale", AttrValue::Bool(true)),
        )
    }

    fn op(&mut self, op: &str, base: &str, inputs: Vec<TensorRef>) -> TensorRef {
        let name = self.name(base);
        self.add(Node::new(&name, op).with_inputs(inputs))
    }
}

/// ResNet-50 as the ONNX frontend reads tests/e2e/onnx_models.py's `resnet50`.
fn resnet50() -> (Graph, Shapes) {
    let mut n = Net {
        g: Graph {
            producer: "tests/pytorch_golden.rs".into(),
            ..Graph::default()
        },
        w: Shapes::default(),
        count: 0,
    };
    let x = n.add(
        Node::new("x", "DataInput")
            .with_attr("dtype", AttrValue::Type(DType::F32))
            .with_attr("shape", AttrValue::Shape(vec![1, 3, 224, 224])),
    );
    n.g.inputs.push("x".into());
    let x = n.conv(x, 3, 64, 7, 2, 3);
    let x = n.bn(x, 64);
    let x = n.op("Relu", "relu", vec![x]);
    let name = n.name("maxpool");
    let mut x = n.add(
        Node::new(&name, "Pool")
            .with_inputs([x])
            .with_attr("pooling_type", s("MAX"))
            .with_attr("ceil_mode", AttrValue::Bool(false))
            .with_attr("count_include_pad", AttrValue::Bool(false))
            .with_attr("kernel_shape", ints(&[3, 3]))
            .with_attr("strides", ints(&[2, 2]))
            .with_attr("dilations", ints(&[1, 1]))
            .with_attr("pads", ints(&[1, 1, 1, 1]))
            .with_attr("data_format", s("channels_first")),
    );
    let mut cin = 64;
    for (width, blocks, stride) in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)] {
        for b in 0..blocks {
            let st = if b == 0 { stride } else { 1 };
            let y = n.conv(x.clone(), cin, width, 1, 1, 0);
            let y = n.bn(y, width);
            let y = n.op("Relu", "relu", vec![y]);
            let y = n.conv(y, width, width, 3, st, 1);
            let y = n.bn(y, width);
            let y = n.op("Relu", "relu", vec![y]);
            let y = n.conv(y, width, width * 4, 1, 1, 0);
            let y = n.bn(y, width * 4);
            if b == 0 {
                let s = n.conv(x.clone(), cin, width * 4, 1, st, 0);
                x = n.bn(s, width * 4);
            }
            let sum = n.op("Add", "add", vec![y, x.clone()]);
            x = n.op("Relu", "relu", vec![sum]);
            cin = width * 4;
        }
    }
    let name = n.name("globalaveragepool");
    let x = n.add(
        Node::new(&name, "GlobalPool")
            .with_inputs([x])
            .with_attr("data_format", s("channels_first"))
            .with_attr("keepdims", AttrValue::Bool(true))
            .with_attr("pooling_type", s("AVG")),
    );
    let name = n.name("flatten");
    let x = n.add(
        Node::new(&name, "Flatten")
            .with_inputs([x])
            .with_attr("axis", AttrValue::Int(1)),
    );
    n.weight("logits", "weights", &[2048, 1000]);
    n.weight("logits", "bias", &[1000]);
    let y = n.add(
        Node::new("logits", "FullyConnected")
            .with_inputs([x])
            .with_attr("use_bias", AttrValue::Bool(true))
            .with_attr("units", AttrValue::Int(1000)),
    );
    n.g.outputs.push(y);
    validate::check(&mut n.g, Some(&n.w)).expect("a valid graph");
    (n.g, n.w)
}

#[test]
fn resnet50_code_matches_the_golden_file() {
    let (graph, weights) = resnet50();
    let wants = Wants {
        layout: Target::ChannelsFirst,
        io: Default::default(),
    };
    let prepared = passes::prepare(&graph, &weights, wants).expect("converts the layout");
    let generated = pytorch::generate(prepared).expect("emits");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pytorch/resnet50.py");
    if std::env::var_os("MMDNN_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &generated.code).expect("writes the golden file");
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        golden == generated.code,
        "the generated ResNet-50 code differs from {}; if the change is intended, run \
         `MMDNN_UPDATE_GOLDEN=1 cargo test --test pytorch_golden` and review the diff",
        path.display()
    );
    // One layer per weighted node, BatchNorm with its five entries.
    assert_eq!(generated.state.len(), 53 + 53 * 5 + 2);
    assert_eq!(generated.state[0].key, "conv_2.weight");
    assert_eq!(generated.state.last().unwrap().key, "logits.bias");
}
