//! Responders: how a notification handler answers the server.

use elarian_core::ReplySender;
use elarian_proto as proto;

use crate::models::{DataValue, Message, UssdMenu, VoiceAction};

/// Answers one notification: an optional message back into the customer's session and the
/// customer's new app data.
///
/// Consumed by [`reply`](Self::reply). Dropping it unanswered sends the default reply (app data
/// unchanged, no message), as does the runtime when the handler takes longer than the
/// notification timeout.
#[derive(Debug)]
pub struct Responder {
    sender: Option<ReplySender>,
    default: proto::ServerToAppNotificationReply,
}

impl Responder {
    pub(crate) fn new(sender: ReplySender, default: proto::ServerToAppNotificationReply) -> Self {
        Responder {
            sender: Some(sender),
            default,
        }
    }

    /// Replies with `message` (if any) and `app_data`. `None` app data keeps the customer's
    /// app data as it came in; to remove it use [`Customer::delete_app_data`](crate::Customer::delete_app_data).
    pub fn reply(mut self, message: Option<Message>, app_data: Option<DataValue>) {
        let data_update = match app_data {
            Some(data) => Some(proto::AppDataUpdate {
                data: Some(data.into()),
            }),
            None => self.default.data_update.take(),
        };
        let reply = proto::ServerToAppNotificationReply {
            data_update,
            message: message.map(Into::into),
        };
        if let Some(sender) = self.sender.take() {
            // The runtime may have given up waiting (timeout); nothing left to do then.
            let _ = sender.send(reply);
        }
    }

    /// Sends the default reply now (app data unchanged, no message).
    pub fn acknowledge(self) {
        drop(self);
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let Some(sender) = self.sender.take() else {
            return;
        };
        // While a handler panics, leave the reply unsent: the runtime then sends the default
        // reply and reports the panic as an error event.
        if std::thread::panicking() {
            return;
        }
        let _ = sender.send(std::mem::take(&mut self.default));
    }
}

/// Answers a `voice_call` notification with the next voice actions.
#[derive(Debug)]
pub struct VoiceResponder(Responder);

impl VoiceResponder {
    pub(crate) fn wrap(responder: Responder) -> Self {
        VoiceResponder(responder)
    }

    /// Replies with the voice actions to run next (`None`: no actions) and the new app data.
    pub fn reply(self, actions: Option<Vec<VoiceAction>>, app_data: Option<DataValue>) {
        self.0.reply(actions.map(Message::voice), app_data)
    }

    /// The underlying generic responder (to reply with any message).
    pub fn into_inner(self) -> Responder {
        self.0
    }
}

/// Answers a `ussd_session` notification with the next USSD screen.
#[derive(Debug)]
pub struct UssdResponder(Responder);

impl UssdResponder {
    pub(crate) fn wrap(responder: Responder) -> Self {
        UssdResponder(responder)
    }

    /// Replies with the next USSD screen (`None`: no screen) and the new app data.
    pub fn reply(self, menu: Option<UssdMenu>, app_data: Option<DataValue>) {
        self.0.reply(menu.map(Message::ussd), app_data)
    }

    /// The underlying generic responder (to reply with any message).
    pub fn into_inner(self) -> Responder {
        self.0
    }
}

/// Identity wrapper so the handler macros treat every responder type alike.
pub(crate) trait WrapResponder {
    fn wrap_responder(responder: Responder) -> Self;
}

impl WrapResponder for Responder {
    fn wrap_responder(responder: Responder) -> Self {
        responder
    }
}

impl WrapResponder for VoiceResponder {
    fn wrap_responder(responder: Responder) -> Self {
        VoiceResponder::wrap(responder)
    }
}

impl WrapResponder for UssdResponder {
    fn wrap_responder(responder: Responder) -> Self {
        UssdResponder::wrap(responder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_reply() -> proto::ServerToAppNotificationReply {
        proto::ServerToAppNotificationReply {
            data_update: Some(proto::AppDataUpdate {
                data: Some(DataValue::string("old").into()),
            }),
            message: None,
        }
    }

    #[test]
    fn reply_sends_message_and_new_app_data() {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let responder = UssdResponder::wrap(Responder::new(ReplySender::new(tx), default_reply()));
        responder.reply(
            Some(UssdMenu::terminal("bye")),
            Some(DataValue::string("new")),
        );
        let reply = rx.try_recv().expect("replied");
        assert_eq!(
            reply.message,
            Some(Message::ussd(UssdMenu::terminal("bye")).into())
        );
        assert_eq!(
            reply.data_update.and_then(|d| d.data),
            Some(DataValue::string("new").into())
        );
    }

    #[test]
    fn reply_without_app_data_keeps_the_incoming_data() {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let responder = VoiceResponder::wrap(Responder::new(ReplySender::new(tx), default_reply()));
        responder.reply(Some(vec![VoiceAction::Reject]), None);
        let reply = rx.try_recv().expect("replied");
        assert_eq!(reply.data_update, default_reply().data_update);
        assert_eq!(
            reply.message,
            Some(Message::voice(vec![VoiceAction::Reject]).into())
        );
    }

    #[test]
    fn dropping_unanswered_sends_the_default_reply() {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        drop(Responder::new(ReplySender::new(tx), default_reply()));
        assert_eq!(rx.try_recv().expect("replied"), default_reply());
    }

    #[test]
    fn a_panicking_handler_leaves_the_reply_unsent() {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let responder = Responder::new(ReplySender::new(tx), default_reply());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = responder;
            panic!("handler bug");
        }));
        assert!(result.is_err());
        assert!(rx.try_recv().is_err());
    }
}
