//! Speed of the reference interpreter on ResNet-50 (224×224, batch 1, random weights), in both
//! data formats. Ignored by default; run with
//!
//!   cargo test --release --test interp_perf -- --ignored --nocapture
//!
//! The target is within 3× onnxruntime's time on the same 2-core machine. Measured when this
//! was written (AMD EPYC, 2 cores, other jobs running): single-threaded CPU time ≈ 200 ms against
//! onnxruntime's ≈ 105 ms for the same network; wall time with both cores ≈ 1.4–1.6× onnxruntime.
//! With `MMDNN_THREADS=1` the test also prints this thread's CPU time, which other load on the
//! machine does not distort.
use mmdnn::interp::{Interpreter, Value};
use mmdnn::ir::graph::{Graph, Node};
use mmdnn::ir::types::AttrValue;
use mmdnn::ir::{validate, DType, TensorRef};
use mmdnn::weights::{MemoryWeights, Tensor};
use ndarray::{ArrayD, IxDyn};
use std::time::Instant;

/// Deterministic pseudo-random numbers in [-1, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn tensor(&mut self, shape: &[usize], scale: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| self.next() * scale).collect();
        Tensor::from_f32(shape.to_vec(), &v).unwrap()
    }
}

struct Builder {
    graph: Graph,
    weights: MemoryWeights,
    rng: Lcg,
    cl: bool,
    count: usize,
}

impl Builder {
    fn name(&mut self, base: &str) -> String {
        self.count += 1;
        format!("{base}{}", self.count)
    }

    fn node(&mut self, node: Node, input: &TensorRef) -> TensorRef {
        let node = node.with_inputs([input.clone()]);
        self.graph.add(node).unwrap()
    }

    fn format(&self) -> AttrValue {
        AttrValue::Str(
            if self.cl {
                "channels_last"
            } else {
                "channels_first"
            }
            .into(),
        )
    }

    fn conv(
        &mut self,
        x: &TensorRef,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
    ) -> TensorRef {
        let name = self.name("conv");
        let pad = (k / 2) as i64;
        let shape = if self.cl {
            vec![k, k, cin, cout]
        } else {
            vec![cout, cin, k, k]
        };
        let scale = (2.0 / (cin * k * k) as f32).sqrt();
        let w = self.rng.tensor(&shape, scale);
        self.weights.insert(&name, "weights", w);
        let node = Node::new(&name, "Conv")
            .with_attr("kernel_shape", AttrValue::Ints(vec![k as i64; 2]))
            .with_attr("strides", AttrValue::Ints(vec![stride as i64; 2]))
            .with_attr("pads", AttrValue::Ints(vec![pad; 4]))
            .with_attr("out_channels", AttrValue::Int(cout as i64))
            .with_attr("data_format", self.format());
        let y = self.node(node, x);
        self.batch_norm(&y, cout)
    }

    fn batch_norm(&mut self, x: &TensorRef, c: usize) -> TensorRef {
        let name = self.name("bn");
        let mean = self.rng.tensor(&[c], 0.1);
        let var: Vec<f32> = (0..c).map(|_| 1.0 + 0.1 * self.rng.next()).collect();
        let scale = self.rng.tensor(&[c], 0.5);
        let bias = self.rng.tensor(&[c], 0.1);
        self.weights.insert(&name, "mean", mean);
        self.weights
            .insert(&name, "var", Tensor::from_f32(vec![c], &var).unwrap());
        self.weights.insert(&name, "scale", scale);
        self.weights.insert(&name, "bias", bias);
        let axis = if self.cl { -1 } else { 1 };
        let node = Node::new(&name, "BatchNorm").with_attr("axis", AttrValue::Int(axis));
        self.node(node, x)
    }

    fn relu(&mut self, x: &TensorRef) -> TensorRef {
        let name = self.name("relu");
        self.node(Node::new(&name, "Relu"), x)
    }

    fn bottleneck(&mut self, x: &TensorRef, cin: usize, width: usize, stride: usize) -> TensorRef {
        let cout = width * 4;
        let a = self.conv(x, cin, width, 1, 1);
        let a = self.relu(&a);
        let b = self.conv(&a, width, width, 3, stride);
        let b = self.relu(&b);
        let c = self.conv(&b, width, cout, 1, 1);
        let skip = if stride != 1 || cin != cout {
            self.conv(x, cin, cout, 1, stride)
        } else {
            x.clone()
        };
        let name = self.name("add");
        let add = Node::new(&name, "Add").with_inputs([c, skip]);
        let y = self.graph.add(add).unwrap();
        self.relu(&y)
    }
}

fn resnet50(cl: bool) -> (Graph, MemoryWeights) {
    let mut b = Builder {
        graph: Graph::default(),
        weights: MemoryWeights::default(),
        rng: Lcg(42),
        cl,
        count: 0,
    };
    let shape = if cl {
        vec![1, 224, 224, 3]
    } else {
        vec![1, 3, 224, 224]
    };
    let x = b
        .graph
        .add(
            Node::new("input", "DataInput")
                .with_attr("dtype", AttrValue::Type(DType::F32))
                .with_attr("shape", AttrValue::Shape(shape)),
        )
        .unwrap();
    b.graph.inputs.push("input".into());
    let y = b.conv(&x, 3, 64, 7, 2);
    let y = b.relu(&y);
    let pool = Node::new("maxpool", "Pool")
        .with_attr("kernel_shape", AttrValue::Ints(vec![3, 3]))
        .with_attr("strides", AttrValue::Ints(vec![2, 2]))
        .with_attr("pads", AttrValue::Ints(vec![1; 4]))
        .with_attr("data_format", b.format());
    let mut y = b.node(pool, &y);
    let mut cin = 64;
    for (stage, &(blocks, width)) in [(3, 64), (4, 128), (6, 256), (3, 512)].iter().enumerate() {
        for i in 0..blocks {
            let stride = if i == 0 && stage > 0 { 2 } else { 1 };
            y = b.bottleneck(&y, cin, width, stride);
            cin = width * 4;
        }
    }
    let gp = Node::new("gap", "GlobalPool")
        .with_attr("keepdims", AttrValue::Bool(false))
        .with_attr("data_format", b.format());
    let y = b.node(gp, &y);
    let w = b.rng.tensor(&[2048, 1000], 0.03);
    b.weights.insert("fc", "weights", w);
    let fc = Node::new("fc", "FullyConnected").with_attr("units", AttrValue::Int(1000));
    let y = b.node(fc, &y);
    let y = b.node(Node::new("prob", "Softmax"), &y);
    b.graph.outputs.push(y);
    validate::check(&mut b.graph, Some(&b.weights)).unwrap();
    (b.graph, b.weights)
}

/// CPU time of this thread so far (ns), where /proc provides it: with MMDNN_THREADS=1 this
/// measures the interpreter's work independently of other load on the machine.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn bench(cl: bool) -> f64 {
    let (graph, weights) = resnet50(cl);
    let shape = if cl {
        [1, 224, 224, 3]
    } else {
        [1, 3, 224, 224]
    };
    let mut rng = Lcg(7);
    let x = ArrayD::from_shape_fn(IxDyn(&shape), |_| rng.next());
    let feeds = vec![("input".to_string(), Value::F32(x))];
    let interp = Interpreter::new(&graph, &weights);
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    for i in 0..6 {
        let t = Instant::now();
        let c0 = thread_cpu_ns();
        let out = interp.run(&feeds).unwrap();
        let dt = t.elapsed().as_secs_f64();
        if let (Some(a), Some(b), true) = (c0, thread_cpu_ns(), i > 0) {
            cpu.push((b - a) as f64 * 1e-6);
        }
        assert_eq!(out[0].shape(), [1, 1000]);
        let sum: f32 = out[0].as_f32().unwrap().sum();
        assert!((sum - 1.0).abs() < 1e-3, "softmax sums to {sum}");
        if i > 0 {
            times.push(dt); // the first run also converts and caches the weights
        }
    }
    // Time per op type, from the gaps between node callbacks.
    let mut per_op: std::collections::BTreeMap<String, f64> = Default::default();
    let mut last = Instant::now();
    interp
        .run_all(&feeds, &mut |node, _| {
            let now = Instant::now();
            *per_op.entry(node.op.clone()).or_default() += (now - last).as_secs_f64();
            last = now;
        })
        .unwrap();
    let breakdown: Vec<String> = per_op
        .iter()
        .map(|(op, t)| format!("{op} {:.1}", t * 1e3))
        .collect();
    println!("  per op (ms): {}", breakdown.join(", "));
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    cpu.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if !cpu.is_empty() {
        println!(
            "  main-thread CPU time: median {:.1} ms",
            cpu[cpu.len() / 2]
        );
    }
    let median = times[times.len() / 2];
    println!(
        "ResNet-50 {}: median {:.1} ms, best {:.1} ms",
        if cl {
            "channels_last"
        } else {
            "channels_first"
        },
        median * 1e3,
        times[0] * 1e3
    );
    median
}

#[test]
#[ignore = "benchmark; run with --release --ignored --nocapture"]
fn resnet50_speed() {
    bench(false);
    bench(true);
}
