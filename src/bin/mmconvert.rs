//! `mmconvert`: MMdnn's command name for `mmdnn convert` (see `alias`).
mod alias;

fn main() {
    std::process::exit(alias::exec("mmconvert"));
}
