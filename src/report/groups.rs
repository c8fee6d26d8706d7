//! The group tree of k6's `root_group`: checks counted per group (from the `group` tag of
//! each check sample), groups nested by their `::a::b` paths.

use crate::metrics::{Sink, Snapshot};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Default)]
pub struct Group {
    pub name: String,
    pub path: String,
    pub checks: BTreeMap<String, (u64, u64)>,
    pub groups: BTreeMap<String, Group>,
}

impl Group {
    /// The tree of every group that has checks (and the groups above them).
    pub fn tree(snap: &Snapshot) -> Group {
        let mut root = Group::default();
        let Some(id) = snap.id("checks") else {
            return root;
        };
        for s in snap.series.iter().filter(|s| s.metric == id) {
            let tag = |k: &str| s.tags.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            let (Some(check), Sink::Rate { trues, total }) = (tag("check"), &s.sink) else {
                continue;
            };
            let mut node = &mut root;
            let path = tag("group").unwrap_or("");
            for name in path.split("::").filter(|n| !n.is_empty()) {
                let parent_path = node.path.clone();
                node = node
                    .groups
                    .entry(name.to_string())
                    .or_insert_with(|| Group {
                        name: name.to_string(),
                        path: format!("{parent_path}::{name}"),
                        ..Group::default()
                    });
            }
            let e = node.checks.entry(check.to_string()).or_default();
            e.0 += trues;
            e.1 += total - trues;
        }
        root
    }

    fn check_json(&self, name: &str, (passes, fails): (u64, u64)) -> Value {
        let path = format!("{}::{name}", self.path);
        json!({"name": name, "id": md5_hex(&path), "path": path, "passes": passes, "fails": fails})
    }

    /// The legacy `--summary-export` shape: groups and checks as objects keyed by name.
    pub fn legacy_json(&self) -> Value {
        let checks: Map<String, Value> = self
            .checks
            .iter()
            .map(|(n, c)| (n.clone(), self.check_json(n, *c)))
            .collect();
        let groups: Map<String, Value> = self
            .groups
            .iter()
            .map(|(n, g)| (n.clone(), g.legacy_json()))
            .collect();
        json!({"name": self.name, "path": self.path, "id": self.id(), "groups": groups, "checks": checks})
    }

    /// `handleSummary(data)`'s shape: groups and checks as lists.
    pub fn data_json(&self) -> Value {
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|(n, c)| self.check_json(n, *c))
            .collect();
        let groups: Vec<Value> = self.groups.values().map(Group::data_json).collect();
        json!({"name": self.name, "path": self.path, "id": self.id(), "groups": groups, "checks": checks})
    }

    /// k6 names groups and checks by the MD5 of their path (hex).
    fn id(&self) -> String {
        md5_hex(&self.path)
    }
}

fn md5_hex(path: &str) -> String {
    use md5::Digest;
    md5::Md5::digest(path.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
