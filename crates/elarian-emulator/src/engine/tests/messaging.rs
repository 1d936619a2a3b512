//! Messaging: outbound messages and calls, consent, inbound messages, sessions.

use super::*;

#[test]
fn send_message_reaches_the_simulator_and_reports_delivery() {
    let h = harness();
    let (reply, effects) = h.run(E::SendMessage(p::SendMessageCommand {
        customer_number: Some(phone("+254700000013")),
        channel_number: Some(sms()),
        message: Some(text_message("hello")),
    }));
    let R::SendMessage(r) = reply else {
        panic!("wrong reply")
    };
    assert_eq!(r.status, MessageDeliveryStatus::Sent as i32);
    let message_id = r.message_id.unwrap();
    let customer_id = r.customer_id.unwrap();
    let sims = sim_entries(&effects);
    let [SE::SendMessage(s)] = sims.as_slice() else {
        panic!("expected one simulator notification, got {sims:?}")
    };
    assert_eq!(s.message_id, message_id);
    assert_eq!(s.customer_number.as_ref().unwrap().number, "+254700000013");
    assert_eq!(s.message, Some(text_message("hello")));
    let apps = app_entries(&effects);
    assert!(apps.iter().any(|(id, e)| id == &customer_id
        && matches!(e, CE::MessageStatus(m) if m.message_id == message_id
            && m.status == MessageDeliveryStatus::Delivered as i32)));
    let messages = h.state(&customer_id).messaging_state.unwrap().messages;
    assert_eq!(messages.len(), 1);
}

#[test]
fn the_message_history_keeps_the_newest_and_counts_what_it_dropped() {
    let h = harness_with(EmulatorConfig {
        history_limit: 2,
        ..EmulatorConfig::default()
    });
    let mut customer_id = String::new();
    for text in ["one", "two", "three"] {
        let (reply, _) = h.run(E::SendMessage(p::SendMessageCommand {
            customer_number: Some(phone("+254700000016")),
            channel_number: Some(sms()),
            message: Some(text_message(text)),
        }));
        let R::SendMessage(r) = reply else {
            panic!("wrong reply")
        };
        customer_id = r.customer_id.unwrap();
    }
    let messages = h.state(&customer_id).messaging_state.unwrap().messages;
    let texts: Vec<_> = messages
        .iter()
        .filter_map(|m| match &m.entry {
            Some(p::channel_message::Entry::Sent(s)) => s.message.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(texts, vec![text_message("two"), text_message("three")]);
    assert_eq!(h.engine.history_trimmed(), 1);
}

#[test]
fn send_message_validates_channel_and_body() {
    let h = harness();
    let send = |cn: MessagingChannelNumber, m: Option<p::OutboundMessage>| match h
        .run(E::SendMessage(p::SendMessageCommand {
            customer_number: Some(phone("+254700000014")),
            channel_number: Some(cn),
            message: m,
        }))
        .0
    {
        R::SendMessage(r) => r.status,
        _ => panic!("wrong reply"),
    };
    let wrong = MessagingChannelNumber {
        channel: MessagingChannel::Sms as i32,
        number: "99999".into(),
    };
    assert_eq!(
        send(wrong, Some(text_message("x"))),
        MessageDeliveryStatus::InvalidChannelNumber as i32
    );
    assert_eq!(
        send(sms(), None),
        MessageDeliveryStatus::InvalidRequest as i32
    );
    assert_eq!(
        send(sms(), Some(p::OutboundMessage::default())),
        MessageDeliveryStatus::InvalidRequest as i32
    );
}

#[test]
fn blocked_consent_stops_messages_until_allowed() {
    let h = harness();
    let consent = |u: p::MessagingConsentUpdate| {
        h.run(E::UpdateMessagingConsent(
            p::UpdateMessagingConsentCommand {
                customer_number: Some(phone("+254700000015")),
                channel_number: Some(sms()),
                update: u as i32,
            },
        ))
    };
    let (reply, effects) = consent(p::MessagingConsentUpdate::Block);
    let R::UpdateMessagingConsent(r) = reply else {
        panic!("wrong reply")
    };
    assert_eq!(r.status, p::MessagingConsentUpdateStatus::Completed as i32);
    assert!(app_entries(&effects).iter().any(|(_, e)| matches!(e,
        CE::MessagingConsentUpdate(n) if n.update == p::MessagingConsentUpdate::Block as i32)));
    let send = || match h
        .run(E::SendMessage(p::SendMessageCommand {
            customer_number: Some(phone("+254700000015")),
            channel_number: Some(sms()),
            message: Some(text_message("promo")),
        }))
        .0
    {
        R::SendMessage(r) => r.status,
        _ => panic!("wrong reply"),
    };
    assert_eq!(send(), MessageDeliveryStatus::NoConsent as i32);
    consent(p::MessagingConsentUpdate::Allow);
    assert_eq!(send(), MessageDeliveryStatus::Sent as i32);
}

#[test]
fn voice_dialplan_on_voice_channel_places_a_call() {
    let h = harness();
    let voice = MessagingChannelNumber {
        channel: MessagingChannel::Voice as i32,
        number: TEST_VOICE_NUMBER.into(),
    };
    let dialplan = p::OutboundMessage {
        body: Some(p::OutboundMessageBody {
            entry: Some(p::outbound_message_body::Entry::Voice(
                p::VoiceCallDialplanMessageBody {
                    actions: vec![p::VoiceCallAction {
                        entry: Some(p::voice_call_action::Entry::Say(p::SayCallAction {
                            text: "hi".into(),
                            ..Default::default()
                        })),
                    }],
                },
            )),
        }),
        ..Default::default()
    };
    let (reply, effects) = h.run(E::SendMessage(p::SendMessageCommand {
        customer_number: Some(phone("+254700000016")),
        channel_number: Some(voice),
        message: Some(dialplan),
    }));
    let R::SendMessage(r) = reply else {
        panic!("wrong reply")
    };
    assert_eq!(r.status, MessageDeliveryStatus::SessionInitiated as i32);
    let session_id = r.session_id.expect("a call has a session");
    let sims = sim_entries(&effects);
    let [SE::MakeVoiceCall(call)] = sims.as_slice() else {
        panic!("expected a call, got {sims:?}")
    };
    assert_eq!(call.session_id, session_id);
    assert!(
        app_entries(&effects).iter().any(
            |(_, e)| matches!(e, CE::MessagingSessionStarted(s) if s.session_id == session_id)
        )
    );
}

fn ussd_input(status: p::UssdSessionStatus, t: &str) -> p::InboundMessageBody {
    p::InboundMessageBody {
        entry: Some(p::inbound_message_body::Entry::Ussd(
            p::UssdInputMessageBody {
                status: status as i32,
                text: Some(t.into()),
            },
        )),
    }
}

#[test]
fn inbound_ussd_notifies_the_app_and_a_terminal_menu_ends_the_session() {
    let h = harness();
    let out = h.simulate(p::simulator_to_server_command::Entry::ReceiveMessage(
        p::ReceiveMessageSimulatorCommand {
            customer_number: "+254700000017".into(),
            channel_number: Some(ussd()),
            parts: vec![ussd_input(p::UssdSessionStatus::Active, "")],
            session_id: Some("sess-1".into()),
            cost: None,
            duration: None,
        },
    ));
    assert!(out.reply.status, "{}", out.reply.description);
    let (idx, exchange) = out.exchange.expect("the simulator waits for the app");
    let Effect::App(notice) = &out.effects[idx] else {
        panic!("the awaited effect is an app notification")
    };
    assert!(notice.awaits_reply);
    let entries = app_entries(&out.effects);
    assert!(entries.iter().any(|(_, e)| matches!(e,
        CE::MessagingSessionStarted(s) if s.session_id == "sess-1")));
    assert!(entries.iter().any(|(_, e)| matches!(e,
        CE::ReceivedMessage(m) if m.session_id.as_deref() == Some("sess-1"))));

    let menu = p::OutboundMessage {
        body: Some(p::OutboundMessageBody {
            entry: Some(p::outbound_message_body::Entry::Ussd(
                p::UssdMenuMessageBody {
                    text: "Bye".into(),
                    is_terminal: true,
                },
            )),
        }),
        ..Default::default()
    };
    let done = h
        .engine
        .inbound_reply(&h.sim, &exchange, Some(menu.clone()));
    assert!(done.reply.status);
    assert_eq!(done.reply.message, Some(menu));
    assert!(app_entries(&done.effects).iter().any(|(_, e)| matches!(e,
        CE::MessagingSessionEnded(s) if s.session_id == "sess-1"
            && s.reason == p::MessagingSessionEndReason::NormalClearing as i32)));
    let st = h.state(&exchange.customer_id).messaging_state.unwrap();
    assert_eq!(st.sessions.len(), 1);
    assert_eq!(st.messages.len(), 2, "the inbound message and the menu");

    let reply = match h
        .run(E::ReplyToMessage(p::ReplyToMessageCommand {
            customer_id: exchange.customer_id.clone(),
            message_id: "el_msg_unknown".into(),
            message: Some(text_message("x")),
        }))
        .0
    {
        R::SendMessage(r) => r,
        _ => panic!("wrong reply"),
    };
    assert_eq!(
        reply.status,
        MessageDeliveryStatus::InvalidReplyToMessageId as i32
    );
}

#[test]
fn idle_sessions_end_by_inactivity() {
    let h = harness();
    let out = h.simulate(p::simulator_to_server_command::Entry::ReceiveMessage(
        p::ReceiveMessageSimulatorCommand {
            customer_number: "+254700000018".into(),
            channel_number: Some(ussd()),
            parts: vec![ussd_input(p::UssdSessionStatus::Active, "")],
            session_id: None,
            ..Default::default()
        },
    ));
    assert!(out.reply.status);
    h.clock
        .advance_millis(EmulatorConfig::default().session_timeout_secs as i64 * 1000);
    let ended = app_entries(&h.fire());
    assert!(ended.iter().any(|(_, e)| matches!(e,
        CE::MessagingSessionEnded(s) if s.reason == p::MessagingSessionEndReason::Inactivity as i32)));
}

#[test]
fn received_sms_can_be_replied_to() {
    let h = harness();
    let out = h.simulate(p::simulator_to_server_command::Entry::ReceiveMessage(
        p::ReceiveMessageSimulatorCommand {
            customer_number: "+254700000019".into(),
            channel_number: Some(sms()),
            parts: vec![p::InboundMessageBody {
                entry: Some(p::inbound_message_body::Entry::Text("OK".into())),
            }],
            ..Default::default()
        },
    ));
    let (_, ex) = out.exchange.unwrap();
    assert!(ex.session_id.is_none(), "SMS has no sessions");
    let (reply, effects) = h.run(E::ReplyToMessage(p::ReplyToMessageCommand {
        customer_id: ex.customer_id.clone(),
        message_id: ex.message_id.clone(),
        message: Some(text_message("thanks")),
    }));
    assert!(matches!(reply, R::SendMessage(r) if r.status == MessageDeliveryStatus::Sent as i32));
    assert!(matches!(
        sim_entries(&effects).as_slice(),
        [SE::SendMessage(_)]
    ));
}

#[test]
fn send_message_tag_reaches_tagged_customers() {
    let h = harness();
    let a = h.create("+254700000020");
    let b = h.create("+254700000021");
    h.tag(&a, "vip", "1", None);
    h.tag(&b, "vip", "1", None);
    let (reply, effects) = h.run(E::SendMessageTag(p::SendMessageTagCommand {
        tag: Some(mapping("vip", "1")),
        channel_number: Some(sms()),
        message: Some(text_message("hi vip")),
    }));
    assert!(matches!(reply, R::TagCommand(t) if t.status && t.work_id.is_some()));
    assert_eq!(sim_entries(&effects).len(), 2);
}
