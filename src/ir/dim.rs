//! Symbolic dims. A dim is an `i64` everywhere in the IR: a size (`>= 0`), `-1` for a size
//! nobody can name, or a *symbolic* dim — a symbol named after the source's dim (ONNX
//! `dim_param`, Keras `None`, …) or a small expression over symbols (sums, products, floor
//! division by a constant: enough for convolution and pool output sizes, concatenations and
//! reshape products).
//!
//! Symbolic dims are interned: each distinct expression is stored once in a process-wide table
//! and the dim holds its id, encoded as a large negative number ([`ID_BASE`] minus a multiple of
//! [`ID_STRIDE`]). So shapes stay `Vec<i64>`, code that treats every negative dim as "not known
//! now" stays right, and equal expressions are equal dims. The encoding is sparse: a dim that was
//! mangled by plain arithmetic (`d + 1`) is not a valid id, and [`check`] (run by validation)
//! refuses it instead of reading it as another symbol.
//!
//! Text form (the IR files, `inspect`, ONNX `dim_param`s, generated Python): `N`, `2*S`,
//! `N*S`, `(H - 1) // 2 + 1` — Python's syntax and precedence, parsed back by [`parse`].
use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

/// A size nobody can name (an ONNX dim with neither value nor `dim_param` is a symbol instead).
pub const UNKNOWN: i64 = -1;
/// The first symbolic id; ids go down from here in steps of [`ID_STRIDE`].
const ID_BASE: i64 = -(1 << 40);
const ID_STRIDE: i64 = 1 << 16;
/// At most this many distinct expressions per process (ids stay above `-2^57`).
const MAX_EXPRS: usize = 1 << 40;

/// One factor of a product: a symbol, or an expression floor-divided by a constant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Atom {
    Sym(String),
    FloorDiv(Box<Poly>, i64),
}

/// A polynomial over atoms: coefficient per monomial (a sorted list of atoms; the empty one is
/// the constant term). No zero coefficients are stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Poly(BTreeMap<Vec<Atom>, i64>);

#[derive(Default)]
struct Table {
    exprs: Vec<Poly>,
    ids: HashMap<Poly, usize>,
}

fn table() -> &'static Mutex<Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

fn lookup(d: i64) -> Option<Poly> {
    let k = index(d)?;
    let t = table().lock().unwrap_or_else(|e| e.into_inner());
    t.exprs.get(k).cloned()
}

fn index(d: i64) -> Option<usize> {
    if d > ID_BASE || (ID_BASE - d) % ID_STRIDE != 0 {
        return None;
    }
    usize::try_from((ID_BASE - d) / ID_STRIDE).ok()
}

impl Poly {
    fn constant(c: i64) -> Poly {
        let mut p = Poly::default();
        if c != 0 {
            p.0.insert(vec![], c);
        }
        p
    }

    fn atom(a: Atom) -> Poly {
        Poly([(vec![a], 1)].into_iter().collect())
    }

    fn as_constant(&self) -> Option<i64> {
        match self.0.len() {
            0 => Some(0),
            1 => self.0.get(&vec![]).copied(),
            _ => None,
        }
    }

    fn add(&self, other: &Poly, sign: i64) -> Result<Poly> {
        let mut out = self.0.clone();
        for (m, &c) in &other.0 {
            let c = c.checked_mul(sign).ok_or_else(overflow)?;
            let e = out.entry(m.clone()).or_insert(0);
            *e = e.checked_add(c).ok_or_else(overflow)?;
            if *e == 0 {
                out.remove(m);
            }
        }
        Ok(Poly(out))
    }

    fn mul(&self, other: &Poly) -> Result<Poly> {
        let mut out = Poly::default();
        for (ma, &ca) in &self.0 {
            for (mb, &cb) in &other.0 {
                let mut m = ma.clone();
                m.extend(mb.iter().cloned());
                m.sort();
                let term = Poly([(m, ca.checked_mul(cb).ok_or_else(overflow)?)].into());
                out = out.add(&term, 1)?;
            }
        }
        Ok(out)
    }

    fn eval(&self, bind: &dyn Fn(&str) -> Option<i64>) -> Option<i64> {
        let mut total = 0i64;
        for (m, &c) in &self.0 {
            let mut term = c;
            for a in m {
                let v = match a {
                    Atom::Sym(s) => bind(s)?,
                    Atom::FloorDiv(p, k) => p.eval(bind)?.div_euclid(*k),
                };
                term = term.checked_mul(v)?;
            }
            total = total.checked_add(term)?;
        }
        Some(total)
    }

    fn symbols(&self, out: &mut BTreeSet<String>) {
        for a in self.0.keys().flatten() {
            match a {
                Atom::Sym(s) => {
                    out.insert(s.clone());
                }
                Atom::FloorDiv(p, _) => p.symbols(out),
            }
        }
    }

    /// Python text of the sum (terms in a fixed order: higher degree first, constant last),
    /// each symbol written as `name` gives it.
    fn text(&self, name: &dyn Fn(&str) -> String) -> String {
        let mut terms: Vec<(&Vec<Atom>, i64)> = self.0.iter().map(|(m, &c)| (m, c)).collect();
        terms.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(b.0)));
        let mut s = String::new();
        for (i, (m, c)) in terms.into_iter().enumerate() {
            let (neg, mag) = (c < 0, c.unsigned_abs());
            let body = if m.is_empty() {
                mag.to_string()
            } else {
                let lone = m.len() == 1 && mag == 1;
                let factors: Vec<String> = m.iter().map(|a| atom_text(a, lone, name)).collect();
                if mag == 1 {
                    factors.join("*")
                } else {
                    format!("{mag}*{}", factors.join("*"))
                }
            };
            match (i, neg) {
                (0, false) => s.push_str(&body),
                (0, true) => s.push_str(&format!("-{body}")),
                (_, false) => s.push_str(&format!(" + {body}")),
                (_, true) => s.push_str(&format!(" - {body}")),
            }
        }
        if s.is_empty() {
            s.push('0');
        }
        s
    }
}

/// An atom's text; a floor division is parenthesised unless it stands alone in its term.
fn atom_text(a: &Atom, alone: bool, name: &dyn Fn(&str) -> String) -> String {
    match a {
        Atom::Sym(s) => name(s),
        Atom::FloorDiv(p, k) => {
            let inner = if p.0.len() > 1 || p.0.keys().any(|m| m.len() > 1) {
                format!("({})", p.text(name))
            } else {
                p.text(name)
            };
            if alone {
                format!("{inner} // {k}")
            } else {
                format!("({inner} // {k})")
            }
        }
    }
}

fn overflow() -> anyhow::Error {
    anyhow!("a symbolic dim's coefficient overflows")
}

/// The polynomial a dim stands for; `None` for [`UNKNOWN`] (or a corrupt dim).
fn poly(d: i64) -> Option<Poly> {
    if d >= 0 {
        Some(Poly::constant(d))
    } else {
        lookup(d)
    }
}

/// The dim of a polynomial: its value when constant (which must not be negative), else its id.
fn intern(p: Poly) -> Result<i64> {
    if let Some(c) = p.as_constant() {
        if c < 0 {
            bail!("a dim computes to {c}");
        }
        return Ok(c);
    }
    let mut t = table().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&k) = t.ids.get(&p) {
        return Ok(ID_BASE - k as i64 * ID_STRIDE);
    }
    let k = t.exprs.len();
    if k >= MAX_EXPRS {
        bail!("too many symbolic dims");
    }
    t.exprs.push(p.clone());
    t.ids.insert(p, k);
    Ok(ID_BASE - k as i64 * ID_STRIDE)
}

/// The dim of a symbol. Names are made Python identifiers (other characters become `_`).
pub fn symbol(name: &str) -> i64 {
    intern(Poly::atom(Atom::Sym(identifier(name)))).expect("a symbol is never constant")
}

/// `name` as an identifier: other characters become `_`, a leading digit gets a `d`. (Backends
/// map symbols to their own safe names with [`text_with`].)
pub fn identifier(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, 'd');
    }
    s
}

/// Whether `d` is a size known now.
pub fn is_known(d: i64) -> bool {
    d >= 0
}

/// Whether `d` is a symbolic dim (a symbol or an expression).
pub fn is_symbolic(d: i64) -> bool {
    index(d).is_some_and(|k| {
        k < table()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .exprs
            .len()
    })
}

/// Whether `v` lies where symbolic ids are: an integer there that is not one is a mangled dim.
pub fn in_id_range(v: i64) -> bool {
    (ID_BASE - MAX_EXPRS as i64 * ID_STRIDE..=ID_BASE).contains(&v)
}

/// Refuses a dim that is neither a size, [`UNKNOWN`] nor an interned symbolic dim.
pub fn check(d: i64) -> Result<()> {
    if d >= UNKNOWN || is_symbolic(d) {
        Ok(())
    } else {
        bail!("{d} is not a valid dim")
    }
}

fn binary(a: i64, b: i64, f: impl Fn(&Poly, &Poly) -> Result<Poly>) -> Result<i64> {
    match (poly(a), poly(b)) {
        (Some(pa), Some(pb)) => intern(f(&pa, &pb)?),
        _ => Ok(UNKNOWN),
    }
}

/// `a + b` (unknown if either is).
pub fn add(a: i64, b: i64) -> Result<i64> {
    if a >= 0 && b >= 0 {
        return a
            .checked_add(b)
            .ok_or_else(|| anyhow!("size {a} + {b} overflows"));
    }
    binary(a, b, |x, y| x.add(y, 1))
}

/// `a - b` (unknown if either is); an error if the result is a negative size.
pub fn sub(a: i64, b: i64) -> Result<i64> {
    binary(a, b, |x, y| x.add(y, -1))
}

/// `d + k` for a signed constant `k` (pads may be negative); an error if the result is a
/// negative size.
pub fn offset(d: i64, k: i64) -> Result<i64> {
    if d >= 0 {
        return match d.checked_add(k) {
            Some(v) if v >= 0 => Ok(v),
            _ => bail!("size {d} + {k} is not a size"),
        };
    }
    match poly(d) {
        Some(p) => intern(p.add(&Poly::constant(k), 1)?),
        None => Ok(UNKNOWN),
    }
}

/// `a * b` (unknown if either is, unless the other is 0).
pub fn mul(a: i64, b: i64) -> Result<i64> {
    if a >= 0 && b >= 0 {
        return a
            .checked_mul(b)
            .ok_or_else(|| anyhow!("size {a} × {b} overflows"));
    }
    if a == 0 || b == 0 {
        return Ok(0);
    }
    binary(a, b, |x, y| x.mul(y))
}

/// `a // k` for a constant `k >= 1` (floor division, as every framework's output-size rule).
pub fn floor_div(a: i64, k: i64) -> Result<i64> {
    if k < 1 {
        bail!("division of a dim by {k}");
    }
    if a >= 0 {
        return Ok(a / k);
    }
    let Some(p) = poly(a) else {
        return Ok(UNKNOWN);
    };
    if k == 1 {
        return Ok(a);
    }
    // Exact when every coefficient divides: (4*N + 8) // 4 = N + 2.
    if p.0.values().all(|c| c % k == 0) {
        let q = Poly(p.0.iter().map(|(m, c)| (m.clone(), c / k)).collect());
        return intern(q);
    }
    intern(Poly::atom(Atom::FloorDiv(Box::new(p), k)))
}

/// `ceil(a / k)` for a constant `k >= 1`.
pub fn ceil_div(a: i64, k: i64) -> Result<i64> {
    floor_div(add(a, k - 1)?, k)
}

/// `a / b` when it is exact and known to be: sizes that divide, or an expression whose terms
/// all contain `b` (`N*S*768 / 768`, `N*S*768 / S`). `None` when it cannot be shown exact.
pub fn exact_div(a: i64, b: i64) -> Option<i64> {
    if a >= 0 && b > 0 {
        return (a % b == 0).then_some(a / b);
    }
    let (pa, pb) = (poly(a)?, poly(b)?);
    if let Some(k) = pb.as_constant() {
        if k < 1 || pa.0.values().any(|c| c % k != 0) {
            return None;
        }
        return intern(Poly(pa.0.iter().map(|(m, c)| (m.clone(), c / k)).collect())).ok();
    }
    // Divide by a single monomial c*m: every term of `a` must contain m and a multiple of c.
    let [(mb, &cb)] = pb.0.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let mut out = BTreeMap::new();
    for (m, &c) in &pa.0 {
        if c % cb != 0 {
            return None;
        }
        let mut rest = m.clone();
        for atom in mb {
            let i = rest.iter().position(|x| x == atom)?;
            rest.remove(i);
        }
        out.insert(rest, c / cb);
    }
    intern(Poly(out)).ok()
}

/// The value of `d` with each symbol bound by `bind`; `None` when a symbol is unbound or `d`
/// is [`UNKNOWN`].
pub fn eval(d: i64, bind: &dyn Fn(&str) -> Option<i64>) -> Option<i64> {
    poly(d)?.eval(bind)
}

/// `d` with the symbols `bind` gives a size for replaced by it (`N*S` with N = 2: `2*S`).
pub fn substitute(d: i64, bind: &dyn Fn(&str) -> Option<i64>) -> Result<i64> {
    if d >= 0 {
        return Ok(d);
    }
    match poly(d) {
        Some(p) => intern(substitute_poly(&p, bind)?),
        None => Ok(d),
    }
}

fn substitute_poly(p: &Poly, bind: &dyn Fn(&str) -> Option<i64>) -> Result<Poly> {
    let mut total = Poly::default();
    for (m, &c) in &p.0 {
        let mut term = Poly::constant(c);
        for a in m {
            let factor = match a {
                Atom::Sym(s) => match bind(s) {
                    Some(v) => Poly::constant(v),
                    None => Poly::atom(a.clone()),
                },
                Atom::FloorDiv(inner, k) => {
                    let d = intern(substitute_poly(inner, bind)?)?;
                    poly(floor_div(d, *k)?).ok_or_else(|| anyhow!("an unknown dim"))?
                }
            };
            term = term.mul(&factor)?;
        }
        total = total.add(&term, 1)?;
    }
    Ok(total)
}

/// The symbols `d` is made of.
pub fn symbols(d: i64) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(p) = poly(d) {
        p.symbols(&mut out);
    }
    out
}

/// The symbol `d` is, if it is a lone symbol (not an expression).
pub fn as_symbol(d: i64) -> Option<String> {
    let p = poly(d)?;
    match p.0.iter().collect::<Vec<_>>()[..] {
        [(m, 1)] => match &m[..] {
            [Atom::Sym(s)] => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// A dim's expression as a tree, for backends that compute it at run time from the inputs'
/// shapes (the ONNX writer's `Shape → Mul → Concat`).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Const(i64),
    Sym(String),
    Sum(Vec<Expr>),
    Product(Vec<Expr>),
    FloorDiv(Box<Expr>, i64),
}

impl Poly {
    fn tree(&self) -> Expr {
        let mut terms: Vec<Expr> = self
            .0
            .iter()
            .map(|(m, &c)| {
                let mut factors: Vec<Expr> = m
                    .iter()
                    .map(|a| match a {
                        Atom::Sym(s) => Expr::Sym(s.clone()),
                        Atom::FloorDiv(p, k) => Expr::FloorDiv(Box::new(p.tree()), *k),
                    })
                    .collect();
                if c != 1 || factors.is_empty() {
                    factors.insert(0, Expr::Const(c));
                }
                match factors.len() {
                    1 => factors.pop().expect("one factor"),
                    _ => Expr::Product(factors),
                }
            })
            .collect();
        match terms.len() {
            0 => Expr::Const(0),
            1 => terms.pop().expect("one term"),
            _ => Expr::Sum(terms),
        }
    }
}

/// The expression of a dim (a size is a constant); `None` for [`UNKNOWN`].
pub fn expr(d: i64) -> Option<Expr> {
    Some(poly(d)?.tree())
}

/// The text of a dim: its size, `?` for [`UNKNOWN`], else its expression.
pub fn text(d: i64) -> String {
    text_with(d, &|s| s.to_string())
}

/// [`text`] with each symbol written as `name` gives it (a backend's variable names).
pub fn text_with(d: i64, name: &dyn Fn(&str) -> String) -> String {
    if d >= 0 {
        return d.to_string();
    }
    match poly(d) {
        Some(p) => p.text(name),
        None if d == UNKNOWN => "?".to_string(),
        None => format!("<invalid dim {d}>"),
    }
}

/// The text of an integer that may be a symbolic dim: its expression, else the integer (so a
/// literal -1 in a computed shape reads "-1", not "?").
pub fn text_or_int(v: i64) -> String {
    if is_symbolic(v) {
        text(v)
    } else {
        v.to_string()
    }
}

/// Parses a dim's text (a size, a symbol, or an expression in the syntax [`text`] writes).
pub fn parse(s: &str) -> Result<i64> {
    let mut p = Parser {
        chars: s.char_indices().peekable(),
        src: s,
    };
    let d = p.sum()?;
    p.skip_space();
    if let Some((i, c)) = p.chars.next() {
        bail!("unexpected '{c}' at {i} in dim '{s}'");
    }
    Ok(d)
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    src: &'a str,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        self.chars.next_if(|&(_, x)| x == c).is_some()
    }

    fn sum(&mut self) -> Result<i64> {
        let mut d = self.product()?;
        loop {
            if self.eat('+') {
                d = add(d, self.product()?)?;
            } else if self.eat('-') {
                d = sub(d, self.product()?)?;
            } else {
                return Ok(d);
            }
        }
    }

    fn product(&mut self) -> Result<i64> {
        let mut d = self.factor()?;
        loop {
            if self.eat('*') {
                d = mul(d, self.factor()?)?;
            } else if self.eat('/') {
                if !self.eat('/') {
                    bail!(
                        "only floor division ('//') is allowed in dim '{}'",
                        self.src
                    );
                }
                let k = self.factor()?;
                if k < 1 {
                    bail!("dim '{}' divides by something other than a size", self.src);
                }
                d = floor_div(d, k)?;
            } else {
                return Ok(d);
            }
        }
    }

    fn factor(&mut self) -> Result<i64> {
        self.skip_space();
        if self.eat('(') {
            let d = self.sum()?;
            if !self.eat(')') {
                bail!("missing ')' in dim '{}'", self.src);
            }
            return Ok(d);
        }
        let start = match self.chars.peek() {
            Some(&(i, _)) => i,
            None => bail!("dim '{}' ends early", self.src),
        };
        let mut end = start;
        while let Some((i, c)) = self
            .chars
            .next_if(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
        {
            end = i + c.len_utf8();
        }
        let word = &self.src[start..end];
        if word.is_empty() {
            bail!("unexpected character at {start} in dim '{}'", self.src);
        }
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            return word
                .parse()
                .map_err(|_| anyhow!("'{word}' is not a size in dim '{}'", self.src));
        }
        Ok(symbol(word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_expressions_are_equal_dims() {
        let n = symbol("N");
        let s = symbol("S");
        assert_eq!(mul(n, s).unwrap(), mul(s, n).unwrap());
        assert_eq!(add(n, n).unwrap(), mul(2, n).unwrap());
        assert_eq!(sub(add(n, 3).unwrap(), 3).unwrap(), n);
        assert_ne!(n, s);
        assert!(n < UNKNOWN && s < UNKNOWN);
    }

    #[test]
    fn text_round_trips() {
        for t in [
            "N",
            "2*S",
            "N*S",
            "N*S + 4",
            "(H - 1) // 2 + 1",
            "3*((H + 1) // 2)",
            "W - 2",
        ] {
            let d = parse(t).unwrap();
            assert_eq!(text(d), t, "text of {t}");
            assert_eq!(parse(&text(d)).unwrap(), d);
        }
        assert_eq!(parse("7").unwrap(), 7);
        assert!(parse("N / 2").is_err());
        assert!(parse("N // S").is_err());
        assert!(parse("(N").is_err());
    }

    #[test]
    fn evaluates_with_bindings() {
        let d = parse("(H - 1) // 2 + 1").unwrap();
        let bind = |s: &str| (s == "H").then_some(224);
        assert_eq!(eval(d, &bind), Some(112));
        assert_eq!(eval(d, &|_| None), None);
        assert_eq!(eval(UNKNOWN, &bind), None);
    }

    #[test]
    fn exact_division() {
        let (n, s) = (symbol("N"), symbol("S"));
        let total = mul(mul(n, s).unwrap(), 768).unwrap();
        assert_eq!(exact_div(total, 768), Some(mul(n, s).unwrap()));
        assert_eq!(exact_div(total, s), Some(mul(n, 768).unwrap()));
        assert_eq!(exact_div(n, 2), None);
        assert_eq!(
            exact_div(total, mul(s, 12).unwrap()),
            Some(mul(n, 64).unwrap())
        );
    }

    #[test]
    fn floor_division_simplifies_when_exact() {
        let n = symbol("N");
        let d = add(mul(4, n).unwrap(), 8).unwrap();
        assert_eq!(floor_div(d, 4).unwrap(), add(n, 2).unwrap());
        assert_eq!(text(floor_div(n, 2).unwrap()), "N // 2");
    }

    #[test]
    fn mangled_dims_are_refused() {
        let n = symbol("N");
        assert!(check(n).is_ok());
        assert!(check(n + 1).is_err());
        assert!(check(n * 2).is_err());
        assert!(check(-2).is_err());
        assert!(check(UNKNOWN).is_ok());
    }

    #[test]
    fn unknown_stays_unknown() {
        let n = symbol("N");
        assert_eq!(add(UNKNOWN, n).unwrap(), UNKNOWN);
        assert_eq!(mul(UNKNOWN, 0).unwrap(), 0);
        assert!(sub(3, 5).is_err());
    }

    #[test]
    fn trees_follow_the_expression() {
        let h = symbol("H");
        let d = parse("(H - 1) // 2 + 1").unwrap();
        let sym = || Expr::Sym("H".into());
        assert_eq!(
            expr(d),
            Some(Expr::Sum(vec![
                Expr::Const(1),
                Expr::FloorDiv(Box::new(Expr::Sum(vec![Expr::Const(-1), sym()])), 2)
            ]))
        );
        assert_eq!(
            expr(mul(h, 3).unwrap()),
            Some(Expr::Product(vec![Expr::Const(3), sym()]))
        );
        assert_eq!(expr(5), Some(Expr::Const(5)));
    }

    #[test]
    fn substitution_binds_some_symbols() {
        let d = parse("N*S + (H - 1) // 2").unwrap();
        let bind = |s: &str| match s {
            "N" => Some(2),
            "H" => Some(9),
            _ => None,
        };
        assert_eq!(text(substitute(d, &bind).unwrap()), "2*S + 4");
        assert_eq!(substitute(d, &|_| Some(3)).unwrap(), 10);
        assert_eq!(substitute(7, &bind).unwrap(), 7);
    }

    #[test]
    fn names_become_identifiers() {
        assert_eq!(text(symbol("batch size")), "batch_size");
        assert_eq!(text(symbol("1st")), "d1st");
        assert_eq!(text_with(symbol("N"), &|s| format!("self_{s}")), "self_N");
    }
}
