//! Every command, reply and notification the SDK exchanges survives a trip through the published
//! schema.
//!
//! Each sample is built with the generated prost types (most fields set, nested messages, maps,
//! wrappers, timestamps), encoded, decoded as a `prost_reflect::DynamicMessage` with the
//! *reference* descriptors (`tests/data/elarian-wire.fds.bin`), checked for fields the reference
//! does not know, re-encoded and decoded back into the prost type, which must equal the original.
//!
//! The `*_field_number` functions match every oneof variant without a wildcard, so a new variant
//! does not compile until it is handled there; the coverage checks then fail until a sample of it
//! is added.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::OnceLock;

use elarian_proto::prost_types::{Duration, Timestamp};
use elarian_proto::*;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, Value};

const REFERENCE_FDS: &[u8] = include_bytes!("data/elarian-wire.fds.bin");
const PACKAGE: &str = "com.elarian.hera.proto";

fn reference_pool() -> DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(REFERENCE_FDS).expect("reference descriptor set loads")
    })
    .clone()
}

/// The schema as this crate defines it (extensions included), for the coverage checks.
fn our_pool() -> DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(compile_our_pool).clone()
}

fn compile_our_pool() -> DescriptorPool {
    let proto_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let fds = protox::compile(["app_socket.proto", "simulator_socket.proto"], [&proto_dir])
        .unwrap_or_else(|e| panic!("proto files compile: {e:?}"));
    DescriptorPool::from_file_descriptor_set(fds).expect("descriptor pool builds")
}

fn descriptor(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
    pool.get_message_by_name(&format!("{PACKAGE}.{name}"))
        .unwrap_or_else(|| panic!("{name} is in the descriptor pool"))
}

/// Encodes `original`, passes it through the reference schema and back, and checks nothing was
/// lost or misread. Returns the numbers of top-level fields the reference schema did not know.
fn round_trip<M>(name: &str, original: &M) -> Vec<u32>
where
    M: Message + Default + PartialEq + std::fmt::Debug,
{
    let bytes = original.encode_to_vec();
    let dynamic = DynamicMessage::decode(descriptor(&reference_pool(), name), bytes.as_slice())
        .unwrap_or_else(|e| {
            panic!("{name}: the reference schema cannot decode it: {e}\n{original:?}")
        });
    let problems = unknown_to_reference(name, &dynamic, 0);
    assert!(
        problems.is_empty(),
        "the published schema does not know parts of it:\n{}",
        problems.join("\n")
    );
    let unknown_top_level: Vec<u32> = dynamic.unknown_fields().map(|f| f.number()).collect();
    let reencoded = dynamic.encode_to_vec();
    let decoded = M::decode(reencoded.as_slice())
        .unwrap_or_else(|e| panic!("{name}: re-encoded bytes do not decode: {e}"));
    assert_eq!(&decoded, original, "{name}: changed on the round trip");
    unknown_top_level
}

/// Lists fields unknown to the reference below the top level, and enum numbers it does not define.
fn unknown_to_reference(path: &str, message: &DynamicMessage, depth: usize) -> Vec<String> {
    let mut problems = Vec::new();
    if depth > 0 {
        for field in message.unknown_fields() {
            problems.push(format!("{path}: field {} is unknown", field.number()));
        }
    }
    for (field, value) in message.fields() {
        let field_path = format!("{path}.{}", field.name());
        check_value(&field_path, &field.kind(), value, depth, &mut problems);
    }
    problems
}

fn check_value(path: &str, kind: &Kind, value: &Value, depth: usize, problems: &mut Vec<String>) {
    match value {
        Value::Message(inner) => problems.extend(unknown_to_reference(path, inner, depth + 1)),
        Value::List(items) => {
            for item in items {
                check_value(path, kind, item, depth, problems);
            }
        }
        Value::Map(entries) => match kind.as_message() {
            Some(entry) => {
                let value_kind = entry.map_entry_value_field().kind();
                for entry_value in entries.values() {
                    check_value(path, &value_kind, entry_value, depth, problems);
                }
            }
            None => problems.push(format!("{path}: map field without a map entry type")),
        },
        Value::EnumNumber(number) => match kind.as_enum() {
            Some(enumeration) if enumeration.get_value(*number).is_some() => {}
            Some(enumeration) => problems.push(format!(
                "{path}: enum {} has no value {number}",
                enumeration.full_name()
            )),
            None => problems.push(format!("{path}: enum number in a non-enum field")),
        },
        _ => {}
    }
}

/// The field numbers of the oneof `oneof` of `message` in this crate's schema.
fn oneof_numbers(message: &str, oneof: &str) -> BTreeSet<u32> {
    let pool = our_pool();
    let descriptor = descriptor(&pool, message);
    let oneof = descriptor
        .oneofs()
        .find(|o| o.name() == oneof)
        .unwrap_or_else(|| panic!("{message} has oneof {oneof}"));
    oneof.fields().map(|f| f.number()).collect()
}

fn assert_covers(message: &str, oneof: &str, covered: impl IntoIterator<Item = u32>) {
    let covered: BTreeSet<u32> = covered.into_iter().collect();
    let all = oneof_numbers(message, oneof);
    let missing: Vec<u32> = all.difference(&covered).copied().collect();
    assert!(
        missing.is_empty(),
        "{message}.{oneof}: no round-trip sample for field numbers {missing:?}"
    );
}

// ---- Building blocks -----------------------------------------------------------------------

fn text(s: &str) -> String {
    s.to_owned()
}

fn wrap(s: &str) -> Option<String> {
    Some(s.to_owned())
}

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: 1_700_000_000 + seconds,
        nanos: 250_000_000,
    })
}

fn lasting(seconds: i64) -> Option<Duration> {
    Some(Duration { seconds, nanos: 5 })
}

fn customer_number() -> CustomerNumber {
    CustomerNumber {
        provider: CustomerNumberProvider::Cellular as i32,
        number: text("+254711000001"),
        partition: wrap("ke"),
    }
}

fn sms_channel() -> MessagingChannelNumber {
    MessagingChannelNumber {
        channel: MessagingChannel::Sms as i32,
        number: text("83044"),
    }
}

fn mobile_money_channel() -> PaymentChannelNumber {
    PaymentChannelNumber {
        channel: PaymentChannel::Cellular as i32,
        number: text("83044"),
    }
}

fn kes(amount: f64) -> Option<Cash> {
    Some(Cash {
        currency_code: text("KES"),
        amount,
    })
}

fn mapping(key: &str, value: &str) -> IndexMapping {
    IndexMapping {
        key: text(key),
        value: wrap(value),
    }
}

fn index(key: &str, value: &str) -> CustomerIndex {
    CustomerIndex {
        mapping: Some(mapping(key, value)),
        expires_at: at(86_400),
    }
}

fn json(value: &str) -> Option<DataMapValue> {
    Some(DataMapValue {
        value: Some(data_map_value::Value::StringVal(value.to_owned())),
    })
}

fn raw(bytes: &[u8]) -> DataMapValue {
    DataMapValue {
        value: Some(data_map_value::Value::BytesVal(bytes.to_vec())),
    }
}

fn reminder() -> CustomerReminder {
    CustomerReminder {
        key: text("loan-due"),
        remind_at: at(3_600),
        interval: lasting(86_400),
        payload: wrap("{\"loan\":\"L-17\"}"),
    }
}

/// Picks one of the three ways a command addresses a customer, so that every way is exercised.
macro_rules! customer {
    ($module:ident, $which:expr) => {
        Some(match $which % 3 {
            0 => $module::Customer::CustomerId(text("el_cst_1")),
            1 => $module::Customer::CustomerNumber(customer_number()),
            _ => $module::Customer::SecondaryId(mapping("account", "ACC-9")),
        })
    };
}

fn say(words: &str) -> SayCallAction {
    SayCallAction {
        text: text(words),
        voice: TextToSpeechVoice::Female as i32,
        play_beep: true,
    }
}

fn voice_actions() -> VoiceCallDialplanMessageBody {
    use voice_call_action::Entry as A;
    let actions = vec![
        A::Say(say("Welcome")),
        A::Play(PlayCallAction {
            url: text("https://example.com/a.mp3"),
        }),
        A::GetDigits(GetDigitsCallAction {
            prompt: Some(get_digits_call_action::Prompt::Say(say("Press 1"))),
            timeout: lasting(10),
            finish_on_key: wrap("#"),
            num_digits: Some(4),
        }),
        A::Dial(DialCallAction {
            customer_numbers: vec![customer_number()],
            record: true,
            sequential: true,
            ringback_tone: wrap("https://example.com/ring.mp3"),
            caller_id: wrap("+254711621711"),
            max_duration: Some(300),
        }),
        A::RecordSession(RecordSessionCallAction {}),
        A::GetRecording(GetRecordingCallAction {
            prompt: Some(get_recording_call_action::Prompt::Play(PlayCallAction {
                url: text("https://example.com/beep.mp3"),
            })),
            timeout: lasting(5),
            max_length: lasting(60),
            finish_on_key: wrap("*"),
            play_beep: true,
            trim_silence: true,
        }),
        A::Enqueue(EnqueueCallAction {
            hold_music: wrap("https://example.com/hold.mp3"),
            queue_name: wrap("support"),
        }),
        A::Dequeue(DequeueCallAction {
            channel_number: Some(MessagingChannelNumber {
                channel: MessagingChannel::Voice as i32,
                number: text("+254711621711"),
            }),
            record: true,
            queue_name: wrap("support"),
        }),
        A::Reject(RejectCallAction {}),
        A::Redirect(RedirectCallAction {
            url: text("https://example.com/next"),
        }),
    ];
    VoiceCallDialplanMessageBody {
        actions: actions
            .into_iter()
            .map(|entry| VoiceCallAction { entry: Some(entry) })
            .collect(),
    }
}

fn outbound_message(body: outbound_message_body::Entry) -> OutboundMessage {
    OutboundMessage {
        body: Some(OutboundMessageBody { entry: Some(body) }),
        labels: vec![text("collections"), text("round-1")],
        provider_tag: wrap("campaign-7"),
        reply_token: wrap("rt_123"),
        reply_prompt: Some(OutboundMessageReplyPrompt {
            action: PromptMessageReplyAction::Text as i32,
            menu: vec![
                PromptMessageMenuItemBody {
                    entry: Some(prompt_message_menu_item_body::Entry::Text(text("Pay now"))),
                },
                PromptMessageMenuItemBody {
                    entry: Some(prompt_message_menu_item_body::Entry::Media(media())),
                },
            ],
        }),
    }
}

fn media() -> MediaMessageBody {
    MediaMessageBody {
        url: text("https://example.com/statement.pdf"),
        media: MediaType::Document as i32,
    }
}

fn location() -> LocationMessageBody {
    LocationMessageBody {
        latitude: -1.2921,
        longitude: 36.8219,
        label: wrap("Branch"),
        address: wrap("Moi Avenue, Nairobi"),
    }
}

fn email() -> EmailMessageBody {
    EmailMessageBody {
        subject: text("Statement"),
        body_plain: text("Your balance is KES 100"),
        body_html: text("<p>Your balance is KES 100</p>"),
        cc_list: vec![text("a@example.com")],
        bcc_list: vec![text("b@example.com")],
    }
}

/// One message of every outbound body kind, rotating with `which`.
fn any_outbound(which: usize) -> OutboundMessage {
    use outbound_message_body::Entry as B;
    let body = match which % 8 {
        0 => B::Text(text("Your loan is due")),
        1 => B::Media(media()),
        2 => B::Location(location()),
        3 => B::Email(email()),
        4 => B::Template(TemplateMessageBody {
            id: text("tpl-1"),
            params: HashMap::from([(text("name"), text("Jane")), (text("due"), text("today"))]),
        }),
        5 => B::Url(text("https://example.com/pay")),
        6 => B::Voice(voice_actions()),
        _ => B::Ussd(UssdMenuMessageBody {
            text: text("1. Pay\n2. Later"),
            is_terminal: true,
        }),
    };
    outbound_message(body)
}

fn inbound_parts() -> Vec<InboundMessageBody> {
    use inbound_message_body::Entry as P;
    let parts = vec![
        P::Text(text("OK")),
        P::Media(media()),
        P::Location(location()),
        P::Email(email()),
        P::Voice(VoiceCallInputMessageBody {
            direction: CustomerEventDirection::Inbound as i32,
            status: VoiceCallStatus::Completed as i32,
            started_at: at(10),
            hangup_cause: VoiceCallHangupCause::NormalClearing as i32,
            dtmf_digits: wrap("1234"),
            recording_url: wrap("https://example.com/rec.wav"),
            dial_data: Some(VoiceCallDialInput {
                destination_number: text("+254711000002"),
                started_at: at(20),
                duration: lasting(42),
            }),
            queue_data: Some(VoiceCallQueueInput {
                enqueued_at: at(30),
                dequeued_at: at(40),
                dequeued_to_number: wrap("+254711000003"),
                dequeued_to_session_id: wrap("sess-2"),
                queue_duration: lasting(10),
            }),
        }),
        P::Ussd(UssdInputMessageBody {
            status: UssdSessionStatus::Active as i32,
            text: wrap("1"),
        }),
    ];
    parts
        .into_iter()
        .map(|entry| InboundMessageBody { entry: Some(entry) })
        .collect()
}

fn counter_party(which: usize) -> PaymentCounterParty {
    use payment_counter_party::Party;
    let party = match which % 4 {
        0 => Party::Purse(PaymentPurseCounterParty {
            purse_id: text("el_prs_rL3IPZ"),
        }),
        1 => Party::Wallet(PaymentWalletCounterParty {
            customer_id: text("el_cst_1"),
            wallet_id: text("loans"),
        }),
        2 => Party::Customer(PaymentCustomerCounterParty {
            customer_number: Some(customer_number()),
            channel_number: Some(mobile_money_channel()),
        }),
        _ => Party::Channel(PaymentChannelCounterParty {
            channel: PaymentChannel::Cellular as i32,
            channel_code: 63902,
            source: text("83044"),
            destination: text("525900"),
            account: wrap("ACC-9"),
        }),
    };
    PaymentCounterParty { party: Some(party) }
}

fn transaction(id: &str) -> PaymentTransaction {
    PaymentTransaction {
        transaction_id: text(id),
        app_id: wrap("el_app_WZFQdt"),
        debit_party: Some(counter_party(2)),
        credit_party: Some(counter_party(0)),
        value: kes(250.5),
        status: PaymentStatus::Success as i32,
        created_at: at(1),
        updated_at: at(2),
        provider_transaction_id: wrap("MPESA123"),
        narration: wrap("Loan repayment"),
    }
}

fn customer_state() -> CustomerStateReplyData {
    let reply_token = Some(MessageReplyToken {
        token: text("rt_123"),
        expires_at: at(7_200),
    });
    let channel_states = vec![
        messaging_channel_state::State::Blocked(BlockedMessagingChannelState {
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            reply_token: reply_token.clone(),
            blocked_at: at(5),
        }),
        messaging_channel_state::State::Active(ActiveMessagingChannelState {
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            reply_token: reply_token.clone(),
            allowed_at: at(6),
        }),
        messaging_channel_state::State::InSession(InSessionMessagingChannelState {
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            reply_token,
            allowed_at: at(7),
            session_id: text("sess-1"),
            started_at: at(8),
            expires_at: at(9),
            app_ids: vec![text("el_app_WZFQdt")],
            provider_session_id: wrap("prov-sess-1"),
        }),
    ];
    let messages = vec![
        channel_message::Entry::Received(ReceivedMessage {
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            message_id: text("msg-in-1"),
            created_at: at(11),
            session_id: wrap("sess-1"),
            in_reply_to: wrap("msg-out-0"),
            provider: ChannelNumberProvider::At as i32,
            app_id: wrap("el_app_WZFQdt"),
            parts: inbound_parts(),
            cost: kes(0.8),
            provider_message_id: wrap("ATXid_1"),
        }),
        channel_message::Entry::Sent(SentMessage {
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            message_id: text("msg-out-1"),
            created_at: at(12),
            session_id: wrap("sess-1"),
            in_reply_to: wrap("msg-in-1"),
            provider: ChannelNumberProvider::Twilio as i32,
            app_id: wrap("el_app_WZFQdt"),
            updated_at: at(13),
            status: MessageDeliveryStatus::Delivered as i32,
            reactions: vec![MessageReactionState {
                created_at: at(14),
                reaction: MessageReaction::Clicked as i32,
            }],
            message: Some(any_outbound(0)),
            cost: kes(1.2),
            provider_message_id: wrap("SM123"),
        }),
    ];
    CustomerStateReplyData {
        customer_id: text("el_cst_1"),
        identity_state: Some(IdentityState {
            tags: vec![index("segment", "gold")],
            metadata: HashMap::from([(text("name"), raw(b"Jane")), (text("age"), raw(b"\x20"))]),
            secondary_ids: vec![index("account", "ACC-9")],
        }),
        messaging_state: Some(MessagingState {
            channels: channel_states
                .into_iter()
                .map(|state| MessagingChannelState { state: Some(state) })
                .collect(),
            messages: messages
                .into_iter()
                .map(|entry| ChannelMessage { entry: Some(entry) })
                .collect(),
            sessions: vec![CompleteMessagingSession {
                customer_number: Some(customer_number()),
                channel_number: Some(sms_channel()),
                session_id: text("sess-0"),
                started_at: at(-100),
                duration: lasting(90),
                app_ids: vec![text("el_app_WZFQdt")],
                end_reason: MessagingSessionEndReason::Inactivity as i32,
                cost: kes(2.0),
                provider_session_id: wrap("prov-sess-0"),
            }],
        }),
        payment_state: Some(PaymentState {
            customer_numbers: vec![customer_number()],
            channel_numbers: vec![mobile_money_channel()],
            transaction_log: vec![transaction("tx-1")],
            pending_transactions: vec![transaction("tx-2")],
            wallets: HashMap::from([(
                text("loans"),
                PaymentBalance {
                    currency_code: text("KES"),
                    available: kes(100.0),
                    actual: kes(150.0),
                    pending: HashMap::from([(
                        text("tx-2"),
                        PendingPaymentTransaction {
                            created_at: at(3),
                            value: kes(50.0),
                            converted: Some(Cash {
                                currency_code: text("USD"),
                                amount: 0.39,
                            }),
                        },
                    )]),
                    sequence_nr: 42,
                },
            )]),
        }),
        activity_state: Some(ActivityState {
            sessions: vec![ActivitySessionState {
                customer_number: Some(customer_number()),
                source: text("web"),
                session_id: text("act-1"),
                app_id: text("el_app_WZFQdt"),
                activities: vec![activity()],
                created_at: at(15),
                updated_at: at(16),
            }],
            customer_numbers: vec![customer_number()],
        }),
    }
}

fn activity() -> CustomerActivity {
    CustomerActivity {
        key: text("viewed_offer"),
        properties: HashMap::from([(text("offer"), text("topup")), (text("page"), text("2"))]),
        created_at: at(17),
    }
}

// ---- AppToServerCommand ----------------------------------------------------------------------

fn app_command_field_number(entry: &app_to_server_command::Entry) -> u32 {
    use app_to_server_command::Entry as E;
    match entry {
        E::GenerateAuthToken(_) => 1,
        E::CreateCustomer(_) => 2,
        E::GetCustomerState(_) => 3,
        E::AdoptCustomerState(_) => 4,
        E::AddCustomerReminder(_) => 5,
        E::AddCustomerReminderTag(_) => 6,
        E::CancelCustomerReminder(_) => 7,
        E::CancelCustomerReminderTag(_) => 8,
        E::UpdateCustomerTag(_) => 9,
        E::DeleteCustomerTag(_) => 10,
        E::UpdateCustomerSecondaryId(_) => 11,
        E::DeleteCustomerSecondaryId(_) => 12,
        E::UpdateCustomerMetadata(_) => 13,
        E::DeleteCustomerMetadata(_) => 14,
        E::LeaseCustomerAppData(_) => 15,
        E::UpdateCustomerAppData(_) => 16,
        E::DeleteCustomerAppData(_) => 17,
        E::SendMessage(_) => 18,
        E::SendMessageTag(_) => 19,
        E::ReplyToMessage(_) => 20,
        E::UpdateMessagingConsent(_) => 21,
        E::InitiatePayment(_) => 22,
        E::CustomerActivity(_) => 23,
        E::ReplayMessagingConsentUpdate(_) => 24,
        E::ReplayReceivedMessage(_) => 25,
        E::ReplaySentMessage(_) => 26,
        E::ReplayMessageStatusUpdate(_) => 27,
        E::ReplayMessageReactionUpdate(_) => 28,
        E::ReplayMessagingSession(_) => 29,
        E::ReplayPayment(_) => 30,
        E::ReplayPaymentStatusUpdate(_) => 31,
        E::DeleteCustomer(_) => 32,
    }
}

/// Field numbers of `AppToServerCommand.entry` that the published schema lacks.
const APP_COMMAND_EXTENSIONS: &[u32] = &[32];

fn app_commands() -> Vec<app_to_server_command::Entry> {
    use app_to_server_command::Entry as E;
    vec![
        E::GenerateAuthToken(GenerateAuthTokenCommand {}),
        E::CreateCustomer(CreateCustomerCommand {
            customer_number: Some(customer_number()),
        }),
        E::GetCustomerState(GetCustomerStateCommand {
            customer: customer!(get_customer_state_command, 0),
        }),
        E::GetCustomerState(GetCustomerStateCommand {
            customer: customer!(get_customer_state_command, 1),
        }),
        E::GetCustomerState(GetCustomerStateCommand {
            customer: customer!(get_customer_state_command, 2),
        }),
        E::AdoptCustomerState(AdoptCustomerStateCommand {
            customer_id: text("el_cst_1"),
            other_customer: Some(
                adopt_customer_state_command::OtherCustomer::OtherCustomerNumber(customer_number()),
            ),
        }),
        E::AdoptCustomerState(AdoptCustomerStateCommand {
            customer_id: text("el_cst_1"),
            other_customer: Some(
                adopt_customer_state_command::OtherCustomer::OtherCustomerId(text("el_cst_2")),
            ),
        }),
        E::AdoptCustomerState(AdoptCustomerStateCommand {
            customer_id: text("el_cst_1"),
            other_customer: Some(
                adopt_customer_state_command::OtherCustomer::OtherSecondaryId(mapping(
                    "account", "ACC-2",
                )),
            ),
        }),
        E::AddCustomerReminder(AddCustomerReminderCommand {
            customer: customer!(add_customer_reminder_command, 1),
            reminder: Some(reminder()),
        }),
        E::AddCustomerReminderTag(AddCustomerReminderTagCommand {
            tag: Some(mapping("segment", "gold")),
            reminder: Some(reminder()),
        }),
        E::CancelCustomerReminder(CancelCustomerReminderCommand {
            customer: customer!(cancel_customer_reminder_command, 2),
            key: text("loan-due"),
        }),
        E::CancelCustomerReminderTag(CancelCustomerReminderTagCommand {
            tag: Some(mapping("segment", "gold")),
            key: text("loan-due"),
        }),
        E::UpdateCustomerTag(UpdateCustomerTagCommand {
            customer: customer!(update_customer_tag_command, 0),
            updates: vec![index("segment", "gold"), index("region", "coast")],
        }),
        E::DeleteCustomerTag(DeleteCustomerTagCommand {
            customer: customer!(delete_customer_tag_command, 1),
            deletions: vec![text("segment"), text("region")],
        }),
        E::UpdateCustomerSecondaryId(UpdateCustomerSecondaryIdCommand {
            customer: customer!(update_customer_secondary_id_command, 2),
            updates: vec![index("account", "ACC-9")],
        }),
        E::DeleteCustomerSecondaryId(DeleteCustomerSecondaryIdCommand {
            customer: customer!(delete_customer_secondary_id_command, 0),
            deletions: vec![mapping("account", "ACC-9")],
        }),
        E::UpdateCustomerMetadata(UpdateCustomerMetadataCommand {
            customer: customer!(update_customer_metadata_command, 1),
            updates: HashMap::from([
                (text("name"), raw(b"Jane")),
                (
                    text("profile"),
                    DataMapValue {
                        value: Some(data_map_value::Value::StringVal(text("{\"age\":30}"))),
                    },
                ),
            ]),
        }),
        E::DeleteCustomerMetadata(DeleteCustomerMetadataCommand {
            customer: customer!(delete_customer_metadata_command, 2),
            deletions: vec![text("name")],
        }),
        E::LeaseCustomerAppData(LeaseCustomerAppDataCommand {
            customer: customer!(lease_customer_app_data_command, 0),
        }),
        E::UpdateCustomerAppData(UpdateCustomerAppDataCommand {
            customer: customer!(update_customer_app_data_command, 1),
            update: json("{\"step\":2}"),
        }),
        E::DeleteCustomerAppData(DeleteCustomerAppDataCommand {
            customer: customer!(delete_customer_app_data_command, 2),
        }),
        E::SendMessage(SendMessageCommand {
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            message: Some(any_outbound(0)),
        }),
        E::SendMessage(SendMessageCommand {
            customer_number: Some(customer_number()),
            channel_number: Some(MessagingChannelNumber {
                channel: MessagingChannel::Voice as i32,
                number: text("+254711621711"),
            }),
            message: Some(any_outbound(6)),
        }),
        E::SendMessageTag(SendMessageTagCommand {
            tag: Some(mapping("segment", "gold")),
            channel_number: Some(sms_channel()),
            message: Some(any_outbound(4)),
        }),
        E::ReplyToMessage(ReplyToMessageCommand {
            customer_id: text("el_cst_1"),
            message_id: text("msg-in-1"),
            message: Some(any_outbound(1)),
        }),
        E::UpdateMessagingConsent(UpdateMessagingConsentCommand {
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            update: MessagingConsentUpdate::Block as i32,
        }),
        E::InitiatePayment(InitiatePaymentCommand {
            debit_party: Some(counter_party(0)),
            credit_party: Some(counter_party(2)),
            value: kes(100.25),
            narration: text("Loan disbursement"),
        }),
        E::InitiatePayment(InitiatePaymentCommand {
            debit_party: Some(counter_party(1)),
            credit_party: Some(counter_party(3)),
            value: kes(10.0),
            narration: text("Pay out"),
        }),
        E::CustomerActivity(CustomerActivityCommand {
            customer_number: Some(customer_number()),
            source: text("web"),
            session_id: text("act-1"),
            key: text("viewed_offer"),
            properties: HashMap::from([(text("offer"), text("topup"))]),
        }),
        E::ReplayMessagingConsentUpdate(ReplayMessagingConsentUpdateCommand {
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            updated_at: at(50),
            update: MessagingConsentUpdate::Allow as i32,
        }),
        E::ReplayReceivedMessage(ReplayReceivedMessageCommand {
            provider_message_id: text("ATXid_9"),
            provider_session_id: wrap("ATsess_9"),
            received_at: at(51),
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            parts: inbound_parts(),
            in_reply_to: wrap("msg-out-0"),
            provider: ChannelNumberProvider::Mailgun as i32,
            cost: kes(0.5),
        }),
        E::ReplaySentMessage(ReplaySentMessageCommand {
            provider_message_id: text("SM9"),
            provider_session_id: wrap("sess-9"),
            sent_at: at(52),
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            provider: ChannelNumberProvider::Facebook as i32,
            message: Some(any_outbound(2)),
            in_reply_to: wrap("msg-in-9"),
            status: MessageDeliveryStatus::Sent as i32,
            cost: kes(0.9),
        }),
        E::ReplayMessageStatusUpdate(ReplayMessageStatusUpdateCommand {
            provider_message_id: text("SM9"),
            updated_at: at(53),
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            status: MessageDeliveryStatus::Read as i32,
            cost: kes(0.1),
        }),
        E::ReplayMessageReactionUpdate(ReplayMessageReactionUpdateCommand {
            provider_message_id: text("SM9"),
            updated_at: at(54),
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            reaction: MessageReaction::Complained as i32,
        }),
        E::ReplayMessagingSession(ReplayMessagingSessionCommand {
            provider_session_id: text("ATsess_9"),
            customer_number: Some(customer_number()),
            channel_number: Some(MessagingChannelNumber {
                channel: MessagingChannel::Ussd as i32,
                number: text("*83044#"),
            }),
            started_at: at(55),
            duration: lasting(120),
            end_reason: MessagingSessionEndReason::NormalClearing as i32,
            cost: kes(3.0),
        }),
        E::ReplayPayment(ReplayPaymentCommand {
            provider_transaction_id: text("MPESA9"),
            created_at: at(56),
            debit_party: Some(counter_party(2)),
            credit_party: Some(counter_party(1)),
            status: PaymentStatus::PendingConfirmation as i32,
            value: kes(75.0),
            narration: text("Repayment"),
        }),
        E::ReplayPaymentStatusUpdate(ReplayPaymentStatusUpdateCommand {
            customer_number: Some(customer_number()),
            provider_transaction_id: text("MPESA9"),
            updated_at: at(57),
            status: PaymentStatus::Reversed as i32,
        }),
        E::DeleteCustomer(DeleteCustomerCommand {
            customer: customer!(delete_customer_command, 0),
        }),
        E::DeleteCustomer(DeleteCustomerCommand {
            customer: customer!(delete_customer_command, 1),
        }),
        E::DeleteCustomer(DeleteCustomerCommand {
            customer: customer!(delete_customer_command, 2),
        }),
    ]
}

#[test]
fn every_app_command_round_trips_through_the_published_schema() {
    let mut covered = Vec::new();
    for entry in app_commands() {
        let number = app_command_field_number(&entry);
        covered.push(number);
        let command = AppToServerCommand { entry: Some(entry) };
        let unknown = round_trip("AppToServerCommand", &command);
        if APP_COMMAND_EXTENSIONS.contains(&number) {
            // A peer on the published schema sees the extension as an unknown field, and keeps it.
            assert_eq!(
                unknown,
                [number],
                "extension {number} is unknown to the reference"
            );
        } else {
            assert!(
                unknown.is_empty(),
                "field {number}: {unknown:?} unknown to the reference"
            );
        }
    }
    assert_covers("AppToServerCommand", "entry", covered);
}

// ---- AppToServerCommandReply -----------------------------------------------------------------

fn app_reply_field_number(entry: &app_to_server_command_reply::Entry) -> u32 {
    use app_to_server_command_reply::Entry as E;
    match entry {
        E::GenerateAuthToken(_) => 1,
        E::GetCustomerState(_) => 2,
        E::UpdateCustomerState(_) => 3,
        E::UpdateCustomerAppData(_) => 4,
        E::LeaseCustomerAppData(_) => 5,
        E::SendMessage(_) => 6,
        E::UpdateMessagingConsent(_) => 7,
        E::InitiatePayment(_) => 8,
        E::TagCommand(_) => 9,
        E::CustomerActivity(_) => 10,
        E::ReplayPayment(_) => 11,
    }
}

fn app_replies() -> Vec<app_to_server_command_reply::Entry> {
    use app_to_server_command_reply::Entry as E;
    vec![
        E::GenerateAuthToken(GenerateAuthTokenReply {
            token: text("tok_abc"),
            lifetime: lasting(3_600),
        }),
        E::GetCustomerState(GetCustomerStateReply {
            status: true,
            description: text("ok"),
            data: Some(customer_state()),
        }),
        E::UpdateCustomerState(UpdateCustomerStateReply {
            status: true,
            description: text("updated"),
            customer_id: wrap("el_cst_1"),
        }),
        E::UpdateCustomerAppData(UpdateCustomerAppDataReply {
            status: true,
            description: text("stored"),
            customer_id: wrap("el_cst_1"),
        }),
        E::LeaseCustomerAppData(LeaseCustomerAppDataReply {
            status: true,
            description: text("leased"),
            customer_id: wrap("el_cst_1"),
            value: json("{\"step\":1}"),
        }),
        E::SendMessage(SendMessageReply {
            status: MessageDeliveryStatus::Queued as i32,
            description: text("queued"),
            message_id: wrap("msg-out-2"),
            session_id: wrap("sess-3"),
            customer_id: wrap("el_cst_1"),
        }),
        E::UpdateMessagingConsent(UpdateMessagingConsentReply {
            status: MessagingConsentUpdateStatus::Completed as i32,
            description: text("done"),
            customer_id: wrap("el_cst_1"),
        }),
        E::InitiatePayment(InitiatePaymentReply {
            status: PaymentStatus::PendingConfirmation as i32,
            description: text("waiting for PIN"),
            transaction_id: wrap("tx-3"),
            debit_customer_id: wrap("el_cst_1"),
            credit_customer_id: wrap("el_cst_2"),
        }),
        E::TagCommand(TagCommandReply {
            status: true,
            description: text("scheduled"),
            work_id: wrap("work-1"),
        }),
        E::CustomerActivity(CustomerActivityReply {
            status: true,
            description: text("recorded"),
            customer_id: wrap("el_cst_1"),
        }),
        E::ReplayPayment(ReplayPaymentReply {
            status: true,
            description: text("replayed"),
            transaction_id: wrap("tx-4"),
            debit_customer_id: wrap("el_cst_1"),
            credit_customer_id: wrap("el_cst_2"),
        }),
    ]
}

#[test]
fn every_app_command_reply_round_trips_through_the_published_schema() {
    let mut covered = Vec::new();
    for entry in app_replies() {
        covered.push(app_reply_field_number(&entry));
        let reply = AppToServerCommandReply { entry: Some(entry) };
        assert!(round_trip("AppToServerCommandReply", &reply).is_empty());
    }
    assert_covers("AppToServerCommandReply", "entry", covered);
}

// ---- ServerToAppNotification -----------------------------------------------------------------

fn customer_notification_field_number(entry: &server_to_app_customer_notification::Entry) -> u32 {
    use server_to_app_customer_notification::Entry as E;
    match entry {
        E::Reminder(_) => 6,
        E::MessagingSessionStarted(_) => 7,
        E::MessagingSessionRenewed(_) => 8,
        E::MessagingSessionEnded(_) => 9,
        E::MessagingConsentUpdate(_) => 10,
        E::ReceivedMessage(_) => 11,
        E::MessageStatus(_) => 12,
        E::SentMessageReaction(_) => 13,
        E::ReceivedPayment(_) => 14,
        E::PaymentStatus(_) => 15,
        E::CustomerActivity(_) => 17,
    }
}

fn customer_notifications() -> Vec<server_to_app_customer_notification::Entry> {
    use server_to_app_customer_notification::Entry as E;
    let ussd_channel = MessagingChannelNumber {
        channel: MessagingChannel::Ussd as i32,
        number: text("*83044#"),
    };
    vec![
        E::Reminder(ReminderNotification {
            reminder: Some(reminder()),
            tag: Some(index("segment", "gold")),
            work_id: wrap("work-1"),
        }),
        E::MessagingSessionStarted(MessagingSessionStartedNotification {
            customer_number: Some(customer_number()),
            channel_number: Some(ussd_channel.clone()),
            session_id: text("sess-4"),
            expires_at: at(180),
        }),
        E::MessagingSessionRenewed(MessagingSessionRenewedNotification {
            customer_number: Some(customer_number()),
            channel_number: Some(ussd_channel.clone()),
            session_id: text("sess-4"),
            expires_at: at(360),
        }),
        E::MessagingSessionEnded(MessagingSessionEndedNotification {
            customer_number: Some(customer_number()),
            channel_number: Some(ussd_channel.clone()),
            session_id: text("sess-4"),
            duration: lasting(95),
            reason: MessagingSessionEndReason::Failure as i32,
        }),
        E::MessagingConsentUpdate(MessagingConsentUpdateNotification {
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            update: MessagingConsentUpdate::Block as i32,
            status: MessagingConsentUpdateStatus::InvalidChannelNumber as i32,
        }),
        E::ReceivedMessage(ReceivedMessageNotification {
            message_id: text("msg-in-5"),
            customer_number: Some(customer_number()),
            channel_number: Some(ussd_channel),
            parts: inbound_parts(),
            session_id: wrap("sess-4"),
            in_reply_to: wrap("msg-out-4"),
        }),
        E::MessageStatus(MessageStatusNotification {
            message_id: text("msg-out-5"),
            status: MessageDeliveryStatus::InsufficientCredits as i32,
        }),
        E::SentMessageReaction(SentMessageReactionNotification {
            message_id: text("msg-out-5"),
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            reaction: MessageReaction::Unsubscribed as i32,
        }),
        E::ReceivedPayment(ReceivedPaymentNotification {
            purse_id: text("el_prs_rL3IPZ"),
            transaction_id: text("tx-5"),
            customer_number: Some(customer_number()),
            channel_number: Some(mobile_money_channel()),
            value: kes(500.0),
            status: PaymentStatus::Success as i32,
        }),
        E::PaymentStatus(PaymentStatusNotification {
            transaction_id: text("tx-3"),
            status: PaymentStatus::Failed as i32,
        }),
        E::CustomerActivity(CustomerActivityNotification {
            customer_number: Some(customer_number()),
            source: text("web"),
            session_id: text("act-1"),
            activity: Some(activity()),
        }),
    ]
}

fn purse_notification_field_number(entry: &server_to_app_purse_notification::Entry) -> u32 {
    match entry {
        server_to_app_purse_notification::Entry::PaymentStatus(_) => 5,
    }
}

fn notification_field_number(entry: &server_to_app_notification::Entry) -> u32 {
    match entry {
        server_to_app_notification::Entry::Customer(_) => 1,
        server_to_app_notification::Entry::Purse(_) => 2,
    }
}

#[test]
fn every_app_notification_round_trips_through_the_published_schema() {
    let mut covered_customer = Vec::new();
    let mut covered_outer = Vec::new();
    for entry in customer_notifications() {
        covered_customer.push(customer_notification_field_number(&entry));
        let outer = server_to_app_notification::Entry::Customer(ServerToAppCustomerNotification {
            org_id: text("el_org_eu_1SJ2jx"),
            app_id: text("el_app_WZFQdt"),
            customer_id: text("el_cst_1"),
            app_data: json("{\"step\":3}"),
            created_at: at(200),
            entry: Some(entry),
        });
        covered_outer.push(notification_field_number(&outer));
        let notification = ServerToAppNotification { entry: Some(outer) };
        assert!(round_trip("ServerToAppNotification", &notification).is_empty());
    }

    let purse_entry =
        server_to_app_purse_notification::Entry::PaymentStatus(PaymentStatusNotification {
            transaction_id: text("tx-6"),
            status: PaymentStatus::InsufficientFunds as i32,
        });
    let covered_purse = [purse_notification_field_number(&purse_entry)];
    let outer = server_to_app_notification::Entry::Purse(ServerToAppPurseNotification {
        org_id: text("el_org_eu_1SJ2jx"),
        app_id: text("el_app_WZFQdt"),
        purse_id: text("el_prs_rL3IPZ"),
        created_at: at(201),
        entry: Some(purse_entry),
    });
    covered_outer.push(notification_field_number(&outer));
    let notification = ServerToAppNotification { entry: Some(outer) };
    assert!(round_trip("ServerToAppNotification", &notification).is_empty());

    assert_covers("ServerToAppCustomerNotification", "entry", covered_customer);
    assert_covers("ServerToAppPurseNotification", "entry", covered_purse);
    assert_covers("ServerToAppNotification", "entry", covered_outer);
}

#[test]
fn notification_replies_and_connection_metadata_round_trip() {
    for which in 0..8 {
        let reply = ServerToAppNotificationReply {
            data_update: Some(AppDataUpdate {
                data: json("{\"step\":4}"),
            }),
            message: Some(any_outbound(which)),
        };
        assert!(round_trip("ServerToAppNotificationReply", &reply).is_empty());
    }
    let setup = AppConnectionMetadata {
        org_id: text("el_org_eu_1SJ2jx"),
        app_id: text("el_app_WZFQdt"),
        api_key: wrap("el_k_test_0000"),
        auth_token: wrap("tok_abc"),
        simplex_mode: true,
        simulator_mode: true,
    };
    assert!(round_trip("AppConnectionMetadata", &setup).is_empty());
    let state = AppState {
        data: json("{\"step\":5}"),
        reminders: vec![reminder()],
    };
    assert!(round_trip("AppState", &state).is_empty());
    let props = AppConnectionProps {
        connection_id: text("conn-1"),
        connection_time: at(300),
        ip_address: wrap("192.0.2.1"),
        simplex_mode: true,
    };
    assert!(round_trip("AppConnectionProps", &props).is_empty());
}

// ---- Simulator -------------------------------------------------------------------------------

fn simulator_command_field_number(entry: &simulator_to_server_command::Entry) -> u32 {
    use simulator_to_server_command::Entry as E;
    match entry {
        E::ReceiveMessage(_) => 1,
        E::ReceivePayment(_) => 2,
        E::UpdatePaymentStatus(_) => 3,
    }
}

fn simulator_commands() -> Vec<simulator_to_server_command::Entry> {
    use simulator_to_server_command::Entry as E;
    vec![
        E::ReceiveMessage(ReceiveMessageSimulatorCommand {
            customer_number: text("+254711000001"),
            channel_number: Some(MessagingChannelNumber {
                channel: MessagingChannel::Ussd as i32,
                number: text("*83044#"),
            }),
            parts: inbound_parts(),
            session_id: wrap("sess-7"),
            cost: kes(0.0),
            duration: lasting(12),
        }),
        E::ReceivePayment(ReceivePaymentSimulatorCommand {
            transaction_id: text("tx-7"),
            channel_number: Some(mobile_money_channel()),
            customer_number: text("+254711000001"),
            value: kes(1_000.0),
            status: PaymentStatus::Success as i32,
        }),
        E::UpdatePaymentStatus(UpdatePaymentStatusSimulatorCommand {
            transaction_id: text("tx-7"),
            status: PaymentStatus::Expired as i32,
        }),
    ]
}

#[test]
fn every_simulator_command_round_trips_through_the_published_schema() {
    let mut covered = Vec::new();
    for entry in simulator_commands() {
        covered.push(simulator_command_field_number(&entry));
        let command = SimulatorToServerCommand { entry: Some(entry) };
        assert!(round_trip("SimulatorToServerCommand", &command).is_empty());
    }
    assert_covers("SimulatorToServerCommand", "entry", covered);

    let reply = SimulatorToServerCommandReply {
        status: true,
        description: text("delivered"),
        message: Some(any_outbound(7)),
    };
    assert!(round_trip("SimulatorToServerCommandReply", &reply).is_empty());
    let empty = ServerToSimulatorNotificationReply {};
    assert!(round_trip("ServerToSimulatorNotificationReply", &empty).is_empty());
}

fn simulator_notification_field_number(entry: &server_to_simulator_notification::Entry) -> u32 {
    use server_to_simulator_notification::Entry as E;
    match entry {
        E::SendMessage(_) => 1,
        E::MakeVoiceCall(_) => 2,
        E::SendCustomerPayment(_) => 3,
        E::SendChannelPayment(_) => 4,
        E::CheckoutPayment(_) => 5,
    }
}

fn simulator_notifications() -> Vec<server_to_simulator_notification::Entry> {
    use server_to_simulator_notification::Entry as E;
    let wallet = PaymentWalletCounterParty {
        customer_id: text("el_cst_1"),
        wallet_id: text("loans"),
    };
    let purse = PaymentPurseCounterParty {
        purse_id: text("el_prs_rL3IPZ"),
    };
    vec![
        E::SendMessage(SendMessageSimulatorNotification {
            org_id: text("el_org_eu_1SJ2jx"),
            customer_id: text("el_cst_1"),
            message_id: text("msg-out-8"),
            customer_number: Some(customer_number()),
            channel_number: Some(sms_channel()),
            message: Some(any_outbound(3)),
        }),
        E::MakeVoiceCall(MakeVoiceCallSimulatorNotification {
            org_id: text("el_org_eu_1SJ2jx"),
            customer_id: text("el_cst_1"),
            session_id: text("sess-8"),
            customer_number: Some(customer_number()),
            channel_number: Some(MessagingChannelNumber {
                channel: MessagingChannel::Voice as i32,
                number: text("+254711621711"),
            }),
        }),
        E::SendCustomerPayment(SendCustomerPaymentSimulatorNotification {
            org_id: text("el_org_eu_1SJ2jx"),
            customer_id: text("el_cst_1"),
            app_id: text("el_app_WZFQdt"),
            debit_party: Some(
                send_customer_payment_simulator_notification::DebitParty::Wallet(wallet.clone()),
            ),
            transaction_id: text("tx-8"),
            customer_number: Some(customer_number()),
            channel_number: Some(mobile_money_channel()),
            value: kes(20.0),
        }),
        E::SendCustomerPayment(SendCustomerPaymentSimulatorNotification {
            org_id: text("el_org_eu_1SJ2jx"),
            customer_id: text("el_cst_1"),
            app_id: text("el_app_WZFQdt"),
            debit_party: Some(
                send_customer_payment_simulator_notification::DebitParty::Purse(purse.clone()),
            ),
            transaction_id: text("tx-9"),
            customer_number: Some(customer_number()),
            channel_number: Some(mobile_money_channel()),
            value: kes(21.0),
        }),
        E::SendChannelPayment(SendChannelPaymentSimulatorNotification {
            org_id: text("el_org_eu_1SJ2jx"),
            app_id: text("el_app_WZFQdt"),
            debit_party: Some(
                send_channel_payment_simulator_notification::DebitParty::Purse(purse.clone()),
            ),
            transaction_id: text("tx-10"),
            channel: PaymentChannel::Airtime as i32,
            source: text("83044"),
            destination: text("525900"),
            account: wrap("ACC-9"),
            value: kes(22.0),
        }),
        E::SendChannelPayment(SendChannelPaymentSimulatorNotification {
            org_id: text("el_org_eu_1SJ2jx"),
            app_id: text("el_app_WZFQdt"),
            debit_party: Some(
                send_channel_payment_simulator_notification::DebitParty::Wallet(wallet.clone()),
            ),
            transaction_id: text("tx-11"),
            channel: PaymentChannel::Cellular as i32,
            source: text("83044"),
            destination: text("525901"),
            account: wrap("ACC-10"),
            value: kes(23.0),
        }),
        E::CheckoutPayment(CheckoutPaymentSimulatorNotification {
            org_id: text("el_org_eu_1SJ2jx"),
            customer_id: text("el_cst_1"),
            app_id: text("el_app_WZFQdt"),
            credit_party: Some(
                checkout_payment_simulator_notification::CreditParty::Wallet(wallet),
            ),
            transaction_id: text("tx-12"),
            customer_number: Some(customer_number()),
            channel_number: Some(mobile_money_channel()),
            value: kes(24.0),
        }),
        E::CheckoutPayment(CheckoutPaymentSimulatorNotification {
            org_id: text("el_org_eu_1SJ2jx"),
            customer_id: text("el_cst_1"),
            app_id: text("el_app_WZFQdt"),
            credit_party: Some(checkout_payment_simulator_notification::CreditParty::Purse(
                purse,
            )),
            transaction_id: text("tx-13"),
            customer_number: Some(customer_number()),
            channel_number: Some(mobile_money_channel()),
            value: kes(25.0),
        }),
    ]
}

#[test]
fn every_simulator_notification_round_trips_through_the_published_schema() {
    let mut covered = Vec::new();
    for entry in simulator_notifications() {
        covered.push(simulator_notification_field_number(&entry));
        let notification = ServerToSimulatorNotification { entry: Some(entry) };
        assert!(round_trip("ServerToSimulatorNotification", &notification).is_empty());
    }
    assert_covers("ServerToSimulatorNotification", "entry", covered);
}

// ---- The checks themselves -------------------------------------------------------------------

#[test]
fn a_field_the_reference_does_not_know_is_caught() {
    // Field 99 of CreateCustomerCommand does not exist in the published schema: write it by hand
    // inside an otherwise valid command and make sure the nested check reports it.
    let inner = {
        let mut bytes = CreateCustomerCommand {
            customer_number: Some(customer_number()),
        }
        .encode_to_vec();
        prost::encoding::string::encode(99, &text("stray"), &mut bytes);
        bytes
    };
    let mut outer = Vec::new();
    prost::encoding::bytes::encode(2, &inner, &mut outer);
    let dynamic = DynamicMessage::decode(
        descriptor(&reference_pool(), "AppToServerCommand"),
        outer.as_slice(),
    )
    .expect("decodes");
    assert_eq!(
        unknown_to_reference("AppToServerCommand", &dynamic, 0),
        ["AppToServerCommand.create_customer: field 99 is unknown"]
    );
}

#[test]
fn an_enum_number_the_reference_does_not_define_is_caught() {
    let message = MessageStatusNotification {
        message_id: text("m"),
        status: 9_999,
    };
    let dynamic = DynamicMessage::decode(
        descriptor(&reference_pool(), "MessageStatusNotification"),
        message.encode_to_vec().as_slice(),
    )
    .expect("decodes");
    assert_eq!(
        unknown_to_reference("MessageStatusNotification", &dynamic, 0),
        [
            "MessageStatusNotification.status: enum com.elarian.hera.proto.MessageDeliveryStatus \
             has no value 9999"
        ]
    );
}
