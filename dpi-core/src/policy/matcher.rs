//! The compiled matcher (being written): same answers as [`super::reference`], fast.

use super::{reference, Match, Query, Rule};

/// Rules compiled for lookup.
#[derive(Debug, Clone)]
pub struct CompiledRules {
    rules: Vec<Rule>,
}

impl CompiledRules {
    /// Compile an ordered rule list.
    pub fn compile(rules: &[Rule]) -> Self {
        CompiledRules { rules: rules.to_vec() }
    }

    /// The first matching rule.
    pub fn lookup(&self, q: &Query<'_>) -> Option<Match> {
        reference::first_match(&self.rules, q)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// No rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
