//! Documentation generated from the code: `docs/ops.md` (the op catalogue) and the README's
//! support matrix. Tests fail when the committed copies are stale.
use crate::backends::{self, BACKENDS};
use crate::frontends::{self, FRONTENDS};
use crate::ir::ops::{self, Default, Inputs, Outputs};
use std::fmt::Write;

/// The whole of `docs/ops.md`.
pub fn ops_markdown() -> String {
    let mut s = String::new();
    let all = ops::all();
    writeln!(s, "# IR op catalogue\n").unwrap();
    writeln!(
        s,
        "Generated from `src/ir/ops/` by `mmdnn ops --markdown`; do not edit by hand. \
         {} ops. Weights are stored per node in the weight store under the listed names; \
         unknown dims are -1. `data_format` is `channels_first` ([N, C, *spatial]) or \
         `channels_last` ([N, *spatial, C]). An attribute marked \"or a tensor computed at run \
         time\" may instead be given by an integer (float for scales) input: the node's \
         `from_inputs` attribute lists such attributes, each a trailing input after the op's \
         own, in that order.\n",
        all.len()
    )
    .unwrap();
    let mut family = None;
    for op in all {
        if family != Some(op.family) {
            family = Some(op.family);
            writeln!(s, "## {}\n", op.family.title()).unwrap();
        }
        writeln!(s, "### {}\n\n{}\n", op.name, op.doc).unwrap();
        let inputs = match op.inputs {
            Inputs::Fixed { names: [], .. } => "none".to_string(),
            Inputs::Fixed { names, required } => names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    if i < required {
                        format!("`{n}`")
                    } else {
                        format!("`{n}` (optional)")
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
            Inputs::Variadic { name, min } => format!("`{name}`… (at least {min})"),
        };
        let outputs = match op.outputs {
            Outputs::Fixed(names) => names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            Outputs::PerEntryOf(attr) => format!("one per entry of `{attr}`"),
        };
        let layout = op.layout;
        writeln!(
            s,
            "- inputs: {inputs}\n- outputs: {outputs}\n- layout: {layout}"
        )
        .unwrap();
        if !op.attrs.is_empty() {
            writeln!(
                s,
                "\n| attribute | type | default | meaning |\n|---|---|---|---|"
            )
            .unwrap();
            for a in op.attrs {
                let default = match a.default {
                    Default::Required => "required".to_string(),
                    Default::Optional => "optional".to_string(),
                    d => d.value().map(|v| format!("`{v}`")).unwrap_or_default(),
                };
                let allowed = if a.allowed.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (one of {})",
                        a.allowed
                            .iter()
                            .map(|v| format!("`{v}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                let runtime = if a.runtime.is_some() {
                    "; or a tensor computed at run time"
                } else {
                    ""
                };
                writeln!(
                    s,
                    "| `{}` | {} | {} | {}{}{} |",
                    a.name,
                    a.kind.name(),
                    default,
                    a.doc,
                    allowed,
                    runtime
                )
                .unwrap();
            }
        }
        if !op.weights.is_empty() {
            writeln!(s, "\n| weight | layout |\n|---|---|").unwrap();
            for w in op.weights {
                writeln!(
                    s,
                    "| `{}`{} | {} |",
                    w.name,
                    if w.optional { " (optional)" } else { "" },
                    w.layout
                )
                .unwrap();
            }
        }
        writeln!(s).unwrap();
    }
    s
}

/// Each framework as a source and as a target: (name, status, formats), status "yes" or
/// "planned", ready ones first, in registry order.
fn entries(sources: bool) -> Vec<(&'static str, &'static str, &'static str)> {
    if sources {
        let ready = FRONTENDS.iter().map(|f| (f.name(), "yes", f.formats()));
        let planned = frontends::PLANNED
            .iter()
            .map(|p| (p.name, "planned", p.formats));
        ready.chain(planned).collect()
    } else {
        let ready = BACKENDS.iter().map(|b| (b.name(), "yes", b.formats()));
        let planned = backends::PLANNED
            .iter()
            .map(|p| (p.name, "planned", p.formats));
        ready.chain(planned).collect()
    }
}

/// The README's support matrix, from the registries: what reads and writes today, then, apart,
/// what is planned. A cell names the formats of that direction, or "—".
pub fn support_matrix() -> String {
    let (sources, targets) = (entries(true), entries(false));
    let mut names: Vec<&str> = sources.iter().map(|e| e.0).collect();
    for t in &targets {
        if !names.contains(&t.0) {
            names.push(t.0);
        }
    }
    let cell = |list: &[(&str, &str, &'static str)], n: &str, status: &str| {
        list.iter()
            .find(|e| e.0 == n && e.1 == status)
            .map_or("—", |e| e.2)
    };
    let table = |s: &mut String, status: &str, heads: (&str, &str)| {
        writeln!(
            s,
            "| framework | {} | {} |\n|---|---|---|",
            heads.0, heads.1
        )
        .unwrap();
        for &n in &names {
            let (read, write) = (cell(&sources, n, status), cell(&targets, n, status));
            if (read, write) != ("—", "—") {
                writeln!(s, "| {n} | {read} | {write} |").unwrap();
            }
        }
    };
    let mut s = String::from("**Works today:**\n\n");
    table(&mut s, "yes", ("reads (source)", "writes (target)"));
    writeln!(
        s,
        "\nThe IR has {} ops (docs/ops.md). Verified tolerance for float32 paths: max |Δ| ≤ \
         1e-4 · max(1, |reference|).\n",
        ops::all().len()
    )
    .unwrap();
    s.push_str(
        "**Planned** (not implemented: the names are accepted, and a conversion from or to them \
         stops with \"cannot read/write … models yet\", exit 1):\n\n",
    );
    table(&mut s, "planned", ("to read", "to write"));
    s
}
