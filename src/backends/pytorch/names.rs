//! Turning names from the model file into safe Python: identifiers (ASCII, never a keyword, a
//! builtin, a name the generated code uses or an `nn.Module` attribute, unique), string literals
//! and comments. Nothing from the model reaches the source any other way.
use std::collections::HashSet;

/// Longest identifier made from a name; longer names are cut (the original stays in a comment).
const MAX_IDENT: usize = 48;
/// Longest original name quoted in a comment.
const MAX_COMMENT: usize = 120;

/// Names an identifier must never take (whitespace-separated): Python keywords and builtins,
/// the names the generated module itself uses, and every attribute of `torch.nn.Module` (a layer
/// stored under one of those would shadow it).
const RESERVED: [&str; 3] = [
    // Keywords, soft keywords and builtins.
    "\
    False None True and as assert async await break case class continue def del elif else
    except finally for from global if import in is lambda match nonlocal not or pass raise
    return try type while with yield abs all any bool bytes dict dir enumerate eval exec
    float getattr hasattr id input int isinstance iter len list map max min next object open
    print range repr reversed round set setattr slice sorted str sum super tuple vars zip
    self cls",
    // Names the generated module uses.
    "\
    torch nn F math KitModel example_inputs resample Recurrent same_pad",
    // torch.nn.Module attributes (torch 2.x).
    "\
    T_destination add_module apply bfloat16 buffers
    call_super_init children compile cpu cuda double dump_patches extra_repr forward
    get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict modules
    mtia named_buffers named_children named_modules named_parameters parameters
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook
    register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module
    register_parameter register_state_dict_post_hook register_state_dict_pre_hook
    requires_grad_ set_extra_state set_submodule share_memory state_dict to to_empty train
    training xpu zero_grad",
];

/// Names a `forward()` argument must not take, beyond the keywords: the names the generated
/// code reads (its modules and helpers, and the builtins it calls). Other builtins and
/// `nn.Module` attributes may be shadowed by an argument: the generated code never reads them
/// bare.
const ARG_RESERVED: &str = "\
    self cls torch nn F math KitModel example_inputs resample Recurrent same_pad abs all any bool
    dict enumerate eval float getattr int isinstance len list max min range round set slice
    sorted str sum super tuple type zip";

/// Python's keywords (hard ones: the soft ones are valid names).
const KEYWORDS: &str = "\
    False None True and as assert async await break class continue def del elif else except
    finally for from global if import in is lambda nonlocal not or pass raise return try while
    with yield";

/// Hands out unique, safe identifiers.
#[derive(Default)]
pub struct Namer {
    used: HashSet<String>,
    /// The identifiers handed out so far.
    handed: HashSet<String>,
}

impl Namer {
    pub fn new() -> Self {
        Namer {
            used: RESERVED
                .iter()
                .flat_map(|list| list.split_whitespace())
                .map(String::from)
                .collect(),
            handed: HashSet::new(),
        }
    }

    /// The `forward()` argument for graph input `name`: the name itself when Python allows it
    /// there (an ASCII identifier, no keyword, no name the generated code reads, not taken),
    /// else an [`Namer::ident`] made from it, with the reason.
    pub fn arg(&mut self, name: &str) -> (String, Option<&'static str>) {
        let why = if !is_identifier(name) {
            Some("not a Python identifier")
        } else if KEYWORDS.split_whitespace().any(|k| k == name) {
            Some("a Python keyword")
        } else if ARG_RESERVED.split_whitespace().any(|k| k == name) {
            Some("a name the generated code uses")
        } else if self.handed.contains(name) {
            Some("the name of another argument")
        } else {
            None
        };
        if why.is_some() {
            return (self.ident(name), why);
        }
        self.used.insert(name.to_string());
        self.handed.insert(name.to_string());
        (name.to_string(), None)
    }

    /// A fresh identifier resembling `name`: ASCII letters, digits and single underscores,
    /// never starting with a digit or an underscore, at most [`MAX_IDENT`] characters, and
    /// distinct from every identifier handed out before and every reserved name.
    pub fn ident(&mut self, name: &str) -> String {
        let base = sanitize(name);
        let mut candidate = base.clone();
        let mut k = 1;
        while self.used.contains(&candidate) {
            candidate = format!("{base}_{k}");
            k += 1;
        }
        self.used.insert(candidate.clone());
        self.handed.insert(candidate.clone());
        candidate
    }
}

/// Whether `name` is an ASCII Python identifier.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The identifier form of a name, before collisions are resolved.
fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    if out.len() > MAX_IDENT {
        out.truncate(MAX_IDENT);
        while out.ends_with('_') {
            out.pop();
        }
    }
    if out.is_empty() {
        "layer".to_string()
    } else if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("layer_{out}")
    } else {
        out
    }
}

/// The body of a Python string literal for `s` (no quotes): ASCII only, every quote,
/// backslash, control and non-ASCII character escaped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out
}

/// A Python string literal holding exactly `s`.
pub fn py_str(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

/// How a comment shows an original name: a quoted, escaped literal (so no character can end
/// the comment line), cut once the escaped text passes [`MAX_COMMENT`] characters.
pub fn quoted_name(s: &str) -> String {
    let mut body = String::new();
    for (i, c) in s.chars().enumerate() {
        if body.len() >= MAX_COMMENT {
            let count = s.chars().count();
            return format!("\"{body}\"... ({} of {count} characters)", i);
        }
        body.push_str(&escape(c.encode_utf8(&mut [0; 4])));
    }
    format!("\"{body}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_safe_and_unique() {
        let mut n = Namer::new();
        assert_eq!(n.ident("conv1/kernel:0"), "conv1_kernel_0");
        assert_eq!(n.ident("conv1.kernel.0"), "conv1_kernel_0_1");
        assert_eq!(n.ident("class"), "class_1");
        assert_eq!(n.ident("__init__"), "init");
        assert_eq!(n.ident("forward"), "forward_1");
        assert_eq!(n.ident("7up"), "layer_7up");
        assert_eq!(n.ident("ünï"), "n");
        assert_eq!(n.ident("€"), "layer");
        assert_eq!(n.ident("€€"), "layer_1");
        let long = n.ident(&"a".repeat(10_000));
        assert_eq!(long.len(), MAX_IDENT);
        let evil = n.ident("x\"); __import__(\"os\").system(\"touch pwned\") #");
        assert!(evil.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }

    #[test]
    fn arguments_keep_their_names_where_python_allows() {
        let mut n = Namer::new();
        assert_eq!(n.arg("input"), ("input".to_string(), None));
        assert_eq!(n.arg("_x2"), ("_x2".to_string(), None));
        assert_eq!(
            n.arg("class"),
            ("class_1".to_string(), Some("a Python keyword"))
        );
        assert_eq!(n.arg("len").1, Some("a name the generated code uses"));
        assert_eq!(
            n.arg("x:0"),
            ("x_0".to_string(), Some("not a Python identifier"))
        );
        // Taken by an argument: the next one is numbered.
        assert_eq!(
            n.arg("input"),
            ("input_1".to_string(), Some("the name of another argument"))
        );
        // Layers named like an argument get another identifier.
        assert_eq!(n.ident("input"), "input_2");
    }

    #[test]
    fn literals_escape_everything() {
        assert_eq!(py_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(py_str("é\u{2028}😀"), "\"\\xe9\\u2028\\U0001f600\"");
        let q = quoted_name(&"b".repeat(500));
        assert!(q.ends_with("... (120 of 500 characters)"), "{q}");
        assert!(quoted_name(&"é".repeat(10_000)).len() < 200);
        assert!(!quoted_name("a\rb\nc").contains(['\r', '\n']));
    }
}
