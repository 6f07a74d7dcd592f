//! The machine: opcodes, stack, marks and memo, with calls and BUILDs dispatched to the
//! stand-ins of the allow-listed globals ([`super::globals`]). Nothing is ever executed.

use std::collections::HashMap;
use std::rc::Rc;

use super::globals::{Global, Policy};
use super::opcodes::{self, op};
use super::value::{describe, Buf, Dict, Key, Object, Tuple, Value};
use super::{malformed, quoted, refused, Fault, Res};

/// Maximum interpreter steps (opcodes plus per-element work). A real MMdnn file needs roughly
/// 30 steps per tensor, so this allows >100k tensors while keeping the worst-case memory of the
/// stack and memo to a few hundred MB.
pub(super) const MAX_STEPS: usize = 1 << 22;
/// Longest accepted dict key (layer and parameter names are short).
const MAX_KEY_BYTES: usize = 1 << 16;

/// The restricted pickle interpreter over one input.
pub(super) struct Machine<'a> {
    /// What this user of the machine accepts.
    policy: &'static Policy,
    /// The whole file (offsets in messages are file offsets).
    input: &'a [u8],
    pos: usize,
    stack: Vec<Value<'a>>,
    /// Stack heights at each pending MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Value<'a>>,
    /// The mutable objects, addressed by [`super::value::ObjId`].
    pub(super) objects: Vec<Object<'a>>,
    steps_left: usize,
    /// Bytes produced so far by `_codecs.encode`.
    encoded_bytes: usize,
}

impl<'a> Machine<'a> {
    /// A machine reading the pickle that starts at `start` in `input`.
    pub(super) fn new(policy: &'static Policy, input: &'a [u8], start: usize) -> Self {
        Machine {
            policy,
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
    pub(super) fn run(mut self) -> Res<(Value<'a>, Vec<Object<'a>>)> {
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
                 {} (possible resource-exhaustion attack)",
                self.policy.file_kind
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

    pub(super) fn new_object(&mut self, object: Object<'a>) -> Value<'a> {
        self.objects.push(object);
        Value::Obj(self.objects.len() - 1)
    }

    pub(super) fn describe(&self, value: &Value<'a>) -> String {
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
            op::EMPTY_TUPLE => Value::Tuple(Tuple::new(Vec::new())),
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = usize::from(code - op::TUPLE1 + 1);
                Value::Tuple(Tuple::new(self.pop_n(n)?))
            }
            op::TUPLE => Value::Tuple(Tuple::new(self.pop_mark()?)),
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
                Value::Global(self.policy.resolve(module, name)?)
            }
            op::STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(module), Value::Str(name)) => {
                        Value::Global(self.policy.resolve(module, name)?)
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
                    (Value::Global(Global::OrderedDict), Value::Tuple(a)) if a.is_empty() => {
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
            op::BINPERSID if self.policy.persistent_ids => {
                let pid = self.pop()?;
                self.persistent_load(&pid)?
            }
            op::BUILD => {
                let state = self.pop()?;
                let target = self.top()?.clone();
                self.build(&target, state)?;
                return Ok(false);
            }
            other => {
                return Err(refused(format!(
                    "the pickle uses opcode {} (0x{other:02x}), which the restricted {} \
                     decoder does not accept; mmdnn never executes pickled code",
                    opcodes::name(other),
                    self.policy.decoder
                )))
            }
        };
        self.stack.push(value);
        Ok(false)
    }

    // -- calls ------------------------------------------------------------

    /// REDUCE: `func(*args)` for the allow-listed stand-ins only.
    fn reduce(&mut self, func: Value<'a>, args: Value<'a>) -> Res<Value<'a>> {
        let Value::Global(global) = func else {
            return Err(malformed(format!(
                "REDUCE applied to {}, which is not callable",
                self.describe(&func)
            )));
        };
        let Value::Tuple(args) = args else {
            return Err(malformed(format!(
                "arguments for {} are {}, not a tuple",
                global.name(),
                self.describe(&args)
            )));
        };
        match global {
            Global::CodecsEncode => self.codecs_encode(&args),
            Global::OrderedDict => self.ordered_dict(&args),
            Global::NumpyReconstruct
            | Global::NumpyNdArray
            | Global::NumpyDtype
            | Global::NumpyFromBuffer => self.numpy_call(global, &args),
            Global::TorchRebuildTensorV2 | Global::TorchRebuildTensor | Global::TorchStorage(_) => {
                self.torch_call(global, &args)
            }
        }
    }

    /// `_codecs.encode(text, 'latin1')` -> bytes.
    fn codecs_encode(&mut self, args: &[Value<'a>]) -> Res<Value<'a>> {
        let [Value::Str(text), Value::Str(encoding)] = args else {
            return Err(unexpected_args(Global::CodecsEncode));
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

    /// `OrderedDict()` or, from Python 2, `OrderedDict([[k, v], ...])`.
    fn ordered_dict(&mut self, args: &[Value<'a>]) -> Res<Value<'a>> {
        let bad_args = || unexpected_args(Global::OrderedDict);
        match args {
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

    // -- BUILD ------------------------------------------------------------

    fn build(&mut self, target: &Value<'a>, state: Value<'a>) -> Res<()> {
        let description = self.describe(target);
        let Value::Obj(id) = *target else {
            return Err(malformed(format!("BUILD applied to {description}")));
        };
        if self.policy.dict_attributes && matches!(self.objects[id], Object::Dict(_)) {
            // A state dict's attributes (`_metadata`): checked to be a dict, then ignored.
            return match state {
                Value::Obj(attrs) if matches!(self.objects[attrs], Object::Dict(_)) => Ok(()),
                other => Err(malformed(format!(
                    "BUILD state for {description} is {}, not a dict of attributes",
                    self.describe(&other)
                ))),
            };
        }
        let Value::Tuple(state) = state else {
            return Err(malformed(format!(
                "BUILD state for {description} is {}, not a tuple",
                self.describe(&state)
            )));
        };
        match &self.objects[id] {
            Object::Dtype(_) => self.build_dtype(id, &state),
            Object::Array(_) => self.build_array(id, &state),
            _ => Err(malformed(format!("BUILD applied to {description}"))),
        }
    }
}

/// The error for a stand-in called with arguments its Python original never gets from NumPy or
/// PyTorch.
pub(super) fn unexpected_args(global: Global) -> Fault {
    let writer = match global {
        Global::TorchRebuildTensorV2 | Global::TorchRebuildTensor | Global::TorchStorage(_) => {
            "PyTorch"
        }
        _ => "NumPy",
    };
    malformed(format!(
        "unexpected arguments to {}; this is not a {writer}-written pickle",
        global.name()
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

#[cfg(test)]
mod tests {
    //! Opcodes the machine refuses and its step budget.

    use super::MAX_STEPS;
    use crate::weights::pickle::opcodes::{self, op};
    use crate::weights::pickle::testing::{decode_err, P};

    #[test]
    fn refuses_code_running_opcodes() {
        // INST, OBJ, EXT1, PERSID, NEWOBJ_EX, and BINPERSID where no storages are expected.
        for code in [b'i', b'o', 0x82, b'P', 0x92, b'Q'] {
            let bytes = P::new(2).op(op::MARK).op(code).op(op::STOP).npy();
            let err = decode_err(&bytes);
            assert!(err.contains("refusing to load"), "{err}");
            assert!(err.contains(opcodes::name(code)), "{err}");
        }
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
}
