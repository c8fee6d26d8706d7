//! The group tree of k6's `root_group`: checks counted per group (from the `group` tag of
//! each check sample), groups nested by their `::a::b` paths, both in the order they were
//! first seen, as k6 lists them.

use crate::metrics::{Sink, Snapshot};
use serde_json::{json, Map, Value};

#[derive(Default)]
pub struct Group {
    pub name: String,
    pub path: String,
    pub checks: Vec<(String, (u64, u64))>,
    pub groups: Vec<Group>,
}

impl Group {
    /// The tree of every group that has checks (and the groups above them).
    pub fn tree(snap: &Snapshot) -> Group {
        let mut root = Group::default();
        let Some(id) = snap.id("checks") else {
            return root;
        };
        for s in snap.in_first_seen_order(id) {
            let tag = |k: &str| s.tags.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            let (Some(check), Sink::Rate { trues, total }) = (tag("check"), &s.sink) else {
                continue;
            };
            let mut node = &mut root;
            let path = tag("group").unwrap_or("");
            for name in path.split("::").filter(|n| !n.is_empty()) {
                let i = match node.groups.iter().position(|g| g.name == name) {
                    Some(i) => i,
                    None => {
                        let path = format!("{}::{name}", node.path);
                        node.groups.push(Group {
                            name: name.to_string(),
                            path,
                            ..Group::default()
                        });
                        node.groups.len() - 1
                    }
                };
                node = &mut node.groups[i];
            }
            let i = match node.checks.iter().position(|(n, _)| n == check) {
                Some(i) => i,
                None => {
                    node.checks.push((check.to_string(), (0, 0)));
                    node.checks.len() - 1
                }
            };
            let e = &mut node.checks[i].1;
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
            .map(|g| (g.name.clone(), g.legacy_json()))
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
        let groups: Vec<Value> = self.groups.iter().map(Group::data_json).collect();
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
