//! Automatic reconnection, the connection's side: whether a connection
//! that ended is followed by another, the `reconnecting` event and the
//! wait, and the fresh start when the retry timer fires. What is worth a
//! retry and how long to wait is `crate::reconnect`'s to say.

use super::{end_socket, Connection, Ctx, Phase};
use crate::event::{lossy_cstring, CloseRecord, ReconnectRecord};
use crate::io::closing::Ending;
use crate::io::deadlines::Deadlines;
use crate::io::stream::AnswerSlot;
use crate::reconnect::{parse_retry_after, Cause, Decision};
use crate::status::AsyncErrorKind;
use tungstenite::protocol::frame::coding::CloseCode;

impl Connection {
    /// `ws_reconnect`: end this connection (with a closing handshake when
    /// open) and connect again at once, the failure count reset.
    pub fn on_reconnect_request(&mut self, ctx: &mut Ctx<'_>) {
        if !self.may_retry() {
            return;
        }
        match &self.phase {
            Phase::Open { closing, .. } => {
                self.manual = true;
                if closing.is_open() {
                    self.begin_close(ctx, Some((CloseCode::Normal.into(), String::new())));
                }
            }
            Phase::Waiting => {
                self.backoff.reset();
                self.deadlines.retry = Some(ctx.now());
            }
            Phase::Done => {}
            Phase::Resolving
            | Phase::Connecting { .. }
            | Phase::Tunneling { .. }
            | Phase::Handshaking(_) => {
                self.manual = true;
                self.finish(ctx, Ending::abnormal());
            }
        }
    }

    /// Another connection may follow this one: reconnection is on, and
    /// nobody asked the socket to end.
    pub(super) fn may_retry(&self) -> bool {
        self.socket.options.reconnect.enabled
            && !self.detached
            && !self.no_retry
            && !self.socket.outbox().close_requested()
    }

    /// What follows a connection that ended this way: `None` to end the
    /// socket, or a retry or the giving up that the policy decides.
    pub(super) fn after_loss(&mut self, ctx: &mut Ctx<'_>, ending: &Ending) -> Option<Decision> {
        if !self.may_retry() {
            return None;
        }
        let policy = &self.socket.options.reconnect;
        if std::mem::take(&mut self.manual) {
            self.backoff.reset();
            let _ = self.backoff.after_failure(policy, None);
            return Some(Decision::Retry {
                attempt: 1,
                delay: std::time::Duration::ZERO,
            });
        }
        let cause = match &self.lost {
            Some(lost) => Cause::Failed {
                transient: lost.failure.transient && !lost.reported,
            },
            None => Cause::Closed { code: ending.code },
        };
        if !cause.is_retryable() {
            return None;
        }
        let now = ctx.now();
        if self
            .opened_at
            .is_some_and(|at| now.saturating_duration_since(at) >= policy.stable)
        {
            self.backoff.reset();
        }
        // A busy server's `Retry-After` is the least wait.
        let retry_after = self
            .lost
            .as_ref()
            .filter(|l| l.failure.http_status.is_some())
            .and_then(|_| self.socket.answer())
            .and_then(|answer| answer.header("retry-after"))
            .and_then(|value| parse_retry_after(&value));
        Some(self.backoff.after_failure(policy, retry_after))
    }

    /// Tells the socket's listeners that the connection is lost and
    /// attempt `attempt` comes after `delay`, and sets the timer for it.
    pub(super) fn wait(
        &mut self,
        ctx: &mut Ctx<'_>,
        ending: Ending,
        attempt: u32,
        delay: std::time::Duration,
    ) {
        let Some(dropped) = self.socket.begin_reconnect() else {
            // The caller closed meanwhile: this is the end.
            return end_socket(&self.socket, ctx.delivery, Ending::abnormal());
        };
        self.phase = Phase::Waiting;
        self.deadlines = Deadlines::retry_at(ctx.now() + delay);
        self.opened_at = None;
        let lost = self.lost.take();
        let reason = match &lost {
            Some(l) if ending.reason.is_empty() => l.failure.message.as_str(),
            _ => ending.reason.as_str(),
        };
        crate::log::log_at!(
            Warn,
            self.socket.handle,
            "connection lost ({}): attempt {attempt} in {} ms",
            match reason.is_empty() {
                true => format!("close {}", ending.code),
                false => reason.to_owned(),
            },
            delay.as_millis()
        );
        let record = ReconnectRecord {
            close: CloseRecord {
                code: ending.code,
                reason: lossy_cstring(reason),
                was_clean: ending.clean,
            },
            error: lost.as_ref().map(|l| l.failure.kind),
            http_status: lost.as_ref().and_then(|l| l.failure.http_status),
            attempt,
            delay_ms: u32::try_from(delay.as_millis()).unwrap_or(u32::MAX),
            dropped,
        };
        ctx.delivery.reconnecting(&self.socket, record);
    }

    /// `attempts` consecutive attempts failed: one `error` that says so,
    /// with the last failure, then the socket's `close`.
    pub(super) fn give_up(&mut self, ctx: &mut Ctx<'_>, ending: &Ending, attempts: u32) {
        let (kind, why, status) = match self.lost.take() {
            Some(l) => (l.failure.kind, l.failure.message, l.failure.http_status),
            None => (AsyncErrorKind::Io, closed_by(ending), None),
        };
        let message = format!("gave up after {attempts} attempts: {why}");
        ctx.delivery.error(&self.socket, kind, &message, status);
        end_socket(&self.socket, ctx.delivery, Ending::abnormal());
    }

    /// The retry timer fired: a fresh connection to the socket's own URL
    /// (resolved again, a new key, the current headers).
    pub(super) fn retry(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        self.deadlines = Deadlines::connecting_until(now + self.socket.options.connect_timeout);
        self.phase = Phase::Resolving;
        self.in_flight = 0;
        self.messages_taken = 0;
        if std::mem::take(&mut self.read_paused) {
            self.socket.reading_resumed();
        }
        self.answer = AnswerSlot::default();
        self.target = self.socket.target.clone();
        // The proxy is chosen again: the environment may have changed.
        self.route = (self.socket.route).reselected(&self.socket.target, &self.socket.options);
        self.redirects = 0;
        self.credentials_dropped = false;
        self.target_addr = None;
        self.resolving_target = false;
        self.lost = None;
        self.socket.set_answer(None);
        self.socket.set_redirected_to(None);
        crate::log::log_at!(Info, self.socket.handle, "reconnecting");
        self.start(ctx);
    }
}

/// What a `close` with no failure behind it says, for a give-up message.
fn closed_by(ending: &Ending) -> String {
    match ending.code {
        1006 => "the connection was lost".to_owned(),
        code if ending.reason.is_empty() => format!("the server closed the connection with {code}"),
        code => format!(
            "the server closed the connection with {code} {:?}",
            ending.reason
        ),
    }
}
