//! The Sending lifecycle on the emulator with a manual clock: every legal and illegal
//! transition the handle exposes, preparation and transmission, skipped, failed by deadline,
//! cancel mid-transmission, restart mid-transmission, and the aggregated status.

mod common;

use std::time::Duration;

use common::*;
use elarian_campaigns::*;
use serde_json::json;

fn relative(within: &str) -> SendingPayload {
    SendingPayload {
        scheduled_with: Some(ScheduledWith {
            within: within.into(),
            kind: ScheduleType::Relative,
        }),
        ..SendingPayload::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_sending_prepares_five_minutes_ahead_then_transmits_rendered_text() {
    let emu = emulator().await;
    let app = app(&emu).await;
    let (_sim, phones) = simulator(&emu).await;
    let clock = ManualClock::new(start());
    let c = campaigns(&app, Store::memory(), &clock, test_config()).await;
    let m = c
        .create_message(sms_message("Hi {{ first_name }}, you owe {{balance}}"))
        .await
        .unwrap();
    assert_eq!(m.sendings_status, SendingsStatus::Draft);

    let mut payload = relative("15 minutes");
    payload.recipients = vec![
        inline(
            &number(1, 1),
            json!({"first_name": "Ann", "balance": "KES 100"}),
        ),
        inline(&number(1, 2), json!({"first_name": "Bo", "balance": 250})),
        // Same phone again: deduplicated.
        inline(
            &number(1, 1),
            json!({"first_name": "Ann", "balance": "KES 100"}),
        ),
        // Missing merge field: skipped with the reason, never sent as "{{balance}}".
        inline(&number(1, 3), json!({"first_name": "Cy"})),
        // No identifier for sms.
        Recipient {
            email: Some("x@example.com".into()),
            ..Recipient::default()
        },
    ];
    let s = c.create_sending(m.id, payload).await.unwrap();
    assert_eq!(s.status, SendingStatus::Scheduled);
    assert_eq!(s.scheduled_at, Some(start().plus(Duration::from_secs(900))));
    assert_eq!(
        c.message(m.id).await.unwrap().sendings_status,
        SendingsStatus::Scheduled
    );

    // A second before preparation time: not yet preparing.
    clock.advance(Duration::from_secs(599));
    c.tick().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        c.sending(s.id).await.unwrap().status,
        SendingStatus::Scheduled
    );

    // Five minutes before the time: prepares, and waits prepared.
    clock.advance(Duration::from_secs(1));
    c.tick().await.unwrap();
    wait_status(&c, s.id, SendingStatus::Prepared).await;
    let p = c.progress(s.id).await.unwrap();
    assert_eq!((p.recipients, p.duplicates, p.resolved), (4, 1, 2));
    assert_eq!(p.skipped.get("missing merge field `balance`"), Some(&1));
    assert_eq!(p.skipped.get("no identifier for the channel"), Some(&1));
    let d = c.dispatches(s.id, Page::default()).await.unwrap();
    assert_eq!(d.items.len(), 2);
    assert_eq!(
        d.items[0].content,
        DispatchContent::Text {
            text: "Hi Ann, you owe KES 100".into()
        }
    );
    assert_eq!(d.items[0].sms.unwrap().segments, 1);
    assert_eq!(phones.count(), 0, "nothing is sent while prepared");

    // A prepared sending can no longer go back to draft.
    let err = c
        .schedule(
            s.id,
            SchedulePayload {
                draft: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CampaignError::IllegalTransition(IllegalTransition {
            from: SendingStatus::Prepared,
            to: SendingStatus::Draft
        })
    );

    clock.advance(Duration::from_secs(299));
    c.tick().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        c.sending(s.id).await.unwrap().status,
        SendingStatus::Prepared
    );
    clock.advance(Duration::from_secs(1));
    c.tick().await.unwrap();
    wait_status(&c, s.id, SendingStatus::Transmitted).await;

    wait_for("the phones", || async { phones.count() == 2 }).await;
    let mut got = phones.all();
    got.sort();
    assert_eq!(
        got,
        vec![
            (number(1, 1), "Hi Ann, you owe KES 100".to_string()),
            (number(1, 2), "Hi Bo, you owe 250".to_string()),
        ]
    );
    wait_for("delivery reports", || async {
        c.progress(s.id).await.unwrap().delivered == 2
    })
    .await;
    let p = c.progress(s.id).await.unwrap();
    assert_eq!(
        (p.sent, p.failed, p.unknown, p.status),
        (2, 0, 0, Some(SendingStatus::Transmitted))
    );
    let d = c.dispatches(s.id, Page::default()).await.unwrap();
    assert!(
        d.items
            .iter()
            .all(|d| d.state == DispatchState::Sent && d.message_id.is_some())
    );
    assert_eq!(
        c.message(m.id).await.unwrap().sendings_status,
        SendingsStatus::Finished
    );

    // Final: nothing moves it.
    for payload in [
        SchedulePayload {
            draft: true,
            ..Default::default()
        },
        SchedulePayload {
            scheduled_with: relative("1 minute").scheduled_with,
            ..Default::default()
        },
    ] {
        assert!(matches!(
            c.schedule(s.id, payload).await,
            Err(CampaignError::IllegalTransition(_))
        ));
    }
    assert!(matches!(
        c.cancel(s.id).await,
        Err(CampaignError::IllegalTransition(_))
    ));
    c.shutdown().await;
}

#[tokio::test]
async fn drafts_and_schedules_switch_until_execution_and_final_ones_are_cloned() {
    let emu = emulator().await;
    let app = app(&emu).await;
    let clock = ManualClock::new(start());
    let c = campaigns(&app, Store::memory(), &clock, test_config()).await;
    let m = c.create_message(sms_message("Hei {{name}}")).await.unwrap();
    let recipients = vec![inline(&number(2, 1), json!({"name": "Ann"}))];

    // No schedule, or draft: true, is a draft.
    let s = c
        .create_sending(
            m.id,
            SendingPayload {
                recipients: recipients.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((s.status, s.scheduled_at), (SendingStatus::Draft, None));
    let mut p = relative("1 hour");
    p.recipients = recipients.clone();
    p.draft = true;
    let d2 = c.create_sending(m.id, p).await.unwrap();
    assert_eq!(d2.status, SendingStatus::Draft);
    assert!(d2.scheduled_at.is_some());
    assert_eq!(
        c.message(m.id).await.unwrap().sendings_status,
        SendingsStatus::Draft
    );

    // draft -> scheduled (absolute) -> scheduled (relative) -> draft -> scheduled.
    let at = start().plus(Duration::from_secs(3600));
    let s1 = c
        .schedule(
            s.id,
            SchedulePayload {
                scheduled_at: Some(at),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (s1.status, s1.scheduled_at),
        (SendingStatus::Scheduled, Some(at))
    );
    let s2 = c
        .schedule(
            s.id,
            SchedulePayload {
                scheduled_with: relative("2 hours").scheduled_with,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        s2.scheduled_at,
        Some(start().plus(Duration::from_secs(7200)))
    );
    assert_eq!(s2.scheduled_with.unwrap().within, "2 hours");
    let s3 = c
        .schedule(
            s.id,
            SchedulePayload {
                draft: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(s3.status, SendingStatus::Draft);
    let s4 = c
        .schedule(
            s.id,
            SchedulePayload {
                scheduled_at: Some(at),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(s4.status, SendingStatus::Scheduled);

    // Both schedules at once, or a bad relative one: typed validation errors.
    let both = SchedulePayload {
        scheduled_at: Some(at),
        scheduled_with: relative("1 minute").scheduled_with,
        draft: false,
    };
    assert!(
        matches!(c.schedule(s.id, both).await, Err(CampaignError::Invalid { field, .. }) if field == "scheduled_with")
    );
    let bad = SchedulePayload {
        scheduled_with: relative("soon").scheduled_with,
        ..Default::default()
    };
    assert!(
        matches!(c.schedule(s.id, bad).await, Err(CampaignError::Invalid { field, .. }) if field == "scheduled_with.in")
    );

    // A draft can be cancelled; a cancelled sending cannot be rescheduled, only cloned.
    let cancelled = c.cancel(d2.id).await.unwrap();
    assert_eq!(cancelled.status, SendingStatus::Cancelled);
    let err = c
        .schedule(
            d2.id,
            SchedulePayload {
                scheduled_at: Some(at),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CampaignError::IllegalTransition(IllegalTransition {
            from: SendingStatus::Cancelled,
            to: SendingStatus::Scheduled
        })
    );
    let clone = c.clone_sending(d2.id).await.unwrap();
    assert_eq!(clone.status, SendingStatus::Draft);
    assert_eq!(clone.recipients, recipients);
    assert_ne!(clone.id, d2.id);
    let m = c.message(m.id).await.unwrap();
    assert_eq!(m.sendings_count, 3);
    assert_eq!(m.latest_sending.unwrap().id, clone.id);
    // scheduled + cancelled + draft
    assert_eq!(m.sendings_status, SendingsStatus::Scheduled);

    // Unknown ids.
    assert_eq!(
        c.sending(999_999).await.unwrap_err(),
        CampaignError::NotFound {
            resource: "sending",
            id: 999_999
        }
    );
    assert!(matches!(
        c.create_sending(
            999_999,
            SendingPayload {
                recipients,
                ..Default::default()
            }
        )
        .await,
        Err(CampaignError::NotFound {
            resource: "message",
            ..
        })
    ));
    assert!(matches!(
        c.create_sending(m.id, SendingPayload::default()).await,
        Err(CampaignError::Invalid { .. })
    ));
    c.shutdown().await;
}

#[tokio::test]
async fn no_resolvable_recipient_skips_and_late_sendings_fail() {
    let emu = emulator().await;
    let app = app(&emu).await;
    let (_sim, phones) = simulator(&emu).await;
    let clock = ManualClock::new(start());
    let c = campaigns(&app, Store::memory(), &clock, test_config()).await;
    let m = c.create_message(sms_message("Hei {{name}}")).await.unwrap();

    let mut p = relative("1 minute");
    p.recipients = vec![
        inline(&number(3, 1), json!({})),
        inline("not a phone", json!({"name": "x"})),
    ];
    let skipped = c.create_sending(m.id, p).await.unwrap();
    c.tick().await.unwrap();
    wait_status(&c, skipped.id, SendingStatus::Skipped).await;
    let pr = c.progress(skipped.id).await.unwrap();
    assert_eq!(pr.resolved, 0);
    assert_eq!(pr.skipped_total(), 2);
    assert_eq!(pr.skipped.get("invalid identifier"), Some(&1));

    // Scheduled for +10 min, and nothing ran until +36 min (20 minutes after the time): failed
    // straight from scheduled. Another for +40 min prepares at +36 min, then its deadline passes
    // before it could transmit: failed from prepared.
    let mut p = relative("10 minutes");
    p.recipients = vec![inline(&number(3, 2), json!({"name": "Ann"}))];
    let late = c.create_sending(m.id, p).await.unwrap();
    let mut p = relative("40 minutes");
    p.recipients = vec![inline(&number(3, 3), json!({"name": "Bo"}))];
    let prepared = c.create_sending(m.id, p).await.unwrap();
    clock.advance(Duration::from_secs(36 * 60));
    c.tick().await.unwrap();
    wait_status(&c, late.id, SendingStatus::Failed).await;
    wait_status(&c, prepared.id, SendingStatus::Prepared).await;
    clock.advance(Duration::from_secs(25 * 60));
    c.tick().await.unwrap();
    wait_status(&c, prepared.id, SendingStatus::Failed).await;
    assert!(matches!(
        c.schedule(
            prepared.id,
            SchedulePayload {
                scheduled_with: relative("1 minute").scheduled_with,
                ..Default::default()
            }
        )
        .await,
        Err(CampaignError::IllegalTransition(IllegalTransition {
            from: SendingStatus::Failed,
            ..
        }))
    ));
    assert_eq!(
        c.clone_sending(prepared.id).await.unwrap().status,
        SendingStatus::Draft
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(phones.count(), 0, "a failed sending sends nothing");
    c.shutdown().await;
}

fn rated(per_sec: u32) -> CampaignsConfig {
    let mut config = test_config();
    config.rates.insert(ChannelType::Sms, per_sec);
    config.batch_size = 8;
    config.concurrency = 4;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_transmission_sends_nothing_after_it_returns() {
    let emu = emulator().await;
    let app = app(&emu).await;
    let (_sim, phones) = simulator(&emu).await;
    let clock = ManualClock::new(start());
    let c = campaigns(&app, Store::memory(), &clock, rated(100)).await;
    let m = c.create_message(sms_message("Hei {{name}}")).await.unwrap();
    let mut p = relative("1 minute");
    p.recipients = (0..200)
        .map(|i| inline(&number(4, i), json!({"name": format!("n{i}")})))
        .collect();
    let s = c.create_sending(m.id, p).await.unwrap();
    clock.advance(Duration::from_secs(60));
    c.tick().await.unwrap();
    wait_for("some sends", || async {
        c.progress(s.id).await.unwrap().sent >= 20
    })
    .await;
    let cancelled = c.cancel(s.id).await.unwrap();
    assert_eq!(cancelled.status, SendingStatus::Cancelled);
    let sent_at_cancel = c.progress(s.id).await.unwrap().sent;
    // Everything sent before the cancel returned reaches the phones; nothing after.
    wait_for("the phones", || async {
        phones.count() as u64 >= sent_at_cancel
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p = c.progress(s.id).await.unwrap();
    assert!(p.sent < 200, "{p:?}");
    assert_eq!(phones.count() as u64, p.sent, "{p:?}");
    assert_eq!(p.status, Some(SendingStatus::Cancelled));
    assert_eq!(
        c.sending(s.id).await.unwrap().status,
        SendingStatus::Cancelled
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_transmission_resumes_and_sends_nobody_twice() {
    let emu = emulator().await;
    let app = app(&emu).await;
    let (_sim, phones) = simulator(&emu).await;
    let clock = ManualClock::new(start());
    let store = Store::memory();
    let first = campaigns(&app, store.clone(), &clock, rated(200)).await;
    let m = first
        .create_message(sms_message("Hei {{name}}"))
        .await
        .unwrap();
    let mut p = relative("1 minute");
    p.recipients = (0..150)
        .map(|i| inline(&number(5, i), json!({"name": format!("n{i}")})))
        .collect();
    let s = first.create_sending(m.id, p).await.unwrap();
    clock.advance(Duration::from_secs(60));
    first.tick().await.unwrap();
    wait_for("some sends", || async {
        first.progress(s.id).await.unwrap().sent >= 30
    })
    .await;
    // The process dies: its tasks stop wherever they are, sends in flight included.
    first.shutdown().await;
    assert_eq!(
        first.sending(s.id).await.unwrap().status,
        SendingStatus::Transmitting
    );
    let sent_before = phones.count();
    assert!(sent_before < 150);

    let second = campaigns(&app, store, &clock, test_config()).await;
    second.tick().await.unwrap();
    wait_status(&second, s.id, SendingStatus::Transmitted).await;
    let p = second.progress(s.id).await.unwrap();
    assert_eq!(p.resolved, 150);
    assert_eq!(p.sent + p.unknown, 150, "{p:?}");
    // Unknown dispatches are reported, not resent.
    let unknown = second.unknown_dispatches(s.id).await.unwrap();
    assert_eq!(unknown.len() as u64, p.unknown);
    wait_for("the phones", || async { phones.count() as u64 >= p.sent }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let per_number = phones.per_number();
    assert!(
        per_number.values().all(|n| *n == 1),
        "someone got two messages: {per_number:?}"
    );
    assert!(phones.count() as u64 <= 150);
    assert!(phones.count() as u64 >= p.sent);
    second.shutdown().await;
}
