//! A restricted pickle machine: reads the pickles NumPy and PyTorch write for arrays and
//! tensors without ever executing anything.
//!
//! # Security model
//!
//! Unpickling is code execution in Python: a pickle may call any importable function. This
//! module therefore does **not** implement pickle; it implements a small, closed interpreter
//! ([`vm`]) for the opcodes the `pickle` module emits for dicts, lists, tuples, strings, numbers
//! and the few classes below, and it never calls anything. The globals a pickle may name form
//! one allow-list ([`globals`]); each user of the machine accepts some families of it and
//! every other global (`os.system`, `posix.system`, `builtins.eval`, ...) makes decoding fail
//! with an error naming it. Each allowed global is a stand-in that builds an inert Rust value,
//! its arguments checked for the exact shapes NumPy or PyTorch produce:
//!
//! | global                                         | stand-in for                            |
//! |------------------------------------------------|-----------------------------------------|
//! | `numpy.core.multiarray._reconstruct`           | empty array, filled in by BUILD         |
//! | `numpy.ndarray`                                | only as `_reconstruct`'s first argument |
//! | `numpy.dtype`                                  | a numeric (or object) dtype             |
//! | `numpy.core.numeric._frombuffer`               | array from bytes (protocol 5)           |
//! | `_codecs.encode`                               | `'latin1'` text to bytes (protocol 2)   |
//! | `collections.OrderedDict`                      | a plain dict                            |
//! | `torch._utils._rebuild_tensor_v2` (and v1)     | a description of a tensor (no data)     |
//! | `torch.FloatStorage` and the other numeric ones| only as a persistent id's storage type  |
//!
//! (`numpy.core.*` may also be spelled `numpy._core.*`, as NumPy 2 does.) Every opcode outside
//! the supported set (`INST`, `OBJ`, `EXT*`, `PERSID`, ...) is refused too; `BINPERSID` only
//! where PyTorch storages are expected.
//!
//! Resources are bounded: every length is checked against the bytes actually present, the
//! number of interpreter steps is capped, array byte sizes must equal
//! `product(shape) * itemsize`, and users check that decoded data does not add up to more than
//! the file itself, which defeats "billion laughs" style reuse of memoised objects.
//!
//! Users: [`mmdnn`] (MMdnn's pickled `.npy` weights, via [`numpy`]) and [`torch`] (the
//! `data.pkl` of a `torch.save` archive).

mod globals;
pub mod mmdnn;
mod numpy;
mod opcodes;
#[cfg(test)]
mod testing;
pub mod torch;
mod value;
mod vm;

use std::fmt::Write as _;

pub use numpy::NumpyTensor;

/// Internal error: either the input is refused on security grounds or it is simply not well
/// formed.
#[derive(Debug)]
struct Fault {
    refused: bool,
    message: String,
}

type Res<T> = std::result::Result<T, Fault>;

/// Input that is damaged or not in the expected format.
fn malformed(message: impl Into<String>) -> Fault {
    Fault {
        refused: false,
        message: message.into(),
    }
}

/// Input that asks for something this machine will not do.
fn refused(message: impl Into<String>) -> Fault {
    Fault {
        refused: true,
        message: message.into(),
    }
}

impl Fault {
    /// The user-facing error; `what` names the input ("legacy MMdnn weights x.npy").
    fn into_error(self, what: &str) -> anyhow::Error {
        if self.refused {
            anyhow::anyhow!("refusing to load {what}: {}", self.message)
        } else {
            anyhow::anyhow!("cannot decode {what}: {}", self.message)
        }
    }

    /// Adds the position of the failing opcode to format errors.
    fn at(mut self, file_offset: usize, opcode: u8) -> Self {
        if !self.refused {
            let _ = write!(
                self.message,
                " (pickle opcode {} at file offset {file_offset})",
                opcodes::name(opcode)
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

/// Bytes as Latin-1 text (every byte is one char).
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}
