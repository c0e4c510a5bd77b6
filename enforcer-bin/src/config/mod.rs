//! The files an operator writes by hand: the **policy file** (rules, internal subnets) and
//! the **workloads file** (workloads, their modes and wiring, engine-wide settings).
//! Their formats are documented for operators in `docs/policy.md`.
//!
//! ```text
//!  policy.toml / .json ────► policy_file::PolicyFile ──────┐ rules_for(workload)
//!                                                          ├─► policy_config() ─► store.update
//!  workloads.toml / .json ─► workloads_file::WorkloadsFile ┘
//! ```
//!
//! Both files are TOML (primary) or JSON, chosen by the extension (`.toml`, `.json`), else
//! by the first character (`{` is JSON). Parsing is two steps: `serde` reads the text into
//! raw structs (unknown keys, missing keys and wrong types are errors there, located by the
//! TOML or JSON parser), then validation turns raw strings into the engine's types. A
//! validation error carries the path of the offending value (`rule[3].ports[1]`), which is
//! located in the text only when an error is reported, so every error names the file, the
//! line and column, the rule or workload, and the field.
//!
//! Invariants: a [`PolicyFile`] that was parsed holds only rules the engine can compile
//! (ids unique and non-zero, no empty peer or port list, known applications, canonical
//! lowercase names); [`PolicyFile::to_toml`] writes a file that parses back equal.

pub mod policy_file;
pub mod run_file;
mod source;
pub mod workloads_file;

pub use policy_file::{PolicyFile, PolicyFileError, PolicyRule};
pub use run_file::{RunFile, RunFileError};
pub use workloads_file::{WorkloadsFile, WorkloadsFileError};

use core::fmt;
use dpi_core::endpoint::{PolicyConfig, PolicySettings, WorkloadPolicy};
use std::path::Path;

/// The syntax of a policy or workloads file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// TOML (the primary format).
    Toml,
    /// JSON (the same keys and values as the TOML format).
    Json,
}

impl Format {
    /// The format of a file: by extension (`.toml`, `.json`, any case), else JSON when the
    /// first character that is not white space is `{`, else TOML.
    pub fn detect(path: &Path, text: &str) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("toml") => Format::Toml,
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            _ if text.trim_start_matches('\u{feff}').trim_start().starts_with('{') => Format::Json,
            _ => Format::Toml,
        }
    }
}

/// Where in a file an error is: `file:line:column`, both from 1; the column counts
/// characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file, as it was named to the parser.
    pub file: String,
    /// Line (from 1).
    pub line: usize,
    /// Column (from 1, in characters).
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The engine's policy configuration from the two files: every workload of `workloads`
/// with the rules of `policy` that apply to it ([`PolicyFile::rules_for`]), the apply
/// direction and unknown-traffic setting of `workloads`, and the internal subnets of
/// `policy`. Implicit workloads are off; `implicit_rules` holds
/// [`PolicyFile::common_rules`] for a caller that turns them on.
pub fn policy_config(workloads: &WorkloadsFile, policy: &PolicyFile) -> PolicyConfig {
    PolicyConfig {
        settings: PolicySettings {
            apply: workloads.apply,
            unknown: workloads.unknown,
            internal_subnets: policy.internal_subnets.clone(),
            ..PolicySettings::default()
        },
        workloads: workloads
            .workloads
            .iter()
            .map(|spec| WorkloadPolicy { spec: spec.clone(), rules: policy.rules_for(&spec.name) })
            .collect(),
        implicit_rules: policy.common_rules(),
        names: vec![],
    }
}
