//! Value types of the IR: element types, tensor types (dtype + shape) and attribute values.
use anyhow::{bail, Result};
use std::fmt;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32,
    F16,
    BF16,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Bool,
    /// 8-bit float, 4 exponent bits (bias 7), 3 mantissa bits; no infinities, NaN = S.1111.111.
    F8E4M3FN,
    /// 8-bit float, 4 exponent bits (bias 8), 3 mantissa bits; no infinities, no -0, NaN = 0x80.
    F8E4M3FNUZ,
    /// 8-bit float, 5 exponent bits (bias 15), 2 mantissa bits; IEEE-like infinities and NaNs.
    F8E5M2,
    /// 8-bit float, 5 exponent bits (bias 16), 2 mantissa bits; no infinities, no -0, NaN = 0x80.
    F8E5M2FNUZ,
    /// 8-bit unsigned power of two 2^(e − 127) (MX scales); 0xFF is NaN.
    F8E8M0,
    /// 4-bit float, 2 exponent bits (bias 1), 1 mantissa bit; no infinities or NaN.
    F4E2M1,
    I4,
    U4,
    I2,
    U2,
}

impl DType {
    pub const ALL: [DType; 23] = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::F64,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::Bool,
        DType::F8E4M3FN,
        DType::F8E4M3FNUZ,
        DType::F8E5M2,
        DType::F8E5M2FNUZ,
        DType::F8E8M0,
        DType::F4E2M1,
        DType::I4,
        DType::U4,
        DType::I2,
        DType::U2,
    ];

    /// Bytes per element in IR tensors. Types narrower than a byte take one byte per element
    /// (see [`DType::bits`]).
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ => 1,
            DType::F8E8M0 | DType::F4E2M1 | DType::I4 | DType::U4 | DType::I2 | DType::U2 => 1,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
        }
    }

    /// Bits of one element as frameworks pack them: 4 and 2 for the sub-byte types (ONNX packs
    /// them two and four to a byte, first element in the low bits), 8 × size otherwise.
    pub fn bits(self) -> usize {
        match self {
            DType::F4E2M1 | DType::I4 | DType::U4 => 4,
            DType::I2 | DType::U2 => 2,
            d => 8 * d.size(),
        }
    }

    /// Lower-case name used in text and docs ("float32", "int64", ...); the types NumPy lacks
    /// take ml_dtypes' names ("bfloat16", "float8_e4m3fn", "int4", ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F64 => "float64",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::Bool => "bool",
            DType::F8E4M3FN => "float8_e4m3fn",
            DType::F8E4M3FNUZ => "float8_e4m3fnuz",
            DType::F8E5M2 => "float8_e5m2",
            DType::F8E5M2FNUZ => "float8_e5m2fnuz",
            DType::F8E8M0 => "float8_e8m0fnu",
            DType::F4E2M1 => "float4_e2m1fn",
            DType::I4 => "int4",
            DType::U4 => "uint4",
            DType::I2 => "int2",
            DType::U2 => "uint2",
        }
    }

    pub fn from_name(name: &str) -> Result<DType> {
        DType::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| anyhow::anyhow!("unknown dtype '{name}'"))
    }

    /// The integer types (bool excluded).
    pub fn is_int(self) -> bool {
        !self.is_float() && self != DType::Bool
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16 | DType::F64) || self.is_minifloat()
    }

    /// Smallest and largest value of an integer type (bool: 0 and 1); unbounded otherwise.
    pub fn int_range(self) -> (i128, i128) {
        match self {
            DType::I8 => (i8::MIN as i128, i8::MAX as i128),
            DType::I16 => (i16::MIN as i128, i16::MAX as i128),
            DType::I32 => (i32::MIN as i128, i32::MAX as i128),
            DType::I64 => (i64::MIN as i128, i64::MAX as i128),
            DType::U8 => (0, u8::MAX as i128),
            DType::U16 => (0, u16::MAX as i128),
            DType::U32 => (0, u32::MAX as i128),
            DType::U64 => (0, u64::MAX as i128),
            DType::I4 => (-8, 7),
            DType::U4 => (0, 15),
            DType::I2 => (-2, 1),
            DType::U2 => (0, 3),
            DType::Bool => (0, 1),
            _ => (i128::MIN, i128::MAX),
        }
    }

    /// The 8- and 4-bit floats (see `crate::ir::narrow`).
    pub fn is_minifloat(self) -> bool {
        matches!(
            self,
            DType::F8E4M3FN
                | DType::F8E4M3FNUZ
                | DType::F8E5M2
                | DType::F8E5M2FNUZ
                | DType::F8E8M0
                | DType::F4E2M1
        )
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A tensor shape: each dim a size, `-1` for a size nobody can name, or a symbolic dim (see
/// [`crate::ir::dim`]).
pub type Shape = Vec<i64>;

/// Formats a shape as `[N, 3, H, W]` (`?` for an unnamed unknown dim).
pub fn shape_string(shape: &[i64]) -> String {
    let dims: Vec<String> = shape.iter().map(|&d| crate::ir::dim::text(d)).collect();
    format!("[{}]", dims.join(", "))
}

/// Dtype and shape of one tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Shape,
}

impl TensorType {
    pub fn new(dtype: DType, shape: Shape) -> Self {
        TensorType { dtype, shape }
    }
    pub fn f32(shape: Shape) -> Self {
        TensorType::new(DType::F32, shape)
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, shape_string(&self.shape))
    }
}

/// An attribute value of a node.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Int(i64),
    Float(f32),
    Bool(bool),
    Str(String),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Strs(Vec<String>),
    Type(DType),
    Shape(Shape),
}

/// The kinds of attribute the catalogue declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    Int,
    Float,
    Bool,
    Str,
    Ints,
    Floats,
    Strs,
    Type,
    Shape,
}

impl AttrKind {
    pub fn name(self) -> &'static str {
        match self {
            AttrKind::Int => "int",
            AttrKind::Float => "float",
            AttrKind::Bool => "bool",
            AttrKind::Str => "string",
            AttrKind::Ints => "list(int)",
            AttrKind::Floats => "list(float)",
            AttrKind::Strs => "list(string)",
            AttrKind::Type => "type",
            AttrKind::Shape => "shape",
        }
    }
}

impl AttrValue {
    /// The first symbolic dim (see [`crate::ir::dim`]) the value holds: an int, a list or a
    /// shape can (a Reshape target `[N, S, 12, 64]`, a Range limit `S`).
    pub fn symbolic_dim(&self) -> Option<i64> {
        let sym = |d: &i64| crate::ir::dim::is_symbolic(*d);
        match self {
            AttrValue::Int(d) => Some(*d).filter(sym),
            AttrValue::Ints(l) | AttrValue::Shape(l) => l.iter().copied().find(sym),
            _ => None,
        }
    }

    pub fn kind(&self) -> AttrKind {
        match self {
            AttrValue::Int(_) => AttrKind::Int,
            AttrValue::Float(_) => AttrKind::Float,
            AttrValue::Bool(_) => AttrKind::Bool,
            AttrValue::Str(_) => AttrKind::Str,
            AttrValue::Ints(_) => AttrKind::Ints,
            AttrValue::Floats(_) => AttrKind::Floats,
            AttrValue::Strs(_) => AttrKind::Strs,
            AttrValue::Type(_) => AttrKind::Type,
            AttrValue::Shape(_) => AttrKind::Shape,
        }
    }

    /// Converts a value to the declared kind where the conversion is lossless (an int where a
    /// float is declared, an empty list of any kind); otherwise reports the mismatch.
    pub fn coerce(self, kind: AttrKind) -> Result<AttrValue> {
        Ok(match (self, kind) {
            (v, k) if v.kind() == k => v,
            (AttrValue::Int(i), AttrKind::Float) => AttrValue::Float(i as f32),
            (AttrValue::Int(i), AttrKind::Bool) if i == 0 || i == 1 => AttrValue::Bool(i == 1),
            (AttrValue::Ints(v), AttrKind::Floats) => {
                AttrValue::Floats(v.into_iter().map(|i| i as f32).collect())
            }
            (AttrValue::Ints(v), AttrKind::Shape) => AttrValue::Shape(v),
            (AttrValue::Shape(v), AttrKind::Ints) => AttrValue::Ints(v),
            // A symbolic int is written as a one-dim shape (it carries the dim's name).
            (AttrValue::Shape(v), AttrKind::Int) if v.len() == 1 => AttrValue::Int(v[0]),
            (AttrValue::Ints(v), k) if v.is_empty() => empty_list(k)?,
            (AttrValue::Floats(v), k) if v.is_empty() => empty_list(k)?,
            (AttrValue::Strs(v), k) if v.is_empty() => empty_list(k)?,
            (v, k) => bail!("expected {}, found {}", k.name(), v.kind().name()),
        })
    }
}

fn empty_list(kind: AttrKind) -> Result<AttrValue> {
    Ok(match kind {
        AttrKind::Ints => AttrValue::Ints(vec![]),
        AttrKind::Floats => AttrValue::Floats(vec![]),
        AttrKind::Strs => AttrValue::Strs(vec![]),
        AttrKind::Shape => AttrValue::Shape(vec![]),
        k => bail!("expected {}, found an empty list", k.name()),
    })
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Int(v) => write!(f, "{v}"),
            AttrValue::Float(v) => write!(f, "{v}"),
            AttrValue::Bool(v) => write!(f, "{v}"),
            AttrValue::Str(v) => write!(f, "{v:?}"),
            AttrValue::Ints(v) => write!(f, "{v:?}"),
            AttrValue::Floats(v) => write!(f, "{v:?}"),
            AttrValue::Strs(v) => write!(f, "{v:?}"),
            AttrValue::Type(v) => write!(f, "{v}"),
            AttrValue::Shape(v) => write!(f, "{}", shape_string(v)),
        }
    }
}
