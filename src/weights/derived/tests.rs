//! The reader: infos without reads, reads, keys, and streaming through each path.
use super::*;
use crate::weights::mapped::FileMap;
use crate::weights::MemoryWeights;
use std::cell::Cell;
use std::path::PathBuf;

/// Weights in memory that count the reads and streams asked of them.
#[derive(Default)]
struct Counting {
    store: MemoryWeights,
    reads: Cell<usize>,
    streams: Cell<usize>,
}

impl WeightReader for Counting {
    fn info(&self, node: &str, param: &str) -> Option<TensorInfo> {
        self.store.info(node, param)
    }
    fn read(&self, node: &str, param: &str) -> Result<Tensor> {
        self.reads.set(self.reads.get() + 1);
        self.store.read(node, param)
    }
    fn keys(&self) -> Vec<(String, String)> {
        self.store.keys()
    }
    fn write_to(&self, node: &str, param: &str, w: &mut dyn Sink) -> Result<u64> {
        self.streams.set(self.streams.get() + 1);
        write_tensor(&self.store.read(node, param)?, w)
    }
}

/// An input file of named tensors.
struct Files(PathBuf, MemoryWeights);

impl TensorFile for Files {
    fn path(&self) -> &Path {
        &self.0
    }
    fn info(&self, name: &str) -> Result<TensorInfo> {
        self.1.info(name, "").context("no such dataset")
    }
    fn read(&self, name: &str) -> Result<Tensor> {
        self.1.read(name, "")
    }
}

struct Later(Tensor);

impl LazyTensor for Later {
    fn info(&self) -> TensorInfo {
        self.0.info.clone()
    }
    fn read(&self) -> Result<Tensor> {
        Ok(self.0.clone())
    }
}

fn f32s(shape: &[usize], first: f32) -> Tensor {
    let n = shape.iter().product::<usize>();
    let values: Vec<f32> = (0..n).map(|i| first + i as f32).collect();
    Tensor::from_f32(shape.to_vec(), &values).unwrap()
}

fn counting() -> Counting {
    let mut c = Counting::default();
    c.store.insert("fc", "weights", f32s(&[3, 2], 0.0));
    c.store.insert("c", "value", f32s(&[2, 3], 10.0));
    c
}

fn streamed(w: &DerivedWeights, node: &str, param: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let n = w.write_to(node, param, &mut out).unwrap();
    assert_eq!(n as usize, out.len());
    out
}

#[test]
fn infos_come_without_reading_and_reads_apply_the_steps() {
    let inner = counting();
    let mut w = DerivedWeights::over(&inner);
    w.insert("fc", "weights", Derived::weight("fc", "weights"));
    w.insert(
        "c_t",
        "value",
        Derived::weight("c", "value").then(Step::Permute(vec![2, 1, 0])),
    );
    w.insert(
        "fc",
        "rows",
        Derived::weight("fc", "weights").then(Step::Rows(vec![2, 0, 1])),
    );
    w.insert(
        "fc",
        "half",
        Derived::weight("fc", "weights").then(Step::Cast(DType::F16)),
    );
    let shape = |n: &str, p: &str| w.info(n, p).unwrap().shape;
    assert_eq!(shape("fc", "weights"), vec![3, 2]);
    assert_eq!(shape("c_t", "value"), vec![3, 2, 1]);
    assert_eq!(shape("fc", "rows"), vec![3, 2]);
    assert_eq!(w.info("fc", "half").unwrap().dtype, DType::F16);
    assert_eq!(w.info("fc", "nothing"), None);
    assert_eq!(inner.reads.get(), 0);
    // [2, 3] from 10, padded to [1, 2, 3] and reversed: element (k, j, 0) is (j, k).
    let t = w.read("c_t", "value").unwrap();
    assert_eq!(t.to_f32(), vec![10., 13., 11., 14., 12., 15.]);
    let t = w.read("fc", "rows").unwrap();
    assert_eq!(t.to_f32(), vec![4., 5., 0., 1., 2., 3.]);
    assert_eq!(
        w.read("fc", "half").unwrap().to_f32(),
        f32s(&[6], 0.0).to_f32()
    );
    assert_eq!(
        w.keys(),
        [
            ("fc", "weights"),
            ("c_t", "value"),
            ("fc", "rows"),
            ("fc", "half")
        ]
        .map(|(n, p)| (n.to_string(), p.to_string()))
    );
    let err = format!("{:#}", w.read("fc", "nothing").unwrap_err());
    assert!(err.contains("no weight 'nothing' for node 'fc'"), "{err}");
}

#[test]
fn reshapes_of_an_inner_weight_are_streamed_by_the_inner_reader() {
    let inner = counting();
    let mut w = DerivedWeights::over(&inner);
    w.insert("fc", "weights", Derived::weight("fc", "weights"));
    w.insert(
        "fc",
        "flat",
        Derived::weight("fc", "weights").then(Step::Reshape(vec![6])),
    );
    w.insert(
        "fc",
        "bad",
        Derived::weight("fc", "weights").then(Step::Reshape(vec![7])),
    );
    let bytes = inner.store.read("fc", "weights").unwrap().data;
    assert_eq!(streamed(&w, "fc", "weights"), bytes);
    assert_eq!(streamed(&w, "fc", "flat"), bytes);
    assert_eq!((inner.streams.get(), inner.reads.get()), (2, 0));
    // A reshape that does not fit fails before anything is written.
    let mut out = Vec::new();
    let err = format!("{:#}", w.write_to("fc", "bad", &mut out).unwrap_err());
    assert!(out.is_empty());
    assert!(err.contains("weight 'bad' of node 'fc'"), "{err}");
    assert!(err.contains("cannot view [3, 2] as [7]"), "{err}");
}

#[test]
fn row_reorders_stream_from_memory_and_from_maps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kernel");
    let kernel = f32s(&[1000, 70], 0.5);
    std::fs::write(&path, &kernel.data).unwrap();
    let map = FileMap::open(&path).unwrap();
    let mapped = Tensor::new(DType::F32, vec![1000, 70], map.bytes()).unwrap();
    let rows: Vec<usize> = (0..1000).map(|i| (i * 7 + 3) % 1000).collect();
    let mut inner = Counting::default();
    inner.store.insert("fc", "weights", mapped);
    let mut w = DerivedWeights::over(&inner);
    let reordered = Derived::weight("fc", "weights").then(Step::Rows(rows.clone()));
    w.insert("fc", "weights", reordered.clone());
    w.insert("fc", "flat", reordered.then(Step::Reshape(vec![70_000])));
    let memory = Derived::literal(kernel.clone()).then(Step::Rows(rows.clone()));
    w.insert("lit", "weights", memory);
    let expected: Vec<u8> = rows
        .iter()
        .flat_map(|&r| kernel.data[r * 280..(r + 1) * 280].to_vec())
        .collect();
    assert_eq!(streamed(&w, "fc", "weights"), expected);
    assert_eq!(streamed(&w, "fc", "flat"), expected);
    assert_eq!(streamed(&w, "lit", "weights"), expected);
    assert_eq!(&w.read("fc", "weights").unwrap().data[..], &expected[..]);
    // Rows out of range fail before anything is written.
    w.insert(
        "fc",
        "bad",
        Derived::weight("fc", "weights").then(Step::Rows(vec![1000])),
    );
    let mut out = Vec::new();
    assert!(w.write_to("fc", "bad", &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn file_literal_and_lazy_sources_stack_per_direction() {
    let mut files = MemoryWeights::default();
    files.insert("/fwd", "", f32s(&[2, 4], 0.0));
    files.insert("/bwd", "", f32s(&[2, 4], 100.0));
    let mut w = DerivedWeights::default().with_file(Files("m.h5".into(), files));
    let both = Derived::stacked(vec![
        Source::File("/fwd".into()),
        Source::File("/bwd".into()),
    ]);
    w.insert(
        "rnn",
        "W",
        both.clone()
            .then(Step::Permute(vec![1, 0]))
            .then(Step::Gates {
                axis: 0,
                order: vec![1, 0],
            })
            .then(Step::Stack),
    );
    w.insert("rnn", "unstacked", both);
    w.insert("k", "value", Derived::literal(f32s(&[2], 7.0)));
    w.insert(
        "l",
        "value",
        Derived::lazy(Arc::new(Later(f32s(&[4], 1.0)))).then(Step::Reshape(vec![2, 2])),
    );
    w.insert("gone", "W", Derived::file("/missing"));
    // Per direction: [2, 4] → [4, 2] (row r is column r), gate halves swapped; then stacked.
    let t = w.read("rnn", "W").unwrap();
    assert_eq!(t.info.shape, vec![2, 4, 2]);
    let direction = |base: f32| -> Vec<f32> {
        [2usize, 3, 0, 1]
            .iter()
            .flat_map(|&c| [base + c as f32, base + 4.0 + c as f32])
            .collect()
    };
    assert_eq!(t.to_f32(), [direction(0.0), direction(100.0)].concat());
    assert_eq!(w.info("rnn", "unstacked"), None);
    let err = format!("{:#}", w.read("rnn", "unstacked").unwrap_err());
    assert!(err.contains("a Stack step is missing"), "{err}");
    assert!(
        err.contains("'unstacked' of node 'rnn' from m.h5 (/fwd, /bwd)"),
        "{err}"
    );
    assert_eq!(w.read("k", "value").unwrap().to_f32(), vec![7.0, 8.0]);
    assert_eq!(w.info("l", "value").unwrap().shape, vec![2, 2]);
    assert_eq!(streamed(&w, "l", "value"), f32s(&[4], 1.0).data);
    assert!(format!("{:#}", w.read("gone", "W").unwrap_err()).contains("/missing"));
    // Without a file, file sources say so.
    let mut bare = DerivedWeights::default();
    bare.insert("x", "W", Derived::file("/fwd"));
    let err = format!("{:#}", bare.read("x", "W").unwrap_err());
    assert!(err.contains("no weights file was given"), "{err}");
}

#[test]
fn entries_collect_in_order_and_replace_in_place() {
    let mut w: DerivedWeights = [("b", 1.0), ("a", 2.0)]
        .into_iter()
        .map(|(n, v)| {
            let key = (n.to_string(), "value".to_string());
            (key, Derived::filled(DType::F32, vec![1], v).unwrap())
        })
        .collect();
    w.insert("b", "value", Derived::literal(f32s(&[1], 3.0)));
    let keys: Vec<String> = w.keys().into_iter().map(|k| k.0).collect();
    assert_eq!(keys, ["b", "a"]);
    assert_eq!(w.read("b", "value").unwrap().to_f32(), vec![3.0]);
    assert_eq!(w.read("a", "value").unwrap().to_f32(), vec![2.0]);
}
