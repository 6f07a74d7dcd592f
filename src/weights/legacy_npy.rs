//! Restricted reader for legacy MMdnn weight files (`.npy` holding a pickled dict).
//!
//! Microsoft MMdnn 0.3.x saved IR weights with `np.save(path, weights)`, where
//! `weights` is a Python dict `{layer_name: {param_name: numpy.ndarray}}`.
//! NumPy stores such a dict as a 0-d *object* array: the `.npy` header says
//! `descr '|O'`, `shape ()`, and the body is a pickle of that array. Depending
//! on the Python and NumPy versions that wrote the file, the pickle uses
//! protocol 2 (Python 2 strings as bytes, or Python 3 with raw data passed
//! through `_codecs.encode(..., 'latin1')`), protocol 3 (`np.save` in NumPy 1.x),
//! protocol 4 (`np.save` in NumPy 2.x) or protocol 5 (`_frombuffer` over an
//! in-band `bytearray`).
//!
//! # Security model
//!
//! Unpickling is code execution in Python: a pickle may call any importable
//! function. This module therefore does **not** implement pickle; it
//! implements a small, closed interpreter for the opcodes NumPy and the
//! `pickle` module emit for dicts of arrays, and it never calls anything. The
//! only "callables" it understands are stand-ins that build inert Rust values
//! (`numpy.core.*` may also be spelled `numpy._core.*`, as NumPy 2 does):
//!
//! | global                               | effect here                             |
//! |--------------------------------------|-----------------------------------------|
//! | `numpy.core.multiarray._reconstruct` | empty array, filled in by BUILD         |
//! | `numpy.ndarray`                      | only as `_reconstruct`'s first argument |
//! | `numpy.dtype`                        | a numeric (or object) dtype             |
//! | `numpy.core.numeric._frombuffer`     | array from bytes (protocol 5)           |
//! | `_codecs.encode`                     | `'latin1'` text to bytes (protocol 2)   |
//! | `collections.OrderedDict`            | a plain dict (Python 2 files)           |
//!
//! Any other global (`os.system`, `posix.system`, `builtins.eval`, ...) makes
//! decoding fail with an error naming it, and so does every opcode outside
//! the supported set (`INST`, `OBJ`, `EXT*`, `PERSID`, ...). Arguments of the
//! stand-ins are checked for the exact shapes NumPy produces.
//!
//! Resources are bounded: every length is checked against the bytes actually
//! present, the number of interpreter steps is capped, array byte sizes must
//! equal `product(shape) * itemsize`, and the decoded tensors (and any
//! `_codecs.encode` output) may not add up to more than the file itself, which
//! defeats "billion laughs" style reuse of memoised objects.
//!
//! The result is a flat list of `(layer, param, tensor)` triples in file
//! order, each tensor converted to C order and little-endian byte order.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::rc::Rc;

use anyhow::{anyhow, Context, Result};

/// One tensor decoded from a legacy file: NumPy dtype descr (normalized to
/// little-endian form like `"<f4"`, `"|u1"`, `"|b1"`), shape, and C-order
/// little-endian bytes (Fortran-order and big-endian arrays are converted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyTensor {
    /// NumPy type string: `'<'` + kind + itemsize for multi-byte types
    /// (`"<f2"`, `"<f4"`, `"<f8"`, `"<i2"`...`"<u8"`), `'|'` for one-byte
    /// types (`"|i1"`, `"|u1"`, `"|b1"`).
    pub descr: String,
    /// Array shape; empty for a 0-d array.
    pub shape: Vec<usize>,
    /// Element bytes in C (row-major) order, little-endian.
    pub data: Vec<u8>,
}

/// Reads an MMdnn `.npy` weights file: returns (layer, param, tensor) triples in file order.
pub fn read_legacy_weights(path: &Path) -> Result<Vec<(String, String, LegacyTensor)>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read legacy MMdnn weights {}", path.display()))?;
    decode_legacy_weights(&bytes, &path.display().to_string())
}

/// Same, from bytes already in memory (`origin` is used in error messages).
pub fn decode_legacy_weights(
    bytes: &[u8],
    origin: &str,
) -> Result<Vec<(String, String, LegacyTensor)>> {
    decode(bytes).map_err(|fault| fault.into_error(origin))
}

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

/// Maximum interpreter steps (opcodes plus per-element work). A real MMdnn
/// file needs roughly 30 steps per tensor, so this allows >100k tensors while
/// keeping the worst-case memory of the stack and memo to a few hundred MB.
const MAX_STEPS: usize = 1 << 22;
/// NumPy's own limit on the number of dimensions.
const MAX_NDIM: usize = 64;
/// Longest accepted dict key (layer and parameter names are short).
const MAX_KEY_BYTES: usize = 1 << 16;
/// Longest accepted `.npy` header.
const MAX_HEADER_BYTES: usize = 1 << 20;
/// Nesting limit for the `.npy` header literal.
const MAX_HEADER_DEPTH: usize = 16;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Internal error: either the file is refused on security grounds or it is
/// simply not a well-formed legacy weights file.
#[derive(Debug)]
struct Fault {
    refused: bool,
    message: String,
}

type Res<T> = std::result::Result<T, Fault>;

/// A file that is damaged or not in the expected format.
fn malformed(message: impl Into<String>) -> Fault {
    Fault {
        refused: false,
        message: message.into(),
    }
}

/// A file that asks for something this decoder will not do.
fn refused(message: impl Into<String>) -> Fault {
    Fault {
        refused: true,
        message: message.into(),
    }
}

impl Fault {
    fn into_error(self, origin: &str) -> anyhow::Error {
        if self.refused {
            anyhow!(
                "refusing to load legacy MMdnn weights {origin}: {}",
                self.message
            )
        } else {
            anyhow!(
                "cannot decode legacy MMdnn weights {origin}: {}",
                self.message
            )
        }
    }

    /// Adds the position of the failing opcode to format errors.
    fn at(mut self, file_offset: usize, opcode: u8) -> Self {
        if !self.refused {
            let _ = write!(
                self.message,
                " (pickle opcode {} at file offset {file_offset})",
                opcode_name(opcode)
            );
        }
        self
    }
}

/// Quotes untrusted text for an error message, escaping control characters.
fn quoted(text: &str) -> String {
    format!("'{}'", text.escape_debug())
}

/// Quotes untrusted bytes for an error message (Latin-1 view, escaped).
fn quoted_bytes(bytes: &[u8]) -> String {
    quoted(&latin1(bytes))
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

// ---------------------------------------------------------------------------
// Top level
// ---------------------------------------------------------------------------

fn decode(bytes: &[u8]) -> Res<Vec<(String, String, LegacyTensor)>> {
    let body_offset = npy_object_body_offset(bytes)?;
    let machine = Machine::new(bytes, body_offset);
    let (root, objects) = machine.run()?;
    extract(&root, &objects, bytes.len())
}

// ---------------------------------------------------------------------------
// .npy header
// ---------------------------------------------------------------------------

/// Validates the `.npy` header and returns the offset of the pickle body.
fn npy_object_body_offset(bytes: &[u8]) -> Res<usize> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if !bytes.starts_with(MAGIC) {
        return Err(malformed(
            "not a .npy file (it does not start with the \\x93NUMPY magic)",
        ));
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(&[major, minor]) => (major, minor),
        _ => return Err(malformed("truncated .npy header")),
    };
    let (len_start, len_size) = match (major, minor) {
        (1, 0) => (8, 2),
        (2, 0) | (3, 0) => (8, 4),
        _ => {
            return Err(malformed(format!(
                "unsupported .npy format version {major}.{minor}"
            )))
        }
    };
    let len_bytes = bytes
        .get(len_start..len_start + len_size)
        .ok_or_else(|| malformed("truncated .npy header"))?;
    let header_len = len_bytes
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    if header_len > MAX_HEADER_BYTES {
        return Err(malformed(format!(
            ".npy header of {header_len} bytes is implausibly large"
        )));
    }
    let start = len_start + len_size;
    let raw = bytes
        .get(start..start + header_len)
        .ok_or_else(|| malformed("truncated .npy header"))?;
    let text = if major >= 3 {
        std::str::from_utf8(raw)
            .map_err(|_| malformed(".npy header is not valid UTF-8"))?
            .to_owned()
    } else {
        latin1(raw)
    };
    let header = NpyHeader::parse(&text)?;
    if !header.is_object_dtype() {
        return Err(malformed(format!(
            "it is a plain NumPy array (descr {}, shape {}), not an MMdnn weights dict",
            header.descr.render(),
            header.shape.render()
        )));
    }
    if !matches!(&header.shape, Lit::Seq(items, true) if items.is_empty()) {
        return Err(malformed(format!(
            "it holds an object array of shape {}, not a single pickled weights dict (shape ())",
            header.shape.render()
        )));
    }
    Ok(start + header_len)
}

/// The fields of an `.npy` header this module looks at.
struct NpyHeader {
    descr: Lit,
    shape: Lit,
}

impl NpyHeader {
    fn parse(text: &str) -> Res<Self> {
        let mut parser = LitParser {
            chars: text.chars().collect(),
            pos: 0,
        };
        let lit = parser.value(0)?;
        parser.skip_ws();
        if parser.pos != parser.chars.len() {
            return Err(malformed(".npy header has trailing characters"));
        }
        let Lit::Dict(entries) = lit else {
            return Err(malformed(".npy header is not a dict literal"));
        };
        let field = |name: &str| {
            entries
                .iter()
                .find(|(k, _)| matches!(k, Lit::Str(s) if s == name))
                .map(|(_, v)| v.clone())
                .ok_or_else(|| malformed(format!(".npy header lacks the '{name}' key")))
        };
        Ok(NpyHeader {
            descr: field("descr")?,
            shape: field("shape")?,
        })
    }

    /// `'|O'` as NumPy writes it, or the older `'|O8'` / `'|O4'` spellings.
    fn is_object_dtype(&self) -> bool {
        match &self.descr {
            Lit::Str(s) => {
                let s = s.trim_start_matches(['|', '<', '>', '=']);
                matches!(s, "O" | "O4" | "O8")
            }
            _ => false,
        }
    }
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

    fn value(&mut self, depth: usize) -> Res<Lit> {
        if depth > MAX_HEADER_DEPTH {
            return Err(malformed(".npy header is nested too deeply"));
        }
        self.skip_ws();
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                while !self.eat('}') {
                    let key = self.value(depth + 1)?;
                    if !self.eat(':') {
                        return Err(malformed(".npy header: expected ':' in dict"));
                    }
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                    if !self.eat(',') {
                        if self.eat('}') {
                            break;
                        }
                        return Err(malformed(".npy header: expected ',' or '}' in dict"));
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
                        return Err(malformed(format!(".npy header: expected ',' or '{close}'")));
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
                    _ => Err(malformed(format!(
                        ".npy header: unexpected name {}",
                        quoted(&word)
                    ))),
                }
            }
            _ => Err(malformed(".npy header: unexpected character")),
        }
    }

    fn string(&mut self) -> Res<Lit> {
        let quote = self.peek().unwrap_or('\'');
        self.pos += 1;
        let mut out = String::new();
        loop {
            let c = self
                .peek()
                .ok_or_else(|| malformed(".npy header: unterminated string"))?;
            self.pos += 1;
            match c {
                c if c == quote => return Ok(Lit::Str(out)),
                '\\' => {
                    let e = self
                        .peek()
                        .ok_or_else(|| malformed(".npy header: unterminated string"))?;
                    self.pos += 1;
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        'x' => {
                            let hex: String = self.chars.iter().skip(self.pos).take(2).collect();
                            let code = u8::from_str_radix(&hex, 16)
                                .map_err(|_| malformed(".npy header: bad \\x escape"))?;
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

    fn int(&mut self) -> Res<Lit> {
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
            .map_err(|_| malformed(format!(".npy header: bad integer {}", quoted(&digits))))
    }
}

// ---------------------------------------------------------------------------
// Pickle values
// ---------------------------------------------------------------------------

/// Index of a mutable object (dict, list, dtype, array) in the arena.
/// Mutable objects live in an arena so that memoised references share
/// state (BUILD after BINPUT) without reference cycles or `RefCell`.
type ObjId = usize;

/// Byte data: borrowed from the input where possible, shared otherwise, so
/// that memo lookups never copy payloads.
#[derive(Debug, Clone)]
enum Buf<'a> {
    Borrowed(&'a [u8]),
    Shared(Rc<[u8]>),
}

impl Buf<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Buf::Borrowed(b) => b,
            Buf::Shared(b) => b,
        }
    }
}

impl PartialEq for Buf<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Buf<'_> {}

impl Hash for Buf<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

/// The whitelisted globals. Nothing here is ever executed; each one maps to
/// a constructor of an inert Rust value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Callable {
    Reconstruct,
    NdArray,
    Dtype,
    FromBuffer,
    CodecsEncode,
    OrderedDict,
}

impl Callable {
    fn resolve(module: &str, name: &str) -> Res<Self> {
        Ok(match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => {
                Callable::Reconstruct
            }
            ("numpy", "ndarray") => Callable::NdArray,
            ("numpy", "dtype") => Callable::Dtype,
            ("numpy.core.numeric" | "numpy._core.numeric", "_frombuffer") => Callable::FromBuffer,
            ("_codecs", "encode") => Callable::CodecsEncode,
            ("collections", "OrderedDict") => Callable::OrderedDict,
            _ => {
                return Err(refused(format!(
                    "the pickle references '{}.{}', which is not a NumPy array or dict; \
                     mmdnn never executes pickled code",
                    module.escape_debug(),
                    name.escape_debug()
                )))
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Callable::Reconstruct => "numpy.core.multiarray._reconstruct",
            Callable::NdArray => "numpy.ndarray",
            Callable::Dtype => "numpy.dtype",
            Callable::FromBuffer => "numpy.core.numeric._frombuffer",
            Callable::CodecsEncode => "_codecs.encode",
            Callable::OrderedDict => "collections.OrderedDict",
        }
    }
}

/// A value on the pickle stack or in the memo. Cloning is cheap: payloads
/// are borrowed or reference counted and mutable objects are arena indices.
#[derive(Debug, Clone)]
enum Value<'a> {
    None,
    Bool(bool),
    Int(i64),
    /// A Python float; its value is never needed by the accepted structures.
    Float,
    Str(&'a str),
    Bytes(Buf<'a>),
    Tuple(Rc<[Value<'a>]>),
    Global(Callable),
    Obj(ObjId),
}

/// A dict key: Python `str` or `bytes` (Python 2 `str`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key<'a> {
    Str(&'a str),
    Bytes(Buf<'a>),
}

impl Key<'_> {
    /// The key as text: `str` as is, `bytes` as UTF-8 or else Latin-1.
    fn to_text(&self) -> String {
        match self {
            Key::Str(s) => (*s).to_owned(),
            Key::Bytes(b) => match std::str::from_utf8(b.as_slice()) {
                Ok(s) => s.to_owned(),
                Err(_) => latin1(b.as_slice()),
            },
        }
    }
}

/// An insertion-ordered dict with Python's replace-on-duplicate semantics.
#[derive(Debug, Default)]
struct Dict<'a> {
    entries: Vec<(Key<'a>, Value<'a>)>,
    index: HashMap<Key<'a>, usize>,
}

impl<'a> Dict<'a> {
    fn insert(&mut self, key: Key<'a>, value: Value<'a>) {
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }
}

/// Element type of a numeric array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Elem {
    /// NumPy kind character: `f`, `i`, `u` or `b`.
    kind: char,
    size: usize,
    big_endian: bool,
}

impl Elem {
    fn descr(self) -> String {
        let order = if self.size == 1 { '|' } else { '<' };
        format!("{order}{}{}", self.kind, self.size)
    }
}

/// What `numpy.dtype(name, ...)` was asked to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DtypeKind {
    Numeric { kind: char, size: usize },
    Object,
}

impl DtypeKind {
    fn from_name(name: &[u8]) -> Res<Self> {
        let numeric = |kind, size| Ok(DtypeKind::Numeric { kind, size });
        match name {
            b"f2" => numeric('f', 2),
            b"f4" => numeric('f', 4),
            b"f8" => numeric('f', 8),
            b"i1" => numeric('i', 1),
            b"i2" => numeric('i', 2),
            b"i4" => numeric('i', 4),
            b"i8" => numeric('i', 8),
            b"u1" => numeric('u', 1),
            b"u2" => numeric('u', 2),
            b"u4" => numeric('u', 4),
            b"u8" => numeric('u', 8),
            b"b1" => numeric('b', 1),
            b"O4" | b"O8" => Ok(DtypeKind::Object),
            other => Err(malformed(format!(
                "unsupported NumPy dtype {}; only numeric arrays \
                 (f2, f4, f8, i1-i8, u1-u8, b1) can be loaded",
                quoted_bytes(other)
            ))),
        }
    }
}

/// The resolved element type of an array.
#[derive(Debug, Clone, Copy)]
enum ElemType {
    Numeric(Elem),
    Object,
}

/// A `numpy.dtype` instance: kind from the REDUCE, byte order from BUILD.
#[derive(Debug)]
struct Dtype {
    kind: DtypeKind,
    /// `Some(big_endian)` once the state has been applied.
    big_endian: Option<bool>,
}

/// A numeric array whose bytes have been validated against its shape.
#[derive(Debug)]
struct NumericArray<'a> {
    elem: Elem,
    /// Logical shape.
    shape: Vec<usize>,
    /// Per-axis strides (in elements) into `raw`, when `raw` is not in C order.
    strides: Option<Vec<usize>>,
    raw: Buf<'a>,
}

#[derive(Debug)]
enum Array<'a> {
    /// Created by `_reconstruct`, waiting for its BUILD state.
    Pending,
    Numeric(NumericArray<'a>),
    /// An object array: only valid as the 0-d wrapper around the weights dict.
    Object {
        shape: Vec<usize>,
        items: Value<'a>,
    },
}

/// Mutable objects, addressed by [`ObjId`].
#[derive(Debug)]
enum Object<'a> {
    Dict(Dict<'a>),
    List(Vec<Value<'a>>),
    Dtype(Dtype),
    Array(Array<'a>),
}

/// Short description of a value's type for error messages.
fn describe(value: &Value<'_>, objects: &[Object<'_>]) -> String {
    match value {
        Value::None => "None".into(),
        Value::Bool(_) => "a bool".into(),
        Value::Int(_) => "an int".into(),
        Value::Float => "a float".into(),
        Value::Str(_) => "a str".into(),
        Value::Bytes(_) => "a bytes object".into(),
        Value::Tuple(_) => "a tuple".into(),
        Value::Global(c) => format!("the class/function {}", c.name()),
        Value::Obj(id) => match objects.get(*id) {
            Some(Object::Dict(_)) => "a dict".into(),
            Some(Object::List(_)) => "a list".into(),
            Some(Object::Dtype(_)) => "a numpy.dtype".into(),
            Some(Object::Array(Array::Object { .. })) => "an object array".into(),
            Some(Object::Array(_)) => "a numpy.ndarray".into(),
            None => "an unknown object".into(),
        },
    }
}

// ---------------------------------------------------------------------------
// Pickle opcodes
// ---------------------------------------------------------------------------

mod op {
    pub const MARK: u8 = b'(';
    pub const STOP: u8 = b'.';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const BINFLOAT: u8 = b'G';
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const NONE: u8 = b'N';
    pub const REDUCE: u8 = b'R';
    pub const BINSTRING: u8 = b'T';
    pub const SHORT_BINSTRING: u8 = b'U';
    pub const BINUNICODE: u8 = b'X';
    pub const APPEND: u8 = b'a';
    pub const BUILD: u8 = b'b';
    pub const GLOBAL: u8 = b'c';
    pub const DICT: u8 = b'd';
    pub const EMPTY_DICT: u8 = b'}';
    pub const APPENDS: u8 = b'e';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const LIST: u8 = b'l';
    pub const EMPTY_LIST: u8 = b']';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const SETITEM: u8 = b's';
    pub const TUPLE: u8 = b't';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const SETITEMS: u8 = b'u';
    pub const PROTO: u8 = 0x80;
    pub const NEWOBJ: u8 = 0x81;
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const LONG1: u8 = 0x8a;
    pub const LONG4: u8 = 0x8b;
    pub const BINBYTES: u8 = b'B';
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const BINBYTES8: u8 = 0x8e;
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const MEMOIZE: u8 = 0x94;
    pub const FRAME: u8 = 0x95;
    pub const BYTEARRAY8: u8 = 0x96;
}

/// Name of any standard pickle opcode, for error messages.
fn opcode_name(code: u8) -> &'static str {
    match code {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "(unknown)",
    }
}

// ---------------------------------------------------------------------------
// The restricted pickle machine
// ---------------------------------------------------------------------------

struct Machine<'a> {
    /// The whole file (offsets in messages are file offsets).
    input: &'a [u8],
    pos: usize,
    stack: Vec<Value<'a>>,
    /// Stack heights at each pending MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Value<'a>>,
    objects: Vec<Object<'a>>,
    steps_left: usize,
    /// Bytes produced so far by `_codecs.encode`.
    encoded_bytes: usize,
}

impl<'a> Machine<'a> {
    fn new(input: &'a [u8], start: usize) -> Self {
        Machine {
            input,
            pos: start,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            objects: Vec::new(),
            steps_left: MAX_STEPS,
            encoded_bytes: 0,
        }
    }

    /// Runs to STOP; returns the top-level value and the object arena.
    fn run(mut self) -> Res<(Value<'a>, Vec<Object<'a>>)> {
        loop {
            let at = self.pos;
            let Some(&code) = self.input.get(at) else {
                return Err(malformed(
                    "the pickle ends without a STOP opcode (truncated file?)",
                ));
            };
            self.pos += 1;
            match self.step(code) {
                Ok(false) => {}
                Ok(true) => {
                    let root = self.pop().map_err(|f| f.at(at, code))?;
                    return Ok((root, self.objects));
                }
                Err(fault) => return Err(fault.at(at, code)),
            }
        }
    }

    // -- input ------------------------------------------------------------

    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let remaining = self.input.len() - self.pos;
        if n > remaining {
            return Err(malformed(format!(
                "truncated pickle: {n} bytes declared but only {remaining} remain"
            )));
        }
        let bytes = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn take_array<const N: usize>(&mut self) -> Res<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn read_u8(&mut self) -> Res<u8> {
        Ok(self.take_array::<1>()?[0])
    }

    fn read_u32_len(&mut self) -> Res<usize> {
        let n = u32::from_le_bytes(self.take_array()?);
        usize::try_from(n).map_err(|_| malformed("length does not fit in memory"))
    }

    fn read_u64_len(&mut self) -> Res<usize> {
        let n = u64::from_le_bytes(self.take_array()?);
        usize::try_from(n).map_err(|_| malformed(format!("absurd length {n}")))
    }

    fn read_i32_len(&mut self) -> Res<usize> {
        let n = i32::from_le_bytes(self.take_array()?);
        usize::try_from(n).map_err(|_| malformed(format!("negative length {n}")))
    }

    /// A newline-terminated UTF-8 line (GLOBAL arguments).
    fn read_line(&mut self) -> Res<&'a str> {
        let rest = &self.input[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| malformed("truncated pickle: unterminated GLOBAL name"))?;
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end]).map_err(|_| malformed("GLOBAL name is not valid UTF-8"))
    }

    fn read_str(&mut self, n: usize) -> Res<Value<'a>> {
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(Value::Str)
            .map_err(|_| malformed("string is not valid UTF-8"))
    }

    fn read_bytes(&mut self, n: usize) -> Res<Value<'a>> {
        Ok(Value::Bytes(Buf::Borrowed(self.take(n)?)))
    }

    // -- stack ------------------------------------------------------------

    fn spend(&mut self, units: usize) -> Res<()> {
        match self.steps_left.checked_sub(units) {
            Some(left) => {
                self.steps_left = left;
                Ok(())
            }
            None => Err(refused(format!(
                "the pickle needs more than {MAX_STEPS} decoding steps, far more than any \
                 MMdnn weights file (possible resource-exhaustion attack)"
            ))),
        }
    }

    /// Stack height below which plain pops may not reach (the last MARK).
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Res<Value<'a>> {
        if self.stack.len() <= self.floor() {
            return Err(malformed("pickle stack underflow"));
        }
        self.stack
            .pop()
            .ok_or_else(|| malformed("pickle stack underflow"))
    }

    fn pop_n(&mut self, n: usize) -> Res<Vec<Value<'a>>> {
        if self.stack.len() < self.floor() + n {
            return Err(malformed("pickle stack underflow"));
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    fn pop_mark(&mut self) -> Res<Vec<Value<'a>>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| malformed("pickle uses a MARK that was never set"))?;
        Ok(self.stack.split_off(mark))
    }

    fn top(&self) -> Res<&Value<'a>> {
        if self.stack.len() <= self.floor() {
            return Err(malformed("pickle stack underflow"));
        }
        self.stack
            .last()
            .ok_or_else(|| malformed("pickle stack underflow"))
    }

    fn new_object(&mut self, object: Object<'a>) -> Value<'a> {
        self.objects.push(object);
        Value::Obj(self.objects.len() - 1)
    }

    fn describe(&self, value: &Value<'a>) -> String {
        describe(value, &self.objects)
    }

    // -- containers -------------------------------------------------------

    fn dict_key(&mut self, key: Value<'a>) -> Res<Key<'a>> {
        let key = match key {
            Value::Str(s) => Key::Str(s),
            Value::Bytes(b) => Key::Bytes(b),
            other => {
                return Err(malformed(format!(
                    "a dict key is {}; only str and bytes keys are supported",
                    self.describe(&other)
                )))
            }
        };
        let len = match &key {
            Key::Str(s) => s.len(),
            Key::Bytes(b) => b.as_slice().len(),
        };
        if len > MAX_KEY_BYTES {
            return Err(malformed(format!("a dict key is {len} bytes long")));
        }
        self.spend(1 + len / 64)?;
        Ok(key)
    }

    /// Inserts flat `[k0, v0, k1, v1, ...]` into the dict `target`.
    fn set_items(&mut self, target: &Value<'a>, flat: Vec<Value<'a>>) -> Res<()> {
        if flat.len() % 2 != 0 {
            return Err(malformed("odd number of items for a dict"));
        }
        let mut pairs = Vec::with_capacity(flat.len() / 2);
        let mut items = flat.into_iter();
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            pairs.push((self.dict_key(k)?, v));
        }
        let description = self.describe(target);
        match target {
            Value::Obj(id) => match &mut self.objects[*id] {
                Object::Dict(dict) => {
                    for (k, v) in pairs {
                        dict.insert(k, v);
                    }
                    Ok(())
                }
                _ => Err(malformed(format!("SETITEM(S) applied to {description}"))),
            },
            _ => Err(malformed(format!("SETITEM(S) applied to {description}"))),
        }
    }

    fn append(&mut self, items: Vec<Value<'a>>) -> Res<()> {
        let target = self.top()?.clone();
        let description = self.describe(&target);
        if let Value::Obj(id) = target {
            if let Object::List(list) = &mut self.objects[id] {
                list.extend(items);
                return Ok(());
            }
        }
        Err(malformed(format!("APPEND(S) applied to {description}")))
    }

    fn new_dict(&mut self, flat: Vec<Value<'a>>) -> Res<Value<'a>> {
        let dict = self.new_object(Object::Dict(Dict::default()));
        self.set_items(&dict, flat)?;
        Ok(dict)
    }

    // -- one opcode -------------------------------------------------------

    /// Executes one opcode; returns `true` at STOP.
    fn step(&mut self, code: u8) -> Res<bool> {
        self.spend(1)?;
        let value = match code {
            op::PROTO => {
                let version = self.read_u8()?;
                if version > 5 {
                    return Err(malformed(format!("unsupported pickle protocol {version}")));
                }
                return Ok(false);
            }
            op::FRAME => {
                // Frames only group opcodes for buffered reading.
                let len = self.read_u64_len()?;
                if len > self.input.len() - self.pos {
                    return Err(malformed("pickle frame runs past the end of the file"));
                }
                return Ok(false);
            }
            op::STOP => return Ok(true),
            op::MARK => {
                self.marks.push(self.stack.len());
                return Ok(false);
            }
            op::POP => {
                if self.stack.len() > self.floor() {
                    self.stack.pop();
                } else {
                    self.pop_mark()?;
                }
                return Ok(false);
            }
            op::POP_MARK => {
                self.pop_mark()?;
                return Ok(false);
            }

            // Scalars.
            op::NONE => Value::None,
            op::NEWTRUE => Value::Bool(true),
            op::NEWFALSE => Value::Bool(false),
            op::BININT => Value::Int(i32::from_le_bytes(self.take_array()?).into()),
            op::BININT1 => Value::Int(self.read_u8()?.into()),
            op::BININT2 => Value::Int(u16::from_le_bytes(self.take_array()?).into()),
            op::LONG1 => {
                let n = usize::from(self.read_u8()?);
                Value::Int(decode_long(self.take(n)?)?)
            }
            op::LONG4 => {
                let n = self.read_i32_len()?;
                Value::Int(decode_long(self.take(n)?)?)
            }
            op::BINFLOAT => {
                self.take(8)?;
                Value::Float
            }

            // Text and bytes.
            op::SHORT_BINUNICODE => {
                let n = usize::from(self.read_u8()?);
                self.read_str(n)?
            }
            op::BINUNICODE => {
                let n = self.read_u32_len()?;
                self.read_str(n)?
            }
            op::BINUNICODE8 => {
                let n = self.read_u64_len()?;
                self.read_str(n)?
            }
            op::SHORT_BINSTRING | op::SHORT_BINBYTES => {
                let n = usize::from(self.read_u8()?);
                self.read_bytes(n)?
            }
            op::BINSTRING => {
                let n = self.read_i32_len()?;
                self.read_bytes(n)?
            }
            op::BINBYTES => {
                let n = self.read_u32_len()?;
                self.read_bytes(n)?
            }
            op::BINBYTES8 | op::BYTEARRAY8 => {
                let n = self.read_u64_len()?;
                self.read_bytes(n)?
            }

            // Tuples, lists, dicts.
            op::EMPTY_TUPLE => Value::Tuple(Rc::from(Vec::new())),
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = usize::from(code - op::TUPLE1 + 1);
                Value::Tuple(Rc::from(self.pop_n(n)?))
            }
            op::TUPLE => Value::Tuple(Rc::from(self.pop_mark()?)),
            op::EMPTY_LIST => self.new_object(Object::List(Vec::new())),
            op::LIST => {
                let items = self.pop_mark()?;
                self.new_object(Object::List(items))
            }
            op::APPEND => {
                let item = self.pop()?;
                self.append(vec![item])?;
                return Ok(false);
            }
            op::APPENDS => {
                let items = self.pop_mark()?;
                self.append(items)?;
                return Ok(false);
            }
            op::EMPTY_DICT => self.new_object(Object::Dict(Dict::default())),
            op::DICT => {
                let flat = self.pop_mark()?;
                self.new_dict(flat)?
            }
            op::SETITEM => {
                let value = self.pop()?;
                let key = self.pop()?;
                let target = self.top()?.clone();
                self.set_items(&target, vec![key, value])?;
                return Ok(false);
            }
            op::SETITEMS => {
                let flat = self.pop_mark()?;
                let target = self.top()?.clone();
                self.set_items(&target, flat)?;
                return Ok(false);
            }

            // Memo.
            op::MEMOIZE => {
                let index = u32::try_from(self.memo.len())
                    .map_err(|_| malformed("pickle memo is too large"))?;
                let value = self.top()?.clone();
                self.memo.insert(index, value);
                return Ok(false);
            }
            op::BINPUT | op::LONG_BINPUT => {
                let index = if code == op::BINPUT {
                    u32::from(self.read_u8()?)
                } else {
                    u32::from_le_bytes(self.take_array()?)
                };
                let value = self.top()?.clone();
                self.memo.insert(index, value);
                return Ok(false);
            }
            op::BINGET | op::LONG_BINGET => {
                let index = if code == op::BINGET {
                    u32::from(self.read_u8()?)
                } else {
                    u32::from_le_bytes(self.take_array()?)
                };
                self.memo
                    .get(&index)
                    .cloned()
                    .ok_or_else(|| malformed(format!("pickle memo has no entry {index}")))?
            }

            // Globals and calls.
            op::GLOBAL => {
                let module = self.read_line()?;
                let name = self.read_line()?;
                Value::Global(Callable::resolve(module, name)?)
            }
            op::STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(module), Value::Str(name)) => {
                        Value::Global(Callable::resolve(module, name)?)
                    }
                    _ => return Err(malformed("STACK_GLOBAL needs two strings")),
                }
            }
            op::REDUCE => {
                let args = self.pop()?;
                let func = self.pop()?;
                self.reduce(func, args)?
            }
            op::NEWOBJ => {
                let args = self.pop()?;
                let class = self.pop()?;
                match (&class, &args) {
                    (Value::Global(Callable::OrderedDict), Value::Tuple(a)) if a.is_empty() => {
                        self.new_object(Object::Dict(Dict::default()))
                    }
                    _ => {
                        return Err(malformed(format!(
                            "NEWOBJ of {} is not supported",
                            self.describe(&class)
                        )))
                    }
                }
            }
            op::BUILD => {
                let state = self.pop()?;
                let target = self.top()?.clone();
                self.build(&target, state)?;
                return Ok(false);
            }
            other => {
                return Err(refused(format!(
                    "the pickle uses opcode {} (0x{other:02x}), which the restricted legacy \
                     weights decoder does not accept; mmdnn never executes pickled code",
                    opcode_name(other)
                )))
            }
        };
        self.stack.push(value);
        Ok(false)
    }

    // -- calls ------------------------------------------------------------

    /// REDUCE: `func(*args)` for the whitelisted stand-ins only.
    fn reduce(&mut self, func: Value<'a>, args: Value<'a>) -> Res<Value<'a>> {
        let Value::Global(callable) = func else {
            return Err(malformed(format!(
                "REDUCE applied to {}, which is not callable",
                self.describe(&func)
            )));
        };
        let Value::Tuple(args) = args else {
            return Err(malformed(format!(
                "arguments for {} are {}, not a tuple",
                callable.name(),
                self.describe(&args)
            )));
        };
        let bad_args = || unexpected_args(callable);
        match callable {
            Callable::Reconstruct => {
                // _reconstruct(numpy.ndarray, (0,), b'b')
                let ok = match &args[..] {
                    [Value::Global(Callable::NdArray), Value::Tuple(shape), code] => {
                        matches!(&shape[..], [Value::Int(0)])
                            && match code {
                                Value::Bytes(b) => b.as_slice() == b"b",
                                Value::Str(s) => *s == "b",
                                _ => false,
                            }
                    }
                    _ => false,
                };
                if !ok {
                    return Err(bad_args());
                }
                Ok(self.new_object(Object::Array(Array::Pending)))
            }
            Callable::Dtype => {
                // dtype(name, align, copy)
                let (name, flags) = args.split_first().ok_or_else(bad_args)?;
                let name = match name {
                    Value::Str(s) => s.as_bytes(),
                    Value::Bytes(b) => b.as_slice(),
                    _ => return Err(bad_args()),
                };
                if flags.len() > 2 || !flags.iter().all(|f| as_flag(f).is_some()) {
                    return Err(bad_args());
                }
                let kind = DtypeKind::from_name(name)?;
                Ok(self.new_object(Object::Dtype(Dtype {
                    kind,
                    big_endian: None,
                })))
            }
            Callable::FromBuffer => self.frombuffer(&args),
            Callable::CodecsEncode => {
                // _codecs.encode(text, 'latin1') -> bytes
                let [Value::Str(text), Value::Str(encoding)] = &args[..] else {
                    return Err(bad_args());
                };
                if !matches!(encoding.to_ascii_lowercase().as_str(), "latin1" | "latin-1") {
                    return Err(malformed(format!(
                        "_codecs.encode with encoding {} is not supported (only 'latin1')",
                        quoted(encoding)
                    )));
                }
                let encoded = text
                    .chars()
                    .map(|c| u8::try_from(u32::from(c)))
                    .collect::<std::result::Result<Vec<u8>, _>>()
                    .map_err(|_| malformed("_codecs.encode: text is not Latin-1"))?;
                self.encoded_bytes = self.encoded_bytes.saturating_add(encoded.len());
                if self.encoded_bytes > self.input.len() {
                    return Err(refused(
                        "the pickle re-encodes the same text repeatedly, producing more data \
                         than the file holds (possible resource-exhaustion attack)",
                    ));
                }
                Ok(Value::Bytes(Buf::Shared(Rc::from(encoded))))
            }
            Callable::OrderedDict => {
                // OrderedDict() or, from Python 2, OrderedDict([[k, v], ...])
                match &args[..] {
                    [] => Ok(self.new_object(Object::Dict(Dict::default()))),
                    [pairs] => {
                        // Charge first: the same list may be passed many times.
                        let count = self.sequence(pairs).ok_or_else(bad_args)?.len();
                        self.spend(count)?;
                        let mut flat = Vec::with_capacity(count * 2);
                        for pair in self.sequence(pairs).ok_or_else(bad_args)? {
                            match self.sequence(pair) {
                                Some([k, v]) => flat.extend([k.clone(), v.clone()]),
                                _ => return Err(bad_args()),
                            }
                        }
                        self.new_dict(flat)
                    }
                    _ => Err(bad_args()),
                }
            }
            Callable::NdArray => Err(malformed("calling numpy.ndarray directly is not supported")),
        }
    }

    /// Items of a tuple or list value (borrowed, never copied wholesale).
    fn sequence<'s>(&'s self, value: &'s Value<'a>) -> Option<&'s [Value<'a>]> {
        match value {
            Value::Tuple(items) => Some(items),
            Value::Obj(id) => match &self.objects[*id] {
                Object::List(items) => Some(items),
                _ => None,
            },
            _ => None,
        }
    }

    /// Protocol 5: `_frombuffer(buf, dtype, shape, order[, axis_order])`,
    /// i.e. `frombuffer(buf, dtype).reshape(shape, order)`, or for order
    /// `'K'` `reshape(shape).transpose(axis_order)`.
    fn frombuffer(&mut self, args: &[Value<'a>]) -> Res<Value<'a>> {
        let bad = || unexpected_args(Callable::FromBuffer);
        let (buf, dtype, shape, order, axis_order) = match args {
            [b, d, s, o] => (b, d, s, o, None),
            [b, d, s, o, a] => (b, d, s, o, Some(a)),
            _ => return Err(bad()),
        };
        let Value::Bytes(raw) = buf else {
            return Err(bad());
        };
        let elem = match self.element_type(dtype)? {
            ElemType::Numeric(elem) => elem,
            ElemType::Object => return Err(malformed("object arrays are not supported")),
        };
        let shape = shape_of(shape)?;
        let order = match order {
            Value::Str(s) => s.as_bytes(),
            Value::Bytes(b) => b.as_slice(),
            _ => return Err(bad()),
        };
        let axis_order = match axis_order {
            None | Some(Value::None) => None,
            Some(value) => Some(shape_of(value)?),
        };
        let (shape, strides) = match (order, axis_order) {
            (b"C", _) => (shape, None),
            (b"F", _) => {
                let strides = fortran_strides(&shape);
                (shape, Some(strides))
            }
            (b"K", Some(axes)) => {
                let mut seen = vec![false; shape.len()];
                let is_permutation = axes.len() == shape.len()
                    && axes
                        .iter()
                        .all(|&a| a < seen.len() && !std::mem::replace(&mut seen[a], true));
                if !is_permutation {
                    return Err(malformed(
                        "_frombuffer axis order is not a permutation of the axes",
                    ));
                }
                let memory_strides = c_strides(&shape);
                let logical: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
                let strides = axes.iter().map(|&a| memory_strides[a]).collect();
                (logical, Some(strides))
            }
            _ => return Err(bad()),
        };
        let array = NumericArray::new(elem, shape, strides, raw.clone())?;
        Ok(self.new_object(Object::Array(Array::Numeric(array))))
    }

    /// The element type of a built `numpy.dtype` value.
    fn element_type(&self, value: &Value<'a>) -> Res<ElemType> {
        let Value::Obj(id) = value else {
            return Err(malformed(format!(
                "array dtype is {}, not a numpy.dtype",
                self.describe(value)
            )));
        };
        let Object::Dtype(dtype) = &self.objects[*id] else {
            return Err(malformed(format!(
                "array dtype is {}, not a numpy.dtype",
                self.describe(value)
            )));
        };
        let big_endian = dtype
            .big_endian
            .ok_or_else(|| malformed("a numpy.dtype is used before its state was set"))?;
        Ok(match dtype.kind {
            DtypeKind::Numeric { kind, size } => ElemType::Numeric(Elem {
                kind,
                size,
                big_endian: big_endian && size > 1,
            }),
            DtypeKind::Object => ElemType::Object,
        })
    }

    // -- BUILD ------------------------------------------------------------

    fn build(&mut self, target: &Value<'a>, state: Value<'a>) -> Res<()> {
        let description = self.describe(target);
        let Value::Obj(id) = *target else {
            return Err(malformed(format!("BUILD applied to {description}")));
        };
        let Value::Tuple(state) = state else {
            return Err(malformed(format!(
                "BUILD state for {description} is {}, not a tuple",
                self.describe(&state)
            )));
        };
        match &self.objects[id] {
            Object::Dtype(_) => self.build_dtype(id, &state),
            Object::Array(Array::Pending) => self.build_array(id, &state),
            Object::Array(_) => Err(malformed("BUILD applied twice to the same array")),
            _ => Err(malformed(format!("BUILD applied to {description}"))),
        }
    }

    /// `dtype.__setstate__((3, endian, subarray, names, fields, elsize,
    /// alignment, flags[, metadata]))` for plain (non-structured) dtypes.
    fn build_dtype(&mut self, id: ObjId, state: &[Value<'a>]) -> Res<()> {
        let bad = || malformed("unexpected numpy.dtype state; only plain dtypes are supported");
        let (endian, rest) = match state {
            [Value::Int(3 | 4), endian, rest @ ..] if rest.len() == 6 || rest.len() == 7 => {
                (endian, rest)
            }
            _ => return Err(bad()),
        };
        let endian = match endian {
            Value::Str(s) => s.as_bytes(),
            Value::Bytes(b) => b.as_slice(),
            _ => return Err(bad()),
        };
        // subarray, names and fields must be None (no structured dtypes);
        // elsize, alignment and flags are ints; metadata is None or a dict.
        let plain = matches!(
            &rest[..6],
            [
                Value::None,
                Value::None,
                Value::None,
                Value::Int(_),
                Value::Int(_),
                Value::Int(_)
            ]
        ) && match rest.get(6) {
            None | Some(Value::None) => true,
            Some(Value::Obj(m)) => matches!(self.objects[*m], Object::Dict(_)),
            Some(_) => false,
        };
        if !plain {
            return Err(bad());
        }
        let Object::Dtype(dtype) = &mut self.objects[id] else {
            return Err(bad());
        };
        if dtype.big_endian.is_some() {
            return Err(malformed("BUILD applied twice to the same numpy.dtype"));
        }
        let single_byte = match dtype.kind {
            DtypeKind::Numeric { size, .. } => size == 1,
            DtypeKind::Object => true,
        };
        dtype.big_endian = Some(match (endian, single_byte) {
            (b"<", _) => false,
            (b">", _) => true,
            (b"|", true) => false,
            _ => {
                return Err(malformed(format!(
                    "numpy.dtype with byte order {} is not supported",
                    quoted_bytes(endian)
                )))
            }
        });
        Ok(())
    }

    /// `ndarray.__setstate__(([1,] shape, dtype, is_fortran, data))`.
    fn build_array(&mut self, id: ObjId, state: &[Value<'a>]) -> Res<()> {
        let bad = "unexpected numpy.ndarray state; expected (1, shape, dtype, is_fortran, data)";
        let fields = match state {
            [Value::Int(1), rest @ ..] if rest.len() == 4 => rest,
            _ if state.len() == 4 => state,
            _ => return Err(malformed(bad)),
        };
        let shape = shape_of(&fields[0])?;
        let elem = self.element_type(&fields[1])?;
        let fortran = as_flag(&fields[2])
            .ok_or_else(|| malformed("numpy.ndarray state: is_fortran is not a bool"))?;
        let array = match elem {
            ElemType::Object => match &fields[3] {
                items @ Value::Obj(list) if matches!(self.objects[*list], Object::List(_)) => {
                    Array::Object {
                        shape,
                        items: items.clone(),
                    }
                }
                other => {
                    return Err(malformed(format!(
                        "object array data is {}, not a list",
                        self.describe(other)
                    )))
                }
            },
            ElemType::Numeric(elem) => {
                let Value::Bytes(raw) = &fields[3] else {
                    return Err(malformed(format!(
                        "array data is {}, not bytes",
                        self.describe(&fields[3])
                    )));
                };
                let strides = (fortran && shape.len() > 1).then(|| fortran_strides(&shape));
                Array::Numeric(NumericArray::new(elem, shape, strides, raw.clone())?)
            }
        };
        self.objects[id] = Object::Array(array);
        Ok(())
    }
}

fn unexpected_args(callable: Callable) -> Fault {
    malformed(format!(
        "unexpected arguments to {}; this is not a NumPy-written pickle",
        callable.name()
    ))
}

/// Two's-complement little-endian integer of LONG1/LONG4, limited to 64 bits.
fn decode_long(bytes: &[u8]) -> Res<i64> {
    let Some(&last) = bytes.last() else {
        return Ok(0);
    };
    if bytes.len() > 8 {
        return Err(malformed("integer wider than 64 bits"));
    }
    let mut buf = if last & 0x80 != 0 { [0xff; 8] } else { [0; 8] };
    buf[..bytes.len()].copy_from_slice(bytes);
    Ok(i64::from_le_bytes(buf))
}

/// A Python bool, or the ints 0/1 old NumPy versions used instead.
fn as_flag(value: &Value<'_>) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Int(0) => Some(false),
        Value::Int(1) => Some(true),
        _ => None,
    }
}

/// A tuple of non-negative ints (a shape or an axis order).
fn shape_of(value: &Value<'_>) -> Res<Vec<usize>> {
    let Value::Tuple(items) = value else {
        return Err(malformed("array shape is not a tuple"));
    };
    if items.len() > MAX_NDIM {
        return Err(malformed(format!(
            "array has {} dimensions (NumPy allows {MAX_NDIM})",
            items.len()
        )));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Int(n) => {
                usize::try_from(*n).map_err(|_| malformed(format!("negative array dimension {n}")))
            }
            _ => Err(malformed("array shape contains a non-integer")),
        })
        .collect()
}

/// C-order strides (in elements). Saturating: only used for non-empty
/// arrays, whose suffix products are bounded by the element count.
fn c_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for axis in (0..shape.len().saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1].saturating_mul(shape[axis + 1]);
    }
    strides
}

/// Fortran-order strides (in elements).
fn fortran_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for axis in 1..shape.len() {
        strides[axis] = strides[axis - 1].saturating_mul(shape[axis - 1]);
    }
    strides
}

impl<'a> NumericArray<'a> {
    /// Checks that `raw` holds exactly `product(shape)` elements.
    fn new(elem: Elem, shape: Vec<usize>, strides: Option<Vec<usize>>, raw: Buf<'a>) -> Res<Self> {
        let needed = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .and_then(|count| count.checked_mul(elem.size));
        let have = raw.as_slice().len();
        match needed {
            Some(needed) if needed == have => Ok(NumericArray {
                elem,
                shape,
                strides,
                raw,
            }),
            Some(needed) => Err(malformed(format!(
                "array of shape {shape:?} and dtype {} needs {needed} bytes but the pickle \
                 holds {have}",
                elem.descr()
            ))),
            None => Err(malformed(format!(
                "array shape {shape:?} declares an absurd number of elements"
            ))),
        }
    }

    /// Copies the data out in C order and little-endian byte order.
    fn to_tensor(&self) -> LegacyTensor {
        let src = self.raw.as_slice();
        let size = self.elem.size;
        let mut data = match &self.strides {
            Some(strides) if !src.is_empty() => gather(src, size, &self.shape, strides),
            _ => src.to_vec(),
        };
        if self.elem.big_endian {
            for item in data.chunks_exact_mut(size) {
                item.reverse();
            }
        }
        LegacyTensor {
            descr: self.elem.descr(),
            shape: self.shape.clone(),
            data,
        }
    }
}

/// Reads elements of `size` bytes from `src` at `strides` (in elements) per
/// axis of `shape`, writing them out in C order. `src` must be non-empty and
/// `strides` a permutation of the C strides of some shape with the same
/// element count, so every offset stays in bounds.
fn gather(src: &[u8], size: usize, shape: &[usize], strides: &[usize]) -> Vec<u8> {
    let count = src.len() / size;
    let mut out = Vec::with_capacity(src.len());
    let mut index = vec![0usize; shape.len()];
    let mut offset = 0usize;
    for _ in 0..count {
        out.extend_from_slice(&src[offset * size..(offset + 1) * size]);
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            offset += strides[axis];
            if index[axis] < shape[axis] {
                break;
            }
            offset -= strides[axis] * shape[axis];
            index[axis] = 0;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// From the decoded object graph to (layer, param, tensor) triples
// ---------------------------------------------------------------------------

fn extract(
    root: &Value<'_>,
    objects: &[Object<'_>],
    file_len: usize,
) -> Res<Vec<(String, String, LegacyTensor)>> {
    let layers = top_level_dict(root, objects)?;
    let mut out = Vec::new();
    let mut total_bytes = 0usize;
    let mut layer_names = HashSet::new();
    for (layer_key, layer_value) in &layers.entries {
        let layer = layer_key.to_text();
        if !layer_names.insert(layer.clone()) {
            return Err(malformed(format!(
                "layer name {} appears twice (once as str, once as bytes)",
                quoted(&layer)
            )));
        }
        let params = match layer_value {
            Value::Obj(id) => match &objects[*id] {
                Object::Dict(dict) => Some(dict),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| {
            malformed(format!(
                "layer {} holds {}, not a dict of arrays",
                quoted(&layer),
                describe(layer_value, objects)
            ))
        })?;
        let mut param_names = HashSet::new();
        for (param_key, param_value) in &params.entries {
            let param = param_key.to_text();
            let name = format!("{}/{}", layer, param);
            if !param_names.insert(param.clone()) {
                return Err(malformed(format!(
                    "parameter {} appears twice (once as str, once as bytes)",
                    quoted(&name)
                )));
            }
            let array = match param_value {
                Value::Obj(id) => match &objects[*id] {
                    Object::Array(array) => Some(array),
                    _ => None,
                },
                _ => None,
            };
            let array = match array {
                Some(Array::Numeric(array)) => array,
                Some(Array::Object { .. }) => {
                    return Err(malformed(format!(
                        "parameter {} is an object array; only numeric arrays are supported",
                        quoted(&name)
                    )))
                }
                Some(Array::Pending) => {
                    return Err(malformed(format!(
                        "parameter {} is an array that never received its data",
                        quoted(&name)
                    )))
                }
                None => {
                    return Err(malformed(format!(
                        "parameter {} holds {}, not a NumPy array",
                        quoted(&name),
                        describe(param_value, objects)
                    )))
                }
            };
            total_bytes = total_bytes.saturating_add(array.raw.as_slice().len());
            if total_bytes > file_len {
                return Err(refused(format!(
                    "the arrays add up to more than the file's {file_len} bytes (the pickle \
                     reuses the same array data; possible resource-exhaustion attack)"
                )));
            }
            out.push((layer.clone(), param, array.to_tensor()));
        }
    }
    Ok(out)
}

/// The weights dict: the single item of the 0-d object array `np.save`
/// pickles, or (leniently) a dict pickled directly.
fn top_level_dict<'o, 'a>(root: &Value<'a>, objects: &'o [Object<'a>]) -> Res<&'o Dict<'a>> {
    let not_a_dict = |what: &Value<'a>| {
        malformed(format!(
            "the pickle holds {}, not a dict of layers",
            describe(what, objects)
        ))
    };
    let Value::Obj(id) = root else {
        return Err(not_a_dict(root));
    };
    let inner = match &objects[*id] {
        Object::Dict(dict) => return Ok(dict),
        Object::Array(Array::Object { shape, items }) if shape.is_empty() => items,
        _ => return Err(not_a_dict(root)),
    };
    let item = match inner {
        Value::Obj(list) => match &objects[*list] {
            Object::List(items) if items.len() == 1 => &items[0],
            Object::List(items) => {
                return Err(malformed(format!(
                    "the 0-d object array holds {} items instead of 1",
                    items.len()
                )))
            }
            _ => return Err(not_a_dict(inner)),
        },
        _ => return Err(not_a_dict(inner)),
    };
    match item {
        Value::Obj(dict) => match &objects[*dict] {
            Object::Dict(dict) => Ok(dict),
            _ => Err(not_a_dict(item)),
        },
        _ => Err(not_a_dict(item)),
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    type Triples = Vec<(String, String, LegacyTensor)>;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/legacy")
            .join(name)
    }

    fn load(name: &str) -> Triples {
        read_legacy_weights(&fixture(name))
            .unwrap_or_else(|e| panic!("decoding {name} failed: {e:#}"))
    }

    fn load_err(name: &str) -> String {
        match read_legacy_weights(&fixture(name)) {
            Ok(t) => panic!("{name} decoded to {} tensors but should fail", t.len()),
            Err(e) => format!("{e:#}"),
        }
    }

    fn names(triples: &Triples) -> Vec<(&str, &str)> {
        triples
            .iter()
            .map(|(l, p, _)| (l.as_str(), p.as_str()))
            .collect()
    }

    fn get<'t>(triples: &'t Triples, layer: &str, param: &str) -> &'t LegacyTensor {
        triples
            .iter()
            .find(|(l, p, _)| l == layer && p == param)
            .map(|(_, _, t)| t)
            .unwrap_or_else(|| panic!("no tensor {layer}/{param}"))
    }

    fn values<const N: usize, T>(t: &LegacyTensor, descr: &str, from: fn([u8; N]) -> T) -> Vec<T> {
        assert_eq!(t.descr, descr);
        assert_eq!(t.data.len() % N, 0);
        t.data
            .chunks_exact(N)
            .map(|c| from(c.try_into().unwrap()))
            .collect()
    }

    fn f32s(t: &LegacyTensor) -> Vec<f32> {
        values(t, "<f4", f32::from_le_bytes)
    }

    fn f64s(t: &LegacyTensor) -> Vec<f64> {
        values(t, "<f8", f64::from_le_bytes)
    }

    fn i64s(t: &LegacyTensor) -> Vec<i64> {
        values(t, "<i8", i64::from_le_bytes)
    }

    /// Decodes an IEEE half (normal numbers and zero only, enough here).
    fn f16_to_f32(bits: u16) -> f32 {
        let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
        let exp = i32::from((bits >> 10) & 0x1f);
        let frac = f32::from(bits & 0x3ff);
        if exp == 0 && frac == 0.0 {
            return 0.0;
        }
        sign * (1.0 + frac / 1024.0) * 2f32.powi(exp - 15)
    }

    // -- fixtures written by tests/fixtures/make_legacy_npy.py -------------

    #[test]
    fn protocol_2_from_python3() {
        let t = load("mmdnn_dict_p2.npy");
        assert_eq!(
            names(&t),
            [("conv1", "weights"), ("conv1", "bias"), ("fc1", "weights")]
        );
        let w = get(&t, "conv1", "weights");
        assert_eq!(w.shape, [2, 3, 4]);
        let want: Vec<f32> = (0..24).map(|i| (i as f32 - 12.0) * 0.25).collect();
        assert_eq!(f32s(w), want);
        let b = get(&t, "conv1", "bias");
        assert_eq!(b.shape, [4]);
        assert_eq!(i64s(b), [0, -3, -6, -9]);
        let fc = get(&t, "fc1", "weights");
        assert_eq!(fc.shape, [3, 2]);
        assert_eq!(f32s(fc), (0..6).map(|i| i as f32).collect::<Vec<_>>());
    }

    #[test]
    fn protocol_3_numpy1_with_big_endian_arrays() {
        let t = load("mmdnn_dict_p3.npy");
        assert_eq!(
            names(&t),
            [
                ("bn", "mean"),
                ("bn", "var"),
                ("bn", "count"),
                ("bn", "flags"),
                ("bn", "u16")
            ]
        );
        // '>f4' on disk, '<f4' out.
        let mean = get(&t, "bn", "mean");
        assert_eq!(mean.shape, [5]);
        assert_eq!(
            f32s(mean),
            (0..5).map(|i| i as f32 * 1.5).collect::<Vec<_>>()
        );
        let var = get(&t, "bn", "var");
        assert_eq!(
            f64s(var),
            (0..5).map(|i| i as f64 + 0.5).collect::<Vec<_>>()
        );
        let count = get(&t, "bn", "count");
        assert_eq!(values(count, "<i4", i32::from_le_bytes), [-1, 0, 1]);
        let flags = get(&t, "bn", "flags");
        assert_eq!(flags.descr, "|u1");
        assert_eq!(flags.data, [1, 2, 250]);
        let u16s = get(&t, "bn", "u16");
        assert_eq!(
            values(u16s, "<u2", u16::from_le_bytes),
            [0, 1000, 2000, 3000]
        );
    }

    #[test]
    fn protocol_4_half_fortran_bool_empty() {
        let t = load("mmdnn_dict_p4.npy");
        assert_eq!(
            names(&t),
            [
                ("half", "w"),
                ("fortran", "w"),
                ("mask", "m"),
                ("mask", "scalar"),
                ("empty", "e")
            ]
        );
        let half = get(&t, "half", "w");
        assert_eq!(half.shape, [2, 4]);
        let got: Vec<f32> = values(half, "<f2", u16::from_le_bytes)
            .into_iter()
            .map(f16_to_f32)
            .collect();
        assert_eq!(got, (0..8).map(|i| i as f32 / 4.0).collect::<Vec<_>>());
        // np.asfortranarray(np.arange(24).reshape(2, 3, 4)): C order is arange.
        let fortran = get(&t, "fortran", "w");
        assert_eq!(fortran.shape, [2, 3, 4]);
        assert_eq!(f32s(fortran), (0..24).map(|i| i as f32).collect::<Vec<_>>());
        let mask = get(&t, "mask", "m");
        assert_eq!((mask.descr.as_str(), &mask.shape[..]), ("|b1", &[2, 3][..]));
        assert_eq!(mask.data, [1, 0, 1, 1, 0, 0]);
        let scalar = get(&t, "mask", "scalar");
        assert_eq!((scalar.descr.as_str(), scalar.shape.len()), ("|b1", 0));
        assert_eq!(scalar.data, [1]);
        let empty = get(&t, "empty", "e");
        assert_eq!(
            (empty.descr.as_str(), &empty.shape[..]),
            ("<f4", &[0, 3][..])
        );
        assert!(empty.data.is_empty());
    }

    #[test]
    fn protocol_5_frombuffer_orders() {
        let t = load("mmdnn_dict_p5.npy");
        assert_eq!(
            names(&t),
            [("c", "w"), ("f", "w"), ("k", "w"), ("s", "w"), ("b", "w")]
        );
        let c = get(&t, "c", "w");
        assert_eq!(c.shape, [2, 3]);
        assert_eq!(f32s(c), (0..6).map(|i| i as f32).collect::<Vec<_>>());
        let f = get(&t, "f", "w");
        assert_eq!(f.shape, [3, 4]);
        assert_eq!(f64s(f), (0..12).map(f64::from).collect::<Vec<_>>());
        // arange(24, '>i2').reshape(2, 3, 4).transpose(1, 2, 0):
        // out[a, b, c] = in[c, a, b] = 12c + 4a + b.
        let k = get(&t, "k", "w");
        assert_eq!(k.shape, [3, 4, 2]);
        let mut want = Vec::new();
        for a in 0..3i16 {
            for b in 0..4 {
                for c in 0..2 {
                    want.push(12 * c + 4 * a + b);
                }
            }
        }
        assert_eq!(values(k, "<i2", i16::from_le_bytes), want);
        let s = get(&t, "s", "w");
        assert_eq!(f32s(s), [0.0, 3.0, 6.0, 9.0]);
        let b = get(&t, "b", "w");
        assert_eq!(
            (b.descr.as_str(), b.shape.len(), &b.data[..]),
            ("|b1", 0, &[1u8][..])
        );
    }

    #[test]
    fn python2_style_pickle() {
        let t = load("mmdnn_dict_py2.npy");
        // bytes keys decode as UTF-8, else Latin-1 (b'caf\xe9' -> "café").
        assert_eq!(
            names(&t),
            [
                ("conv", "weights"),
                ("conv", "bias"),
                ("caf\u{e9}", "gamma")
            ]
        );
        let w = get(&t, "conv", "weights");
        assert_eq!(w.shape, [100]);
        assert_eq!(
            f32s(w),
            (0..100).map(|i| i as f32 * 0.5).collect::<Vec<_>>()
        );
        let b = get(&t, "conv", "bias");
        assert_eq!(f32s(b), [0.0, 1.0, 2.0]);
        let g = get(&t, "caf\u{e9}", "gamma");
        assert_eq!(i64s(g), [-5, -4]);
    }

    #[test]
    fn refuses_os_system_without_running_it() {
        let marker = Path::new("/tmp/mmdnn_legacy_npy_evil_system_marker");
        let _ = std::fs::remove_file(marker);
        let err = load_err("evil_system.npy");
        assert!(
            err.contains("refusing to load legacy MMdnn weights"),
            "{err}"
        );
        assert!(err.contains("evil_system.npy"), "{err}");
        assert!(err.contains("'posix.system'"), "{err}");
        assert!(err.contains("mmdnn never executes pickled code"), "{err}");
        assert!(!marker.exists(), "the malicious pickle ran");
    }

    #[test]
    fn refuses_builtins_eval_via_stack_global() {
        let marker = Path::new("/tmp/mmdnn_legacy_npy_evil_eval_marker");
        let _ = std::fs::remove_file(marker);
        let err = load_err("evil_eval.npy");
        assert!(err.contains("refusing to load"), "{err}");
        assert!(err.contains("'builtins.eval'"), "{err}");
        assert!(!marker.exists(), "the malicious pickle ran");
    }

    #[test]
    fn plain_array_is_not_a_weights_dict() {
        let err = load_err("plain_array.npy");
        assert!(err.contains("plain NumPy array"), "{err}");
        assert!(err.contains("'<f4'") && err.contains("(2, 3)"), "{err}");
        assert!(err.contains("not an MMdnn weights dict"), "{err}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = read_legacy_weights(&fixture("does_not_exist.npy")).unwrap_err();
        assert!(format!("{err:#}").contains("does_not_exist.npy"));
    }

    // -- hand-assembled pickles -------------------------------------------

    /// Minimal pickle assembler for the synthetic cases below.
    struct P(Vec<u8>);

    impl P {
        fn new(protocol: u8) -> Self {
            P(vec![op::PROTO, protocol])
        }
        fn op(mut self, code: u8) -> Self {
            self.0.push(code);
            self
        }
        fn raw(mut self, bytes: &[u8]) -> Self {
            self.0.extend_from_slice(bytes);
            self
        }
        fn global(self, module: &str, name: &str) -> Self {
            self.op(op::GLOBAL)
                .raw(format!("{module}\n{name}\n").as_bytes())
        }
        fn int(self, n: u8) -> Self {
            self.op(op::BININT1).raw(&[n])
        }
        /// Any non-negative int, as LONG1 (8 bytes).
        fn long(self, n: u64) -> Self {
            self.op(op::LONG1).raw(&[8]).raw(&n.to_le_bytes())
        }
        fn neg1(self) -> Self {
            self.op(op::BININT).raw(&(-1i32).to_le_bytes())
        }
        fn text(self, s: &str) -> Self {
            let len = u32::try_from(s.len()).unwrap().to_le_bytes();
            self.op(op::BINUNICODE).raw(&len).raw(s.as_bytes())
        }
        fn bytes(self, b: &[u8]) -> Self {
            let len = u32::try_from(b.len()).unwrap().to_le_bytes();
            self.op(op::BINBYTES).raw(&len).raw(b)
        }
        fn put(self, i: u8) -> Self {
            self.op(op::BINPUT).raw(&[i])
        }
        fn get(self, i: u8) -> Self {
            self.op(op::BINGET).raw(&[i])
        }
        /// `numpy.dtype(name)` with its BUILD state.
        fn dtype(self, name: &str, endian: &str) -> Self {
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
        fn array(self, name: &str, endian: &str, shape: &[u64], fortran: bool, raw: &[u8]) -> Self {
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
        /// Wraps as `.npy` with an object header.
        fn npy(self) -> Vec<u8> {
            let mut out = npy_header("{'descr': '|O', 'fortran_order': False, 'shape': (), }");
            out.extend_from_slice(&self.0);
            out
        }
    }

    /// A version 1.0 `.npy` header around the dict literal `dict`.
    fn npy_header(dict: &str) -> Vec<u8> {
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
    fn one_param(layer: &str, param: &str, body: impl FnOnce(P) -> P) -> Vec<u8> {
        let p = P::new(2)
            .op(op::EMPTY_DICT)
            .text(layer)
            .op(op::EMPTY_DICT)
            .text(param);
        body(p).op(op::SETITEM).op(op::SETITEM).op(op::STOP).npy()
    }

    fn decode_err(bytes: &[u8]) -> String {
        match decode_legacy_weights(bytes, "test.npy") {
            Ok(t) => panic!("decoded {} tensors but should fail", t.len()),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn big_endian_f4_is_converted() {
        let raw: Vec<u8> = [1.5f32, -2.0, 3.25, 1e-3]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let bytes = one_param("l", "w", |p| p.array("f4", ">", &[2, 2], false, &raw));
        let t = decode_legacy_weights(&bytes, "test.npy").unwrap();
        assert_eq!(t[0].2.descr, "<f4");
        assert_eq!(t[0].2.shape, [2, 2]);
        assert_eq!(f32s(&t[0].2), [1.5, -2.0, 3.25, 1e-3]);
    }

    #[test]
    fn big_endian_fortran_i2_is_converted() {
        // Logical [[0, 1, 2], [3, 4, 5]] stored column-major, big-endian.
        let raw: Vec<u8> = [0i16, 3, 1, 4, 2, 5]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let bytes = one_param("l", "w", |p| p.array("i2", ">", &[2, 3], true, &raw));
        let t = decode_legacy_weights(&bytes, "test.npy").unwrap();
        assert_eq!(
            values(&t[0].2, "<i2", i16::from_le_bytes),
            [0, 1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn refuses_other_globals() {
        for (module, name) in [
            ("os", "system"),
            ("subprocess", "Popen"),
            ("builtins", "getattr"),
            ("__builtin__", "eval"),
            ("numpy", "load"),
            ("numpy.core.multiarray", "scalar"),
            ("collections", "defaultdict"),
        ] {
            let bytes = P::new(2)
                .global(module, name)
                .op(op::EMPTY_TUPLE)
                .op(op::REDUCE)
                .op(op::STOP)
                .npy();
            let err = decode_err(&bytes);
            assert!(err.contains("refusing to load"), "{err}");
            assert!(err.contains(&format!("'{module}.{name}'")), "{err}");
        }
    }

    #[test]
    fn refuses_code_running_opcodes() {
        // INST, OBJ, EXT1, PERSID, NEWOBJ_EX.
        for code in [b'i', b'o', 0x82, b'P', 0x92] {
            let bytes = P::new(2).op(op::MARK).op(code).op(op::STOP).npy();
            let err = decode_err(&bytes);
            assert!(err.contains("refusing to load"), "{err}");
            assert!(err.contains(opcode_name(code)), "{err}");
        }
    }

    #[test]
    fn rejects_wrong_call_shapes() {
        let ndarray_call = one_param("l", "w", |p| {
            p.global("numpy", "ndarray")
                .op(op::EMPTY_TUPLE)
                .op(op::REDUCE)
        });
        assert!(decode_err(&ndarray_call).contains("numpy.ndarray"));

        let utf8 = one_param("l", "w", |p| {
            p.global("_codecs", "encode")
                .text("x")
                .text("utf-8")
                .op(op::TUPLE2)
                .op(op::REDUCE)
        });
        assert!(decode_err(&utf8).contains("'utf-8'"));

        let reconstruct_list = one_param("l", "w", |p| {
            p.global("numpy._core.multiarray", "_reconstruct")
                .global("numpy", "dtype")
                .op(op::EMPTY_TUPLE)
                .op(op::TUPLE2)
                .op(op::REDUCE)
        });
        assert!(decode_err(&reconstruct_list).contains("unexpected arguments"));

        let object_dtype = one_param("l", "w", |p| p.dtype("U5", "<"));
        assert!(decode_err(&object_dtype).contains("'U5'"));
    }

    #[test]
    fn rejects_values_that_are_not_arrays() {
        let err = decode_err(&one_param("conv", "w", |p| p.int(5)));
        assert!(err.contains("'conv/w'") && err.contains("an int"), "{err}");

        let not_dict = P::new(2)
            .op(op::EMPTY_DICT)
            .text("conv")
            .op(op::EMPTY_LIST)
            .op(op::SETITEM)
            .op(op::STOP)
            .npy();
        let err = decode_err(&not_dict);
        assert!(err.contains("'conv'") && err.contains("a list"), "{err}");

        let object_array = one_param("conv", "w", |p| {
            p.global("numpy.core.multiarray", "_reconstruct")
                .global("numpy", "ndarray")
                .int(0)
                .op(op::TUPLE1)
                .text("b")
                .op(op::TUPLE3)
                .op(op::REDUCE)
                .op(op::MARK)
                .int(1)
                .op(op::EMPTY_TUPLE)
                .dtype("O8", "|")
                .op(op::NEWFALSE)
                .op(op::EMPTY_LIST)
                .op(op::NONE)
                .op(op::APPEND)
                .op(op::TUPLE)
                .op(op::BUILD)
        });
        let err = decode_err(&object_array);
        assert!(
            err.contains("'conv/w'") && err.contains("object array"),
            "{err}"
        );

        let int_key = P::new(2)
            .op(op::EMPTY_DICT)
            .int(7)
            .op(op::EMPTY_DICT)
            .op(op::SETITEM)
            .op(op::STOP)
            .npy();
        assert!(decode_err(&int_key).contains("only str and bytes keys"));
    }

    #[test]
    fn rejects_size_mismatch_and_absurd_shapes() {
        let short = one_param("l", "w", |p| p.array("f4", "<", &[2, 3], false, &[0; 20]));
        let err = decode_err(&short);
        assert!(
            err.contains("needs 24 bytes") && err.contains("holds 20"),
            "{err}"
        );

        // 2^40 * 2^40 elements overflow usize: refused without allocating.
        let huge = one_param("l", "w", |p| {
            p.array("f4", "<", &[1 << 40, 1 << 40], false, &[])
        });
        let err = decode_err(&huge);
        assert!(err.contains("absurd"), "{err}");

        // An empty array may have huge other dimensions.
        let empty = one_param("l", "w", |p| {
            p.array("f8", "<", &[0, 1 << 40, 1 << 40], true, &[])
        });
        let t = decode_legacy_weights(&empty, "test.npy").unwrap();
        assert_eq!(t[0].2.shape, [0, 1 << 40, 1 << 40]);
        assert!(t[0].2.data.is_empty());
    }

    #[test]
    fn rejects_memo_amplification() {
        // One 4 KiB array referenced 200 times: 800 KiB from a ~6 KiB file.
        let mut p = P::new(2)
            .op(op::EMPTY_DICT)
            .text("l")
            .op(op::EMPTY_DICT)
            .text("p0")
            .array("u1", "|", &[4096], false, &[7; 4096])
            .put(1)
            .op(op::SETITEM);
        for i in 1..200 {
            p = p.text(&format!("p{i}")).get(1).op(op::SETITEM);
        }
        let err = decode_err(&p.op(op::SETITEM).op(op::STOP).npy());
        assert!(
            err.contains("refusing to load") && err.contains("more than the file"),
            "{err}"
        );
    }

    #[test]
    fn rejects_endless_pickles() {
        let mut p = P::new(2);
        for _ in 0..(MAX_STEPS / 2 + 1) {
            p = p.op(op::NONE).op(op::POP);
        }
        let err = decode_err(&p.op(op::STOP).npy());
        assert!(
            err.contains("refusing to load") && err.contains("decoding steps"),
            "{err}"
        );
    }

    #[test]
    fn shared_arrays_within_budget_are_copied() {
        // A legitimately shared (memoised) array is returned under each name.
        let bytes = P::new(2)
            .op(op::EMPTY_DICT)
            .text("a")
            .op(op::EMPTY_DICT)
            .text("w")
            .array("i1", "<", &[3], false, &[1, 2, 0xff])
            .put(0)
            .op(op::SETITEM)
            .op(op::SETITEM)
            .op(op::BINBYTES)
            .raw(&1u32.to_le_bytes())
            .raw(b"b")
            .op(op::EMPTY_DICT)
            .text("w")
            .get(0)
            .op(op::SETITEM)
            .op(op::SETITEM)
            .op(op::STOP)
            .npy();
        let t = decode_legacy_weights(&bytes, "test.npy").unwrap();
        assert_eq!(names(&t), [("a", "w"), ("b", "w")]);
        for (_, _, tensor) in &t {
            assert_eq!(
                (tensor.descr.as_str(), &tensor.data[..]),
                ("|i1", &[1, 2, 0xff][..])
            );
        }
    }

    #[test]
    fn rejects_duplicate_names_after_decoding() {
        let bytes = P::new(2)
            .op(op::EMPTY_DICT)
            .text("a")
            .op(op::EMPTY_DICT)
            .op(op::SETITEM)
            .op(op::SHORT_BINBYTES)
            .raw(&[1, b'a'])
            .op(op::EMPTY_DICT)
            .op(op::SETITEM)
            .op(op::STOP)
            .npy();
        assert!(decode_err(&bytes).contains("appears twice"));
    }

    #[test]
    fn frombuffer_checks_axis_order() {
        let bad_axes = one_param("l", "w", |p| {
            p.global("numpy._core.numeric", "_frombuffer")
                .op(op::MARK)
                .op(op::BYTEARRAY8)
                .raw(&8u64.to_le_bytes())
                .raw(&[0; 8])
                .dtype("i2", "<")
                .int(2)
                .int(2)
                .op(op::TUPLE2)
                .text("K")
                .int(0)
                .int(0)
                .op(op::TUPLE2)
                .op(op::TUPLE)
                .op(op::REDUCE)
        });
        assert!(decode_err(&bad_axes).contains("permutation"));
    }

    #[test]
    fn rejects_malformed_containers() {
        assert!(decode_err(b"PK\x03\x04").contains("not a .npy file"));
        let mut truncated = one_param("l", "w", |p| p.array("f4", "<", &[1], false, &[0; 4]));
        truncated.truncate(truncated.len() - 3);
        let err = decode_err(&truncated);
        assert!(
            err.contains("cannot decode") && err.contains("test.npy"),
            "{err}"
        );
        let underflow = P::new(2).op(op::SETITEM).op(op::STOP).npy();
        assert!(decode_err(&underflow).contains("underflow"));
        let missing_memo = P::new(2).get(9).op(op::STOP).npy();
        assert!(decode_err(&missing_memo).contains("no entry 9"));
        let not_dict = P::new(2).op(op::NONE).op(op::STOP).npy();
        assert!(decode_err(&not_dict).contains("not a dict of layers"));
        let object_shape = npy_header("{'descr': '|O', 'fortran_order': False, 'shape': (2,)}");
        assert!(decode_err(&object_shape).contains("object array of shape (2,)"));
        // Python 2 headers may spell dimensions as longs.
        let py2_plain = npy_header("{'descr': '<f8', 'fortran_order': True, 'shape': (3L, 4L), }");
        assert!(decode_err(&py2_plain).contains("descr '<f8', shape (3, 4)"));
        let bad_version = b"\x93NUMPY\x04\x00";
        assert!(decode_err(bad_version).contains("version 4.0"));
    }
}
