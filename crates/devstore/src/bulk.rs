//! Bulk operations, on Shopify's wire format: `bulkOperationRunQuery`,
//! `bulkOperation(id:)`, `currentBulkOperation`, and the JSONL result
//! served at `GET /devstore/_bulk/{token}.jsonl` (no access token, like
//! Shopify's signed storage URLs: the token in the path is the secret).
//!
//! The inner query is run by a generic flattener, not a hard-coded export:
//! it is parsed, checked against Shopify's limits (one top-level
//! connection, at most five connections, nested at most two levels deep),
//! rewritten so that every connection asks for full pages (the root one
//! paged with `after:` cursors) and every node carries its id, and executed
//! page by page against the same schema with the same [`ApiContext`]
//! (scopes and the 60-day order window apply; the per-request cost limit
//! does not, as on Shopify). Each root node becomes one JSONL line; each
//! node of a nested connection its own line with `"__parentId"`, right
//! after its parent with `groupObjects: true`, after the page's root
//! objects otherwise. Lists that are not connections (e.g. `refunds`)
//! stay inline.
//!
//! One bulk query runs per shop at a time; another one meanwhile is refused
//! with the user error `OPERATION_IN_PROGRESS`. When an operation of a shop
//! completes, the shop's older results expire (status `EXPIRED`, no URL),
//! which bounds the memory the simulator holds.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value as Json};

use crate::changes::Event;
use crate::graphql::{ApiContext, DateTimeScalar, UnsignedInt64, Url, gid, parse_gid};
use crate::webhooks::WebhookTopic;
use crate::{DevStore, lock, random_token};

/// Root objects fetched per page while running an operation.
const PAGE: i32 = 250;
/// Shopify's limit on connections in one bulk query.
const MAX_CONNECTIONS: usize = 5;
/// Shopify's limit on the nesting of connections.
const MAX_DEPTH: usize = 2;
/// Alias of the id injected into every node (removed from the output).
const ID_KEY: &str = "bulkId_";
/// Alias of the page info injected into the root connection.
const PAGE_INFO_KEY: &str = "bulkPageInfo_";

/// What the bulk resolvers need besides the [`ApiContext`]: the simulator
/// (to start and find operations), the shop, and the base URL of the
/// development store as the client reached it (for download URLs).
#[derive(Clone)]
pub(crate) struct BulkRequest {
    pub store: DevStore,
    pub shop: String,
    pub base_url: String,
}

/// `BulkOperationStatus`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum BulkOperationStatus {
    /// Canceled.
    Canceled,
    /// Being canceled.
    Canceling,
    /// Done; `url` holds the result.
    Completed,
    /// Created, not started.
    Created,
    /// The result is gone.
    Expired,
    /// Failed; see `errorCode`.
    Failed,
    /// Running.
    Running,
}

/// `BulkOperationErrorCode`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum BulkOperationErrorCode {
    /// The query needs a scope the app lacks.
    AccessDenied,
    /// Something broke while running.
    InternalServerError,
    /// Took too long.
    Timeout,
}

/// `BulkOperationType`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum BulkOperationType {
    /// A bulk mutation.
    Mutation,
    /// A bulk query.
    Query,
}

/// `BulkOperationUserErrorCode`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum BulkOperationUserErrorCode {
    /// The input is invalid.
    Invalid,
    /// Too many operations.
    LimitReached,
    /// An operation of this type is already running for the shop.
    OperationInProgress,
}

/// `BulkOperationUserError`.
#[derive(SimpleObject, Clone, Debug)]
pub struct BulkOperationUserError {
    field: Option<Vec<String>>,
    message: String,
    code: Option<BulkOperationUserErrorCode>,
}

/// `BulkOperationRunQueryPayload`.
#[derive(SimpleObject)]
pub struct BulkOperationRunQueryPayload {
    bulk_operation: Option<BulkOperationObject>,
    user_errors: Vec<BulkOperationUserError>,
}

fn user_error(message: String, code: BulkOperationUserErrorCode) -> BulkOperationRunQueryPayload {
    BulkOperationRunQueryPayload {
        bulk_operation: None,
        user_errors: vec![BulkOperationUserError {
            field: Some(vec!["query".to_string()]),
            message,
            code: Some(code),
        }],
    }
}

/// One operation, as stored.
#[derive(Clone, Debug)]
pub(crate) struct Op {
    id: u64,
    shop: String,
    status: BulkOperationStatus,
    error_code: Option<BulkOperationErrorCode>,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    object_count: u64,
    root_object_count: u64,
    file_size: Option<u64>,
    url: Option<String>,
    file: Option<String>,
    query: String,
}

/// All shops' operations and result files.
#[derive(Default)]
pub(crate) struct BulkState {
    next_id: u64,
    ops: HashMap<u64, Op>,
    files: HashMap<String, Bytes>,
    /// Shops whose operations stay `RUNNING` until released (see
    /// [`DevStore::hold_bulk_operations`]).
    pub(crate) held: HashSet<String>,
}

/// One bulk operation as [`DevStore::bulk_operations`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BulkOperationSummary {
    /// Its GraphQL id (`gid://shopify/BulkOperation/N`).
    pub id: String,
    /// `CREATED`, `RUNNING`, `COMPLETED`, …
    pub status: String,
    /// Root objects in its result (e.g. orders).
    pub root_object_count: u64,
    /// The inner query.
    pub query: String,
}

impl DevStore {
    /// Keeps `shop`'s bulk operations `RUNNING` (started ones included)
    /// until [`Self::release_bulk_operations`]: a long export, to see an
    /// app that stops in the middle of one.
    pub fn hold_bulk_operations(&self, shop: &str) {
        lock(&self.inner.bulk).held.insert(shop.to_owned());
    }

    /// Lets `shop`'s held bulk operations finish.
    pub fn release_bulk_operations(&self, shop: &str) {
        lock(&self.inner.bulk).held.remove(shop);
        self.inner.bulk_released.notify_waiters();
    }

    /// `shop`'s bulk operations, oldest first (expired ones included).
    pub fn bulk_operations(&self, shop: &str) -> Vec<BulkOperationSummary> {
        let state = lock(&self.inner.bulk);
        let mut ops: Vec<&Op> = state.ops.values().filter(|o| o.shop == shop).collect();
        ops.sort_by_key(|o| o.id);
        ops.into_iter()
            .map(|o| BulkOperationSummary {
                id: gid("BulkOperation", o.id).0,
                status: format!("{:?}", o.status).to_uppercase(),
                root_object_count: o.root_object_count,
                query: o.query.clone(),
            })
            .collect()
    }

    /// Waits while `shop`'s operations are held.
    async fn bulk_hold_lifted(&self, shop: &str) {
        loop {
            let released = self.inner.bulk_released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if !lock(&self.inner.bulk).held.contains(shop) {
                return;
            }
            released.await;
        }
    }
}

/// `BulkOperation`.
pub struct BulkOperationObject(Op);

#[Object(name = "BulkOperation")]
impl BulkOperationObject {
    async fn id(&self) -> ID {
        gid("BulkOperation", self.0.id)
    }
    async fn status(&self) -> BulkOperationStatus {
        self.0.status
    }
    async fn error_code(&self) -> Option<BulkOperationErrorCode> {
        self.0.error_code
    }
    async fn created_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.0.created_at)
    }
    async fn completed_at(&self) -> Option<DateTimeScalar> {
        self.0.completed_at.map(DateTimeScalar)
    }
    async fn object_count(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.object_count)
    }
    async fn root_object_count(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.root_object_count)
    }
    async fn file_size(&self) -> Option<UnsignedInt64> {
        self.0.file_size.map(UnsignedInt64)
    }
    async fn url(&self) -> Option<Url> {
        self.0.url.clone().map(Url)
    }
    async fn partial_data_url(&self) -> Option<Url> {
        None
    }
    async fn query(&self) -> &str {
        &self.0.query
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> BulkOperationType {
        BulkOperationType::Query
    }
}

/// `bulkOperation(id:)`: an operation of the requesting shop.
pub(crate) fn find(ctx: &Context<'_>, id: &ID) -> Result<Option<BulkOperationObject>> {
    let req = ctx.data::<BulkRequest>()?;
    let Some(n) = parse_gid("BulkOperation", id) else {
        return Ok(None);
    };
    let state = lock(&req.store.inner.bulk);
    Ok(state
        .ops
        .get(&n)
        .filter(|op| op.shop == req.shop)
        .cloned()
        .map(BulkOperationObject))
}

/// `currentBulkOperation(type:)`: the shop's newest operation of the type.
pub(crate) fn current(
    ctx: &Context<'_>,
    kind: BulkOperationType,
) -> Result<Option<BulkOperationObject>> {
    let req = ctx.data::<BulkRequest>()?;
    if kind == BulkOperationType::Mutation {
        return Ok(None);
    }
    let state = lock(&req.store.inner.bulk);
    Ok(state
        .ops
        .values()
        .filter(|op| op.shop == req.shop)
        .max_by_key(|op| op.id)
        .cloned()
        .map(BulkOperationObject))
}

/// The bulk operation mutations (part of the `Mutation` root).
#[derive(Default)]
pub struct BulkMutation;

#[Object]
impl BulkMutation {
    /// Starts a bulk query; poll `bulkOperation(id:)` for its result.
    async fn bulk_operation_run_query(
        &self,
        ctx: &Context<'_>,
        query: String,
        #[graphql(default = false)] group_objects: bool,
    ) -> Result<Option<BulkOperationRunQueryPayload>> {
        let req = ctx.data::<BulkRequest>()?.clone();
        let mut api = ctx.data::<ApiContext>()?.clone();
        // One consistent snapshot, at whole seconds like `createdAt`.
        api.now = api.now.trunc_subsecs(0);
        let plan = match Plan::new(&query) {
            Ok(plan) => plan,
            Err(message) => {
                return Ok(Some(user_error(
                    message,
                    BulkOperationUserErrorCode::Invalid,
                )));
            }
        };
        // Validate now (unknown fields are user errors, as on Shopify); a
        // missing scope fails the operation with ACCESS_DENIED instead.
        let dry = req
            .store
            .inner
            .schema
            .execute(async_graphql::Request::new(plan.page_query(0, None)).data(api.clone()))
            .await;
        let denied = access_denied(&dry.errors);
        if !denied && let Some(e) = dry.errors.first() {
            return Ok(Some(user_error(
                format!("Invalid bulk query: {}", e.message),
                BulkOperationUserErrorCode::Invalid,
            )));
        }
        let op = {
            let mut state = lock(&req.store.inner.bulk);
            let busy = state.ops.values().any(|op| {
                op.shop == req.shop
                    && matches!(
                        op.status,
                        BulkOperationStatus::Created
                            | BulkOperationStatus::Running
                            | BulkOperationStatus::Canceling
                    )
            });
            if busy {
                return Ok(Some(user_error(
                    "A bulk query operation for this app and shop is already in progress."
                        .to_string(),
                    BulkOperationUserErrorCode::OperationInProgress,
                )));
            }
            state.next_id += 1;
            let op = Op {
                id: 4_100_000_000 + state.next_id,
                shop: req.shop.clone(),
                status: if denied {
                    BulkOperationStatus::Failed
                } else {
                    BulkOperationStatus::Created
                },
                error_code: denied.then_some(BulkOperationErrorCode::AccessDenied),
                created_at: api.now,
                completed_at: denied.then_some(api.now),
                object_count: 0,
                root_object_count: 0,
                file_size: None,
                url: None,
                file: None,
                query,
            };
            state.ops.insert(op.id, op.clone());
            op
        };
        if denied {
            finished(&req.store, &op);
        } else {
            tokio::spawn(run(req, api, plan, op.id, group_objects));
        }
        Ok(Some(BulkOperationRunQueryPayload {
            bulk_operation: Some(BulkOperationObject(op)),
            user_errors: Vec::new(),
        }))
    }
}

fn access_denied(errors: &[async_graphql::ServerError]) -> bool {
    serde_json::to_value(errors).is_ok_and(|v| {
        v.as_array().is_some_and(|errors| {
            errors
                .iter()
                .any(|e| e.pointer("/extensions/code") == Some(&Json::from("ACCESS_DENIED")))
        })
    })
}

fn update(store: &DevStore, id: u64, f: impl FnOnce(&mut Op)) {
    if let Some(op) = lock(&store.inner.bulk).ops.get_mut(&id) {
        f(op);
    }
}

/// Runs operation `id` to its end.
async fn run(req: BulkRequest, api: ApiContext, plan: Plan, id: u64, group: bool) {
    update(&req.store, id, |op| {
        op.status = BulkOperationStatus::Running
    });
    req.store.bulk_hold_lifted(&req.shop).await;
    let result = produce(&req.store, id, &api, &plan, group).await;
    let now = Utc::now();
    store_result(&req, id, result, now);
    let op = lock(&req.store.inner.bulk).ops.get(&id).cloned();
    if let Some(op) = op {
        finished(&req.store, &op);
    }
}

/// Sends `bulk_operations/finish` for a finished operation to the shop's
/// subscriptions.
fn finished(store: &DevStore, op: &Op) {
    let status = match op.status {
        BulkOperationStatus::Canceled => "canceled",
        BulkOperationStatus::Canceling => "canceling",
        BulkOperationStatus::Completed => "completed",
        BulkOperationStatus::Created => "created",
        BulkOperationStatus::Expired => "expired",
        BulkOperationStatus::Failed => "failed",
        BulkOperationStatus::Running => "running",
    };
    let error_code = op.error_code.map(|c| match c {
        BulkOperationErrorCode::AccessDenied => "access_denied",
        BulkOperationErrorCode::InternalServerError => "internal_server_error",
        BulkOperationErrorCode::Timeout => "timeout",
    });
    let ds = store.dataset(&op.shop);
    let payload = serde_json::json!({
        "admin_graphql_api_id": gid("BulkOperation", op.id).0,
        "completed_at": op.completed_at.map(|t| crate::payloads::shop_time(&ds, t)),
        "created_at": crate::payloads::shop_time(&ds, op.created_at),
        "error_code": error_code,
        "status": status,
        "type": "query",
    });
    store.dispatch(
        &op.shop,
        vec![Event {
            topic: WebhookTopic::BulkOperationsFinish,
            payload,
        }],
    );
}

/// Stores the outcome of operation `id`.
fn store_result(
    req: &BulkRequest,
    id: u64,
    result: std::result::Result<Output, BulkOperationErrorCode>,
    now: DateTime<Utc>,
) {
    let mut state = lock(&req.store.inner.bulk);
    match result {
        Ok(out) => {
            // Older results of the shop expire.
            let mut expired = Vec::new();
            for op in state.ops.values_mut() {
                if op.shop == req.shop && op.id != id && op.file.is_some() {
                    op.status = BulkOperationStatus::Expired;
                    op.url = None;
                    expired.extend(op.file.take());
                }
            }
            for token in expired {
                state.files.remove(&token);
            }
            let token = random_token("");
            let size = out.bytes.len() as u64;
            let has_data = out.objects > 0;
            if has_data {
                state.files.insert(token.clone(), Bytes::from(out.bytes));
            }
            if let Some(op) = state.ops.get_mut(&id) {
                op.status = BulkOperationStatus::Completed;
                op.completed_at = Some(now);
                op.object_count = out.objects;
                op.root_object_count = out.roots;
                op.file_size = has_data.then_some(size);
                op.url = has_data.then(|| format!("{}/_bulk/{token}.jsonl", req.base_url));
                op.file = has_data.then_some(token);
            }
        }
        Err(code) => {
            if let Some(op) = state.ops.get_mut(&id) {
                op.status = BulkOperationStatus::Failed;
                op.error_code = Some(code);
                op.completed_at = Some(now);
            }
        }
    }
}

struct Output {
    bytes: Vec<u8>,
    objects: u64,
    roots: u64,
}

/// Pages through the root connection and writes the JSONL.
async fn produce(
    store: &DevStore,
    id: u64,
    api: &ApiContext,
    plan: &Plan,
    group: bool,
) -> std::result::Result<Output, BulkOperationErrorCode> {
    let mut w = Writer {
        out: Vec::new(),
        deferred: Vec::new(),
        group,
        objects: 0,
        roots: 0,
    };
    let mut after: Option<String> = None;
    loop {
        let response = store
            .inner
            .schema
            .execute(
                async_graphql::Request::new(plan.page_query(PAGE, after.as_deref()))
                    .data(api.clone()),
            )
            .await;
        if !response.errors.is_empty() {
            tracing::warn!(errors = ?response.errors, "bulk operation page failed");
            return Err(if access_denied(&response.errors) {
                BulkOperationErrorCode::AccessDenied
            } else {
                BulkOperationErrorCode::InternalServerError
            });
        }
        let data = response
            .data
            .into_json()
            .map_err(|_| BulkOperationErrorCode::InternalServerError)?;
        let Some(Json::Object(mut connection)) =
            data.get(&plan.root_key).cloned().filter(Json::is_object)
        else {
            break;
        };
        let page_info = connection.remove(PAGE_INFO_KEY).unwrap_or(Json::Null);
        for node in plan.root.nodes(&mut connection) {
            plan.root.emit(node, None, &mut w);
        }
        w.flush_deferred();
        // Progress, as Shopify reports it while running.
        update(store, id, |op| {
            op.object_count = w.objects;
            op.root_object_count = w.roots;
        });
        let next = page_info
            .get("hasNextPage")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        match page_info.get("endCursor").and_then(Json::as_str) {
            Some(cursor) if next => after = Some(cursor.to_string()),
            _ => break,
        }
        tokio::task::yield_now().await;
    }
    Ok(Output {
        bytes: w.out,
        objects: w.objects,
        roots: w.roots,
    })
}

struct Writer {
    out: Vec<u8>,
    deferred: Vec<u8>,
    group: bool,
    objects: u64,
    roots: u64,
}

impl Writer {
    fn line(&mut self, child: bool, object: &Map<String, Json>) {
        let buf = if child && !self.group {
            &mut self.deferred
        } else {
            &mut self.out
        };
        if serde_json::to_writer(&mut *buf, object).is_ok() {
            buf.push(b'\n');
            self.objects += 1;
            if !child {
                self.roots += 1;
            }
        }
    }

    fn flush_deferred(&mut self) {
        self.out.append(&mut self.deferred);
    }
}

/// `GET /_bulk/{token}.jsonl`: a finished operation's result.
pub(crate) async fn download(State(store): State<DevStore>, Path(file): Path<String>) -> Response {
    let bytes = file
        .strip_suffix(".jsonl")
        .and_then(|token| lock(&store.inner.bulk).files.get(token).cloned());
    match bytes {
        Some(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/jsonl")],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "The specified key does not exist.").into_response(),
    }
}

// ---------------------------------------------------------------- the plan

/// Where a connection's nodes are: `nodes` or `edges[].node`.
#[derive(Debug, Clone)]
enum NodesAt {
    Nodes(String),
    Edges { edges: String, node: String },
}

/// A connection of the query and the connections nested in its nodes.
#[derive(Debug, Clone)]
struct Conn {
    /// Response keys from the parent node down to the connection (plain
    /// objects on the way, e.g. `["customer", "orders"]`).
    path: Vec<String>,
    nodes_at: Vec<NodesAt>,
    children: Vec<Conn>,
}

impl Conn {
    /// Takes the nodes out of the connection object.
    fn nodes(&self, connection: &mut Map<String, Json>) -> Vec<Json> {
        let mut out = Vec::new();
        for at in &self.nodes_at {
            match at {
                NodesAt::Nodes(key) => {
                    if let Some(Json::Array(items)) = connection.remove(key) {
                        out.extend(items);
                    }
                }
                NodesAt::Edges { edges, node } => {
                    if let Some(Json::Array(items)) = connection.remove(edges) {
                        out.extend(
                            items
                                .into_iter()
                                .filter_map(|mut e| e.as_object_mut()?.remove(node)),
                        );
                    }
                }
            }
        }
        out
    }

    /// Writes `node` and, after it, the nodes of its nested connections.
    fn emit(&self, node: Json, parent: Option<&str>, w: &mut Writer) {
        let Json::Object(mut object) = node else {
            return;
        };
        let id = match object.remove(ID_KEY) {
            Some(Json::String(s)) => Some(s),
            _ => None,
        };
        let mut children = Vec::new();
        for child in &self.children {
            if let Some(Json::Object(mut connection)) = take_path(&mut object, &child.path) {
                children.push((child, child.nodes(&mut connection)));
            }
        }
        if let Some(parent) = parent {
            object.insert("__parentId".to_string(), Json::String(parent.to_string()));
        }
        w.line(parent.is_some(), &object);
        for (child, nodes) in children {
            for n in nodes {
                child.emit(n, id.as_deref(), w);
            }
        }
    }
}

/// Removes the value at `path` (keys through nested objects).
fn take_path(object: &mut Map<String, Json>, path: &[String]) -> Option<Json> {
    match path {
        [] => None,
        [last] => object.remove(last),
        [first, rest @ ..] => take_path(object.get_mut(first)?.as_object_mut()?, rest),
    }
}

/// A parsed bulk query: its one root connection and how to print a page
/// of it.
struct Plan {
    doc: ExecutableDocument,
    root_field: Field,
    root_key: String,
    root: Conn,
}

fn key(f: &Field) -> String {
    f.alias
        .as_ref()
        .map_or_else(|| f.name.node.to_string(), |a| a.node.to_string())
}

impl Plan {
    /// Parses and checks `query` against Shopify's bulk limits; the error
    /// is the user error's message.
    fn new(query: &str) -> std::result::Result<Plan, String> {
        let doc = async_graphql::parser::parse_query(query)
            .map_err(|e| format!("Invalid bulk query: {e}"))?;
        let op = match &doc.operations {
            DocumentOperations::Single(op) => op.node.clone(),
            DocumentOperations::Multiple(ops) if ops.len() == 1 => ops
                .values()
                .next()
                .map(|op| op.node.clone())
                .ok_or("Invalid bulk query: no operation")?,
            DocumentOperations::Multiple(_) => {
                return Err("Invalid bulk query: only one operation is allowed".to_string());
            }
        };
        if op.ty != OperationType::Query {
            return Err(
                "Invalid bulk query: bulk queries must be queries; use bulkOperationRunMutation for mutations"
                    .to_string(),
            );
        }
        if !op.variable_definitions.is_empty() {
            return Err("Invalid bulk query: variables are not supported".to_string());
        }
        let planner = Planner { doc: &doc };
        let top = planner.fields(&op.selection_set.node);
        let [root_field] = top.as_slice() else {
            return Err(
                "Invalid bulk query: the query must select exactly one top-level connection"
                    .to_string(),
            );
        };
        let root_field = (*root_field).clone();
        if !planner.is_connection(&root_field) {
            return Err("Bulk queries must contain at least one connection.".to_string());
        }
        let mut count = 0;
        let root = planner.conn(&root_field, vec![key(&root_field)], 1, &mut count)?;
        Ok(Plan {
            root_key: key(&root_field),
            root_field,
            root,
            doc,
        })
    }

    /// The query for one page of the root connection.
    fn page_query(&self, first: i32, after: Option<&str>) -> String {
        let planner = Planner { doc: &self.doc };
        let mut out = String::from("query { ");
        planner.print_field(
            &self.root_field,
            Mode::Normal,
            Some((first, after)),
            &mut out,
        );
        out.push_str(" }");
        out
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Ordinary selections.
    Normal,
    /// Inside a connection (`edges`, `nodes`, `pageInfo`).
    Connection { root: bool },
    /// Inside `edges` (`node`, `cursor`).
    Edges,
    /// A node's selection: the id is added.
    Node,
}

struct Planner<'a> {
    doc: &'a ExecutableDocument,
}

impl<'a> Planner<'a> {
    /// The fields of a selection set, fragments flattened.
    fn fields(&self, set: &'a SelectionSet) -> Vec<&'a Field> {
        let mut out = Vec::new();
        self.collect(set, &mut out, 0);
        out
    }

    fn collect(&self, set: &'a SelectionSet, out: &mut Vec<&'a Field>, depth: usize) {
        if depth > 16 {
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

    fn is_connection(&self, f: &Field) -> bool {
        self.fields(&f.selection_set.node)
            .iter()
            .any(|c| c.name.node == "edges" || c.name.node == "nodes")
    }

    /// The connection `f` at nesting `depth`, with its nested connections.
    fn conn(
        &self,
        f: &'a Field,
        path: Vec<String>,
        depth: usize,
        count: &mut usize,
    ) -> std::result::Result<Conn, String> {
        *count += 1;
        if *count > MAX_CONNECTIONS {
            return Err(format!(
                "Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."
            ));
        }
        if depth > MAX_DEPTH {
            return Err(format!(
                "Bulk queries cannot contain connections with a nesting depth greater than {MAX_DEPTH}."
            ));
        }
        let mut nodes_at = Vec::new();
        let mut children = Vec::new();
        for sub in self.fields(&f.selection_set.node) {
            match sub.name.node.as_str() {
                "nodes" => {
                    nodes_at.push(NodesAt::Nodes(key(sub)));
                    self.nested(
                        &sub.selection_set.node,
                        Vec::new(),
                        depth,
                        count,
                        &mut children,
                    )?;
                }
                "edges" => {
                    for node in self.fields(&sub.selection_set.node) {
                        if node.name.node == "node" {
                            nodes_at.push(NodesAt::Edges {
                                edges: key(sub),
                                node: key(node),
                            });
                            self.nested(
                                &node.selection_set.node,
                                Vec::new(),
                                depth,
                                count,
                                &mut children,
                            )?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(Conn {
            path,
            nodes_at,
            children,
        })
    }

    /// The connections inside a node's selection (through plain objects).
    fn nested(
        &self,
        set: &'a SelectionSet,
        prefix: Vec<String>,
        depth: usize,
        count: &mut usize,
        out: &mut Vec<Conn>,
    ) -> std::result::Result<(), String> {
        for f in self.fields(set) {
            if f.selection_set.node.items.is_empty() {
                continue;
            }
            let mut path = prefix.clone();
            path.push(key(f));
            if self.is_connection(f) {
                out.push(self.conn(f, path, depth + 1, count)?);
            } else {
                self.nested(&f.selection_set.node, path, depth, count, out)?;
            }
        }
        Ok(())
    }

    /// Prints `f`; `page` is `(first, after)` for the root connection.
    fn print_field(
        &self,
        f: &Field,
        mode: Mode,
        page: Option<(i32, Option<&str>)>,
        out: &mut String,
    ) {
        if let Some(alias) = &f.alias {
            out.push_str(alias.node.as_str());
            out.push_str(": ");
        }
        out.push_str(f.name.node.as_str());
        let connection = mode != Mode::Connection { root: true }
            && mode != Mode::Connection { root: false }
            && mode != Mode::Edges
            && self.is_connection(f);
        let mut args: Vec<String> = f
            .arguments
            .iter()
            .filter(|(name, _)| {
                !connection || !matches!(name.node.as_str(), "first" | "last" | "after" | "before")
            })
            .map(|(name, value)| format!("{}: {}", name.node, value.node))
            .collect();
        if connection {
            match page {
                Some((first, after)) => {
                    args.push(format!("first: {first}"));
                    if let Some(after) = after {
                        args.push(format!(
                            "after: {}",
                            serde_json::to_string(after).unwrap_or_default()
                        ));
                    }
                }
                None => args.push(format!("first: {PAGE}")),
            }
        }
        if !args.is_empty() {
            out.push('(');
            out.push_str(&args.join(", "));
            out.push(')');
        }
        for d in &f.directives {
            out.push_str(" @");
            out.push_str(d.node.name.node.as_str());
            if !d.node.arguments.is_empty() {
                let a: Vec<String> = d
                    .node
                    .arguments
                    .iter()
                    .map(|(n, v)| format!("{}: {}", n.node, v.node))
                    .collect();
                out.push('(');
                out.push_str(&a.join(", "));
                out.push(')');
            }
        }
        if f.selection_set.node.items.is_empty() {
            return;
        }
        let inner = if connection {
            Mode::Connection {
                root: page.is_some(),
            }
        } else {
            match (mode, f.name.node.as_str()) {
                (Mode::Connection { .. }, "nodes") => Mode::Node,
                (Mode::Connection { .. }, "edges") => Mode::Edges,
                (Mode::Edges, "node") => Mode::Node,
                _ => Mode::Normal,
            }
        };
        out.push_str(" { ");
        self.print_set(&f.selection_set.node, inner, out, 0);
        match inner {
            Mode::Node => {
                out.push_str(ID_KEY);
                out.push_str(": id ");
            }
            Mode::Connection { root: true } => {
                out.push_str(PAGE_INFO_KEY);
                out.push_str(": pageInfo { hasNextPage endCursor } ");
            }
            _ => {}
        }
        out.push('}');
    }

    fn print_set(&self, set: &SelectionSet, mode: Mode, out: &mut String, depth: usize) {
        if depth > 16 {
            return;
        }
        // In a node, the node's own fields are ordinary selections.
        let field_mode = if mode == Mode::Node {
            Mode::Normal
        } else {
            mode
        };
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    self.print_field(&f.node, field_mode, None, out);
                    out.push(' ');
                }
                Selection::FragmentSpread(s) => {
                    if let Some(frag) = self.doc.fragments.get(&s.node.fragment_name.node) {
                        out.push_str("... on ");
                        out.push_str(frag.node.type_condition.node.on.node.as_str());
                        out.push_str(" { ");
                        self.print_set(&frag.node.selection_set.node, field_mode, out, depth + 1);
                        out.push_str("} ");
                    }
                }
                Selection::InlineFragment(i) => {
                    out.push_str("... ");
                    if let Some(tc) = &i.node.type_condition {
                        out.push_str("on ");
                        out.push_str(tc.node.on.node.as_str());
                        out.push(' ');
                    }
                    out.push_str("{ ");
                    self.print_set(&i.node.selection_set.node, field_mode, out, depth + 1);
                    out.push_str("} ");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_and_pages() {
        let plan = Plan::new(
            "{ orders(query: \"created_at:>=2026-01-01\") { edges { node { id name lineItems { nodes { title } } refunds { id } } } } }",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.root_key, "orders");
        assert_eq!(plan.root.children.len(), 1);
        assert_eq!(plan.root.children[0].path, vec!["lineItems".to_string()]);
        let q = plan.page_query(250, Some("abc"));
        assert!(
            q.contains("orders(query: \"created_at:>=2026-01-01\", first: 250, after: \"abc\")"),
            "{q}"
        );
        assert!(q.contains("lineItems(first: 250)"), "{q}");
        assert!(q.contains("bulkId_: id"), "{q}");
        assert!(
            q.contains("bulkPageInfo_: pageInfo { hasNextPage endCursor }"),
            "{q}"
        );
        assert!(async_graphql::parser::parse_query(&q).is_ok(), "{q}");
    }

    #[test]
    fn limits() {
        assert!(Plan::new("{ shop { name } }").is_err());
        assert!(Plan::new("mutation { x }").is_err());
        assert!(Plan::new("{ orders { nodes { id } } products { nodes { id } } }").is_err());
        assert!(Plan::new("not graphql").is_err());
        let deep = "{ customers { nodes { orders { nodes { lineItems { nodes { id } } } } } } }";
        assert!(Plan::new(deep).err().unwrap_or_default().contains("depth"));
        let two = "{ customers { nodes { orders { nodes { id } } } } }";
        assert!(Plan::new(two).is_ok());
    }
}
