//! The input sizes `verify` runs at: `--sizes` (one run per flag), or automatically two runs
//! when an input has a dynamic dim. A run's sizes come from `--sizes SPEC`, SPEC a
//! comma-separated list of `INPUT=D0xD1x…` (a whole input shape) and `DIM=SIZE` (every dynamic
//! dim of that name, e.g. an ONNX dim_param). Automatic sizes: a dynamic dim 0 (the batch) is 1
//! then 2, any other dynamic dim 16 then 24.
use crate::ir::DType;
use anyhow::{bail, Result};

/// One dim of a model's input as declared: a size, or dynamic (with its name, if it has one).
#[derive(Clone, Debug, PartialEq)]
pub enum Dim {
    Size(usize),
    Free(Option<String>),
}

/// An input of the reference: its name, declared dims (None: not declared) and dtype.
#[derive(Clone, Debug)]
pub struct Input {
    pub name: String,
    pub dims: Option<Vec<Dim>>,
    pub dtype: Option<DType>,
}

/// One `--sizes` value.
#[derive(Clone, Debug, PartialEq)]
pub struct SizeSpec {
    pub items: Vec<(String, Vec<usize>)>,
}

/// Parses `x=2x3x32x32,N=4` (clap value parser: a bad value is a usage error).
pub fn parse_spec(text: &str) -> Result<SizeSpec, String> {
    let mut items = vec![];
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, value) = item.split_once('=').ok_or_else(|| {
            format!("'{item}' is not NAME=SIZE or INPUT=D0xD1x… (e.g. --sizes x=1x3x32x32 or --sizes N=2,S=16)")
        })?;
        let dims = value
            .split('x')
            .map(|d| {
                d.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&d| d > 0)
                    .ok_or_else(|| format!("'{d}' in '{item}' is not a positive integer"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if name.trim().is_empty() {
            return Err(format!("'{item}' names no input or dim"));
        }
        items.push((name.trim().to_string(), dims));
    }
    if items.is_empty() {
        return Err("an empty --sizes value".into());
    }
    Ok(SizeSpec { items })
}

/// Whether any declared input dim is dynamic.
pub fn has_dynamic(inputs: &[Input]) -> bool {
    inputs
        .iter()
        .any(|i| i.dims.iter().flatten().any(|d| matches!(d, Dim::Free(_))))
}

const AUTO: [(usize, usize); 2] = [(1, 16), (2, 24)];

/// The number of automatic runs for these inputs: two when a dim is dynamic, else one.
pub fn auto_runs(inputs: &[Input]) -> usize {
    if has_dynamic(inputs) {
        AUTO.len()
    } else {
        1
    }
}

/// Each input's shape for one run: from `spec`, else automatic run `auto` (or every dynamic dim
/// `fixed` when given). Errors name the input and dim a user has to give.
pub fn shapes(
    inputs: &[Input],
    spec: Option<&SizeSpec>,
    auto: usize,
    fixed: Option<usize>,
) -> Result<Vec<Vec<usize>>> {
    if let Some(spec) = spec {
        for (name, dims) in &spec.items {
            let is_input = inputs.iter().any(|i| &i.name == name);
            let is_dim = inputs.iter().any(|i| {
                i.dims
                    .iter()
                    .flatten()
                    .any(|d| *d == Dim::Free(Some(name.clone())))
            });
            if !(is_input || (is_dim && dims.len() == 1)) {
                let dims: Vec<String> = inputs
                    .iter()
                    .flat_map(|i| i.dims.iter().flatten())
                    .filter_map(|d| match d {
                        Dim::Free(Some(n)) => Some(n.clone()),
                        _ => None,
                    })
                    .collect();
                bail!(
                    "--sizes names '{name}', which is neither an input ({}) nor a named dynamic dim ({})",
                    inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", "),
                    if dims.is_empty() { "the model names none".to_string() } else { dims.join(", ") }
                );
            }
        }
    }
    let (batch, other) = AUTO[auto.min(AUTO.len() - 1)];
    // A named dim takes the size its first occurrence got, in every input.
    let mut named: std::collections::HashMap<String, usize> = Default::default();
    let mut out = vec![];
    for input in inputs {
        let given = spec.and_then(|s| s.items.iter().find(|(n, _)| n == &input.name));
        let Some(dims) = &input.dims else {
            match given {
                Some((_, shape)) => {
                    out.push(shape.clone());
                    continue;
                }
                None => bail!(
                    "neither model declares the shape of input '{}': give it with --sizes {}=D0xD1x… or --input {}=FILE.npy",
                    input.name, input.name, input.name
                ),
            }
        };
        if let Some((_, shape)) = given {
            let fits = shape.len() == dims.len()
                && dims.iter().zip(shape).all(|(d, &s)| match d {
                    Dim::Size(n) => *n == s,
                    Dim::Free(_) => true,
                });
            if !fits {
                bail!(
                    "--sizes {}={}: the input's declared shape is [{}]",
                    input.name,
                    shape
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("x"),
                    show(dims)
                );
            }
            out.push(shape.clone());
            continue;
        }
        let mut shape = vec![];
        for (axis, d) in dims.iter().enumerate() {
            shape.push(match d {
                Dim::Size(n) => *n,
                Dim::Free(name) => {
                    let bound = name.as_ref().and_then(|n| {
                        spec.and_then(|s| s.items.iter().find(|(k, v)| k == n && v.len() == 1))
                    });
                    match (bound, spec, fixed) {
                        (Some((_, v)), _, _) => v[0],
                        (None, Some(_), _) => bail!(
                            "--sizes gives no size for dim {axis} of input '{}' ([{}]): add {}",
                            input.name,
                            show(dims),
                            match name {
                                Some(n) => format!("{n}=SIZE"),
                                None => format!("{}=D0xD1x…", input.name),
                            }
                        ),
                        (None, None, Some(n)) => n,
                        (None, None, None) => {
                            let size = if axis == 0 { batch } else { other };
                            match name {
                                Some(n) => *named.entry(n.clone()).or_insert(size),
                                None => size,
                            }
                        }
                    }
                }
            });
        }
        out.push(shape);
    }
    Ok(out)
}

/// `[?, 3, N, 32]`-style text of declared dims.
pub fn show(dims: &[Dim]) -> String {
    dims.iter()
        .map(|d| match d {
            Dim::Size(n) => n.to_string(),
            Dim::Free(Some(n)) => n.clone(),
            Dim::Free(None) => "?".into(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, dims: Vec<Dim>) -> Input {
        Input {
            name: name.into(),
            dims: Some(dims),
            dtype: None,
        }
    }

    #[test]
    fn parses_shapes_and_dims() {
        assert_eq!(
            parse_spec("x=2x3x4, N=5").unwrap().items,
            vec![("x".to_string(), vec![2, 3, 4]), ("N".to_string(), vec![5])]
        );
        assert!(parse_spec("x=2x0").is_err());
        assert!(parse_spec("x").is_err());
        assert!(parse_spec("").is_err());
    }

    #[test]
    fn automatic_sizes_differ_per_run_and_dim_kind() {
        let ins = [input(
            "x",
            vec![Dim::Free(None), Dim::Free(Some("S".into())), Dim::Size(8)],
        )];
        assert_eq!(auto_runs(&ins), 2);
        assert_eq!(shapes(&ins, None, 0, None).unwrap(), vec![vec![1, 16, 8]]);
        assert_eq!(shapes(&ins, None, 1, None).unwrap(), vec![vec![2, 24, 8]]);
        assert_eq!(shapes(&ins, None, 0, Some(5)).unwrap(), vec![vec![5, 5, 8]]);
        // A named dim gets one size in every input, wherever it stands.
        let ins = [
            input("a", vec![Dim::Free(Some("N".into())), Dim::Size(4)]),
            input("b", vec![Dim::Size(2), Dim::Free(Some("N".into()))]),
        ];
        assert_eq!(
            shapes(&ins, None, 1, None).unwrap(),
            vec![vec![2, 4], vec![2, 2]]
        );
    }

    #[test]
    fn spec_binds_named_dims_and_checks_declared_sizes() {
        let ins = [input("x", vec![Dim::Free(Some("N".into())), Dim::Size(8)])];
        let spec = parse_spec("N=3").unwrap();
        assert_eq!(
            shapes(&ins, Some(&spec), 0, None).unwrap(),
            vec![vec![3, 8]]
        );
        let spec = parse_spec("x=3x9").unwrap();
        let err = shapes(&ins, Some(&spec), 0, None).unwrap_err().to_string();
        assert!(err.contains("declared shape is [N, 8]"), "{err}");
        let spec = parse_spec("y=3").unwrap();
        let err = shapes(&ins, Some(&spec), 0, None).unwrap_err().to_string();
        assert!(
            err.contains("neither an input (x) nor a named dynamic dim (N)"),
            "{err}"
        );
    }
}
