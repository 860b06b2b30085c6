//! The IO thread's loop: poll readiness, run commands, fire timers.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll};

use super::closing::Ending;
use super::connection::{end_socket, Connection, Ctx};
use super::resolver::Resolver;
use super::timers::Timers;
use super::{Command, IoShared, WAKER_TOKEN};
use crate::deliver::Delivery;
use crate::handle_map::HandleMap;
use crate::panic_guard;
use crate::socket::Request;

pub struct Reactor {
    poll: Poll,
    shared: Arc<IoShared>,
    connections: HandleMap<Connection>,
    timers: Timers,
    delivery: Delivery,
    resolver: Resolver,
    commands: Vec<Command>,
    /// Connections whose read budget ran out: driven again next turn.
    again: Vec<u64>,
    shutting_down: bool,
}

impl Reactor {
    pub fn new(poll: Poll, shared: Arc<IoShared>) -> Reactor {
        Reactor {
            poll,
            resolver: Resolver::new(shared.clone()),
            shared,
            connections: HandleMap::default(),
            timers: Timers::default(),
            delivery: Delivery::default(),
            commands: Vec::new(),
            again: Vec::new(),
            shutting_down: false,
        }
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            self.run_commands();
            if self.shutting_down && self.connections.is_empty() {
                return;
            }
            let timeout = if self.again.is_empty() {
                self.next_deadline()
                    .map(|at| at.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // epoll_wait fails only on a broken fd set; nothing can be
                // served any more, so end the sockets rather than spin.
                Err(_) => {
                    self.shutting_down = true;
                    self.shutdown_all();
                    continue;
                }
            }
            for event in events.iter() {
                if event.token() == WAKER_TOKEN {
                    continue;
                }
                let handle = event.token().0 as u64;
                let read_closed = event.is_read_closed() || event.is_error();
                self.with_connection(handle, |c, ctx| c.on_event(ctx, read_closed));
            }
            for handle in std::mem::take(&mut self.again) {
                self.with_connection(handle, |c, ctx| c.on_ready(ctx));
            }
            self.fire_timers();
        }
    }

    /// Runs `f` on a connection, then files its next deadline and drops it
    /// once it is done.
    fn with_connection(&mut self, handle: u64, f: impl FnOnce(&mut Connection, &mut Ctx<'_>)) {
        let Some(connection) = self.connections.get_mut(&handle) else {
            return;
        };
        let mut ctx = Ctx {
            registry: self.poll.registry(),
            delivery: &mut self.delivery,
            resolver: &mut self.resolver,
            now: None,
        };
        connection.more_to_read = false;
        if let Err(panic) = panic_guard::catch(|| f(connection, &mut ctx)) {
            // A bug left this connection in an unknown state: end it, and
            // keep serving the others.
            let socket = connection.socket().clone();
            self.connections.remove(&handle);
            let ending = Ending {
                reason: format!("internal error: {panic}"),
                ..Ending::abnormal()
            };
            end_socket(&socket, &mut self.delivery, ending);
            return;
        }
        if connection.is_done() {
            self.connections.remove(&handle);
            return;
        }
        // A duplicate entry only drives the connection once more: harmless.
        if connection.more_to_read {
            self.again.push(handle);
        }
        let next = connection.next_deadline();
        self.timers
            .reschedule(handle, &mut connection.scheduled, next);
    }

    /// Runs commands until none is left: a callback run by one command may
    /// send more.
    fn run_commands(&mut self) {
        loop {
            // The usual pass finds none: then nothing is moved or dropped.
            self.shared.take(&mut self.commands);
            if self.commands.is_empty() {
                return;
            }
            let mut commands = std::mem::take(&mut self.commands);
            for command in commands.drain(..) {
                self.run_command(command);
            }
            // Keeps the buffer for the next batch.
            self.commands = commands;
        }
    }

    fn run_command(&mut self, command: Command) {
        match command {
            Command::Open(socket) => {
                let handle = socket.handle;
                let connection = Connection::new(socket, Instant::now());
                self.connections.insert(handle, connection);
                let shutting_down = self.shutting_down;
                self.with_connection(handle, |c, ctx| {
                    if shutting_down {
                        c.on_shutdown(ctx);
                    } else {
                        c.start(ctx);
                    }
                });
            }
            Command::Socket(socket, request) => {
                let handle = socket.handle;
                match request {
                    Request::Flush => self.with_connection(handle, |c, ctx| c.pump(ctx)),
                    Request::Close => {
                        self.with_connection(handle, |c, ctx| c.on_close_request(ctx))
                    }
                    Request::Free => self.with_connection(handle, |c, ctx| c.on_free(ctx)),
                    // Also after the connection ended: a listener bound late
                    // still gets the `close` it missed.
                    Request::Replay => self.delivery.catch_up(&socket),
                    Request::DeliverHeld => {
                        self.delivery.catch_up(&socket);
                        self.with_connection(handle, |c, ctx| c.resume_reading(ctx));
                    }
                    Request::Resume => self.with_connection(handle, |c, ctx| c.resume_reading(ctx)),
                    Request::Reconnect => {
                        self.with_connection(handle, |c, ctx| c.on_reconnect_request(ctx))
                    }
                    Request::Ping => self.with_connection(handle, |c, ctx| c.on_ping_request(ctx)),
                }
            }
            Command::Resolved(handle, result) => {
                self.with_connection(handle, |c, ctx| c.on_resolved(ctx, result))
            }
            Command::Shutdown => {
                self.shutting_down = true;
                self.shutdown_all();
            }
        }
    }

    fn shutdown_all(&mut self) {
        let handles: Vec<u64> = self.connections.keys().copied().collect();
        for handle in handles {
            self.with_connection(handle, |c, ctx| c.on_shutdown(ctx));
        }
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        let connections = &self.connections;
        self.timers
            .next(|handle| connections.get(&handle).and_then(|c| c.scheduled))
    }

    fn fire_timers(&mut self) {
        if self.timers.is_empty() {
            // The usual case (no ping interval): no clock read per pass.
            return;
        }
        let now = Instant::now();
        while let Some(handle) = self.timers.pop_due(now) {
            let Some(c) = self.connections.get_mut(&handle) else {
                continue;
            };
            if c.scheduled.is_some_and(|s| s <= now) {
                // Let `with_connection` file the next deadline anew.
                c.scheduled = None;
                self.with_connection(handle, |c, ctx| c.on_timer(ctx));
            }
        }
    }
}
