//! The seam for server-side tools: one kind-neutral interface that the agentic
//! loop, the catalog, the assembler and replay use, whatever the tool type.
//!
//! A tool type (MCP today; web_search, file_search and code_interpreter next)
//! is a [`ToolType`], registered once with the engine: it picks its
//! declarations out of a request's `tools` and knows the model's view of its
//! stored items. For one response it yields a [`ServerTool`]: what the model is
//! offered ([`Offer`]), the work before the first turn (MCP lists its servers'
//! tools), calls the new input approved, the item and events a call produces,
//! how a call runs, and the annotations its result carries. The loop and the
//! assembler never name a tool type: a new one is an implementation of these
//! two traits plus its wire types in `api`.

use std::sync::Arc;

use antwort_api::{ApiError, EventData, FunctionTool, Item, Tool, ToolChoice};
use async_trait::async_trait;

use crate::model::ModelToolChoice;

/// A server-side tool type, engine-wide.
pub trait ToolType: Send + Sync {
    /// The type as requests name it (`mcp`, `web_search`).
    fn kind(&self) -> &'static str;

    /// This type's declarations in a request's `tools`, checked (a bad one is a
    /// 400 naming its position); `None` when the request declares none. `scope`
    /// is whom the request acts for: state a tool keeps beyond one response
    /// (MCP sessions, cached tool lists) is kept apart per tenant.
    fn declare(
        &self,
        tools: &[Tool],
        scope: &crate::store::Scope,
    ) -> Result<Option<Box<dyn ServerTool>>, ApiError>;

    /// Checks this type's items in the input of a request that declares none
    /// of its tools (an approval for a server the request does not declare
    /// cannot run, say).
    fn check_undeclared(&self, _input: &[Item], _replayed: usize) -> Result<(), ApiError> {
        Ok(())
    }

    /// Whether `item` is one of this type's items, which [`ToolType::replay`]
    /// turns into the model's view.
    fn owns(&self, item: &Item) -> bool;

    /// The model's view of one of this type's stored items; `history` is the
    /// whole conversation it is part of (an approval request is replayed by
    /// what answered it).
    fn replay(&self, item: Item, history: &[Item]) -> Replay;
}

/// What a backend is sent for a server-side tool's item.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "made and consumed at once for each replayed item; boxing would only add allocations"
)]
pub enum Replay {
    /// A call of the model-facing tool name and its output: the output waits
    /// until the run of calls it belongs to ends, so that calls made together
    /// reach the backend as one assistant turn.
    Call { call: Item, output: Item },
    /// Nothing, and the run of calls goes on (a tool listing, a pending request).
    Hidden,
    /// Nothing, but the run of calls ends here (the client's answer to a request).
    Boundary,
}

/// One tool type as one response declared it.
#[async_trait]
pub trait ServerTool: Send + Sync {
    fn kind(&self) -> &'static str;

    /// Checks a `tool_choice` that names this type (an `allowed_tools` entry of
    /// it, or `{"type": "<kind>"}` for a hosted type, included). `Ok(false)`
    /// when the choice is not about this type.
    fn check_choice(&self, choice: &ToolChoice) -> Result<bool, ApiError>;

    /// Learns what the stored context already settled (MCP: tool lists from
    /// earlier listings) and returns the calls the request's own input approved
    /// (`replayed` items of `input` come from storage). A bad approval is a 400.
    fn read_context(
        &mut self,
        input: &[Item],
        replayed: usize,
    ) -> Result<Vec<ApprovedCall>, ApiError>;

    /// Whether there is work before the first model turn.
    fn needs_preparation(&self) -> bool {
        false
    }

    /// That work (MCP: listing the tools of servers not listed yet), its items
    /// emitted through `items`. Returns what the model should be told (a server
    /// that is unavailable, say).
    async fn prepare(&mut self, _items: &mut dyn ItemEmitter, _concurrency: usize) -> Vec<String> {
        Vec::new()
    }

    /// What the model is offered under `choice`, each function with its route.
    fn offers(&self, choice: &ToolChoice) -> Vec<Offer>;

    /// The model's tool choice when `choice` forces this type (its offered
    /// names given); a forced choice offers this type's functions only.
    fn forced_choice(&self, choice: &ToolChoice, offered: &[&Offer]) -> Option<ModelToolChoice>;

    /// A new call's item id (of the approval request, when `approval`).
    fn new_item_id(&self, approval: bool) -> String;

    /// The item a call starts as, before its arguments, with the events that
    /// follow its `output_item.added`; `approval` when the client must approve
    /// it first (the item then asks for that instead).
    fn start(&self, call: &CallStart<'_>) -> (Item, Vec<EventData>);

    /// The event for a piece of a call's arguments (`None`: shown only whole).
    fn argument_delta(&self, call: &CallStart<'_>, delta: String) -> Option<EventData>;

    /// The event when a call's arguments are whole, and the item of a call that
    /// waits for approval (it is finished as it stands: `None` for one that runs).
    fn arguments_done(
        &self,
        call: &CallStart<'_>,
        arguments: &str,
    ) -> (Option<EventData>, Option<Item>);

    /// Runs a call: the events of its end and its finished item.
    async fn run(&self, call: &ServerCall) -> Finished;

    /// The finished item of a call that will not run (a limit, a cut turn).
    fn skip(&self, call: &ServerCall, reason: &str) -> Item;
}

/// A function the model is offered, and where a call of it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub function: FunctionTool,
    /// What this type knows the function as: for MCP the server label and the
    /// tool's own name.
    pub target: Target,
    /// Whether the client must approve a call before it runs.
    pub approval: bool,
}

/// What a route calls, in the terms of its tool type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The server or provider (an MCP `server_label`).
    pub label: String,
    /// The tool's name there.
    pub name: String,
}

/// Where a call of a model-facing name goes: the tool set of this response
/// that runs it, and its target there.
#[derive(Clone)]
pub struct Route {
    pub tool: Arc<dyn ServerTool>,
    pub target: Target,
    pub approval: bool,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("kind", &self.tool.kind())
            .field("target", &self.target)
            .field("approval", &self.approval)
            .finish()
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.tool.kind() == other.tool.kind()
            && self.target == other.target
            && self.approval == other.approval
    }
}

/// A call as its item is added.
pub struct CallStart<'a> {
    pub item_id: &'a str,
    pub output_index: usize,
    pub target: &'a Target,
    pub approval: bool,
    /// For a call run after the client approved it: the request it answers.
    pub approval_request_id: Option<&'a str>,
}

/// A server-side call whose item is open until its result is in.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerCall {
    pub output_index: usize,
    pub item_id: String,
    pub route: Route,
    pub arguments: String,
    pub approval_request_id: Option<String>,
}

/// A call the client approved, to run before the first turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedCall {
    pub approval_request_id: String,
    pub target: Target,
    pub arguments: String,
}

/// How a call ended: the events before its `output_item.done`, its finished
/// item, and the annotations its result carries for the answer that cites it
/// (web search's `url_citation`s, file search's `file_citation`s).
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub events: Vec<EventData>,
    pub item: Item,
    pub annotations: Vec<serde_json::Value>,
}

/// Where work outside a model turn puts its items (implemented by the
/// assembler with the stream's sink).
pub trait ItemEmitter: Send {
    /// Adds an item in progress, with the events that follow its
    /// `output_item.added`; returns its output index.
    fn open(&mut self, item: Item, events: Vec<EventData>) -> usize;
    /// An event about an item already added.
    fn emit(&mut self, event: EventData);
    /// Finishes the item at `output_index` with `events` and then
    /// `output_item.done`, and sends what is queued.
    fn finish(&mut self, output_index: usize, events: Vec<EventData>, item: Item);
    /// Sends what is queued to the client.
    fn flush(&mut self);
}
