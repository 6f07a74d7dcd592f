//! How the candidate's interface maps onto the reference's, detected from what each model
//! declares: inputs are matched by name when both models have the same input names, else by
//! position; an input whose declared dims differ is taken as permuted by the layout change
//! (channels-last ↔ channels-first) that makes them agree. Outputs are matched the same way, on
//! the shapes of the values they return.
use super::compare::layout_perms;
use super::sizes::{show, Dim, Input};
use anyhow::{bail, Result};

/// A candidate input: which reference input feeds it, and how it is permuted.
#[derive(Clone, Debug)]
pub struct Link {
    /// The candidate's name for it.
    pub name: String,
    /// Index of the reference input.
    pub from: usize,
    /// `candidate = reference.permuted_axes(perm)`.
    pub perm: Option<Vec<usize>>,
    /// Axes of the reference input that the candidate fixes while the reference leaves them
    /// dynamic: (axis, size).
    pub pins: Vec<(usize, usize)>,
}

/// The positions of `theirs` in `ours`' order: by name when both hold the same names, else by
/// position. The flag says whether names were used.
pub fn pair_names(ours: &[String], theirs: &[String]) -> (Vec<usize>, bool) {
    let mut a: Vec<&String> = ours.iter().collect();
    let mut b: Vec<&String> = theirs.iter().collect();
    a.sort();
    b.sort();
    if a == b && a.windows(2).all(|w| w[0] != w[1]) {
        let order = theirs
            .iter()
            .map(|t| ours.iter().position(|o| o == t).unwrap_or_default())
            .collect();
        (order, true)
    } else {
        ((0..theirs.len()).collect(), false)
    }
}

/// Maps the candidate's inputs onto the reference's; notes say what was assumed.
pub fn map_inputs(
    reference: &[Input],
    candidate: Option<&[Input]>,
    notes: &mut Vec<String>,
) -> Result<Vec<Link>> {
    let Some(candidate) = candidate else {
        notes.push("the candidate declares no inputs: fed the reference's, in order".into());
        return Ok(reference
            .iter()
            .enumerate()
            .map(|(i, r)| Link {
                name: r.name.clone(),
                from: i,
                perm: None,
                pins: vec![],
            })
            .collect());
    };
    if candidate.len() != reference.len() {
        bail!(
            "the reference has {} inputs ({}), the candidate {} ({})",
            reference.len(),
            names(reference),
            candidate.len(),
            names(candidate)
        );
    }
    let ours: Vec<String> = reference.iter().map(|i| i.name.clone()).collect();
    let theirs: Vec<String> = candidate.iter().map(|i| i.name.clone()).collect();
    let (order, by_name) = pair_names(&ours, &theirs);
    if !by_name && ours != theirs {
        notes.push(format!(
            "inputs matched by position (names differ): {}",
            ours.iter()
                .zip(&theirs)
                .filter(|(a, b)| a != b)
                .map(|(a, b)| format!("{a} → {b}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut links = vec![];
    for (c, &from) in candidate.iter().zip(&order) {
        let r = &reference[from];
        let perm = match (&r.dims, &c.dims) {
            (Some(rd), Some(cd)) => input_perm(&r.name, rd, &c.name, cd)?,
            _ => None,
        };
        if let Some(p) = &perm {
            notes.push(format!(
                "input {}: the candidate takes it permuted by {p:?} (declared [{}] → [{}])",
                r.name,
                show(r.dims.as_deref().unwrap_or_default()),
                show(c.dims.as_deref().unwrap_or_default())
            ));
        }
        let mut pins = vec![];
        if let (Some(rd), Some(cd)) = (&r.dims, &c.dims) {
            for (i, d) in cd.iter().enumerate() {
                let axis = perm.as_ref().map_or(i, |p| p[i]);
                if let (Dim::Size(n), Some(Dim::Free(_))) = (d, rd.get(axis)) {
                    notes.push(format!(
                        "input {}: the candidate fixes dim {axis} (dynamic in the reference) at {n}",
                        r.name
                    ));
                    pins.push((axis, *n));
                }
            }
        }
        links.push(Link {
            name: c.name.clone(),
            from,
            perm,
            pins,
        });
    }
    Ok(links)
}

/// The permutation between two declared input shapes: None when they agree as they are (a
/// dynamic dim agrees with anything), else the one layout change under which they agree.
fn input_perm(
    rname: &str,
    reference: &[Dim],
    cname: &str,
    candidate: &[Dim],
) -> Result<Option<Vec<usize>>> {
    let agree = |a: &Dim, b: &Dim| match (a, b) {
        (Dim::Size(x), Dim::Size(y)) => x == y,
        _ => true,
    };
    if reference.len() == candidate.len() {
        if reference.iter().zip(candidate).all(|(a, b)| agree(a, b)) {
            return Ok(None);
        }
        for p in layout_perms(reference.len()) {
            if p.iter()
                .enumerate()
                .all(|(i, &j)| agree(&reference[j], &candidate[i]))
            {
                return Ok(Some(p));
            }
        }
    }
    bail!(
        "input '{rname}' of the reference is [{}], the candidate's '{cname}' is [{}]: no layout change (channels-last ↔ channels-first) maps one onto the other",
        show(reference),
        show(candidate)
    )
}

fn names(inputs: &[Input]) -> String {
    inputs
        .iter()
        .map(|i| i.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, dims: &[i64]) -> Input {
        Input {
            name: name.into(),
            dims: Some(
                dims.iter()
                    .map(|&d| {
                        if d < 0 {
                            Dim::Free(None)
                        } else {
                            Dim::Size(d as usize)
                        }
                    })
                    .collect(),
            ),
            dtype: None,
        }
    }

    #[test]
    fn inputs_pair_by_name_then_by_position_and_find_the_layout_change() {
        let mut notes = vec![];
        let r = [input("a", &[-1, 8, 6, 3]), input("b", &[-1, 4])];
        let c = [input("b", &[-1, 4]), input("a", &[-1, 3, 8, 6])];
        let links = map_inputs(&r, Some(&c), &mut notes).unwrap();
        assert_eq!(links[0].from, 1);
        assert_eq!(links[1].from, 0);
        assert_eq!(links[1].perm, Some(vec![0, 3, 1, 2]));
        let c = [input("x", &[1, 3, 8, 6]), input("y", &[-1, 4])];
        let links = map_inputs(&r, Some(&c), &mut notes).unwrap();
        assert_eq!((links[0].from, links[1].from), (0, 1));
        assert!(notes.iter().any(|n| n.contains("a → x")), "{notes:?}");
        let c = [input("a", &[1, 5, 8, 6]), input("b", &[-1, 4])];
        let err = map_inputs(&r, Some(&c), &mut notes).unwrap_err();
        assert!(err.to_string().contains("no layout change"), "{err}");
    }
}
