//! The NumPy `.npy` format: header parsing and writing, and dtype descriptors.
//! The types NumPy lacks (bfloat16, the narrow floats and integers) are stored as bit patterns
//! or values of a NumPy integer type (see `crate::weights`).
use crate::ir::DType;
use anyhow::{anyhow, bail, Context, Result};

pub const MAGIC: &[u8] = b"\x93NUMPY";

/// A parsed `.npy` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Offset of the data from the start of the file.
    pub data_offset: usize,
}

/// NumPy descriptor of a dtype (little-endian). bfloat16 maps to `<u2`, the narrow floats and
/// unsigned integers to `|u1`, INT4 and INT2 to `|i1`.
pub fn descr(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "<f4",
        DType::F16 => "<f2",
        DType::BF16 => "<u2",
        DType::F64 => "<f8",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::Bool => "|b1",
        DType::F8E4M3FN
        | DType::F8E4M3FNUZ
        | DType::F8E5M2
        | DType::F8E5M2FNUZ
        | DType::F8E8M0
        | DType::F4E2M1
        | DType::U4
        | DType::U2 => "|u1",
        DType::I4 | DType::I2 => "|i1",
    }
}

/// Dtype of a descriptor, and whether its bytes are big-endian.
pub fn dtype_of(descr: &str) -> Result<(DType, bool)> {
    let (order, code) = descr.split_at(1.min(descr.len()));
    let big = match order {
        ">" => true,
        "<" | "|" | "=" => false,
        _ => bail!("unsupported NumPy dtype '{descr}'"),
    };
    let d = match code {
        "f4" => DType::F32,
        "f2" => DType::F16,
        "f8" => DType::F64,
        "i1" => DType::I8,
        "i2" => DType::I16,
        "i4" => DType::I32,
        "i8" => DType::I64,
        "u1" => DType::U8,
        "u2" => DType::U16,
        "u4" => DType::U32,
        "u8" => DType::U64,
        "b1" => DType::Bool,
        _ => bail!("unsupported NumPy dtype '{descr}' (object and string arrays are never loaded)"),
    };
    Ok((d, big && d.size() > 1))
}

/// Builds a version 1.0 (or 2.0 when long) header, padded so the data starts 64-byte aligned.
pub fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    let (prefix_len, v2) = if dict.len() + 11 > u16::MAX as usize {
        (12, true)
    } else {
        (10, false)
    };
    let unpadded = prefix_len + dict.len() + 1;
    let total = unpadded.div_ceil(64) * 64;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    let hlen = total - prefix_len;
    if v2 {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(hlen as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(hlen as u16).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// Parses the header at the start of `bytes`.
pub fn parse_header(bytes: &[u8]) -> Result<Header> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        bail!("not a .npy file (bad magic)");
    }
    let major = bytes[6];
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                bail!("truncated .npy header");
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => bail!("unsupported .npy format version {v}"),
    };
    let end = start + hlen;
    let text = bytes
        .get(start..end)
        .ok_or_else(|| anyhow!("truncated .npy header"))?;
    let text = std::str::from_utf8(text).context("the .npy header is not text")?;
    let descr = dict_value(text, "descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"').to_string();
    let fortran_order = match dict_value(text, "fortran_order")?.trim() {
        "True" => true,
        "False" => false,
        v => bail!("bad fortran_order '{v}' in .npy header"),
    };
    let shape_text = dict_value(text, "shape")?;
    let shape = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .with_context(|| format!("bad shape '{shape_text}' in .npy header"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Header {
        descr,
        fortran_order,
        shape,
        data_offset: end,
    })
}

/// The raw text of `key`'s value in a Python dict literal of simple values.
fn dict_value<'a>(text: &'a str, key: &str) -> Result<&'a str> {
    let pat_a = format!("'{key}':");
    let pat_b = format!("\"{key}\":");
    let at = text
        .find(&pat_a)
        .map(|i| i + pat_a.len())
        .or_else(|| text.find(&pat_b).map(|i| i + pat_b.len()))
        .ok_or_else(|| anyhow!("the .npy header has no '{key}'"))?;
    let rest = text[at..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else {
        rest.find([',', '}'])
    }
    .ok_or_else(|| anyhow!("malformed .npy header"))?;
    Ok(&rest[..end])
}

/// Reads a whole `.npy` file (numeric dtypes only; never pickles) as a C-order little-endian
/// tensor.
pub fn read_file(path: &std::path::Path) -> Result<super::Tensor> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let h = parse_header(&bytes).with_context(|| format!("reading {}", path.display()))?;
    let (dtype, big) = dtype_of(&h.descr).with_context(|| format!("reading {}", path.display()))?;
    let info = super::TensorInfo {
        dtype,
        shape: h.shape.clone(),
    };
    let data = bytes
        .get(h.data_offset..h.data_offset + info.nbytes())
        .with_context(|| format!("{} is truncated", path.display()))?;
    let data = super::npz::normalize(
        bytes::Bytes::copy_from_slice(data),
        &info,
        h.fortran_order,
        big,
    );
    super::Tensor::new(dtype, info.shape, data)
}

/// Writes a tensor as a `.npy` file, atomically.
pub fn write_file(path: &std::path::Path, t: &super::Tensor) -> Result<()> {
    let mut bytes = header_bytes(descr(t.info.dtype), &t.info.shape);
    bytes.extend_from_slice(&t.data);
    crate::output::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_aligns() {
        for shape in [vec![], vec![7], vec![2, 3, 4]] {
            let h = header_bytes("<f4", &shape);
            assert_eq!(h.len() % 64, 0);
            let p = parse_header(&h).unwrap();
            assert_eq!(p.shape, shape);
            assert_eq!(p.descr, "<f4");
            assert!(!p.fortran_order);
            assert_eq!(p.data_offset, h.len());
        }
    }

    #[test]
    fn parses_numpy_written_header() {
        // Header text exactly as numpy 2.x writes it for np.zeros((2, 3), dtype='>i2', order='F').
        let dict = "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }";
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(&[1, 0]);
        let mut text = dict.to_string();
        while (10 + text.len() + 1) % 64 != 0 {
            text.push(' ');
        }
        text.push('\n');
        h.extend_from_slice(&(text.len() as u16).to_le_bytes());
        h.extend_from_slice(text.as_bytes());
        let p = parse_header(&h).unwrap();
        assert_eq!(p.shape, vec![2, 3]);
        assert!(p.fortran_order);
        assert_eq!(dtype_of(&p.descr).unwrap(), (DType::I16, true));
    }

    #[test]
    fn refuses_object_arrays() {
        assert!(dtype_of("|O").is_err());
    }
}
