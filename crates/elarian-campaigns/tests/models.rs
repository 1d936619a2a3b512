//! Every JSON example of the seed decodes and encodes back to the same JSON; bad JSON is a typed
//! error naming the field.

use elarian_campaigns::*;
use serde_json::{Value, json};

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(example: Value) -> T {
    let text = example.to_string();
    let decoded: T = from_json(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let back = serde_json::to_value(&decoded).unwrap();
    assert_eq!(back, example);
    decoded
}

fn template(kind: &str, content: Value, wrapper: Option<Value>) -> Value {
    let mut t = json!({
        "id": 609193, "type": kind, "content": content,
        "created_at": "2020-09-15T12:45:08.618Z", "updated_at": "2020-09-15T12:45:08.618Z"
    });
    if let Some(w) = wrapper {
        t["wrapper_id"] = w;
    }
    t
}

#[test]
fn message_example_round_trips() {
    let m: Message = round_trip(json!({
      "id": 758131, "name": "DD3", "shorten_urls": true, "track_in_shortener": false,
      "campaign_id": null, "service": null,
      "created_at": "2020-09-15T10:01:09.467Z", "updated_at": "2020-09-15T10:01:09.467Z",
      "channels": [{
          "id": 55781, "type": "sms",
          "sender": { "type": "alphanumeric", "value": "Infinity" },
          "template": {
            "id": 609193, "type": "plain", "content": { "body": "Hei {{name}}" },
            "created_at": "2020-09-15T12:45:08.618Z", "updated_at": "2020-09-15T12:45:08.618Z"
          },
          "created_at": "2020-09-15T12:45:08.625Z", "updated_at": "2020-09-15T12:45:08.625Z"
      }],
      "sendings_status": "scheduled", "sendings_count": 3,
      "latest_sending": {
        "id": 3920, "status": "scheduled", "audience_id": 107103, "recipients_count": 83,
        "scheduled_at": "2020-10-15T15:27:02.853Z",
        "created_at": "2020-09-15T12:45:08.625Z", "updated_at": "2020-09-15T12:45:08.625Z"
      }
    }));
    assert_eq!(m.channels[0].kind, ChannelType::Sms);
    assert_eq!(m.sendings_status, SendingsStatus::Scheduled);
    assert_eq!(m.latest_sending.unwrap().recipients_count, 83);
}

#[test]
fn channel_example_round_trips() {
    let c: Channel = round_trip(json!({
      "id": 55781, "type": "sms",
      "sender": { "type": "alphanumeric", "value": "Infinity" },
      "template": template("plain", json!({ "body": "Hei {{name}}" }), None),
      "created_at": "2020-09-15T12:45:08.625Z", "updated_at": "2020-09-15T12:45:08.625Z"
    }));
    assert_eq!(c.sender.unwrap().kind, SenderType::Alphanumeric);
    let email: Channel = round_trip(json!({
      "id": 1, "type": "email", "from_email": "news@example.com", "from_name": "News",
      "template": template("email", json!({ "subject": "Welcome!", "body": "<b>Hei {{name}}</b>" }), Some(Value::Null)),
      "created_at": "2020-09-15T12:45:08.625Z", "updated_at": "2020-09-15T12:45:08.625Z"
    }));
    assert_eq!(email.from_name.as_deref(), Some("News"));
}

#[test]
fn template_examples_round_trip() {
    let t: Template = round_trip(template(
        "plain",
        json!({ "body": "Hei {{name}}" }),
        Some(json!(5913)),
    ));
    assert_eq!(t.wrapper_id, Nullable::Value(5913));
    let t: Template = round_trip(template(
        "plain",
        json!({ "body": "Hei {{name}}" }),
        Some(Value::Null),
    ));
    assert_eq!(t.wrapper_id, Nullable::Null);
    let t: Template = round_trip(template(
        "email",
        json!({ "subject": "Welcome!", "body": "<b>Hei {{name}}</b>" }),
        Some(Value::Null),
    ));
    assert_eq!(t.content.subject(), Some("Welcome!"));
    let t: Template = round_trip(template(
        "bee_email",
        json!({ "subject": "Welcome!", "body": "<b>Hei {{name}}</b>", "bee_json": {} }),
        Some(Value::Null),
    ));
    assert_eq!(t.content.kind(), TemplateType::BeeEmail);
    let t: Template = round_trip(template(
        "push",
        json!({ "subject": "Welcome", "body": "Hi {{name}}!", "uri": "iml://app/cpn" }),
        Some(Value::Null),
    ));
    assert!(
        matches!(t.content, TemplateContent::Push { uri: Some(ref u), .. } if u == "iml://app/cpn")
    );
    // Optional keys stay absent.
    let _: Template = round_trip(template("email", json!({ "body": "<p>x</p>" }), None));
}

#[test]
fn sending_and_recipient_examples_round_trip() {
    let s: Sending = round_trip(json!({
      "id": 1000016, "audience_id": 106642, "status": "scheduled",
      "scheduled_at": "2020-09-18T09:28:59.918Z",
      "scheduled_with": { "in": "15 minutes", "type": "relative" },
      "created_at": "2020-09-18T09:13:59.937Z", "updated_at": "2020-09-18T09:13:59.937Z",
      "recipients": [{
          "member_id": 150, "msisdn": null, "email": null, "app_token": null,
          "properties": { "first_name": "Piotr" }
      }]
    }));
    assert_eq!(s.scheduled_with.unwrap().within, "15 minutes");
    assert_eq!(s.recipients[0].member_id, Some(MemberId::Number(150)));
    let r: Recipient = round_trip(json!({
      "member_id": 150, "msisdn": "4740485124", "email": "recipient@example.com",
      "app_token": "c6OE_joK28g:APA91bFkT5fzhdWJMJswPo3btVLxtMmhi7jKdOE_VL1IhkSmuoz3iEQMg4Cq",
      "properties": { "first_name": "Piotr" }
    }));
    assert_eq!(r.msisdn.as_deref(), Some("4740485124"));
}

#[test]
fn every_enum_value_is_spelled_as_the_seed() {
    for s in SendingStatus::ALL {
        assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
    }
    for (v, text) in [
        (SendingsStatus::Draft, "draft"),
        (SendingsStatus::Scheduled, "scheduled"),
        (SendingsStatus::Finished, "finished"),
    ] {
        assert_eq!(serde_json::to_value(v).unwrap(), json!(text));
    }
    for (v, text) in [
        (Service::Campaigns, "campaigns"),
        (Service::Tenants, "tenants"),
    ] {
        assert_eq!(serde_json::to_value(v).unwrap(), json!(text));
    }
    for t in ["sms", "email", "push"] {
        let c: ChannelType = serde_json::from_value(json!(t)).unwrap();
        assert_eq!(c.as_str(), t);
    }
    for t in ["plain", "email", "bee_email", "push"] {
        let v: TemplateType = serde_json::from_value(json!(t)).unwrap();
        assert_eq!(serde_json::to_value(v).unwrap(), json!(t));
    }
}

#[test]
fn unknown_values_and_malformed_json_name_the_field() {
    let err = from_json::<Sending>(
        r#"{"id":1,"audience_id":null,"status":"sent","scheduled_at":null,"scheduled_with":null,
            "created_at":"2020-09-18T09:13:59.937Z","updated_at":"2020-09-18T09:13:59.937Z","recipients":[]}"#,
    )
    .unwrap_err();
    assert_eq!(err.path, "status");
    assert!(err.message.contains("unknown variant `sent`"), "{err}");

    let err = from_json::<NewMessage>(
        r#"{"name":"x","channels":[{"type":"sms","sender":{"type":"shortcode","value":"1"},
            "template":{"type":"plain","content":{"body":"x"}}}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.path, "channels[0].sender.type");

    let err = from_json::<NewMessage>(
        r#"{"name":"x","channels":[{"type":"sms","template":{"type":"plain","content":{"text":"x"}}}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.path, "channels[0].template");
    assert!(err.message.contains("content"), "{err}");

    let err =
        from_json::<Sending>(r#"{"id":1,"status":"draft","created_at":"yesterday"}"#).unwrap_err();
    assert_eq!(err.path, "created_at");

    let err = from_json::<Recipient>(r#"{"msisdn": "1", "phone": "2"}"#).unwrap_err();
    assert!(err.message.contains("phone"), "{err}");

    let err = from_json::<Recipient>(r#"{"msisdn": "1""#).unwrap_err();
    assert!(err.message.contains("EOF"), "{err}");
    let err = from_json::<Recipient>(r#"{} trailing"#).unwrap_err();
    assert_eq!(err.path, ".");
}
