//! Property tests of the model conversions: whatever the wire carries survives a round trip.

use elarian_sdk::proto;
use elarian_sdk::{
    Cash, CustomerNumber, CustomerNumberProvider, DataValue, MessageDeliveryStatus,
    MessagingChannel, MessagingChannelNumber, PaymentStatus, Tag, VoiceCallHangupCause,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn any_enum_value_survives_the_wire(raw in any::<i32>()) {
        prop_assert_eq!(i32::from(PaymentStatus::from(raw)), raw);
        prop_assert_eq!(i32::from(MessageDeliveryStatus::from(raw)), raw);
        prop_assert_eq!(i32::from(MessagingChannel::from(raw)), raw);
        prop_assert_eq!(i32::from(VoiceCallHangupCause::from(raw)), raw);
        prop_assert_eq!(i32::from(CustomerNumberProvider::from(raw)), raw);
    }

    #[test]
    fn numbers_tags_and_cash_round_trip(
        number in ".{0,24}",
        provider in any::<i32>(),
        partition in proptest::option::of("[a-z]{0,8}"),
        key in ".{0,16}",
        value in ".{0,16}",
        amount in -1.0e12f64..1.0e12,
        currency in "[A-Z]{0,4}",
    ) {
        let n = CustomerNumber { number: number.clone(), provider: provider.into(), partition };
        prop_assert_eq!(CustomerNumber::from(proto::CustomerNumber::from(n.clone())), n);
        let c = MessagingChannelNumber::new(number, MessagingChannel::from(provider));
        prop_assert_eq!(MessagingChannelNumber::from(proto::MessagingChannelNumber::from(c.clone())), c);
        let t = Tag::new(key, value);
        prop_assert_eq!(Tag::from(proto::CustomerIndex::from(t.clone())), t);
        let cash = Cash::new(currency, amount);
        prop_assert_eq!(Cash::from(proto::Cash::from(cash.clone())), cash);
    }

    #[test]
    fn bytes_app_data_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let value = DataValue::Bytes(bytes);
        let wire = proto::DataMapValue::from(value.clone());
        let json = serde_json::to_string(&value).expect("serialize");
        prop_assert_eq!(serde_json::from_str::<DataValue>(&json).expect("deserialize"), value.clone());
        prop_assert!(matches!(wire.value, Some(proto::data_map_value::Value::BytesVal(_))));
    }

    #[test]
    fn any_string_app_data_decodes_without_loss(text in ".{0,64}") {
        // Whatever another client stored as text comes back as the same text on the wire.
        let wire = proto::DataMapValue { value: Some(proto::data_map_value::Value::StringVal(text.clone())) };
        let decoded = elarian_sdk::DataValue::from_wire(wire).expect("a value");
        let back = proto::DataMapValue::from(decoded.clone());
        match (decoded, back.value) {
            (DataValue::Text(t), Some(proto::data_map_value::Value::StringVal(s))) => {
                prop_assert_eq!(&t, &text);
                prop_assert_eq!(s, text);
            }
            (DataValue::Json(j), Some(proto::data_map_value::Value::StringVal(s))) => {
                let reparsed: serde_json::Value = serde_json::from_str(&s).expect("json");
                prop_assert_eq!(reparsed, j);
            }
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}
