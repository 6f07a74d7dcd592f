//! HDF5 for Keras files: [`file`] reads one HDF5 file (string attributes, group members, lazy
//! reads of one dataset at a time, refusing data kept outside the file); this module indexes each
//! layer's weight datasets in the three layouts Keras writes.
//!
//! Layouts: Keras 2 and Keras 3 "legacy" `.h5` keep one group per top-level layer (under
//! `model_weights/` in a full-model file, at the root in a `save_weights` file) whose
//! `weight_names` attribute lists its datasets in order (`conv/kernel:0`, `lstm/lstm_cell/bias`;
//! a nested model's group holds all of its layers' weights). Keras 3 `.weights.h5` (and the
//! `model.weights.h5` inside a `.keras` zip) keeps `layers/<path>/vars/0..n`, where `<path>` is
//! derived from the class and the layer's own name is the `name` attribute of `vars`; sub-objects
//! (an RNN's `cell`, a wrapper's `forward_layer`, a nested model's `layers/…`) are child groups.
mod file;

use anyhow::{bail, Result};
pub use file::H5File;
use std::collections::HashMap;

/// How deep the weight groups of one Keras 3 layer may nest (a layer holding sublayers holding
/// cells: a few levels in any real model).
const MAX_V3_DEPTH: usize = 32;

/// One weight variable of a layer: where it is stored and its name relative to the layer
/// (`kernel`, `lstm_cell/bias`, `forward_lstm/lstm_cell/kernel` in `.h5`; `0`, `cell/2`,
/// `forward_layer/cell/0`, `query_dense/1` in Keras 3 weight files).
#[derive(Clone, Debug)]
pub struct Var {
    pub local: String,
    pub path: String,
}

/// Where a model's layers keep their weights.
#[derive(Clone, Debug)]
pub enum Scope {
    /// `.h5` layout: layer groups under `root` (`/model_weights` or `/`); inside a nested
    /// model, its group (`group`) holds every weight, named with the layers' names.
    Legacy { root: String, group: Option<String> },
    /// Keras 3 layout: the container group whose children are the layers (`/layers`).
    V3 { layers: String },
}

/// The weight index of a file: lists each layer's variables.
pub struct WeightIndex {
    pub file: H5File,
    /// For the Keras 3 layout: container group → (layer name → group path).
    v3_names: std::cell::RefCell<HashMap<String, HashMap<String, String>>>,
}

impl WeightIndex {
    pub fn new(file: H5File) -> WeightIndex {
        WeightIndex {
            file,
            v3_names: Default::default(),
        }
    }

    /// The scope of the top-level model, recognised from the file's layout.
    pub fn root_scope(&self) -> Result<Scope> {
        let f = &self.file;
        if f.has_group("/model_weights")? {
            return Ok(Scope::Legacy {
                root: "/model_weights".into(),
                group: None,
            });
        }
        if f.has_group("/layers")? {
            return Ok(Scope::V3 {
                layers: "/layers".into(),
            });
        }
        if !f.attr_strings("/", "layer_names")?.is_empty() {
            return Ok(Scope::Legacy {
                root: "/".into(),
                group: None,
            });
        }
        bail!(
            "{} holds no Keras weights (no model_weights/ or layers/ group, no layer_names)",
            f.path.display()
        )
    }

    /// The scope of a nested model called `name` inside `scope` (`saved_as`: its group name in
    /// the Keras 3 layout when the file does not record names).
    pub fn nested(&self, scope: &Scope, name: &str, saved_as: &str) -> Result<Scope> {
        Ok(match scope {
            Scope::Legacy { root, group: None } => Scope::Legacy {
                root: root.clone(),
                group: Some(join(root, name)),
            },
            Scope::Legacy { .. } => scope.clone(),
            Scope::V3 { layers } => Scope::V3 {
                layers: format!("{}/layers", self.v3_group(layers, name, saved_as)?),
            },
        })
    }

    /// The variables of layer `name` in `scope`, in the order Keras stores them; each is checked
    /// to be stored inside the file (no external link or external storage), so a hostile file
    /// fails here with its own error rather than as a weight missing later.
    pub fn vars(&self, scope: &Scope, name: &str, saved_as: &str) -> Result<Vec<Var>> {
        let vars = self.list_vars(scope, name, saved_as)?;
        for v in &vars {
            self.file.check_inside(&v.path)?;
        }
        Ok(vars)
    }

    fn list_vars(&self, scope: &Scope, name: &str, saved_as: &str) -> Result<Vec<Var>> {
        match scope {
            Scope::Legacy { root, group: None } => {
                let g = join(root, name);
                if !self.file.has_group(&g)? {
                    return Ok(vec![]);
                }
                let names = self.file.attr_strings(&g, "weight_names")?;
                Ok(names
                    .iter()
                    .map(|w| Var {
                        local: local_name(w, name),
                        path: join(&g, w),
                    })
                    .collect())
            }
            Scope::Legacy { group: Some(g), .. } => {
                let names = self.file.attr_strings(g, "weight_names")?;
                Ok(names
                    .iter()
                    .filter(|w| {
                        let parts: Vec<&str> = w.split('/').collect();
                        parts[..parts.len() - 1].contains(&name)
                    })
                    .map(|w| Var {
                        local: local_name(w, name),
                        path: join(g, w),
                    })
                    .collect())
            }
            Scope::V3 { layers } => {
                let group = match self.v3_path(layers, name)? {
                    Some(p) => p,
                    // An operation call (no saved name) has no weights.
                    None if saved_as.is_empty() => return Ok(vec![]),
                    None => join(layers, saved_as),
                };
                let mut out = vec![];
                if self.file.has_group(&group)? {
                    self.walk_v3(&group, "", 0, &mut out)?;
                }
                Ok(out)
            }
        }
    }

    /// The group of layer `name`: the child of `layers` whose `vars` are named so, else the
    /// child `saved_as`.
    fn v3_group(&self, layers: &str, name: &str, saved_as: &str) -> Result<String> {
        Ok(match self.v3_path(layers, name)? {
            Some(p) => p,
            None => join(layers, saved_as),
        })
    }

    /// Group of layer `name` among the children of `layers` (matched by `vars/@name`).
    fn v3_path(&self, layers: &str, name: &str) -> Result<Option<String>> {
        if !self.v3_names.borrow().contains_key(layers) {
            let mut names = HashMap::new();
            if self.file.has_group(layers)? {
                for child in self.file.child_groups(layers)? {
                    let p = join(layers, &child);
                    let vars = join(&p, "vars");
                    let own = if self.file.has_group(&vars)? {
                        self.file.attr_string(&vars, "name")?
                    } else {
                        None
                    };
                    if let Some(own) = own {
                        names.insert(own, p);
                    }
                }
            }
            self.v3_names.borrow_mut().insert(layers.to_string(), names);
        }
        Ok(self.v3_names.borrow()[layers].get(name).cloned())
    }

    /// Collects `vars/0..n` of `group`, then of its child objects (depth first, by name).
    /// `depth` counts the groups above `group`: a group linked into itself (a cycle of hard
    /// links) would otherwise be walked until the stack overflows.
    fn walk_v3(&self, group: &str, prefix: &str, depth: usize, out: &mut Vec<Var>) -> Result<()> {
        if depth > MAX_V3_DEPTH {
            bail!(
                "{}: weight groups nested deeper than {MAX_V3_DEPTH} levels at '{group}' (a \
                 group linked into itself?)",
                self.file.path.display()
            );
        }
        let vars = join(group, "vars");
        if self.file.has_group(&vars)? {
            let mut idx: Vec<usize> = self
                .file
                .child_datasets(&vars)?
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect();
            idx.sort_unstable();
            for i in idx {
                out.push(Var {
                    local: format!("{prefix}{i}"),
                    path: format!("{vars}/{i}"),
                });
            }
        }
        for child in self.file.child_groups(group)? {
            let p = join(group, &child);
            if child != "vars" {
                self.walk_v3(&p, &format!("{prefix}{child}/"), depth + 1, out)?;
            }
        }
        Ok(())
    }
}

fn join(group: &str, name: &str) -> String {
    if group.ends_with('/') {
        format!("{group}{name}")
    } else {
        format!("{group}/{name}")
    }
}

/// `conv/kernel:0` → `kernel`; `bi/forward_gru/gru_cell/kernel` → `forward_gru/gru_cell/kernel`.
fn local_name(weight: &str, layer: &str) -> String {
    let w = weight.strip_suffix(":0").unwrap_or(weight);
    let parts: Vec<&str> = w.split('/').collect();
    match parts[..parts.len() - 1].iter().position(|p| *p == layer) {
        Some(i) => parts[i + 1..].join("/"),
        None => w.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::local_name;

    #[test]
    fn local_names_drop_the_layer_prefix() {
        assert_eq!(local_name("conv/kernel:0", "conv"), "kernel");
        assert_eq!(local_name("sub/d1/kernel", "d1"), "kernel");
        assert_eq!(
            local_name("bi/forward_gru/gru_cell/bias", "bi"),
            "forward_gru/gru_cell/bias"
        );
        assert_eq!(local_name("kernel:0", "x"), "kernel");
    }
}
