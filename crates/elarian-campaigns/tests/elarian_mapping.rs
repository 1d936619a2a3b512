//! The mapping onto Elarian, end to end through the emulator and the simulator: members (by
//! secondary id `member_id` or customer id) with merge fields from their metadata overridden by
//! `properties`, email with escaped HTML, audiences plus inline recipients, the redb store
//! surviving a reopen, and the progress stream.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use elarian_campaigns::*;
use elarian_sdk::{CustomerNumber, DataValue, SecondaryId};
use futures_util::StreamExt;
use serde_json::json;

async fn member(
    app: &elarian_sdk::Elarian,
    msisdn: &str,
    member_id: u64,
    meta: serde_json::Value,
) -> String {
    let customer = app.customer(CustomerNumber::cellular(msisdn));
    let metadata: HashMap<String, DataValue> = meta
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), DataValue::Json(v.clone())))
        .collect();
    let reply = customer.update_metadata(metadata).await.unwrap();
    customer
        .update_secondary_ids(vec![SecondaryId::new("member_id", member_id.to_string())])
        .await
        .unwrap();
    reply.customer_id.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_audiences_and_inline_recipients_render_from_elarian_metadata() {
    let emu = emulator().await;
    let app = app(&emu).await;
    let (_sim, phones) = simulator(&emu).await;
    member(
        &app,
        &number(20, 1),
        7001,
        json!({"first_name": "Ann", "balance": "KES 10"}),
    )
    .await;
    let bo = member(
        &app,
        &number(20, 2),
        7002,
        json!({"first_name": "Bo", "balance": "KES 20"}),
    )
    .await;
    // No balance in its metadata and none in properties: skipped.
    member(&app, &number(20, 3), 7003, json!({"first_name": "Cy"})).await;

    let clock = ManualClock::new(start());
    let c = campaigns(&app, Store::memory(), &clock, test_config()).await;
    let m = c
        .create_message(sms_message("Hi {{first_name}}, you owe {{balance}}"))
        .await
        .unwrap();
    let audience = c
        .create_audience(AudiencePayload {
            name: "debtors".into(),
            recipients: vec![
                Recipient {
                    member_id: Some(MemberId::Number(7001)),
                    ..Default::default()
                },
                Recipient {
                    member_id: Some(MemberId::Number(7003)),
                    ..Default::default()
                },
                // Unknown member: skipped.
                Recipient {
                    member_id: Some(MemberId::Number(7999)),
                    ..Default::default()
                },
            ],
        })
        .await
        .unwrap();
    assert_eq!(audience.recipients_count, 3);
    let payload = SendingPayload {
        audience_id: Some(audience.id),
        recipients: vec![
            // By customer id, with a property overriding the metadata; other identifiers ignored.
            Recipient {
                member_id: Some(MemberId::CustomerId(bo)),
                msisdn: Some(number(20, 9)),
                properties: serde_json::from_value(json!({"balance": "KES 25"})).unwrap(),
                ..Default::default()
            },
            // Also in the audience: deduplicated.
            Recipient {
                member_id: Some(MemberId::Number(7001)),
                ..Default::default()
            },
            inline(&number(20, 4), json!({"first_name": "Di", "balance": 5})),
        ],
        scheduled_with: Some(ScheduledWith {
            within: "1 minute".into(),
            kind: ScheduleType::Relative,
        }),
        ..Default::default()
    };
    let s = c.create_sending(m.id, payload).await.unwrap();
    let mut progress = c.progress_stream(s.id).await.unwrap();
    clock.advance(Duration::from_secs(60));
    c.tick().await.unwrap();
    let mut seen = Vec::new();
    while let Some(p) = tokio::time::timeout(WAIT, progress.next()).await.unwrap() {
        seen.push(p.status);
    }
    assert_eq!(
        seen.last(),
        Some(&Some(SendingStatus::Transmitted)),
        "{seen:?}"
    );
    // The stream starts where the sending was when it was asked for; changes faster than the
    // reader are merged, so what lies between is seen in lifecycle order, if at all.
    assert_eq!(
        seen.first(),
        Some(&Some(SendingStatus::Scheduled)),
        "{seen:?}"
    );
    let order = [
        SendingStatus::Scheduled,
        SendingStatus::Preparing,
        SendingStatus::Prepared,
        SendingStatus::Transmitting,
        SendingStatus::Transmitted,
    ];
    let ranks: Vec<usize> = seen
        .iter()
        .map(|s| {
            order
                .iter()
                .position(|o| Some(*o) == *s)
                .unwrap_or_else(|| panic!("unexpected status in {seen:?}"))
        })
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");

    wait_for("three phones", || async { phones.count() == 3 }).await;
    let mut got = phones.all();
    got.sort();
    assert_eq!(
        got,
        vec![
            (number(20, 1), "Hi Ann, you owe KES 10".to_string()),
            (number(20, 2), "Hi Bo, you owe KES 25".to_string()),
            (number(20, 4), "Hi Di, you owe 5".to_string()),
        ]
    );
    let p = c.progress(s.id).await.unwrap();
    assert_eq!(
        (p.recipients, p.duplicates, p.resolved, p.sent),
        (5, 1, 3, 3)
    );
    assert_eq!(p.skipped.get("missing merge field `balance`"), Some(&1));
    assert_eq!(p.skipped.get("member not found"), Some(&1));
    let d = c.dispatches(s.id, Page::default()).await.unwrap();
    assert_eq!(d.items.iter().filter(|d| d.member_id.is_some()).count(), 2);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_channel_sends_escaped_html_from_the_apps_address() {
    let emu = emulator().await;
    let app = app(&emu).await;
    let (_sim, phones) = simulator(&emu).await;
    let clock = ManualClock::new(start());
    let c = campaigns(&app, Store::memory(), &clock, test_config()).await;
    let new: NewMessage = from_json(&json!({
        "name": "welcome",
        "channels": [{
            "type": "email", "from_email": EMAIL_SENDER, "from_name": "News",
            "template": {"type": "email", "wrapper_id": null,
                         "content": {"subject": "Welcome {{name}}", "body": "<b>Hei {{name}}</b>"}}
        }]
    }).to_string()).unwrap();
    let m = c.create_message(new).await.unwrap();
    assert_eq!(m.channels[0].from_name.as_deref(), Some("News"));
    let s = c
        .create_sending(
            m.id,
            SendingPayload {
                recipients: vec![
                    Recipient {
                        email: Some("ann@example.com".into()),
                        properties: serde_json::from_value(json!({"name": "<Ann & Co>"})).unwrap(),
                        ..Default::default()
                    },
                    Recipient {
                        msisdn: Some(number(21, 1)),
                        properties: serde_json::from_value(json!({"name": "x"})).unwrap(),
                        ..Default::default()
                    },
                ],
                scheduled_at: Some(start()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    c.tick().await.unwrap();
    wait_status(&c, s.id, SendingStatus::Transmitted).await;
    wait_for("the mailbox", || async { phones.count() == 1 }).await;
    assert_eq!(
        phones.all(),
        vec![(
            "ann@example.com".to_string(),
            "Welcome <Ann & Co>|<b>Hei &lt;Ann &amp; Co&gt;</b>".to_string()
        )]
    );
    let p = c.progress(s.id).await.unwrap();
    assert_eq!(p.skipped.get("no identifier for the channel"), Some(&1));
    c.shutdown().await;
}

#[tokio::test]
async fn redb_store_keeps_campaigns_across_a_reopen() {
    let emu = emulator().await;
    let app = app(&emu).await;
    let dir = std::env::temp_dir().join(format!("campaigns-reopen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("campaigns.redb");
    let clock = ManualClock::new(start());
    let (mid, sid) = {
        let c = campaigns(&app, Store::open(&path).unwrap(), &clock, test_config()).await;
        let m = c.create_message(sms_message("Hei {{name}}")).await.unwrap();
        let s = c
            .create_sending(
                m.id,
                SendingPayload {
                    recipients: vec![inline(&number(22, 1), json!({"name": "Ann"}))],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        c.shutdown().await;
        (m.id, s.id)
    };
    // The first handle and its store are dropped: the file is closed and can be reopened.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let c = campaigns(&app, Store::open(&path).unwrap(), &clock, test_config()).await;
    let m = c.message(mid).await.unwrap();
    assert_eq!(
        (m.sendings_count, m.sendings_status),
        (1, SendingsStatus::Draft)
    );
    let s = c.sending(sid).await.unwrap();
    assert_eq!(s.recipients.len(), 1);
    // Ids keep increasing after the reopen.
    let m2 = c.create_message(sms_message("x")).await.unwrap();
    assert!(m2.id > sid);
    c.shutdown().await;
    drop(c);
    let _ = std::fs::remove_dir_all(&dir);
}
