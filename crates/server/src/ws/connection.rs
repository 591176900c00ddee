//! One WebSocket connection: reads client messages, runs each lane's turns,
//! keeps the connection's clocks, and closes it cleanly.
//!
//! The socket's two halves are apart: a writer task sends what the bounded
//! send buffer holds (the turns' events, errors, pings), and this loop reads.
//! Turns run on tasks of the connection's own, so that a client that goes
//! away takes its unstored turns with it (dropping a turn drops its engine
//! stream, which cancels generation upstream), while stored ones finish.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use antwort_api::{ApiError, ErrorCode};
use antwort_engine::Prior;
use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use super::WebSocketSettings;
use super::lane::{Job, Lane, LaneKey, Running};
use super::message::{ClientMessage, Unreadable, error_text};
use super::turn::{Turn, TurnEnd};
use super::writer::{WriteClock, write_all};
use crate::AppState;
use crate::extract::Caller;

/// Who the connection serves, as its upgrade established.
pub struct Session {
    pub state: AppState,
    pub caller: Caller,
    pub credentials: axum::http::HeaderMap,
    /// The upgrade request's span: each turn's log lines carry its request id.
    pub span: tracing::Span,
}

/// Why the connection is closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// Its lifetime is up: new turns are refused with
    /// `websocket_connection_limit_reached`, and it closes once idle.
    LifetimeReached,
    /// The gateway is shutting down: the same, with `server_shutting_down`.
    ShuttingDown,
}

impl Closing {
    fn error(self) -> ApiError {
        match self {
            Closing::LifetimeReached => ApiError::new(
                ErrorCode::WebSocketConnectionLimitReached,
                "This WebSocket reached its lifetime limit (websocket.max_connection_duration); open a new connection to continue.",
            ),
            Closing::ShuttingDown => ApiError::new(
                ErrorCode::ShuttingDown,
                "The gateway is shutting down; open a new connection to continue.",
            ),
        }
    }

    fn close_code(self) -> u16 {
        match self {
            Closing::LifetimeReached => close_code::NORMAL,
            Closing::ShuttingDown => close_code::AWAY,
        }
    }
}

/// How a connection ended, for its log line.
#[derive(Debug, Clone, Copy)]
enum Ended {
    ClientClosed,
    Idle,
    /// The writer ended: the client stopped taking frames (the stall
    /// clock), or the socket failed.
    WriterStopped,
    TooLarge,
    Closed(Closing),
    Broken,
}

impl Ended {
    fn as_str(self) -> &'static str {
        match self {
            Ended::ClientClosed => "closed by the client",
            Ended::Idle => "idle timeout",
            Ended::WriterStopped => "the client stopped reading, or the socket failed",
            Ended::TooLarge => "message too large",
            Ended::Closed(Closing::LifetimeReached) => "lifetime limit reached",
            Ended::Closed(Closing::ShuttingDown) => "gateway shutting down",
            Ended::Broken => "connection lost without a close",
        }
    }
}

pub async fn serve(socket: WebSocket, session: Session) {
    let span = session.span.clone();
    async move {
        tracing::info!("websocket opened");
        let ended = Connection::new(socket, session).run().await;
        tracing::info!(ended = ended.as_str(), "websocket closed");
    }
    .instrument(span)
    .await;
}

struct Connection {
    session: Arc<Session>,
    settings: WebSocketSettings,
    reader: futures::stream::SplitStream<WebSocket>,
    out: mpsc::Sender<Message>,
    writer: tokio::task::JoinHandle<()>,
    written: WriteClock,
    lanes: HashMap<LaneKey, Lane>,
    turns: JoinSet<()>,
    /// Each turn says how it ended here before its last message goes out, so
    /// that its lane is free when the client, told, sends the next turn.
    ended: mpsc::Receiver<TurnEnd>,
    turn_ended: mpsc::Sender<TurnEnd>,
    /// Counts the turns given, to find the least recently used lane.
    given: u64,
    /// Bytes of the messages of turns waiting on lanes.
    queued_bytes: usize,
    closing: Option<Closing>,
    last_heard: Instant,
}

impl Connection {
    fn new(socket: WebSocket, session: Session) -> Self {
        let settings = session.state.config.websocket;
        let (sink, reader) = socket.split();
        // Room for two at least: a turn's last messages (error and
        // response.failed) are reserved together.
        let (out, pending) = mpsc::channel(settings.send_buffer.max(2));
        let written = WriteClock::new();
        let writer = antwort_engine::tasks::spawn(
            write_all(sink, pending, settings.idle_timeout, written.clone()).in_current_span(),
        );
        let (turn_ended, ended) = mpsc::channel(settings.max_streams.max(1));
        Self {
            session: Arc::new(session),
            settings,
            reader,
            out,
            writer,
            written,
            lanes: HashMap::new(),
            turns: JoinSet::new(),
            ended,
            turn_ended,
            given: 0,
            queued_bytes: 0,
            closing: None,
            last_heard: antwort_engine::clock::now(),
        }
    }

    async fn run(mut self) -> Ended {
        let settings = self.settings;
        let mut ping = tokio::time::interval_at(
            antwort_engine::clock::now() + settings.ping_interval,
            settings.ping_interval,
        );
        let lifetime = tokio::time::sleep(settings.max_connection_duration);
        let mut lifetime = std::pin::pin!(lifetime);
        let shutdown = self.session.state.sockets.closing.clone();
        let ended = loop {
            if let Some(closing) = self.closing
                && self.turns.is_empty()
            {
                self.say(&closing.error(), None).await;
                self.close_with(closing.close_code(), "").await;
                break Ended::Closed(closing);
            }
            tokio::select! {
                // In this order: turn ends before the next message is read (a
                // lane is free when its client, told, sends the next turn),
                // and the clocks before the reader too, so that a client that
                // never stops sending cannot hold them off.
                biased;
                Some(end) = self.ended.recv() => self.on_turn_end(end).await,
                Some(joined) = self.turns.join_next_with_id() => self.on_joined(joined).await,
                _ = &mut self.writer => break Ended::WriterStopped,
                () = shutdown.cancelled(), if self.closing != Some(Closing::ShuttingDown) => {
                    self.closing = Some(Closing::ShuttingDown);
                }
                () = &mut lifetime, if self.closing.is_none() => {
                    self.closing = Some(Closing::LifetimeReached);
                }
                _ = ping.tick() => {
                    // A client that reads what it is sent is alive even when
                    // the buffer is too full for a ping to reach it.
                    if self.last_heard.elapsed() > settings.idle_timeout
                        && self.written.elapsed() > settings.idle_timeout
                    {
                        break Ended::Idle;
                    }
                    // A full buffer means the client is not reading: the
                    // ping would only wait behind what it does not read.
                    let _ = self.out.try_send(Message::Ping(Default::default()));
                }
                frame = self.reader.next() => {
                    self.last_heard = antwort_engine::clock::now();
                    match frame {
                        Some(Ok(message)) => {
                            if let Some(ended) = self.on_message(message).await {
                                break ended;
                            }
                        }
                        Some(Err(error)) => break self.on_read_error(&error).await,
                        None => break Ended::ClientClosed,
                    }
                }
            }
        };
        // Unstored turns end with the connection; stored ones finish on their own.
        self.turns.abort_all();
        drop(self.out);
        let mut writer = self.writer;
        if !writer.is_finished()
            && tokio::time::timeout(Duration::from_secs(1), &mut writer)
                .await
                .is_err()
        {
            tracing::debug!("websocket writer did not finish its close in time");
            writer.abort();
        }
        ended
    }

    /// Sends a close frame, waiting for room no longer than a stall.
    async fn close_with(&self, code: u16, reason: &'static str) {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(self.settings.idle_timeout, self.out.send(frame)).await;
    }

    /// Sends an error, waiting for room at most as long as the client may be
    /// silent (a client that reads nothing is closed by the idle clock then).
    async fn say(&self, error: &ApiError, stream_id: Option<&str>) {
        tracing::info!(
            code = error.code.as_str(),
            param = error.param.as_deref(),
            stream_id,
            "websocket error sent to the client"
        );
        let message = Message::Text(error_text(error, stream_id).into());
        let _ = tokio::time::timeout(self.settings.idle_timeout, self.out.send(message)).await;
    }

    async fn on_message(&mut self, message: Message) -> Option<Ended> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let error = ApiError::new(
                    ErrorCode::InvalidJson,
                    "Binary frames are not read; send each message as one JSON text frame.",
                );
                self.say(&error, None).await;
                return None;
            }
            // Pongs only prove the client is there; tungstenite answers pings.
            Message::Ping(_) | Message::Pong(_) => return None,
            Message::Close(_) => return Some(Ended::ClientClosed),
        };
        match ClientMessage::parse(text.as_str()) {
            Ok(ClientMessage::Create {
                stream_id,
                request,
                warm_up,
            }) => {
                let job = Job {
                    request,
                    bytes: text.len(),
                    warm_up,
                };
                self.on_create(stream_id, job).await;
            }
            Ok(ClientMessage::Cancel {
                stream_id,
                response_id,
            }) => self.on_cancel(stream_id, response_id).await,
            Err(Unreadable { stream_id, error }) => self.say(&error, stream_id.as_deref()).await,
        }
        None
    }

    async fn on_read_error(&mut self, error: &axum::Error) -> Ended {
        let too_large = std::error::Error::source(error)
            .map(|source| source.to_string().contains("Space limit exceeded"))
            .unwrap_or(false)
            || error.to_string().contains("Space limit exceeded");
        if too_large {
            let error = ApiError::new(
                ErrorCode::RequestTooLarge,
                format!(
                    "A message is larger than this server takes ({} bytes, websocket.max_message_bytes).",
                    self.settings.max_message_bytes
                ),
            );
            self.say(&error, None).await;
            self.close_with(close_code::SIZE, "message too large").await;
            return Ended::TooLarge;
        }
        tracing::debug!(%error, "websocket read failed");
        Ended::Broken
    }

    async fn on_create(&mut self, stream_id: Option<String>, job: Job) {
        let bytes = job.bytes;
        if let Some(closing) = self.closing {
            self.say(&closing.error(), stream_id.as_deref()).await;
            return;
        }
        if let Err(error) = crate::extract::RequestBody::check_limits(
            &*job.request,
            &self.session.state.config.limits,
        ) {
            self.say(&error, stream_id.as_deref()).await;
            return;
        }
        let previous = job.request.previous_response_id.clone();
        if !self.lanes.contains_key(&stream_id) && !self.make_room(previous.as_deref()) {
            let error = ApiError::new(
                ErrorCode::ResponseInProgress,
                format!(
                    "This connection already runs {} streams (websocket.max_streams); wait for one to finish.",
                    self.settings.max_streams
                ),
            )
            .with_param("stream_id");
            self.say(&error, stream_id.as_deref()).await;
            return;
        }
        let named = stream_id.is_some();
        let max_waiting = self.settings.max_queued_per_stream;
        // What waits is held whole: all of it together stays within two
        // messages' worth, whatever the number of lanes.
        let budget = self.settings.max_message_bytes.saturating_mul(2);
        let lane = self.lanes.entry(stream_id.clone()).or_default();
        if !lane.is_idle() && self.queued_bytes.saturating_add(bytes) > budget {
            let error = ApiError::new(
                ErrorCode::ResponseInProgress,
                "The responses waiting on this connection already hold as much as it buffers; wait for one to start.",
            )
            .with_param("stream_id");
            self.say(&error, stream_id.as_deref()).await;
            return;
        }
        self.given += 1;
        lane.last_used = self.given;
        match lane.offer(job, named, max_waiting) {
            Ok(Some(job)) => self.start(stream_id, job),
            Ok(None) => self.queued_bytes += bytes,
            Err(error) => self.say(&error, stream_id.as_deref()).await,
        }
    }

    /// Room for one more lane: forgets the least recently used idle lane
    /// (and what it remembered) when the connection holds as many as it may;
    /// never the one whose memory the new turn continues.
    fn make_room(&mut self, continues: Option<&str>) -> bool {
        if self.lanes.len() < self.settings.max_streams.max(1) {
            return true;
        }
        let oldest = self
            .lanes
            .iter()
            .filter(|(_, lane)| lane.is_idle())
            .filter(|(_, lane)| {
                lane.memory
                    .as_ref()
                    .is_none_or(|memory| Some(memory.response_id.as_str()) != continues)
            })
            .min_by_key(|(_, lane)| lane.last_used)
            .map(|(key, _)| key.clone());
        match oldest {
            Some(key) => {
                self.lanes.remove(&key);
                true
            }
            None => false,
        }
    }

    /// Starts `job` on its lane, continuing from a lane's memory when its
    /// `previous_response_id` names what one remembers: its own lane's, or
    /// another's (a fork onto a new stream, which leaves the other as it is).
    fn start(&mut self, key: LaneKey, job: Job) {
        let previous = job.request.previous_response_id.clone();
        let prior: Option<Prior> = previous.as_deref().and_then(|previous| {
            let own = self.lanes.get(&key).and_then(|lane| lane.memory.as_ref());
            own.filter(|memory| memory.response_id == previous)
                .or_else(|| {
                    self.lanes
                        .values()
                        .filter_map(|lane| lane.memory.as_ref())
                        .find(|memory| memory.response_id == previous)
                })
                .cloned()
        });
        let continued = prior.as_ref().map(|prior| prior.response_id.clone());
        let response_id = std::sync::Arc::new(std::sync::OnceLock::new());
        let cancel = antwort_engine::Cancel::default();
        let turn = Turn {
            lane: key.clone(),
            request: job.request,
            prior,
            continued,
            response_id: response_id.clone(),
            cancel: cancel.clone(),
            warm_up: job.warm_up,
        };
        let session = self.session.clone();
        let (out, ended) = (self.out.clone(), self.turn_ended.clone());
        let task = self.turns.spawn(
            turn.run(session, out, ended)
                .instrument(tracing::Span::current()),
        );
        if let Some(lane) = self.lanes.get_mut(&key) {
            lane.running = Some(Running {
                response_id,
                cancel,
                task: task.id(),
            });
        }
    }

    async fn on_turn_end(&mut self, end: TurnEnd) {
        let Some(lane) = self.lanes.get_mut(&end.lane) else {
            return;
        };
        lane.running = None;
        lane.finished(&end);
        self.next_on(end.lane).await;
    }

    /// Starts the next turn waiting on `key`; a closing connection refuses
    /// every one that waits, each on its own lane.
    async fn next_on(&mut self, key: LaneKey) {
        let Some(lane) = self.lanes.get_mut(&key) else {
            return;
        };
        if let Some(closing) = self.closing {
            let refused: Vec<Job> = lane.waiting.drain(..).collect();
            for job in refused {
                self.queued_bytes = self.queued_bytes.saturating_sub(job.bytes);
                self.say(&closing.error(), key.as_deref()).await;
            }
            return;
        }
        if let Some(job) = lane.waiting.pop_front() {
            self.queued_bytes = self.queued_bytes.saturating_sub(job.bytes);
            self.start(key, job);
        }
    }

    /// A turn's task ended. One that said how it ended freed its lane then;
    /// one that panicked frees it now, says so on its lane, and lets the
    /// turns waiting behind it go on.
    async fn on_joined(&mut self, joined: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match joined {
            Ok((id, ())) => id,
            Err(error) => {
                if error.is_panic() {
                    tracing::error!(%error, "a websocket turn panicked");
                }
                error.id()
            }
        };
        let freed: Vec<LaneKey> = self
            .lanes
            .iter_mut()
            .filter(|(_, lane)| {
                lane.running
                    .as_ref()
                    .is_some_and(|running| running.task == id)
            })
            .map(|(key, lane)| {
                lane.running = None;
                key.clone()
            })
            .collect();
        for key in freed {
            let error = ApiError::new(
                ErrorCode::InternalError,
                "The response ended unexpectedly inside the gateway.",
            );
            self.say(&error, key.as_deref()).await;
            self.next_on(key).await;
        }
    }

    async fn on_cancel(&mut self, stream_id: Option<String>, response_id: Option<String>) {
        let target = match &response_id {
            Some(id) => self.lanes.values().find_map(|lane| {
                lane.running
                    .as_ref()
                    .filter(|running| running.response_id.get() == Some(id))
            }),
            None => self
                .lanes
                .get(&stream_id)
                .and_then(|lane| lane.running.as_ref()),
        };
        match target {
            Some(running) => running.cancel.cancel(),
            None => {
                let what = match (&response_id, &stream_id) {
                    (Some(id), _) => format!("response '{id}'"),
                    (None, Some(stream)) => format!("stream '{stream}'"),
                    (None, None) => "this connection's default stream".to_owned(),
                };
                let error = ApiError::new(
                    ErrorCode::NotFound,
                    format!("No response is in progress on {what}."),
                )
                .with_param(if response_id.is_some() {
                    "response_id"
                } else {
                    "stream_id"
                });
                self.say(&error, stream_id.as_deref()).await;
            }
        }
    }
}
