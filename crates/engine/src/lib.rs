//! The response lifecycle: a create request becomes a plan, the plan a model turn,
//! and the backend's model events one stream of response events.
//!
//! The engine does no I/O of its own: it drives a [`Backend`] and hands back a
//! [`ResponseStream`]. Every view of a response (the JSON body, SSE, and later
//! storage and replay) is built from that one stream, so there is never a second code
//! path that must agree with the first.

pub mod agent;
pub mod assembler;
pub mod catalog;
pub mod client_tools;
pub mod clock;
pub mod compaction;
mod context;
pub mod conversations;
mod counting;
pub mod error;
pub mod events;
pub mod ids;
mod inflight;
pub mod mcp;
pub mod model;
pub mod prepare;
pub mod registry;
pub mod replay;
pub mod sealed;
mod started;
pub mod store;
mod stored;
pub mod stream;
pub mod tasks;
pub mod tokens;
pub mod tool;
mod truncation;

use std::sync::Arc;

use antwort_api::{ApiError, CreateResponseRequest, Item, Model};

pub use assembler::{Assembler, ReasoningEventNames};
pub use inflight::Cancel;
pub use mcp::McpConnector;
pub use model::{
    Backend, BackendError, BackendErrorKind, CircuitState, FinishReason, ModelEvent, ModelRequest,
    ModelStream, ModelToolChoice,
};
pub use registry::{
    BackendReadiness, Backends, Candidate, Models, NamedBackend, Route, ServedModel, Serving,
};
pub use started::{Events, Started};
pub use store::{
    ApprovalStore, ConversationStore, KeyStore, RateWindowStore, Reach, ResponseStore, Scope,
    StoreHealth, StoredKey, Stores,
};
pub use stream::ResponseStream;
pub use tokens::{TokenCounter, Tokenizer};
pub use tool::{ServerTool, ToolType};

/// Told a response's usage once it concludes (the caller's rate limits).
pub type UsageMeter = Arc<dyn Fn(&antwort_api::Usage) + Send + Sync>;

/// What a client says about itself, where that changes what it is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientHints {
    /// The client is one of the official OpenAI SDKs (it sent `x-stainless-*`
    /// headers), whose stream helpers know only OpenAI's event names.
    pub openai_sdk: bool,
}

/// The context an unstored response left where its client keeps a connection
/// (a WebSocket): its whole chain, its input and its output, so that the next
/// turn's `previous_response_id` continues from memory instead of the store.
#[derive(Debug, Clone)]
pub struct Prior {
    pub response_id: String,
    pub items: Arc<Vec<Item>>,
}

/// How a create runs, past its request body.
#[derive(Clone, Default)]
pub struct CreateOptions {
    pub client: ClientHints,
    /// Told the usage once the response concludes, read by a client or not.
    pub metering: Option<UsageMeter>,
    /// Used instead of the store when the request continues from it.
    pub prior: Option<Prior>,
    /// Hand back the context the turn ran on ([`Started::context`]).
    pub keep_context: bool,
    /// Stops the response from outside; it then ends `cancelled`.
    pub cancel: Option<Cancel>,
    /// Generate nothing: the response starts and completes empty (a
    /// WebSocket `generate: false`, the warm-up Codex CLI sends).
    pub warm_up: bool,
}

/// Settings of the engine itself.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Used when a request names no model.
    pub default_model: Option<String>,
    /// Names of the reasoning text events.
    pub reasoning_event_names: ReasoningEventNames,
    /// When set (`reasoning_events: auto`), clients that identify as the OpenAI
    /// SDKs get OpenAI's names whatever `reasoning_event_names` says.
    pub openai_names_for_openai_sdks: bool,
    /// Fill a reasoning item's summary from its text for every request, not only
    /// for those that ask for `reasoning.summary` (the Vercel AI SDK asks only
    /// for OpenAI model ids, and shows reasoning only from summaries).
    pub always_summarize_reasoning: bool,
    /// Context window, in tokens, of models not listed in `model_context_windows`.
    pub context_window: u64,
    pub model_context_windows: std::collections::HashMap<String, u64>,
    /// Model turns one response may take in the agentic loop.
    pub max_turns: u32,
    /// Server-side tool calls of one turn run at once (when parallel calls are allowed).
    pub tool_concurrency: usize,
    /// Seals reasoning for clients that keep it (`reasoning.encrypted_content`);
    /// a random key when none is configured.
    pub reasoning_seal: Arc<sealed::ReasoningSeal>,
}

/// Large enough for current open models (Llama 3.x, Qwen 3 with YaRN, Mistral);
/// smaller models are set per model in the configuration.
pub const DEFAULT_CONTEXT_WINDOW: u64 = 131_072;

/// As in the Go antwort's `engine.max_turns`.
pub const DEFAULT_MAX_TURNS: u32 = 10;

pub const DEFAULT_TOOL_CONCURRENCY: usize = 8;

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            default_model: None,
            reasoning_event_names: ReasoningEventNames::default(),
            openai_names_for_openai_sdks: true,
            always_summarize_reasoning: false,
            context_window: DEFAULT_CONTEXT_WINDOW,
            model_context_windows: std::collections::HashMap::new(),
            max_turns: DEFAULT_MAX_TURNS,
            tool_concurrency: DEFAULT_TOOL_CONCURRENCY,
            reasoning_seal: Arc::new(sealed::ReasoningSeal::random()),
        }
    }
}

impl EngineConfig {
    pub fn context_window(&self, model: &str) -> u64 {
        self.model_context_windows
            .get(model)
            .copied()
            .unwrap_or(self.context_window)
    }
}

/// A turn ready for the backend: the plan, with the full context as its input, and
/// the request's own input items (with ids), which are what gets stored.
struct Turn {
    plan: prepare::Plan,
    own_input: Vec<Item>,
    /// Calls the new input approved (each with the index of its tool set), to
    /// run before the first model turn.
    approved: Vec<(usize, tool::ApprovedCall)>,
    /// The server-side tools, prepared or not.
    tools: agent::Tools,
    /// Where the model's calls go, as far as the tools are known.
    routes: catalog::Routes,
    /// The chain and the new input, as items, when asked for.
    context: Option<Vec<Item>>,
}

#[derive(Clone)]
pub struct Engine {
    backends: Backends,
    stores: Stores,
    /// The server-side tool types: every response's declarations are theirs,
    /// and so is the model's view of their stored items.
    tool_types: Arc<Vec<Arc<dyn ToolType>>>,
    config: Arc<EngineConfig>,
    /// Detached work (stored responses whose client may be gone), awaited on shutdown.
    tasks: tokio_util::task::TaskTracker,
    /// The event logs detached responses append to and their clients follow.
    log: Arc<dyn events::EventLog>,
    /// The responses generating now, for delete and shutdown to stop.
    inflight: Arc<inflight::Inflight>,
}

impl Engine {
    pub fn new(backends: Backends, stores: Stores, config: EngineConfig) -> Self {
        Self {
            backends,
            stores,
            tool_types: Arc::new(vec![Arc::new(mcp::McpType::new(Arc::new(mcp::NoMcp)))]),
            config: Arc::new(config),
            tasks: tokio_util::task::TaskTracker::new(),
            log: Arc::new(events::MemoryEventLog::default()),
            inflight: Arc::new(inflight::Inflight::default()),
        }
    }

    /// Appends detached responses' events to `log` instead of the in-process one.
    pub fn with_event_log(mut self, log: Arc<dyn events::EventLog>) -> Self {
        self.log = log;
        self
    }

    /// The live events of response `id` after sequence number `after`, from
    /// its event log; `None` when it is not running here (or those events are
    /// gone). The seam for resuming a stream (`starting_after`).
    pub fn follow(&self, scope: &Scope, id: &str, after: Option<u64>) -> Option<Events> {
        self.log.follow(scope, id, after).map(Events::Detached)
    }

    /// Runs MCP tools through `mcp` (without it, every MCP server is unknown).
    pub fn with_mcp(self, mcp: Arc<dyn McpConnector>) -> Self {
        self.with_tool_type(Arc::new(mcp::McpType::new(mcp)))
    }

    /// Adds a server-side tool type, replacing one of the same kind.
    pub fn with_tool_type(mut self, kind: Arc<dyn ToolType>) -> Self {
        let mut types: Vec<Arc<dyn ToolType>> = self
            .tool_types
            .iter()
            .filter(|known| known.kind() != kind.kind())
            .cloned()
            .collect();
        types.push(kind);
        self.tool_types = Arc::new(types);
        self
    }

    /// Waits until every detached response has finished and been saved. Called on
    /// shutdown, after the server stopped taking requests.
    pub async fn drain(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Stops every response still generating (the drain time is up): each ends
    /// `failed` with the output it had and its terminal event, and the stored
    /// ones are saved. [`Engine::drain`] then returns once those saves are done.
    pub fn stop_all(&self) {
        let stored = self.inflight.stored_in_progress();
        tracing::warn!(
            stored_in_progress = stored,
            "stopping the responses still in progress; they end failed with what they have"
        );
        self.inflight.shut_down();
    }

    /// Plans a turn and assembles its context: the stored chain or conversation,
    /// resolved references, then the new input. With `fit` the turn is also fitted
    /// into the model's context window.
    async fn prepare_turn(
        &self,
        scope: &Scope,
        request: CreateResponseRequest,
        fit: bool,
        options: &CreateOptions,
    ) -> Result<Turn, ApiError> {
        let mut plan = prepare::plan(
            request,
            self.config.default_model.as_deref(),
            ids::response_id(),
            clock::unix_now(),
            &self.tool_types,
            scope,
        )?;
        // A model no backend serves is the answer before any other work (tool
        // listings, store reads, counting against some default window).
        self.backend_for(&plan.model_request.model).await?;
        let mut own_input = std::mem::take(&mut plan.model_request.input);
        context::resolve_references(&*self.stores.responses, scope, &mut own_input).await?;
        sealed::open_input(&self.config.reasoning_seal, &scope.tenant, &mut own_input);
        // The ids the input holds, the referenced items' among them: a
        // conversation must not get an item twice, nor a response two of one id.
        let client_ids: Vec<(usize, String)> = own_input
            .iter()
            .enumerate()
            .filter_map(|(index, item)| Some((index, item.id()?.to_owned())))
            .collect();
        let mut seen = std::collections::HashSet::with_capacity(client_ids.len());
        if let Some((index, id)) = client_ids.iter().find(|(_, id)| !seen.insert(id.as_str())) {
            return Err(antwort_api::duplicate_item(
                &format!("input[{index}].id"),
                id,
            ));
        }
        ids::assign_item_ids(&mut own_input);
        let prior = options
            .prior
            .as_ref()
            .filter(|prior| plan.previous_response_id.as_deref() == Some(&prior.response_id));
        let mut input = match (&plan.previous_response_id, &plan.conversation_id) {
            (Some(previous), _) => match prior {
                Some(prior) => prior.items.to_vec(),
                None => context::load_chain(&*self.stores.responses, scope, previous).await?,
            },
            (None, Some(conversation)) => {
                let items =
                    context::load_conversation(&*self.stores.conversations, scope, conversation)
                        .await?;
                conversations::check_new_ids(&items, &client_ids, "input")?;
                items
            }
            (None, None) => Vec::new(),
        };
        let replayed = input.len();
        input.extend(own_input.iter().cloned());
        // What is stored is the form the OpenAI API returns; the model gets the
        // items as sent. Unkept input is never read back, so it is left as it is.
        if plan.response.store || plan.conversation_id.is_some() {
            // A stored turn that continues an unstored one keeps the whole
            // context: nothing of its chain is in the store to load later.
            if prior.is_some() {
                own_input = input.clone();
            }
            antwort_api::normalize_items(&mut own_input);
        }
        context::check_call_outputs(&input, replayed)?;
        let mut approved = Vec::new();
        for (index, tool) in plan.tools.iter_mut().enumerate() {
            let calls = tool.read_context(&input, replayed)?;
            approved.extend(calls.into_iter().map(|call| (index, call)));
        }
        for kind in self.tool_types.iter() {
            if !plan.tools.iter().any(|tool| tool.kind() == kind.kind()) {
                kind.check_undeclared(&input, replayed)?;
            }
        }
        // The plan offers the client's functions. When the request's
        // server-side tools need no preparation (MCP tools all known from the
        // context), they join now: the model sees them from the first turn and
        // the fit below counts them. Otherwise the loop builds the catalog once
        // they are prepared.
        let mut routes = catalog::Routes::default();
        let declared = std::mem::take(&mut plan.tools);
        let tools = if declared.iter().any(|tool| tool.needs_preparation()) {
            agent::Tools::Unprepared(declared)
        } else {
            let ready: Vec<Arc<dyn ServerTool>> = declared.into_iter().map(Arc::from).collect();
            if !ready.is_empty() {
                let catalog = catalog::Catalog::build(&plan.functions, &ready, &plan.tool_choice);
                plan.model_request.tools = catalog.offered;
                plan.model_request.tool_choice = catalog.tool_choice;
                routes = catalog.routes;
            }
            agent::Tools::Ready(ready)
        };
        let context = options.keep_context.then(|| input.clone());
        plan.model_request.input = replay::model_view(input, &self.tool_types);
        if fit {
            self.fit_to_window(&mut plan.model_request, plan.response.truncation)
                .await?;
        }
        Ok(Turn {
            plan,
            own_input,
            approved,
            tools,
            routes,
            context,
        })
    }

    /// Validates the request and starts generation, for a client that said
    /// nothing about itself. See [`Engine::create_for`].
    pub async fn create(
        &self,
        scope: &Scope,
        request: CreateResponseRequest,
    ) -> Result<Started, ApiError> {
        self.create_for(scope, request, ClientHints::default(), None)
            .await
    }

    /// Validates the request and starts generation. Errors returned here happened
    /// before the first byte and are the client's HTTP status; later failures arrive
    /// as events in the stream. `metering` hears the usage when the response
    /// concludes, read by a client or not.
    pub async fn create_for(
        &self,
        scope: &Scope,
        request: CreateResponseRequest,
        client: ClientHints,
        metering: Option<UsageMeter>,
    ) -> Result<Started, ApiError> {
        let options = CreateOptions {
            client,
            metering,
            ..CreateOptions::default()
        };
        self.create_with(scope, request, options).await
    }

    /// [`Engine::create_for`], with everything a connection that outlives
    /// one response adds ([`CreateOptions`]).
    pub async fn create_with(
        &self,
        scope: &Scope,
        request: CreateResponseRequest,
        options: CreateOptions,
    ) -> Result<Started, ApiError> {
        let Turn {
            plan,
            own_input,
            approved,
            tools,
            routes,
            context,
        } = self.prepare_turn(scope, request, true, &options).await?;
        let CreateOptions {
            client,
            metering,
            cancel,
            warm_up,
            ..
        } = options;
        if !plan.skipped_tools.is_empty() {
            tracing::warn!(
                skipped_tools = ?plan.skipped_tools,
                "hosted tools requested that this deployment does not run; not offered to the model"
            );
        }
        let backend = self.backend_for(&plan.model_request.model).await?;
        if warm_up && !approved.is_empty() {
            // Its calls would be claimed and never run.
            return Err(ApiError::invalid(
                "generate",
                "a turn with `generate: false` cannot answer approval requests; send the approvals in a turn that generates",
            ));
        }
        // An approval runs its call once: a second approval of the same request
        // (a fork of the chain, history sent twice) is refused here.
        for (_, call) in &approved {
            let id = &call.approval_request_id;
            let claimed = self
                .stores
                .approvals
                .claim_approval(scope, id, &plan.response.id)
                .await
                .map_err(crate::error::store_error)?;
            if !claimed {
                return Err(ApiError::invalid(
                    "input",
                    format!("approval request '{id}' has already been answered"),
                ));
            }
        }
        // Without tool work before the first turn, the backend is asked before
        // the response starts, so that its failure is still the client's HTTP
        // status.
        let ask_first = !warm_up && approved.is_empty() && matches!(tools, agent::Tools::Ready(_));
        // Work whose result is kept (the response, or the conversation it joins)
        // finishes without its client.
        let store = plan.response.store || plan.conversation_id.is_some();
        let persist = store.then(|| stream::Persist {
            store: self.stores.responses.clone(),
            scope: scope.clone(),
            input: own_input,
            conversation_id: plan.conversation_id.clone(),
        });
        let response_id = plan.response.id.clone();
        let reasoning_names = if client.openai_sdk && self.config.openai_names_for_openai_sdks {
            ReasoningEventNames::OpenAi
        } else {
            self.config.reasoning_event_names
        };
        let summarize = self.config.always_summarize_reasoning
            || plan
                .response
                .reasoning
                .as_ref()
                .is_some_and(|reasoning| reasoning.summary.is_some());
        let sealing = plan
            .model_request
            .include
            .contains(&antwort_api::Include::ReasoningEncryptedContent)
            .then(|| (self.config.reasoning_seal.clone(), scope.tenant.clone()));
        let limits = agent::Limits {
            max_tool_calls: plan.response.max_tool_calls,
            max_turns: self.config.max_turns,
            concurrency: self.config.tool_concurrency,
            context_window: self.context_window(&plan.model_request.model),
            tokenizer: self.backends.tokenizer(&plan.model_request.model),
        };
        let mut run = Box::new(agent::Run {
            assembler: Assembler::new(plan.response, plan.logprobs, reasoning_names)
                .summarize_reasoning(summarize)
                .with_client_tools(plan.client_tools)
                .with_sealing(sealing),
            request: plan.model_request,
            first: None,
            backend,
            types: self.tool_types.clone(),
            functions: plan.functions,
            tools,
            tool_choice: plan.tool_choice,
            routes,
            approved,
            limits,
            persist,
            running: Some(self.inflight.register(scope, &response_id, store, cancel)),
            metering,
        });
        let skipped_tools = plan.skipped_tools;
        if !store {
            if ask_first {
                run.first =
                    Some(first_answer(&run.backend, &run.request, run.running.as_ref()).await?);
            }
            let stream = ResponseStream::new(response_id, |sink| drive(run, sink, warm_up));
            return Ok(Started {
                events: Events::Attached(Box::new(stream)),
                skipped_tools,
                context,
            });
        }
        // A stored response runs on a task of its own from here, the wait for
        // the backend's first answer included: the client may leave at any
        // point and the work still finishes and is saved.
        let (answer, started) = tokio::sync::oneshot::channel();
        let log = self.log.clone();
        let scope = scope.clone();
        tasks::spawn_tracked(&self.tasks, async move {
            if ask_first {
                match first_answer(&run.backend, &run.request, run.running.as_ref()).await {
                    Ok(first) => run.first = Some(first),
                    Err(failure) => {
                        let _ = answer.send(Err(failure));
                        return;
                    }
                }
            }
            let stream = ResponseStream::new(response_id, |sink| drive(run, sink, warm_up));
            let (follower, drive) = stream.publish(&*log, &scope);
            // A client gone by now leaves the follower unread; the work goes on.
            let _ = answer.send(Ok(follower));
            drive.await;
        });
        let events = started.await.unwrap_or_else(|_| {
            Err(ApiError::new(
                antwort_api::ErrorCode::InternalError,
                "the response's task ended before it started",
            ))
        })?;
        Ok(Started {
            events: Events::Detached(events),
            skipped_tools,
            context,
        })
    }

    /// The backends that serve `model`, in the order they are tried.
    pub(crate) async fn backend_for(&self, model: &str) -> Result<Route, ApiError> {
        match self.backends.route_or_refresh(model).await {
            Some(route) => Ok(route),
            None => Err(model_not_found(model)),
        }
    }

    /// The context window of `model`: `engine.context_windows`, else what
    /// its backend's configuration or model list says, else the default.
    fn context_window(&self, model: &str) -> u64 {
        if let Some(window) = self.config.model_context_windows.get(model) {
            return *window;
        }
        self.backends
            .context_window(model)
            .unwrap_or(self.config.context_window)
    }

    /// Every model served by name, with the backend that serves it.
    pub async fn list_models(&self) -> Result<Vec<Model>, ApiError> {
        self.backends
            .list_models()
            .await
            .map_err(error::backend_error)
    }

    /// The model a client names (an id or an alias), as `GET /v1/models/{id}`
    /// shows it.
    pub async fn model(&self, id: &str) -> Result<Model, ApiError> {
        self.list_models()
            .await?
            .into_iter()
            .find(|model| model.id == id)
            .ok_or_else(|| model_not_found(id))
    }

    /// Asks every backend that discovers its models for them again.
    pub async fn refresh_models(&self) {
        self.backends.refresh().await;
    }

    /// Whether any backend's models are discovered (and want refreshing).
    pub fn discovers_models(&self) -> bool {
        self.backends.discovers()
    }

    /// Checks the store and the backends at once, each within `within`. What
    /// failed, and why, goes to the log; the answer says only which part is
    /// down (the store, which backend by its configured name, its circuit),
    /// never why, since readiness is asked without credentials.
    pub async fn readiness(&self, within: std::time::Duration) -> Readiness {
        let store = async {
            match tokio::time::timeout(within, self.stores.health.check_ready()).await {
                Ok(Ok(())) => true,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "readiness: the store is unavailable");
                    false
                }
                Err(_) => {
                    tracing::warn!(?within, "readiness: the store did not answer in time");
                    false
                }
            }
        };
        let (store, backends) = futures::join!(store, self.backends.readiness(within));
        Readiness { store, backends }
    }
}

fn model_not_found(model: &str) -> ApiError {
    ApiError::new(
        antwort_api::ErrorCode::ModelNotFound,
        format!("The model '{model}' does not exist or is not served by this gateway"),
    )
    .with_param("model")
}

/// A run's future: its loop, or the empty turn of a warm-up.
async fn drive(run: Box<agent::Run>, sink: stream::EventSink, warm_up: bool) {
    if warm_up {
        run.warm_up(sink).await;
    } else {
        run.run(sink).await;
    }
}

/// The backend's first answer to a run's first turn, asked before the
/// response starts (its failure is still the client's HTTP status). A delete or
/// the end of the drain stops the wait, as it stops the loop later.
/// (Given the run's parts: the run as a whole is not `Sync`.)
async fn first_answer(
    backend: &Route,
    request: &ModelRequest,
    running: Option<&inflight::Running>,
) -> Result<ModelStream, ApiError> {
    let generate = backend.generate(request);
    match running {
        Some(running) => tokio::select! {
            first = generate => first.map_err(error::backend_error),
            stop = running.stopped() => Err(stop.error()),
        },
        None => generate.await.map_err(error::backend_error),
    }
}

/// Which parts of the gateway answer ([`Engine::readiness`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub store: bool,
    /// Each backend's answer and circuit.
    pub backends: Vec<BackendReadiness>,
}

impl Readiness {
    /// Ready when the store answers and at least one backend does: a replica
    /// that can serve some models serves them, and one whose every backend is
    /// gone is taken out of the load balancer.
    pub fn ready(&self) -> bool {
        self.store && self.backends.iter().any(|backend| backend.ready)
    }
}
