//! Turning command replies into results: a reply whose boolean `status` is false is an error.
//!
//! Replies whose status is an enum (`SendMessageReply`, `InitiatePaymentReply`,
//! `UpdateMessagingConsentReply`) carry more than success or failure (queued, pending, no
//! consent, insufficient funds, …), so they are returned unchanged for the SDK to interpret.

use elarian_proto::{
    AppToServerCommandReply, SimulatorToServerCommandReply, app_to_server_command_reply::Entry,
};

use crate::error::CommandError;

fn status(ok: bool, description: &str) -> Result<(), CommandError> {
    if ok {
        Ok(())
    } else {
        Err(CommandError::Failed {
            description: description.to_owned(),
        })
    }
}

/// Fails with [`CommandError::Failed`] when the reply reports `status: false`. Takes the reply
/// by reference: it is hundreds of bytes, and moving it in and out costs a copy each way.
/// Checks an app command's reply as [`Client::send_app_command`](crate::Client::send_app_command)
/// does: a reply whose boolean `status` is false is [`CommandError::Failed`]; replies with an
/// enum status, or none, pass. For replies read with
/// [`Client::send_app_command_with_raw_reply`](crate::Client::send_app_command_with_raw_reply).
pub fn check_app_reply(reply: &AppToServerCommandReply) -> Result<(), CommandError> {
    match &reply.entry {
        Some(Entry::GetCustomerState(r)) => status(r.status, &r.description)?,
        Some(Entry::UpdateCustomerState(r)) => status(r.status, &r.description)?,
        Some(Entry::UpdateCustomerAppData(r)) => status(r.status, &r.description)?,
        Some(Entry::LeaseCustomerAppData(r)) => status(r.status, &r.description)?,
        Some(Entry::TagCommand(r)) => status(r.status, &r.description)?,
        Some(Entry::CustomerActivity(r)) => status(r.status, &r.description)?,
        Some(Entry::ReplayPayment(r)) => status(r.status, &r.description)?,
        // No status field, or an enum status the SDK interprets; an absent entry is a reply
        // variant newer than this client and is passed on as well.
        Some(Entry::GenerateAuthToken(_))
        | Some(Entry::SendMessage(_))
        | Some(Entry::UpdateMessagingConsent(_))
        | Some(Entry::InitiatePayment(_))
        | None => {}
    }
    Ok(())
}

/// Fails with [`CommandError::Failed`] when the reply reports `status: false`.
pub(crate) fn check_simulator_reply(
    reply: SimulatorToServerCommandReply,
) -> Result<SimulatorToServerCommandReply, CommandError> {
    status(reply.status, &reply.description)?;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use elarian_proto::{SendMessageReply, TagCommandReply};

    #[test]
    fn false_status_is_failed_and_enum_status_passes() {
        let failed = AppToServerCommandReply {
            entry: Some(Entry::TagCommand(TagCommandReply {
                status: false,
                description: "no such customer".into(),
                work_id: None,
            })),
        };
        match check_app_reply(&failed) {
            Err(CommandError::Failed { description }) => {
                assert_eq!(description, "no such customer")
            }
            other => panic!("unexpected {other:?}"),
        }
        let queued = AppToServerCommandReply {
            entry: Some(Entry::SendMessage(SendMessageReply {
                status: 0,
                ..Default::default()
            })),
        };
        assert!(check_app_reply(&queued).is_ok());
        let sim = SimulatorToServerCommandReply {
            status: false,
            description: "bad".into(),
            message: None,
        };
        assert!(matches!(
            check_simulator_reply(sim),
            Err(CommandError::Failed { .. })
        ));
    }
}
