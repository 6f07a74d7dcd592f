//! One-op IR graphs for the backends' snapshot tests (the PyTorch backend's `ops/tests/`, the
//! ONNX script's `code/snapshots.rs`): DataInputs feeding one node named after its op, that
//! node's weights (zeros; only their shapes reach the code) in a `MemoryWeights`.
use crate::ir::{validate, AttrValue, DType, Graph, Node, TensorRef};
use crate::weights::{MemoryWeights, Tensor};

/// A graph under construction around one node.
pub(crate) struct OneOp {
    graph: Graph,
    weights: MemoryWeights,
    node: Node,
    outputs: usize,
}

impl OneOp {
    /// A node of `op`, named after it in lower case, with one output.
    pub fn new(op: &str) -> Self {
        OneOp {
            graph: Graph::default(),
            weights: MemoryWeights::default(),
            node: Node::new(op.to_lowercase(), op),
            outputs: 1,
        }
    }

    /// A float32 graph input `name` of `shape` read by the node as its next input.
    pub fn input(self, name: &str, shape: &[i64]) -> Self {
        self.typed_input(name, DType::F32, shape)
    }

    /// A graph input of `dtype` read by the node as its next input.
    pub fn typed_input(mut self, name: &str, dtype: DType, shape: &[i64]) -> Self {
        let input = Node::new(name, "DataInput")
            .with_attr("dtype", AttrValue::Type(dtype))
            .with_attr("shape", AttrValue::Shape(shape.to_vec()));
        let r = self.graph.add(input).expect("input names are unique");
        self.graph.inputs.push(name.to_string());
        self.node.inputs.push(r);
        self
    }

    pub fn attr(mut self, name: &str, value: AttrValue) -> Self {
        self.node.attrs.insert(name.to_string(), value);
        self
    }

    pub fn int(self, name: &str, v: i64) -> Self {
        self.attr(name, AttrValue::Int(v))
    }

    pub fn ints(self, name: &str, v: &[i64]) -> Self {
        self.attr(name, AttrValue::Ints(v.to_vec()))
    }

    pub fn float(self, name: &str, v: f32) -> Self {
        self.attr(name, AttrValue::Float(v))
    }

    pub fn floats(self, name: &str, v: &[f32]) -> Self {
        self.attr(name, AttrValue::Floats(v.to_vec()))
    }

    pub fn str(self, name: &str, v: &str) -> Self {
        self.attr(name, AttrValue::Str(v.to_string()))
    }

    pub fn bool(self, name: &str, v: bool) -> Self {
        self.attr(name, AttrValue::Bool(v))
    }

    /// A float32 weight of the node, zeros of `shape`.
    pub fn weight(mut self, param: &str, shape: &[usize]) -> Self {
        let n: usize = shape.iter().product();
        let zeros = Tensor::from_f32(shape.to_vec(), &vec![0.0; n]).expect("sized to the shape");
        self.weights.insert(&self.node.name, param, zeros);
        self
    }

    /// The graph returns the node's first `n` outputs (default 1).
    pub fn outputs(mut self, n: usize) -> Self {
        self.outputs = n;
        self
    }

    /// The validated graph (output types filled in) and its weights; panics, naming the
    /// problem, when the test built an invalid graph.
    pub fn build(mut self) -> (Graph, MemoryWeights) {
        let name = self.node.name.clone();
        self.graph.add(self.node).expect("the node name is unique");
        self.graph.outputs = (0..self.outputs)
            .map(|k| TensorRef::new(&name, k))
            .collect();
        validate::check(&mut self.graph, Some(&self.weights))
            .unwrap_or_else(|e| panic!("invalid test graph: {e:#}"));
        (self.graph, self.weights)
    }
}

/// The graph prepared as the pipeline does by default for the PyTorch and ONNX targets
/// (channels-first inside, the source's layout at the inputs and outputs).
pub fn channels_first<'w>(
    graph: &crate::ir::Graph,
    weights: &'w dyn crate::weights::WeightReader,
) -> anyhow::Result<crate::ir::passes::Prepared<'w>> {
    let wants = crate::ir::passes::Wants {
        layout: crate::ir::passes::layout::Target::ChannelsFirst,
        io: Default::default(),
    };
    crate::ir::passes::prepare(graph, weights, wants)
}
