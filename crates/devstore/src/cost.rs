//! Query cost and the per-shop leaky bucket, after Shopify's model.
//!
//! Cost rules (Shopify's, simplified): scalars and enums cost 0; an object
//! costs 1 plus its selection; a connection costs 2 plus, per item, the cost
//! of the item (1 + its selection), where the number of items is `first` or
//! `last` for the *requested* cost and the number actually returned for the
//! *actual* cost. The bucket is charged the requested cost before the query
//! runs and refunded the difference afterwards.

use std::collections::HashMap;
use std::time::Instant;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationDefinition, Selection, SelectionSet,
};
use serde_json::{Map, Value as Json, json};

/// Field names that return connections even without a `first`/`last`.
const CONNECTIONS: &[&str] = &["orders", "products", "customers", "lineItems", "variants"];

/// Computes costs for one operation of a parsed document.
pub(crate) struct CostWalker<'a> {
    doc: &'a ExecutableDocument,
    op: &'a OperationDefinition,
    vars: Map<String, Json>,
}

impl<'a> CostWalker<'a> {
    /// `None` when the operation cannot be found (the executor reports that).
    pub(crate) fn new(
        doc: &'a ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Map<String, Json>,
    ) -> Option<CostWalker<'a>> {
        let op = match (&doc.operations, operation_name) {
            (DocumentOperations::Single(op), _) => &op.node,
            (DocumentOperations::Multiple(ops), Some(name)) => &ops.get(name)?.node,
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
                &ops.values().next()?.node
            }
            _ => return None,
        };
        let mut vars = Map::new();
        for def in &op.variable_definitions {
            if let Some(default) = &def.node.default_value
                && let Ok(v) = default.node.clone().into_json()
            {
                vars.insert(def.node.name.node.to_string(), v);
            }
        }
        for (k, v) in variables {
            vars.insert(k.clone(), v.clone());
        }
        Some(CostWalker { doc, op, vars })
    }

    /// The cost before execution, from `first`/`last`.
    pub(crate) fn requested(&self) -> u64 {
        self.set_cost(&self.op.selection_set.node, None).max(1)
    }

    /// The cost of what `data` (the response's `data`) actually holds.
    pub(crate) fn actual(&self, data: &Json) -> u64 {
        if data.is_null() {
            return 0;
        }
        self.set_cost(&self.op.selection_set.node, Some(data))
            .max(1)
    }

    /// The fields of a selection set, fragments flattened.
    fn fields(&self, set: &'a SelectionSet) -> Vec<&'a Field> {
        let mut out = Vec::new();
        self.collect(set, &mut out, 0);
        out
    }

    fn collect(&self, set: &'a SelectionSet, out: &mut Vec<&'a Field>, depth: usize) {
        if depth > 32 {
            return;
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => out.push(&f.node),
                Selection::FragmentSpread(s) => {
                    if let Some(frag) = self.doc.fragments.get(&s.node.fragment_name.node) {
                        self.collect(&frag.node.selection_set.node, out, depth + 1);
                    }
                }
                Selection::InlineFragment(i) => {
                    self.collect(&i.node.selection_set.node, out, depth + 1)
                }
            }
        }
    }

    fn size_arg(&self, f: &Field) -> Option<u64> {
        f.arguments
            .iter()
            .filter(|(name, _)| name.node == "first" || name.node == "last")
            .find_map(|(_, value)| {
                let resolved = value.node.clone().into_const_with(|name| {
                    self.vars
                        .get(name.as_str())
                        .cloned()
                        .ok_or(())
                        .and_then(|j| async_graphql::Value::from_json(j).map_err(|_| ()))
                });
                match resolved {
                    Ok(async_graphql::Value::Number(n)) => n.as_u64(),
                    _ => None,
                }
            })
    }

    fn set_cost(&self, set: &'a SelectionSet, data: Option<&Json>) -> u64 {
        self.fields(set)
            .into_iter()
            .map(|f| self.field_cost(f, data))
            .sum()
    }

    fn field_cost(&self, f: &'a Field, parent: Option<&Json>) -> u64 {
        if f.selection_set.node.items.is_empty() {
            return 0;
        }
        let name = f.name.node.as_str();
        let key = f.alias.as_ref().map_or(name, |a| a.node.as_str());
        let value = match parent {
            None => None,
            Some(p) => match p.get(key) {
                None | Some(Json::Null) => return 0,
                Some(v) => Some(v),
            },
        };
        let children = &f.selection_set.node;
        let is_connection = CONNECTIONS.contains(&name) || self.size_arg(f).is_some();
        if !is_connection {
            return match value {
                Some(Json::Array(items)) => items
                    .iter()
                    .map(|item| 1 + self.set_cost(children, Some(item)))
                    .sum(),
                other => 1 + self.set_cost(children, other),
            };
        }
        // A connection: 2 + the cost of its items.
        let mut best = 0;
        for sub in self.fields(children) {
            let sub_name = sub.name.node.as_str();
            let sub_key = sub.alias.as_ref().map_or(sub_name, |a| a.node.as_str());
            let node_sets: Vec<&'a SelectionSet> = match sub_name {
                "nodes" => vec![&sub.selection_set.node],
                "edges" => self
                    .fields(&sub.selection_set.node)
                    .into_iter()
                    .filter(|e| e.name.node == "node")
                    .map(|e| &e.selection_set.node)
                    .collect(),
                _ => continue,
            };
            let cost = match value {
                None => {
                    let size = self.size_arg(f).unwrap_or(0);
                    let per_item: u64 = node_sets.iter().map(|s| 1 + self.set_cost(s, None)).sum();
                    size * per_item
                }
                Some(v) => {
                    let items = v.get(sub_key).and_then(Json::as_array);
                    items
                        .into_iter()
                        .flatten()
                        .map(|item| {
                            let item = if sub_name == "edges" {
                                sub_node(item, sub)
                            } else {
                                Some(item)
                            };
                            match item {
                                Some(item) => node_sets
                                    .iter()
                                    .map(|s| 1 + self.set_cost(s, Some(item)))
                                    .sum::<u64>(),
                                None => 0,
                            }
                        })
                        .sum()
                }
            };
            best = best.max(cost);
        }
        2 + best
    }
}

/// The `node` object of an edge, under its alias if any.
fn sub_node<'j>(edge: &'j Json, edges_field: &Field) -> Option<&'j Json> {
    let key = edges_field
        .selection_set
        .node
        .items
        .iter()
        .find_map(|s| match &s.node {
            Selection::Field(f) if f.node.name.node == "node" => Some(
                f.node
                    .alias
                    .as_ref()
                    .map_or(f.node.name.node.as_str(), |a| a.node.as_str()),
            ),
            _ => None,
        })
        .unwrap_or("node");
    edge.get(key)
}

/// Limits of the leaky bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BucketLimits {
    pub max: f64,
    pub restore_rate: f64,
}

/// One shop's bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    available: f64,
    updated: Instant,
}

/// All shops' buckets.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    map: HashMap<String, Bucket>,
}

impl Buckets {
    fn bucket(&mut self, shop: &str, limits: BucketLimits, now: Instant) -> &mut Bucket {
        let b = self.map.entry(shop.to_string()).or_insert(Bucket {
            available: limits.max,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
        b.available = (b.available + elapsed * limits.restore_rate).min(limits.max);
        b.updated = now;
        b
    }

    /// Takes `cost` if available; returns the amount left either way.
    pub(crate) fn try_take(
        &mut self,
        shop: &str,
        cost: u64,
        limits: BucketLimits,
    ) -> Result<f64, f64> {
        let b = self.bucket(shop, limits, Instant::now());
        if b.available + 1e-9 < cost as f64 {
            return Err(b.available);
        }
        b.available -= cost as f64;
        Ok(b.available)
    }

    /// Gives back `points` (requested minus actual).
    pub(crate) fn refund(&mut self, shop: &str, points: u64, limits: BucketLimits) -> f64 {
        let b = self.bucket(shop, limits, Instant::now());
        b.available = (b.available + points as f64).min(limits.max);
        b.available
    }

    /// Empties the bucket.
    pub(crate) fn drain(&mut self, shop: &str, limits: BucketLimits) {
        let b = self.bucket(shop, limits, Instant::now());
        b.available = 0.0;
    }

    /// Current level.
    pub(crate) fn available(&mut self, shop: &str, limits: BucketLimits) -> f64 {
        self.bucket(shop, limits, Instant::now()).available
    }
}

/// The `extensions.cost` object.
pub(crate) fn cost_json(
    requested: u64,
    actual: Option<u64>,
    available: f64,
    limits: BucketLimits,
) -> Json {
    json!({
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": {
            "maximumAvailable": limits.max,
            "currentlyAvailable": available.max(0.0).floor() as u64,
            "restoreRate": limits.restore_rate,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requested(q: &str, vars: Json) -> u64 {
        let doc = async_graphql::parser::parse_query(q).unwrap();
        let vars = vars.as_object().cloned().unwrap_or_default();
        CostWalker::new(&doc, None, &vars).unwrap().requested()
    }

    #[test]
    fn costs() {
        assert_eq!(requested("{ shop { name } }", json!({})), 1);
        assert_eq!(
            requested("{ shop { name plan { shopifyPlus } } }", json!({})),
            2
        );
        assert_eq!(
            requested(
                "{ products(first: 10) { edges { node { title } } } }",
                json!({})
            ),
            12
        );
        assert_eq!(
            requested(
                "{ products(first: 10) { nodes { title } pageInfo { hasNextPage } } }",
                json!({})
            ),
            12
        );
        assert_eq!(
            requested(
                "query Q($n: Int = 5) { orders(first: $n) { nodes { id totalPriceSet { shopMoney { amount } } lineItems(first: 3) { nodes { title } } } } }",
                json!({"n": 10})
            ),
            // 2 + 10 * (1 + 2 (money) + (2 + 3 * 1))
            2 + 10 * (1 + 2 + 5)
        );
        assert_eq!(
            requested(
                "query Q($n: Int = 5) { orders(first: $n) { nodes { id } } }",
                json!({})
            ),
            7
        );
        assert_eq!(
            requested(
                "{ ...F } fragment F on QueryRoot { orders(first: 2) { edges { cursor node { id } } } }",
                json!({})
            ),
            4
        );
    }

    #[test]
    fn actual_counts_returned_items() {
        let doc =
            async_graphql::parser::parse_query("{ orders(first: 10) { nodes { id } } }").unwrap();
        let w = CostWalker::new(&doc, None, &Map::new()).unwrap();
        let data = json!({"orders": {"nodes": [{"id": "a"}, {"id": "b"}]}});
        assert_eq!(w.requested(), 12);
        assert_eq!(w.actual(&data), 4);
    }

    #[test]
    fn bucket() {
        let limits = BucketLimits {
            max: 100.0,
            restore_rate: 0.0,
        };
        let mut b = Buckets::default();
        assert_eq!(b.try_take("s", 60, limits), Ok(40.0));
        assert_eq!(b.try_take("s", 60, limits), Err(40.0));
        assert_eq!(b.refund("s", 10, limits), 50.0);
        b.drain("s", limits);
        assert_eq!(b.available("s", limits), 0.0);
        assert_eq!(b.available("other", limits), 100.0);
    }
}
