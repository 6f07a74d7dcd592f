//! Attributes computed at run time in the ONNX writer. An attribute given as a run-time tensor
//! (`crate::ir::ops::FROM_INPUTS`) is that tensor, cast to int64. An attribute list holding
//! symbolic dims (a Reshape target `[N, S, 12, 64]`) becomes a tensor computed at run time —
//! each symbol read from the shape of the first graph input that declares it (`Shape` with
//! start/end, or `Shape → Slice` before opset 15), expressions as `Add`/`Mul`/`Div` on int64,
//! the entries joined by `Concat`.
use super::builder::{Ctx, A};
use super::ops::onnx_dtype;
use crate::ir::dim::{self, Expr};
use crate::ir::DType;
use anyhow::{bail, Result};

impl Ctx<'_, '_> {
    /// The value of the run-time tensor giving attribute `attr`, as `dtype`; `None` when the
    /// attribute is not given so.
    pub fn runtime_attr(&mut self, attr: &str, dtype: DType) -> Result<Option<String>> {
        let n = self.node.runtime_inputs();
        let Some(k) = self.node.runtime_attrs().position(|a| a == attr) else {
            return Ok(None);
        };
        let i = self.node.inputs.len() - n + k;
        let v = self.x(i)?;
        if self.in_ty(i)?.dtype == dtype {
            return Ok(Some(v));
        }
        let to = A::I("to", onnx_dtype(dtype) as i64);
        Ok(Some(self.op("Cast", &[&v], vec![to])))
    }

    /// The int64 tensor of list attribute `attr`: its run-time tensor, or its value (an
    /// initializer, or computed at run time when it holds symbolic dims).
    pub fn ints_arg(&mut self, attr: &str) -> Result<String> {
        if let Some(v) = self.runtime_attr(attr, DType::I64)? {
            return Ok(v);
        }
        let values = self.a.ints(attr)?;
        self.shape_ints(attr, &values)
    }

    /// A 1-d int64 tensor of `values`, some of them symbolic dims, computed at run time.
    pub fn dims_tensor(&mut self, suffix: &str, values: &[i64]) -> Result<String> {
        let mut parts = vec![];
        let mut plain = vec![];
        for &v in values {
            if !dim::is_symbolic(v) {
                plain.push(v);
                continue;
            }
            if !plain.is_empty() {
                parts.push(self.ints(suffix, &std::mem::take(&mut plain)));
            }
            let Some(e) = dim::expr(v) else {
                bail!("{} is not a dim", dim::text_or_int(v));
            };
            parts.push(self.expr_tensor(suffix, &e)?);
        }
        if !plain.is_empty() {
            parts.push(self.ints(suffix, &plain));
        }
        if parts.len() == 1 {
            return Ok(parts.pop().expect("one part"));
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        Ok(self.op("Concat", &refs, vec![A::I("axis", 0)]))
    }

    /// A `[1]` int64 tensor computing `e`.
    fn expr_tensor(&mut self, suffix: &str, e: &Expr) -> Result<String> {
        Ok(match e {
            Expr::Const(c) => self.ints(suffix, &[*c]),
            Expr::Sym(s) => self.symbol_tensor(s)?,
            Expr::Sum(terms) | Expr::Product(terms) => {
                let op = if matches!(e, Expr::Sum(_)) {
                    "Add"
                } else {
                    "Mul"
                };
                let mut acc = self.expr_tensor(suffix, &terms[0])?;
                for t in &terms[1..] {
                    let v = self.expr_tensor(suffix, t)?;
                    acc = self.op(op, &[&acc, &v], vec![]);
                }
                acc
            }
            // Dims are never negative, so ONNX's truncating Div floors them.
            Expr::FloorDiv(inner, k) => {
                let v = self.expr_tensor(suffix, inner)?;
                let k = self.ints(suffix, &[*k]);
                self.op("Div", &[&v, &k], vec![])
            }
        })
    }

    /// `[size]` of the first graph input declaring symbol `s`.
    fn symbol_tensor(&mut self, s: &str) -> Result<String> {
        let graph = self.b.graph;
        let source = graph.inputs.iter().find_map(|name| {
            let node = graph.node(name)?;
            let ty = node.outputs.first()?;
            let axis = ty
                .shape
                .iter()
                .position(|&d| dim::as_symbol(d).as_deref() == Some(s))?;
            Some((node.output(0), axis as i64))
        });
        let Some((r, axis)) = source else {
            bail!("the symbolic dim {s} is declared by no graph input");
        };
        let x = self.b.value(&r)?;
        if self.opset() >= 15 {
            return Ok(self.op(
                "Shape",
                &[&x],
                vec![A::I("start", axis), A::I("end", axis + 1)],
            ));
        }
        let shape = self.op("Shape", &[&x], vec![]);
        let (starts, ends) = (self.ints("start", &[axis]), self.ints("end", &[axis + 1]));
        Ok(self.op("Slice", &[&shape, &starts, &ends], vec![]))
    }
}
