//! Consent: whether a customer allows or blocked a channel, set by the app or replayed.

use elarian_proto::{
    ActiveMessagingChannelState, BlockedMessagingChannelState, CustomerNumber,
    MessagingChannelNumber, MessagingConsentUpdate, MessagingConsentUpdateNotification,
    MessagingConsentUpdateStatus, UpdateMessagingConsentCommand, UpdateMessagingConsentReply,
    app_to_server_command_reply::Entry as ReplyEntry, messaging_channel_state::State as ChState,
    server_to_app_customer_notification::Entry as CustomerEntry,
};

use crate::clock::to_timestamp;
use crate::engine::{Selector, Tx};

impl Tx<'_> {
    pub(super) fn is_blocked(
        &self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
    ) -> bool {
        matches!(
            self.channel_state(customer_id, cust, cn)
                .and_then(|s| s.state),
            Some(ChState::Blocked(_))
        )
    }

    /// Sets consent on a channel; allowing keeps a running session.
    pub(super) fn set_consent(
        &mut self,
        customer_id: &str,
        cust: &CustomerNumber,
        cn: &MessagingChannelNumber,
        update: MessagingConsentUpdate,
        at: i64,
    ) {
        let current = self
            .channel_state(customer_id, cust, cn)
            .and_then(|s| s.state);
        let state = match update {
            MessagingConsentUpdate::Block => ChState::Blocked(BlockedMessagingChannelState {
                customer_number: Some(cust.clone()),
                channel_number: Some(cn.clone()),
                reply_token: None,
                blocked_at: Some(to_timestamp(at)),
            }),
            _ => match current {
                Some(ChState::InSession(mut s)) => {
                    s.allowed_at = Some(to_timestamp(at));
                    ChState::InSession(s)
                }
                _ => ChState::Active(ActiveMessagingChannelState {
                    customer_number: Some(cust.clone()),
                    channel_number: Some(cn.clone()),
                    reply_token: None,
                    allowed_at: Some(to_timestamp(at)),
                }),
            },
        };
        self.set_channel_state(customer_id, cust, cn, state);
    }

    pub(in crate::engine) fn update_messaging_consent(
        &mut self,
        c: UpdateMessagingConsentCommand,
    ) -> ReplyEntry {
        let reply =
            |status: MessagingConsentUpdateStatus, description: &str, id: Option<String>| {
                ReplyEntry::UpdateMessagingConsent(UpdateMessagingConsentReply {
                    status: status as i32,
                    description: description.into(),
                    customer_id: id,
                })
            };
        let cn = match self.check_channel(&c.channel_number) {
            Ok(cn) => cn,
            Err(e) => return reply(MessagingConsentUpdateStatus::InvalidChannelNumber, &e, None),
        };
        let update = match MessagingConsentUpdate::try_from(c.update) {
            Ok(u @ (MessagingConsentUpdate::Allow | MessagingConsentUpdate::Block)) => u,
            _ => {
                return reply(
                    MessagingConsentUpdateStatus::ApplicationError,
                    "update must be ALLOW or BLOCK",
                    None,
                );
            }
        };
        let Some(cust) = c.customer_number else {
            return reply(
                MessagingConsentUpdateStatus::ApplicationError,
                "customer_number is required",
                None,
            );
        };
        let id = match self.resolve(Selector::Number(cust.clone()), true) {
            Ok(id) => id,
            Err(e) => return reply(MessagingConsentUpdateStatus::ApplicationError, &e, None),
        };
        self.set_consent(&id, &cust, &cn, update, self.now);
        let app = self.app.to_owned();
        self.notify_customer(
            &app,
            &id,
            CustomerEntry::MessagingConsentUpdate(MessagingConsentUpdateNotification {
                customer_number: Some(cust),
                channel_number: Some(cn),
                update: update as i32,
                status: MessagingConsentUpdateStatus::Completed as i32,
            }),
            false,
        );
        reply(
            MessagingConsentUpdateStatus::Completed,
            "consent updated",
            Some(id),
        )
    }
}
