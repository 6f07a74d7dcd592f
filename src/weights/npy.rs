//! The NumPy `.npy` format: header parsing (the one parser, also used for MMdnn's pickled
//! `.npy`) and writing, and dtype descriptors.
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
    // The byte-order character is ASCII; a descriptor starting otherwise (even with a
    // multi-byte character) is refused, never split inside a character.
    let (order, code) = descr.split_at_checked(1).unwrap_or(("", descr));
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

/// A shape as the Python tuple NumPy writes in headers: `()`, `(7,)`, `(2, 3)`.
pub fn shape_literal(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// Builds a version 1.0 (or 2.0 when long) header, padded so the data starts 64-byte aligned.
pub fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims = shape_literal(shape);
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

/// Longest accepted header (NumPy writes a few hundred bytes at most).
const MAX_HEADER_BYTES: usize = 1 << 20;
/// Nesting limit for the header's dict literal.
const MAX_HEADER_DEPTH: usize = 16;

/// Parses the header at the start of `bytes`: format versions 1.0 to 3.0, the dict literal
/// with the keys `descr` (a type string; a structured dtype's list is kept as its text, which
/// no reader accepts), `fortran_order` (a bool) and `shape` (a tuple of non-negative ints; a
/// Python 2 `3L` is read as `3`).
pub fn parse_header(bytes: &[u8]) -> Result<Header> {
    parse(bytes, true)
}

/// As [`parse_header`], for a file holding one pickled object (MMdnn's weights), where the
/// layout flag means nothing: `fortran_order` is not read (whatever it says, or if it is
/// missing) and comes back `false`.
pub fn parse_header_ignoring_order(bytes: &[u8]) -> Result<Header> {
    parse(bytes, false)
}

fn parse(bytes: &[u8], read_order: bool) -> Result<Header> {
    if !bytes.starts_with(MAGIC) {
        bail!("not a .npy file (it does not start with the \\x93NUMPY magic)");
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(&[major, minor]) => (major, minor),
        _ => bail!("truncated .npy header"),
    };
    let len_size = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => bail!("unsupported .npy format version {major}.{minor}"),
    };
    let start = 8 + len_size;
    let header_len = bytes
        .get(8..start)
        .ok_or_else(|| anyhow!("truncated .npy header"))?
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    if header_len > MAX_HEADER_BYTES {
        bail!(".npy header of {header_len} bytes is implausibly large");
    }
    let raw = bytes
        .get(start..start + header_len)
        .ok_or_else(|| anyhow!("truncated .npy header"))?;
    // Versions 1 and 2 are Latin-1, version 3 UTF-8.
    let text: String = if major >= 3 {
        std::str::from_utf8(raw)
            .map_err(|_| anyhow!(".npy header is not valid UTF-8"))?
            .to_owned()
    } else {
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let mut parser = LitParser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let lit = parser.value(0)?;
    parser.skip_ws();
    if parser.pos != parser.chars.len() {
        bail!(".npy header has trailing characters");
    }
    let Lit::Dict(entries) = lit else {
        bail!(".npy header is not a dict literal");
    };
    let field = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| matches!(k, Lit::Str(s) if s == name))
            .map(|(_, v)| v)
            .ok_or_else(|| anyhow!(".npy header lacks the '{name}' key"))
    };
    let descr = match field("descr")? {
        Lit::Str(s) => s.clone(),
        other => other.render(),
    };
    let fortran_order = match read_order.then(|| field("fortran_order")).transpose()? {
        None => false,
        Some(Lit::Bool(b)) => *b,
        Some(other) => bail!("bad fortran_order {} in .npy header", other.render()),
    };
    let shape_lit = field("shape")?;
    let bad_shape = || anyhow!("bad shape {} in .npy header", shape_lit.render());
    let Lit::Seq(dims, true) = shape_lit else {
        return Err(bad_shape());
    };
    let shape = dims
        .iter()
        .map(|d| match d {
            Lit::Int(n) => usize::try_from(*n).map_err(|_| bad_shape()),
            _ => Err(bad_shape()),
        })
        .collect::<Result<Vec<_>>>()?;
    if shape.len() > super::MAX_RANK || super::checked_bytes(&shape, 16).is_none() {
        bail!(
            "shape {} in .npy header is too large (more than {} dims, or more bytes than memory can address)",
            shape_lit.render(),
            super::MAX_RANK
        );
    }
    Ok(Header {
        descr,
        fortran_order,
        shape,
        data_offset: start + header_len,
    })
}

/// Quotes header text for an error message, escaping control characters.
fn quoted(text: &str) -> String {
    format!("'{}'", text.escape_debug())
}

/// A Python literal as found in `.npy` headers.
#[derive(Debug, Clone)]
enum Lit {
    Str(String),
    Int(i64),
    Bool(bool),
    None,
    /// A tuple (`true`) or list (`false`).
    Seq(Vec<Lit>, bool),
    Dict(Vec<(Lit, Lit)>),
}

impl Lit {
    /// Python-like rendering for error messages.
    fn render(&self) -> String {
        match self {
            Lit::Str(s) => quoted(s),
            Lit::Int(n) => n.to_string(),
            Lit::Bool(true) => "True".into(),
            Lit::Bool(false) => "False".into(),
            Lit::None => "None".into(),
            Lit::Seq(items, is_tuple) => {
                let inner: Vec<String> = items.iter().map(Lit::render).collect();
                match (is_tuple, inner.len()) {
                    (true, 1) => format!("({},)", inner[0]),
                    (true, _) => format!("({})", inner.join(", ")),
                    (false, _) => format!("[{}]", inner.join(", ")),
                }
            }
            Lit::Dict(entries) => {
                let inner: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k.render(), v.render()))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
        }
    }
}

/// Recursive-descent parser for the header's Python dict literal.
struct LitParser {
    chars: Vec<char>,
    pos: usize,
}

impl LitParser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Lit> {
        if depth > MAX_HEADER_DEPTH {
            bail!(".npy header is nested too deeply");
        }
        self.skip_ws();
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                while !self.eat('}') {
                    let key = self.value(depth + 1)?;
                    if !self.eat(':') {
                        bail!(".npy header: expected ':' in dict");
                    }
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                    if !self.eat(',') {
                        if self.eat('}') {
                            break;
                        }
                        bail!(".npy header: expected ',' or '}}' in dict");
                    }
                }
                Ok(Lit::Dict(entries))
            }
            Some(open @ ('(' | '[')) => {
                self.pos += 1;
                let close = if open == '(' { ')' } else { ']' };
                let mut items = Vec::new();
                while !self.eat(close) {
                    items.push(self.value(depth + 1)?);
                    if !self.eat(',') {
                        if self.eat(close) {
                            break;
                        }
                        bail!(".npy header: expected ',' or '{close}'");
                    }
                }
                Ok(Lit::Seq(items, open == '('))
            }
            Some('\'' | '"') => self.string(),
            Some('u' | 'b') if matches!(self.chars.get(self.pos + 1), Some('\'' | '"')) => {
                self.pos += 1;
                self.string()
            }
            Some(c) if c == '-' || c.is_ascii_digit() => self.int(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "True" => Ok(Lit::Bool(true)),
                    "False" => Ok(Lit::Bool(false)),
                    "None" => Ok(Lit::None),
                    _ => Err(anyhow!(".npy header: unexpected name {}", quoted(&word))),
                }
            }
            _ => Err(anyhow!(".npy header: unexpected character")),
        }
    }

    fn string(&mut self) -> Result<Lit> {
        let quote = self.peek().unwrap_or('\'');
        self.pos += 1;
        let mut out = String::new();
        loop {
            let c = self
                .peek()
                .ok_or_else(|| anyhow!(".npy header: unterminated string"))?;
            self.pos += 1;
            match c {
                c if c == quote => return Ok(Lit::Str(out)),
                '\\' => {
                    let e = self
                        .peek()
                        .ok_or_else(|| anyhow!(".npy header: unterminated string"))?;
                    self.pos += 1;
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        'x' => {
                            let hex: String = self.chars.iter().skip(self.pos).take(2).collect();
                            let code = u8::from_str_radix(&hex, 16)
                                .map_err(|_| anyhow!(".npy header: bad \\x escape"))?;
                            self.pos += 2;
                            out.push(char::from(code));
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn int(&mut self) -> Result<Lit> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        // Python 2 wrote long dimensions with an `L` suffix: `(3L, 4L)`.
        if matches!(self.peek(), Some('L' | 'l')) {
            self.pos += 1;
        }
        digits
            .parse()
            .map(Lit::Int)
            .map_err(|_| anyhow!(".npy header: bad integer {}", quoted(&digits)))
    }
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
    stage_file(path, t)?.commit()
}

/// Writes a tensor as a `.npy` file that appears at `path` on commit (with others, as a set).
pub fn stage_file(path: &std::path::Path, t: &super::Tensor) -> Result<crate::output::AtomicFile> {
    let mut bytes = header_bytes(descr(t.info.dtype), &t.info.shape);
    bytes.extend_from_slice(&t.data);
    crate::output::stage(path, &bytes)
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

    /// A version `major`.0 header around the dict literal `dict`.
    fn header(major: u8, dict: &str) -> Vec<u8> {
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(&[major, 0]);
        let text = format!("{dict}\n");
        if major == 1 {
            h.extend_from_slice(&(text.len() as u16).to_le_bytes());
        } else {
            h.extend_from_slice(&(text.len() as u32).to_le_bytes());
        }
        h.extend_from_slice(text.as_bytes());
        h
    }

    #[test]
    fn parses_every_spelling_numpy_and_python_2_write() {
        let py2 = header(
            1,
            "{u'descr': '<f8', \"fortran_order\": True, 'shape': (3L, 4L), }",
        );
        let p = parse_header(&py2).unwrap();
        assert_eq!((p.descr.as_str(), p.fortran_order), ("<f8", true));
        assert_eq!((p.shape, p.data_offset), (vec![3, 4], py2.len()));
        let v3 = header(3, "{'shape': (5,), 'fortran_order': False, 'descr': '<u8'}");
        assert_eq!(parse_header(&v3).unwrap().shape, [5]);
        // A structured dtype is kept as its text, which dtype_of refuses.
        let structured = header(
            2,
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': ()}",
        );
        let p = parse_header(&structured).unwrap();
        assert_eq!(p.descr, "[('a', '<f4')]");
        assert!(dtype_of(&p.descr).is_err());
    }

    #[test]
    fn refuses_malformed_headers() {
        let err = |bytes: &[u8]| format!("{:#}", parse_header(bytes).unwrap_err());
        assert!(err(b"PK\x03\x04").contains("not a .npy file"));
        assert!(err(b"\x93NUMPY\x04\x00").contains("version 4.0"));
        assert!(err(b"\x93NUMPY\x01\x01").contains("version 1.1"));
        assert!(err(&header(1, "{'descr': '<f4'")).contains("expected ',' or '}' in dict"));
        let trailing = header(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()} x");
        assert!(err(&trailing).contains("trailing characters"));
        let no_order = header(1, "{'descr': '<f4', 'shape': (2,)}");
        assert!(err(&no_order).contains("'fortran_order'"));
        let int_order = header(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}");
        assert!(err(&int_order).contains("bad fortran_order 0"));
        let list_shape = header(1, "{'descr': '<f4', 'fortran_order': False, 'shape': [2]}");
        assert!(err(&list_shape).contains("bad shape [2]"));
        let negative = header(
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
        );
        assert!(err(&negative).contains("bad shape (-1,)"));
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(err(&header(1, &deep)).contains("nested too deeply"));
        let mut truncated = header(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}");
        truncated.pop();
        assert!(err(&truncated).contains("truncated"));
        // Only a pickled object's header may lack the (meaningless) layout flag.
        assert_eq!(parse_header_ignoring_order(&no_order).unwrap().shape, [2]);
        assert!(
            !parse_header_ignoring_order(&int_order)
                .unwrap()
                .fortran_order
        );
    }

    /// A header whose shape's byte count wraps (2^32 × 2^32 × 4 bytes) is refused: the count
    /// wrapped to 0 before and matched an empty file.
    #[test]
    fn shapes_larger_than_memory_are_refused() {
        for shape in ["(4294967296, 4294967296)", "(1099511627776, 1099511627776)"] {
            let h = header(
                1,
                &format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"),
            );
            let e = format!("{:#}", parse_header(&h).unwrap_err());
            assert!(e.contains("too large"), "{e}");
        }
    }

    /// A descriptor whose first character takes several bytes ('äf3') is refused (a slice
    /// inside a character panicked before; found by the `npy` fuzz target).
    #[test]
    fn descriptors_starting_with_a_multibyte_character_are_refused() {
        for descr in ["äf3", "ä", ""] {
            let e = format!("{:#}", dtype_of(descr).unwrap_err());
            assert!(e.contains("unsupported NumPy dtype"), "{e}");
        }
    }
}
