//! Test support: a minimal pickle assembler, `.npy` wrappers for MMdnn-style pickles, and
//! readers of decoded tensor values.

use super::mmdnn::decode_legacy_weights;
use super::opcodes::op;
use super::NumpyTensor;

pub(super) fn values<const N: usize, T>(
    t: &NumpyTensor,
    descr: &str,
    from: fn([u8; N]) -> T,
) -> Vec<T> {
    assert_eq!(t.descr, descr);
    assert_eq!(t.data.len() % N, 0);
    t.data
        .chunks_exact(N)
        .map(|c| from(c.try_into().unwrap()))
        .collect()
}

pub(super) fn f32s(t: &NumpyTensor) -> Vec<f32> {
    values(t, "<f4", f32::from_le_bytes)
}

pub(super) fn f64s(t: &NumpyTensor) -> Vec<f64> {
    values(t, "<f8", f64::from_le_bytes)
}

pub(super) fn i64s(t: &NumpyTensor) -> Vec<i64> {
    values(t, "<i8", i64::from_le_bytes)
}

/// Minimal pickle assembler for the synthetic cases below.
pub(super) struct P(Vec<u8>);

impl P {
    pub(super) fn new(protocol: u8) -> Self {
        P(vec![op::PROTO, protocol])
    }
    pub(super) fn op(mut self, code: u8) -> Self {
        self.0.push(code);
        self
    }
    pub(super) fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    pub(super) fn global(self, module: &str, name: &str) -> Self {
        self.op(op::GLOBAL)
            .raw(format!("{module}\n{name}\n").as_bytes())
    }
    pub(super) fn int(self, n: u8) -> Self {
        self.op(op::BININT1).raw(&[n])
    }
    /// Any non-negative int, as LONG1 (8 bytes).
    pub(super) fn long(self, n: u64) -> Self {
        self.op(op::LONG1).raw(&[8]).raw(&n.to_le_bytes())
    }
    pub(super) fn neg1(self) -> Self {
        self.op(op::BININT).raw(&(-1i32).to_le_bytes())
    }
    pub(super) fn text(self, s: &str) -> Self {
        let len = u32::try_from(s.len()).unwrap().to_le_bytes();
        self.op(op::BINUNICODE).raw(&len).raw(s.as_bytes())
    }
    pub(super) fn bytes(self, b: &[u8]) -> Self {
        let len = u32::try_from(b.len()).unwrap().to_le_bytes();
        self.op(op::BINBYTES).raw(&len).raw(b)
    }
    pub(super) fn put(self, i: u8) -> Self {
        self.op(op::BINPUT).raw(&[i])
    }
    pub(super) fn get(self, i: u8) -> Self {
        self.op(op::BINGET).raw(&[i])
    }
    /// `numpy.dtype(name)` with its BUILD state.
    pub(super) fn dtype(self, name: &str, endian: &str) -> Self {
        self.global("numpy", "dtype")
            .text(name)
            .op(op::NEWFALSE)
            .op(op::NEWTRUE)
            .op(op::TUPLE3)
            .op(op::REDUCE)
            .op(op::MARK)
            .int(3)
            .text(endian)
            .op(op::NONE)
            .op(op::NONE)
            .op(op::NONE)
            .neg1()
            .neg1()
            .int(0)
            .op(op::TUPLE)
            .op(op::BUILD)
    }
    /// A complete `_reconstruct` + BUILD array.
    pub(super) fn array(
        self,
        name: &str,
        endian: &str,
        shape: &[u64],
        fortran: bool,
        raw: &[u8],
    ) -> Self {
        let mut p = self
            .global("numpy.core.multiarray", "_reconstruct")
            .global("numpy", "ndarray")
            .int(0)
            .op(op::TUPLE1)
            .op(op::SHORT_BINBYTES)
            .raw(&[1, b'b'])
            .op(op::TUPLE3)
            .op(op::REDUCE)
            .op(op::MARK)
            .int(1)
            .op(op::MARK);
        for &d in shape {
            p = p.long(d);
        }
        p.op(op::TUPLE)
            .dtype(name, endian)
            .op(if fortran { op::NEWTRUE } else { op::NEWFALSE })
            .bytes(raw)
            .op(op::TUPLE)
            .op(op::BUILD)
    }
    /// The pickle bytes as they are.
    pub(super) fn finish(self) -> Vec<u8> {
        self.0
    }
    /// Wraps as `.npy` with an object header.
    pub(super) fn npy(self) -> Vec<u8> {
        let mut out = npy_header("{'descr': '|O', 'fortran_order': False, 'shape': (), }");
        out.extend_from_slice(&self.0);
        out
    }
}

/// A version 1.0 `.npy` header around the dict literal `dict`.
pub(super) fn npy_header(dict: &str) -> Vec<u8> {
    let mut header = dict.as_bytes().to_vec();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
    out.extend_from_slice(&header);
    out
}

/// `{layer: {param: <pushed by body>}}` as a bare top-level dict.
pub(super) fn one_param(layer: &str, param: &str, body: impl FnOnce(P) -> P) -> Vec<u8> {
    let p = P::new(2)
        .op(op::EMPTY_DICT)
        .text(layer)
        .op(op::EMPTY_DICT)
        .text(param);
    body(p).op(op::SETITEM).op(op::SETITEM).op(op::STOP).npy()
}

pub(super) fn decode_err(bytes: &[u8]) -> String {
    match decode_legacy_weights(bytes, "test.npy") {
        Ok(t) => panic!("decoded {} tensors but should fail", t.len()),
        Err(e) => format!("{e:#}"),
    }
}
