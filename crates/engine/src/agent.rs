//! The agentic loop: one response, as many model turns as its server-side tools
//! need.
//!
//! Before the first turn, each server-side tool type does its preparation (MCP
//! lists the servers whose tools are not known from the context), and calls the
//! client approved are run. Then: ask the model; run
//! every server-side call of the turn (concurrently up to a bound when parallel
//! tool calls are allowed, one at a time otherwise); feed the results back; and
//! repeat until the model answers, hands function calls back to the client, asks
//! for an approval, or a limit is reached. Every step goes through the one
//! assembler, so the events of a loop obey the same grammar as a plain answer.

use std::sync::Arc;

use antwort_api::{
    ApiError, ErrorCode, IncompleteReason, Item, MessageContent, MessageItem, Role, StreamEvent,
};
use futures::StreamExt;

use crate::assembler::{Assembler, Conclusion};
use crate::catalog::{Catalog, Routes};
use crate::clock::unix_now;
use crate::counting::Counting;
use crate::error::backend_error;
use crate::model::{Backend, FinishReason, ModelRequest, ModelStream, ModelToolChoice};
use crate::replay::model_view;
use crate::stream::{EventSink, Persist};
use crate::tokens::Tokenizer;
use crate::tool::{ApprovedCall, Route, ServerCall, ServerTool, ToolType};

/// Bounds of one response's loop.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Server-side calls allowed in the response (`max_tool_calls`).
    pub max_tool_calls: Option<u32>,
    /// Model turns allowed in the response.
    pub max_turns: u32,
    /// Server-side calls run at once when parallel tool calls are allowed.
    pub concurrency: usize,
    /// The model's context window, in tokens: every turn is fitted into it.
    pub context_window: u64,
    /// The model's own tokenizer, when one is configured.
    pub tokenizer: Option<Tokenizer>,
}

/// The server-side tools of a response: still to prepare (before the first
/// turn), or ready to be routed to.
pub(crate) enum Tools {
    Unprepared(Vec<Box<dyn ServerTool>>),
    Ready(Vec<Arc<dyn ServerTool>>),
}

impl Tools {
    /// The tools calls can be routed to (none before preparation).
    fn ready(&self) -> &[Arc<dyn ServerTool>] {
        match self {
            Tools::Ready(tools) => tools,
            Tools::Unprepared(_) => &[],
        }
    }
}

/// Everything one response's loop needs.
pub(crate) struct Run {
    pub assembler: Assembler,
    pub request: ModelRequest,
    /// The first turn's stream, when the backend was asked before the response
    /// started (so that its failure could still be an HTTP status).
    pub first: Option<ModelStream>,
    pub backend: crate::registry::Route,
    /// The tool types, for the model's view of the items this response adds.
    pub types: Arc<Vec<Arc<dyn ToolType>>>,
    /// What the catalog is built from again once the tools are prepared.
    pub functions: Vec<antwort_api::FunctionTool>,
    pub tools: Tools,
    pub tool_choice: antwort_api::ToolChoice,
    /// Where calls go with the tools known when the response started.
    pub routes: Routes,
    /// Calls the client approved, each with the index of its tool set.
    pub approved: Vec<(usize, ApprovedCall)>,
    pub limits: Limits,
    pub persist: Option<Persist>,
    /// The response's place in the registry of responses in progress.
    pub running: Option<crate::inflight::Running>,
    /// Told the response's usage once it concludes, whether or not a client
    /// still reads it (rate limits count tokens with it).
    pub metering: Option<crate::UsageMeter>,
}

impl Run {
    /// Runs the response to its end. `self` is boxed: the loop's future then
    /// holds a pointer instead of the whole `Run`, twice (measured with
    /// `-Zprint-type-sizes`: 8 kB of future per open stream before). The work
    /// stops early when the response is deleted or the gateway shuts down
    /// ([`crate::inflight`]); it then fails with the output it had.
    pub(crate) async fn run(mut self: Box<Self>, sink: EventSink) {
        let mut out = Vec::new();
        self.assembler.start(&mut out);
        sink.send(&mut out);
        let running = self.running.take();
        let conclusion = match &running {
            Some(running) => {
                let work = self.work(&sink, &mut out);
                tokio::select! {
                    conclusion = work => conclusion.map_err(Some),
                    stop = running.stopped() => Err(match stop {
                        crate::inflight::Stop::Cancelled => None,
                        stop => Some(stop.error()),
                    }),
                }
            }
            None => self.work(&sink, &mut out).await.map_err(Some),
        };
        match conclusion {
            Ok(conclusion) => self.assembler.conclude(conclusion, &mut out),
            Err(Some(error)) => self.assembler.fail(error, &mut out),
            // Cancelled by its client: not a failure, and no `error` event.
            Err(None) => self.assembler.cancel(&mut out),
        }
        if let Some(meter) = self.metering.take()
            && let Some(usage) = &self.assembler.response().usage
        {
            meter(usage);
        }
        if running
            .as_ref()
            .is_some_and(crate::inflight::Running::is_deleted)
        {
            // Deleted while it ran: its followers learn how it ended; nothing
            // is saved, so it cannot come back.
            self.persist = None;
        }
        self.save_and_end(out, &sink).await;
        drop(running);
    }

    /// A response that generates nothing (a WebSocket turn with `generate:
    /// false`, which Codex CLI sends to warm a connection up): it starts and
    /// completes with no output, and is saved when stored, so that the next
    /// turn can continue from it.
    pub(crate) async fn warm_up(mut self: Box<Self>, sink: EventSink) {
        let mut out = Vec::new();
        self.assembler.start(&mut out);
        let now = crate::clock::unix_now();
        self.assembler
            .conclude(crate::assembler::Conclusion::Completed { now }, &mut out);
        let running = self.running.take();
        self.save_and_end(out, &sink).await;
        drop(running);
    }

    /// The loop itself: tools prepared, approved calls run, then model turns
    /// until the response concludes. Events go out as they happen; the
    /// conclusion (or the error it failed with) is the caller's to emit.
    async fn work(
        &mut self,
        sink: &EventSink,
        out: &mut Vec<StreamEvent>,
    ) -> Result<Conclusion, ApiError> {
        let mut routes = std::mem::take(&mut self.routes);
        if self.prepare_tools(sink).await {
            let catalog = Catalog::build(&self.functions, self.tools.ready(), &self.tool_choice);
            self.request.tools = catalog.offered;
            self.request.tool_choice = catalog.tool_choice;
            routes = catalog.routes;
        }
        self.assembler.set_routes(routes);
        let mut calls_made = 0u32;
        if !self.approved.is_empty() {
            let start = self.assembler.output_len();
            let ready = self.tools.ready().to_vec();
            let mut calls: Vec<ServerCall> = Vec::new();
            for (index, approved) in std::mem::take(&mut self.approved) {
                let Some(tool) = ready.get(index) else {
                    continue;
                };
                let route = Route {
                    tool: tool.clone(),
                    target: approved.target,
                    approval: false,
                };
                calls.push(self.assembler.call_started(
                    route,
                    &approved.arguments,
                    &approved.approval_request_id,
                    out,
                ));
            }
            sink.send(out);
            let over = calls.split_off(self.budget(calls_made).min(calls.len()));
            calls_made += self.run_calls(calls, sink).await;
            if !over.is_empty() {
                self.skip_over_budget(over, out);
                return Ok(Conclusion::Incomplete(IncompleteReason::MaxToolCalls));
            }
            self.request
                .input
                .extend(model_view(self.assembler.items_since(start), &self.types));
            // The approved calls were the calls a forced choice asked for.
            self.relax_tool_choice();
        }
        let mut turns = 0;
        loop {
            turns += 1;
            let start = self.assembler.output_len();
            let upstream = match self.first.take() {
                Some(upstream) => upstream,
                None => {
                    // The input grew by tool results (or tools were listed) since
                    // the request was fitted: fit it again.
                    self.fit().await?;
                    match self.backend.generate(&self.request).await {
                        Ok(upstream) => upstream,
                        Err(error) => return Err(backend_error(error)),
                    }
                }
            };
            self.pump(upstream, sink).await?;
            let turn = self.assembler.end_turn(out);
            sink.send(out);
            let incomplete = match turn.finish {
                None => {
                    for call in turn.server_calls {
                        self.assembler.call_skipped(
                            call,
                            "The model's turn ended unfinished, so this call was not run.",
                            out,
                        );
                    }
                    return Err(ApiError::new(
                        ErrorCode::BackendError,
                        "the backend's stream ended before generation finished",
                    ));
                }
                Some(FinishReason::Length) => Some(IncompleteReason::MaxOutputTokens),
                Some(FinishReason::ContentFilter) => Some(IncompleteReason::ContentFilter),
                Some(FinishReason::Stop | FinishReason::ToolCalls) => None,
            };
            if let Some(reason) = incomplete {
                // A cut turn's calls may carry cut arguments: they do not run.
                for call in turn.server_calls {
                    self.assembler.call_skipped(
                        call,
                        "The model's turn was cut short, so this call was not run.",
                        out,
                    );
                }
                return Ok(Conclusion::Incomplete(reason));
            }
            if turn.server_calls.is_empty() {
                return Ok(Conclusion::Completed { now: unix_now() });
            }
            let mut calls = turn.server_calls;
            let over = calls.split_off(self.budget(calls_made).min(calls.len()));
            calls_made += self.run_calls(calls, sink).await;
            if !over.is_empty() {
                self.skip_over_budget(over, out);
                return Ok(Conclusion::Incomplete(IncompleteReason::MaxToolCalls));
            }
            // Function calls go back to the client and approvals wait for it; the
            // server-side results ride along in this response's output.
            if turn.client_calls > 0 || turn.approvals > 0 {
                return Ok(Conclusion::Completed { now: unix_now() });
            }
            if turns >= self.limits.max_turns {
                return Ok(Conclusion::Incomplete(IncompleteReason::MaxTurns));
            }
            self.request
                .input
                .extend(model_view(self.assembler.items_since(start), &self.types));
            self.relax_tool_choice();
        }
    }

    /// Fits the next turn into the context window, as the response's
    /// `truncation` says: drop the oldest turns, or fail. Counted as the
    /// first turn was (see `counting`).
    async fn fit(&mut self) -> Result<(), ApiError> {
        let limit = self
            .limits
            .context_window
            .saturating_sub(u64::from(self.request.max_output_tokens.unwrap_or(0)));
        let mode = self.assembler.response().truncation;
        let tokenizer = self.limits.tokenizer.as_ref();
        let counting = Counting {
            tokenizer,
            // The endpoint is asked only without a local tokenizer.
            backend: tokenizer.is_none().then_some(&self.backend as &dyn Backend),
        };
        counting.fit(&mut self.request, limit, mode).await
    }

    /// How many more server-side calls `max_tool_calls` allows.
    fn budget(&self, calls_made: u32) -> usize {
        self.limits
            .max_tool_calls
            .map_or(usize::MAX, |max| max.saturating_sub(calls_made) as usize)
    }

    fn skip_over_budget(&mut self, over: Vec<ServerCall>, out: &mut Vec<StreamEvent>) {
        for call in over {
            self.assembler.call_skipped(
                call,
                "Not run: the response reached its max_tool_calls limit.",
                out,
            );
        }
    }

    /// A forced choice forces the first call, not every call after it.
    fn relax_tool_choice(&mut self) {
        if matches!(
            self.request.tool_choice,
            ModelToolChoice::Required | ModelToolChoice::Function(_)
        ) {
            self.request.tool_choice = ModelToolChoice::Auto;
        }
    }

    /// Feeds one turn's model events through the assembler.
    async fn pump(&mut self, mut upstream: ModelStream, sink: &EventSink) -> Result<(), ApiError> {
        let mut out = Vec::new();
        while let Some(event) = upstream.next().await {
            match event {
                Ok(event) => self.assembler.push(event, &mut out),
                Err(error) => return Err(backend_error(error)),
            }
            sink.send(&mut out);
        }
        Ok(())
    }

    /// Lets every tool type that needs it prepare (MCP lists the servers whose
    /// tools are not known yet), its items streamed as they come. Returns
    /// whether anything was prepared (the catalog is then built again).
    async fn prepare_tools(&mut self, sink: &EventSink) -> bool {
        let Tools::Unprepared(tools) = &mut self.tools else {
            return false;
        };
        let mut tools = std::mem::take(tools);
        let mut notes = Vec::new();
        let concurrency = self.limits.concurrency;
        let mut send = |out: &mut Vec<StreamEvent>| sink.send(out);
        for tool in tools.iter_mut().filter(|tool| tool.needs_preparation()) {
            let mut emitter = self.assembler.emitter(&mut send);
            notes.extend(tool.prepare(&mut emitter, concurrency).await);
        }
        for note in notes {
            // Told to the model, so that it says a tool is unavailable instead
            // of pretending it does not exist.
            self.request.input.push(Item::Message(MessageItem {
                id: None,
                status: None,
                role: Role::Developer,
                content: MessageContent::Text(note),
                phase: None,
            }));
        }
        self.tools = Tools::Ready(tools.into_iter().map(Arc::from).collect());
        true
    }

    /// Runs server-side calls (bounded, in parallel when allowed) and files each
    /// result as it arrives. Returns how many ran.
    async fn run_calls(&mut self, calls: Vec<ServerCall>, sink: &EventSink) -> u32 {
        let count = calls.len() as u32;
        let concurrency = if self.request.parallel_tool_calls == Some(false) {
            1
        } else {
            self.limits.concurrency.max(1)
        };
        let mut results = futures::stream::iter(calls)
            .map(|call| async move {
                let finished = call.route.tool.run(&call).await;
                (call, finished)
            })
            .buffer_unordered(concurrency);
        // Each result is filed as it arrives, whatever the order the calls
        // finish in: output indices were fixed when the calls were added.
        let mut out = Vec::new();
        while let Some((call, finished)) = results.next().await {
            self.assembler.call_finished(call, finished, &mut out);
            sink.send(&mut out);
        }
        count
    }

    /// Saves the response (when it is to be saved) before releasing its terminal
    /// event: a client told "completed" can rely on finding it.
    async fn save_and_end(&mut self, mut out: Vec<StreamEvent>, sink: &EventSink) {
        log_outcome(&self.assembler);
        let Some(persist) = self.persist.take() else {
            sink.send(&mut out);
            return;
        };
        let Some(terminal) = out.pop() else {
            return;
        };
        sink.send(&mut out);
        // Boxed: only stored responses wait here, and the save's future would
        // otherwise be part of every response's.
        match Box::pin(persist.save(self.assembler.response().clone())).await {
            Ok(()) => out.push(terminal),
            Err(error) => {
                // Never tell a client "completed" for a response that is not where
                // it was promised to be.
                tracing::error!(%error, "a finished response could not be stored");
                let failure = ApiError::new(
                    ErrorCode::StorageUnavailable,
                    format!("The response could not be stored: {error}"),
                );
                self.assembler
                    .replace_terminal_with_failure(terminal, failure, &mut out);
            }
        }
        sink.send(&mut out);
    }
}

fn log_outcome(assembler: &Assembler) {
    let response = assembler.response();
    let usage = response.usage.unwrap_or_default();
    tracing::info!(
        response_id = %response.id,
        model = %response.model,
        status = response.status.as_str(),
        output_items = response.output.len(),
        input_tokens = usage.input_tokens,
        output_tokens = usage.output_tokens,
        error = response.error.as_ref().map(|e| e.message.as_str()),
        "response finished"
    );
}
