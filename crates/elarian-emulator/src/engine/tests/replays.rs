//! Replays: history from another system, applied to the state it describes.

use super::*;

#[test]
fn replays_update_the_state_they_describe() {
    let h = harness();
    let r = h.update(E::ReplaySentMessage(p::ReplaySentMessageCommand {
        provider_message_id: "prov-1".into(),
        customer_number: Some(phone("+254700000031")),
        channel_number: Some(sms()),
        message: Some(text_message("old")),
        status: MessageDeliveryStatus::Sent as i32,
        ..Default::default()
    }));
    assert!(r.status, "{}", r.description);
    let id = r.customer_id.unwrap();
    let r = h.update(E::ReplayMessageStatusUpdate(
        p::ReplayMessageStatusUpdateCommand {
            provider_message_id: "prov-1".into(),
            customer_number: Some(phone("+254700000031")),
            channel_number: Some(sms()),
            status: MessageDeliveryStatus::Read as i32,
            ..Default::default()
        },
    ));
    assert!(r.status, "{}", r.description);
    let msgs = h.state(&id).messaging_state.unwrap().messages;
    let Some(p::channel_message::Entry::Sent(s)) = &msgs[0].entry else {
        panic!("expected a sent message")
    };
    assert_eq!(s.status, MessageDeliveryStatus::Read as i32);
    let r = h.update(E::ReplayMessagingConsentUpdate(
        p::ReplayMessagingConsentUpdateCommand {
            customer_number: Some(phone("+254700000031")),
            channel_number: Some(sms()),
            updated_at: None,
            update: p::MessagingConsentUpdate::Block as i32,
        },
    ));
    assert!(r.status);
    let channels = h.state(&id).messaging_state.unwrap().channels;
    assert!(matches!(
        channels[0].state,
        Some(p::messaging_channel_state::State::Blocked(_))
    ));
    let (reply, _) = h.run(E::ReplayPayment(p::ReplayPaymentCommand {
        provider_transaction_id: "mp-9".into(),
        debit_party: Some(mobile("+254700000031")),
        credit_party: Some(purse()),
        status: PaymentStatus::PendingConfirmation as i32,
        value: Some(kes(5.0)),
        ..Default::default()
    }));
    let R::ReplayPayment(rp) = reply else {
        panic!("wrong reply")
    };
    assert!(rp.status);
    assert_eq!(rp.debit_customer_id.as_deref(), Some(id.as_str()));
    let (reply, _) = h.run(E::ReplayPaymentStatusUpdate(
        p::ReplayPaymentStatusUpdateCommand {
            customer_number: Some(phone("+254700000031")),
            provider_transaction_id: "mp-9".into(),
            updated_at: None,
            status: PaymentStatus::Success as i32,
        },
    ));
    assert!(matches!(reply, R::ReplayPayment(r) if r.status));
    let log = h.state(&id).payment_state.unwrap().transaction_log;
    assert_eq!(log[0].status, PaymentStatus::Success as i32);
}
