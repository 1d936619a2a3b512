//! Messaging sessions: started or renewed by traffic on session channels, ended by the
//! customer, a terminal reply, another session or inactivity, and kept as history.

use elarian_proto::{
    ActiveMessagingChannelState, CompleteMessagingSession, CustomerNumber,
    InSessionMessagingChannelState, InboundMessageBody, MessagingChannelNumber,
    MessagingSessionEndReason, MessagingSessionEndedNotification,
    MessagingSessionRenewedNotification, MessagingSessionStartedNotification, UssdSessionStatus,
    VoiceCallStatus, inbound_message_body::Entry as InEntry,
    messaging_channel_state::State as ChState,
    server_to_app_customer_notification::Entry as CustomerEntry,
};

use crate::clock::{from_timestamp, to_duration, to_timestamp};
use crate::engine::Tx;
use crate::record::push_bounded;
use crate::state::TimerKind;

impl Tx<'_> {
    /// The running, unexpired session on a channel.
    pub(super) fn running_session(
        &self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
    ) -> Option<InSessionMessagingChannelState> {
        match self.channel_state(customer_id, cust, cn)?.state? {
            ChState::InSession(s)
                if s.expires_at
                    .as_ref()
                    .is_none_or(|e| from_timestamp(e) > self.now) =>
            {
                Some(s)
            }
            _ => None,
        }
    }

    /// Starts a session (ending another running one) or renews the running one.
    pub(super) fn start_or_renew_session(
        &mut self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
        requested: Option<String>,
    ) -> String {
        let expires = self.now + (self.cfg.session_timeout_secs as i64) * 1000;
        let app = self.app.to_owned();
        if let Some(mut s) = self.running_session(customer_id, cust, cn) {
            if requested.as_ref().is_none_or(|r| r == &s.session_id) {
                s.expires_at = Some(to_timestamp(expires));
                if !s.app_ids.contains(&app) {
                    s.app_ids.push(app.clone());
                }
                return self.keep_session(&app, customer_id, cust, cn, s, expires, true);
            }
            self.end_session(
                customer_id,
                cust,
                cn,
                MessagingSessionEndReason::NormalClearing,
            );
        }
        let session_id = requested
            .filter(|s| !s.is_empty())
            .unwrap_or_else(crate::ids::session_id);
        let allowed_at = match self
            .channel_state(customer_id, cust, cn)
            .and_then(|s| s.state)
        {
            Some(ChState::Active(a)) => a.allowed_at,
            _ => Some(to_timestamp(self.now)),
        };
        let state = InSessionMessagingChannelState {
            customer_number: Some(cust.clone()),
            channel_number: Some(cn.clone()),
            reply_token: None,
            allowed_at,
            session_id: session_id.clone(),
            started_at: Some(to_timestamp(self.now)),
            expires_at: Some(to_timestamp(expires)),
            app_ids: vec![app.clone()],
            provider_session_id: None,
        };
        self.keep_session(&app, customer_id, cust, cn, state, expires, false)
    }

    /// Stores a running session, arms its expiry timer and tells the app it started or was
    /// renewed; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn keep_session(
        &mut self,
        app: &str,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
        state: InSessionMessagingChannelState,
        expires: i64,
        renewed: bool,
    ) -> String {
        let session_id = state.session_id.clone();
        self.set_channel_state(customer_id, cust, cn, ChState::InSession(state));
        self.st
            .schedule(expires, self.org, customer_id, TimerKind::SessionExpiry);
        let entry = if renewed {
            CustomerEntry::MessagingSessionRenewed(MessagingSessionRenewedNotification {
                customer_number: Some(cust.clone()),
                channel_number: Some(cn.clone()),
                session_id: session_id.clone(),
                expires_at: Some(to_timestamp(expires)),
            })
        } else {
            CustomerEntry::MessagingSessionStarted(MessagingSessionStartedNotification {
                customer_number: Some(cust.clone()),
                channel_number: Some(cn.clone()),
                session_id: session_id.clone(),
                expires_at: Some(to_timestamp(expires)),
            })
        };
        self.notify_customer(app, customer_id, entry, false);
        session_id
    }

    /// Ends the session on a channel, if one runs, and tells its apps.
    pub(super) fn end_session(
        &mut self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
        reason: MessagingSessionEndReason,
    ) {
        let Some(ChState::InSession(s)) = self
            .channel_state(customer_id, cust, cn)
            .and_then(|s| s.state)
        else {
            return;
        };
        let started = s
            .started_at
            .as_ref()
            .map(from_timestamp)
            .unwrap_or(self.now);
        let duration = to_duration((self.now - started).max(0));
        let limit = self.cfg.history_limit;
        self.set_channel_state(
            customer_id,
            cust,
            cn,
            ChState::Active(ActiveMessagingChannelState {
                customer_number: Some(cust.clone()),
                channel_number: Some(cn.clone()),
                reply_token: None,
                allowed_at: s.allowed_at,
            }),
        );
        let mut trimmed = 0;
        if let Some(rec) = self.customer_mut(customer_id) {
            let session = CompleteMessagingSession {
                customer_number: Some(cust.clone()),
                channel_number: Some(cn.clone()),
                session_id: s.session_id.clone(),
                started_at: s.started_at,
                duration: Some(duration),
                app_ids: s.app_ids.clone(),
                end_reason: reason as i32,
                cost: None,
                provider_session_id: s.provider_session_id.clone(),
            };
            trimmed = push_bounded(&mut rec.extra_mut().packed_sessions, &session, limit);
        }
        self.trimmed(trimmed);
        for app in &s.app_ids {
            self.notify_customer(
                app,
                customer_id,
                CustomerEntry::MessagingSessionEnded(MessagingSessionEndedNotification {
                    customer_number: Some(cust.clone()),
                    channel_number: Some(cn.clone()),
                    session_id: s.session_id.clone(),
                    duration: Some(duration),
                    reason: reason as i32,
                }),
                false,
            );
        }
    }

    /// Ends the customer's sessions whose expiry passed (timer callback).
    pub(in crate::engine) fn expire_sessions(&mut self, customer_id: &str) {
        let now = self.now;
        let expired: Vec<(CustomerNumber, MessagingChannelNumber)> = self
            .org()
            .customers
            .get(customer_id)
            .and_then(|c| {
                let e = c.extra.as_ref()?;
                Some(
                    e.channels()
                        .iter()
                        .filter_map(|s| match &s.state {
                            Some(ChState::InSession(i))
                                if i.expires_at
                                    .as_ref()
                                    .is_some_and(|x| from_timestamp(x) <= now) =>
                            {
                                Some((i.customer_number.clone()?, i.channel_number.clone()?))
                            }
                            _ => None,
                        })
                        .collect(),
                )
            })
            .unwrap_or_default();
        for (cust, cn) in expired {
            self.end_session(
                customer_id,
                &cust,
                &cn,
                MessagingSessionEndReason::Inactivity,
            );
        }
    }
}

/// True for inbound parts that close their session (a finished USSD dialog or a hung-up call).
pub(super) fn ends_session(part: &InboundMessageBody) -> bool {
    match &part.entry {
        Some(InEntry::Ussd(u)) => matches!(
            UssdSessionStatus::try_from(u.status),
            Ok(UssdSessionStatus::Completed
                | UssdSessionStatus::Incomplete
                | UssdSessionStatus::AppError)
        ),
        Some(InEntry::Voice(v)) => v.status >= VoiceCallStatus::Completed as i32,
        _ => false,
    }
}
