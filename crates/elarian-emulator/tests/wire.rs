//! The emulator over the real wire, driven by a raw elarian-transport client.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use elarian_emulator::config::*;
use elarian_emulator::{Emulator, EmulatorHandle};
use elarian_proto::{
    self as p, AppConnectionMetadata, AppToServerCommand, AppToServerCommandReply,
    ServerToAppNotification, ServerToSimulatorNotification, SimulatorToServerCommand,
    SimulatorToServerCommandReply, app_to_server_command::Entry as E,
    app_to_server_command_reply::Entry as R, server_to_app_customer_notification::Entry as CE,
    server_to_app_notification::Entry as NE,
};
use elarian_transport::BoxFuture;
use elarian_transport::io::{Endpoint, TlsClientOptions, connect};
use elarian_transport::{
    ClientSession, ClientSessionConfig, ErrorCode, Payload, RejectAll, RequestError,
    RequestHandler, SetupError, StreamError,
};
use prost::Message;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

async fn start() -> EmulatorHandle {
    Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .start()
        .await
        .expect("emulator starts")
}

fn meta(simulator: bool) -> AppConnectionMetadata {
    AppConnectionMetadata {
        org_id: TEST_ORG_ID.into(),
        app_id: TEST_APP_ID.into(),
        api_key: Some(TEST_API_KEY.into()),
        auth_token: None,
        simplex_mode: simulator,
        simulator_mode: simulator,
    }
}

// ClientSessionConfig is non-exhaustive: no struct-update syntax outside its crate.
#[allow(clippy::field_reassign_with_default)]
async fn dial(
    endpoint: &Endpoint,
    tls: &TlsClientOptions,
    setup_data: Bytes,
    responder: Arc<dyn RequestHandler>,
) -> Result<ClientSession, SetupError> {
    let transport = connect(endpoint, tls, WAIT)
        .await
        .expect("transport connects");
    let mut config = ClientSessionConfig::default();
    config.setup_payload = Payload {
        data: setup_data,
        metadata: Some(Bytes::from_static(br#"{"agent":"rust-test"}"#)),
    };
    config.metadata_mime_type = "application/json".into();
    ClientSession::connect(transport, config, responder).await
}

async fn app(
    emulator: &EmulatorHandle,
    meta: AppConnectionMetadata,
    responder: Arc<dyn RequestHandler>,
) -> Result<ClientSession, SetupError> {
    dial(
        &emulator.endpoint().expect("tcp listener"),
        &TlsClientOptions::new(),
        meta.encode_to_vec().into(),
        responder,
    )
    .await
}

/// Sends one encoded command and decodes its reply, failing the test on any error.
async fn round_trip<Reply: Message + Default>(
    session: &ClientSession,
    command: impl Message,
) -> Reply {
    let reply = tokio::time::timeout(
        WAIT,
        session.connection().request_response(Payload {
            data: command.encode_to_vec().into(),
            metadata: None,
        }),
    )
    .await
    .expect("reply in time")
    .expect("command succeeds");
    Reply::decode(reply.data).expect("reply decodes")
}

async fn command(session: &ClientSession, entry: E) -> R {
    round_trip::<AppToServerCommandReply>(session, AppToServerCommand { entry: Some(entry) })
        .await
        .entry
        .expect("reply has an entry")
}

async fn sim_command(
    session: &ClientSession,
    entry: p::simulator_to_server_command::Entry,
) -> SimulatorToServerCommandReply {
    round_trip(session, SimulatorToServerCommand { entry: Some(entry) }).await
}

fn phone(n: &str) -> p::CustomerNumber {
    p::CustomerNumber {
        provider: p::CustomerNumberProvider::Cellular as i32,
        number: n.into(),
        partition: None,
    }
}

fn create(n: &str) -> E {
    E::CreateCustomer(p::CreateCustomerCommand {
        customer_number: Some(phone(n)),
    })
}

fn created_ok(reply: R) -> String {
    match reply {
        R::UpdateCustomerState(r) => {
            assert!(r.status, "{}", r.description);
            r.customer_id.expect("customer id")
        }
        other => panic!("unexpected reply {other:?}"),
    }
}

/// An app that records notifications and answers with a fixed reply.
struct AppRecorder {
    seen: mpsc::UnboundedSender<ServerToAppNotification>,
    reply: p::ServerToAppNotificationReply,
}

impl RequestHandler for AppRecorder {
    fn request_response(
        &self,
        payload: Payload,
    ) -> BoxFuture<'static, Result<Payload, StreamError>> {
        let decoded = ServerToAppNotification::decode(payload.data);
        let seen = self.seen.clone();
        let reply = self.reply.clone();
        Box::pin(async move {
            let n = decoded.map_err(|e| StreamError::application(e.to_string()))?;
            let _ = seen.send(n);
            Ok(Payload {
                data: reply.encode_to_vec().into(),
                metadata: None,
            })
        })
    }
}

/// A simulator that records notifications.
struct SimRecorder(mpsc::UnboundedSender<ServerToSimulatorNotification>);

impl RequestHandler for SimRecorder {
    fn request_response(
        &self,
        payload: Payload,
    ) -> BoxFuture<'static, Result<Payload, StreamError>> {
        let decoded = ServerToSimulatorNotification::decode(payload.data);
        let seen = self.0.clone();
        Box::pin(async move {
            let n = decoded.map_err(|e| StreamError::application(e.to_string()))?;
            let _ = seen.send(n);
            Ok(Payload::default())
        })
    }
}

fn customer_entry(
    n: &ServerToAppNotification,
) -> Option<(&p::ServerToAppCustomerNotification, &CE)> {
    match &n.entry {
        Some(NE::Customer(c)) => c.entry.as_ref().map(|e| (c, e)),
        _ => None,
    }
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("notification in time")
        .expect("channel open")
}

/// An app connection that takes no notifications.
async fn plain_app(emulator: &EmulatorHandle) -> ClientSession {
    app(emulator, meta(false), Arc::new(RejectAll))
        .await
        .expect("app connects")
}

/// A simplex app connection: commands only, never notifications.
async fn simplex_app(emulator: &EmulatorHandle) -> ClientSession {
    let mut simplex = meta(false);
    simplex.simplex_mode = true;
    app(emulator, simplex, Arc::new(RejectAll))
        .await
        .expect("simplex app connects")
}

/// An app connection that records its notifications and answers each with `reply`.
async fn recording_app(
    emulator: &EmulatorHandle,
    reply: p::ServerToAppNotificationReply,
) -> (
    ClientSession,
    mpsc::UnboundedReceiver<ServerToAppNotification>,
) {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let session = app(
        emulator,
        meta(false),
        Arc::new(AppRecorder {
            seen: seen_tx,
            reply,
        }),
    )
    .await
    .expect("app connects");
    (session, seen)
}

/// A simulator connection that records its notifications.
async fn simulator(
    emulator: &EmulatorHandle,
) -> (
    ClientSession,
    mpsc::UnboundedReceiver<ServerToSimulatorNotification>,
) {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let session = app(emulator, meta(true), Arc::new(SimRecorder(seen_tx)))
        .await
        .expect("simulator connects");
    (session, seen)
}

fn activity(number: &str, session_id: &str, key: &str) -> E {
    E::CustomerActivity(p::CustomerActivityCommand {
        customer_number: Some(phone(number)),
        source: "web".into(),
        session_id: session_id.into(),
        key: key.into(),
        properties: Default::default(),
    })
}

/// A data directory no other test run uses.
fn temp_data_dir(prefix: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ))
}

async fn start_in(dir: &std::path::Path) -> EmulatorHandle {
    Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .data_dir(dir)
        .start()
        .await
        .expect("emulator starts")
}

#[tokio::test]
async fn setup_with_the_test_key_is_accepted_and_commands_round_trip() {
    let emulator = start().await;
    let session = plain_app(&emulator).await;
    let id = created_ok(command(&session, create("+254711000001")).await);
    assert!(id.starts_with("el_cst_"));
    match command(
        &session,
        E::GetCustomerState(p::GetCustomerStateCommand {
            customer: Some(p::get_customer_state_command::Customer::CustomerId(
                id.clone(),
            )),
        }),
    )
    .await
    {
        R::GetCustomerState(r) => assert_eq!(r.data.unwrap().customer_id, id),
        other => panic!("unexpected reply {other:?}"),
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_and_undecodable_setups_are_rejected() {
    let emulator = start().await;
    let mut wrong = meta(false);
    wrong.api_key = Some("el_k_test_wrong".into());
    match app(&emulator, wrong, Arc::new(RejectAll)).await {
        Err(SetupError::Rejected { code, message }) => {
            assert_eq!(code, ErrorCode::RejectedSetup);
            assert!(message.contains("API key"), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    let mut unknown = meta(false);
    unknown.app_id = "el_app_nope".into();
    assert!(matches!(
        app(&emulator, unknown, Arc::new(RejectAll)).await,
        Err(SetupError::Rejected {
            code: ErrorCode::RejectedSetup,
            ..
        })
    ));
    let garbage = dial(
        &emulator.endpoint().unwrap(),
        &TlsClientOptions::new(),
        Bytes::from_static(&[0xff, 0xff, 0xff, 0x01]),
        Arc::new(RejectAll),
    )
    .await;
    assert!(matches!(
        garbage,
        Err(SetupError::Rejected {
            code: ErrorCode::InvalidSetup,
            ..
        })
    ));
    emulator.shutdown().await;
}

#[tokio::test]
async fn invalid_requests_fail_alone_and_connections_keep_working() {
    let emulator = start().await;
    let a = plain_app(&emulator).await;
    let b = plain_app(&emulator).await;

    // Invalid protobuf on a stream: that request fails, the connection stays.
    let bad = a
        .connection()
        .request_response(Payload::new(Bytes::from_static(&[0x0a, 0xff, 0xff, 0xff])))
        .await;
    assert!(
        matches!(
            bad,
            Err(RequestError::Remote {
                code: ErrorCode::ApplicationError,
                ..
            })
        ),
        "{bad:?}"
    );
    created_ok(command(&a, create("+254711000002")).await);

    // A command the server does not know (an unknown oneof field) gets status false.
    let mut unknown = Vec::new();
    prost::encoding::message::encode(99, &p::GenerateAuthTokenCommand {}, &mut unknown);
    let reply = a
        .connection()
        .request_response(Payload::new(unknown))
        .await
        .unwrap();
    match AppToServerCommandReply::decode(reply.data).unwrap().entry {
        Some(R::UpdateCustomerState(r)) => {
            assert!(!r.status);
            assert_eq!(r.description, "unknown command");
        }
        other => panic!("unexpected reply {other:?}"),
    }

    // Oversized payload: refused on its stream.
    let big = vec![0u8; 5 * 1024 * 1024];
    let refused = a.connection().request_response(Payload::new(big)).await;
    assert!(
        matches!(refused, Err(RequestError::Remote { .. })),
        "{refused:?}"
    );
    created_ok(command(&a, create("+254711000003")).await);

    // Garbage bytes on a raw socket: that socket is dropped, everyone else carries on.
    let mut raw = tokio::net::TcpStream::connect(emulator.tcp_addr().unwrap())
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    raw.write_all(b"\x00\x00\x05hello garbage that is not rsocket")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server closes a garbage connection");
    created_ok(command(&b, create("+254711000004")).await);
    created_ok(command(&a, create("+254711000005")).await);
    emulator.shutdown().await;
}

#[tokio::test]
async fn received_messages_reach_the_app_and_its_reply_reaches_the_simulator() {
    let emulator = start().await;
    let menu = p::OutboundMessage {
        body: Some(p::OutboundMessageBody {
            entry: Some(p::outbound_message_body::Entry::Ussd(
                p::UssdMenuMessageBody {
                    text: "1. Pay\n2. Exit".into(),
                    is_terminal: false,
                },
            )),
        }),
        ..Default::default()
    };
    let stored = p::DataMapValue {
        value: Some(p::data_map_value::Value::StringVal(r#"{"step":1}"#.into())),
    };
    let (app_session, mut seen) = recording_app(
        &emulator,
        p::ServerToAppNotificationReply {
            data_update: Some(p::AppDataUpdate {
                data: Some(stored.clone()),
            }),
            message: Some(menu.clone()),
        },
    )
    .await;
    let (sim, mut sim_seen) = simulator(&emulator).await;

    let reply = sim_command(
        &sim,
        p::simulator_to_server_command::Entry::ReceiveMessage(p::ReceiveMessageSimulatorCommand {
            customer_number: "+254711000006".into(),
            channel_number: Some(p::MessagingChannelNumber {
                channel: p::MessagingChannel::Ussd as i32,
                number: TEST_USSD_CODE.into(),
            }),
            parts: vec![p::InboundMessageBody {
                entry: Some(p::inbound_message_body::Entry::Ussd(
                    p::UssdInputMessageBody {
                        status: p::UssdSessionStatus::Active as i32,
                        text: Some(String::new()),
                    },
                )),
            }],
            session_id: Some("ussd-1".into()),
            cost: None,
            duration: None,
        }),
    )
    .await;
    assert!(reply.status, "{}", reply.description);
    assert_eq!(
        reply.message,
        Some(menu),
        "the app's menu goes back to the simulator"
    );

    // The app saw the session start and the message, in some order.
    let mut customer_id = None;
    let mut got_message = false;
    while !got_message {
        let n = next(&mut seen).await;
        let (c, entry) = customer_entry(&n).expect("customer notification");
        if let CE::ReceivedMessage(m) = entry {
            assert_eq!(m.session_id.as_deref(), Some("ussd-1"));
            assert_eq!(c.org_id, TEST_ORG_ID);
            customer_id = Some(c.customer_id.clone());
            got_message = true;
        }
    }
    let customer_id = customer_id.unwrap();

    // The reply's data_update was stored as the customer's app data.
    match command(
        &app_session,
        E::LeaseCustomerAppData(p::LeaseCustomerAppDataCommand {
            customer: Some(p::lease_customer_app_data_command::Customer::CustomerId(
                customer_id.clone(),
            )),
        }),
    )
    .await
    {
        R::LeaseCustomerAppData(r) => assert_eq!(r.value, Some(stored)),
        other => panic!("unexpected reply {other:?}"),
    }

    // Outbound: the app sends an SMS, the simulator receives it.
    match command(
        &app_session,
        E::SendMessage(p::SendMessageCommand {
            customer_number: Some(phone("+254711000006")),
            channel_number: Some(p::MessagingChannelNumber {
                channel: p::MessagingChannel::Sms as i32,
                number: TEST_SMS_SHORT_CODE.into(),
            }),
            message: Some(p::OutboundMessage {
                body: Some(p::OutboundMessageBody {
                    entry: Some(p::outbound_message_body::Entry::Text("hi".into())),
                }),
                ..Default::default()
            }),
        }),
    )
    .await
    {
        R::SendMessage(r) => assert_eq!(r.status, p::MessageDeliveryStatus::Sent as i32),
        other => panic!("unexpected reply {other:?}"),
    }
    let n = next(&mut sim_seen).await;
    match n.entry {
        Some(p::server_to_simulator_notification::Entry::SendMessage(m)) => {
            assert_eq!(m.customer_id, customer_id);
            assert_eq!(m.customer_number.unwrap().number, "+254711000006");
        }
        other => panic!("unexpected simulator notification {other:?}"),
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn notifications_wait_for_an_app_and_simplex_connections_get_none() {
    let emulator = start().await;
    let (sim, _sim_seen) = simulator(&emulator).await;
    // A simplex app connection must not receive notifications: its responder would fail.
    let _simplex = simplex_app(&emulator).await;

    let reply = sim_command(
        &sim,
        p::simulator_to_server_command::Entry::ReceivePayment(p::ReceivePaymentSimulatorCommand {
            transaction_id: "mpesa-42".into(),
            channel_number: Some(p::PaymentChannelNumber {
                channel: p::PaymentChannel::Cellular as i32,
                number: TEST_PAYMENT_CHANNEL.into(),
            }),
            customer_number: "+254711000007".into(),
            value: Some(p::Cash {
                currency_code: "KES".into(),
                amount: 42.0,
            }),
            status: p::PaymentStatus::Success as i32,
        }),
    )
    .await;
    assert!(reply.status, "{}", reply.description);

    let (_app, mut seen) =
        recording_app(&emulator, p::ServerToAppNotificationReply::default()).await;
    let n = next(&mut seen).await;
    match customer_entry(&n) {
        Some((_, CE::ReceivedPayment(r))) => {
            assert_eq!(r.purse_id, TEST_PURSE_ID);
            assert_eq!(r.value.as_ref().unwrap().amount, 42.0);
        }
        other => panic!("unexpected notification {other:?}"),
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn notifications_are_spread_over_the_apps_connections() {
    let emulator = start().await;
    let (a, mut rx1) = recording_app(&emulator, p::ServerToAppNotificationReply::default()).await;
    let (_b, mut rx2) = recording_app(&emulator, p::ServerToAppNotificationReply::default()).await;
    for i in 0..10 {
        command(&a, activity(&format!("+25471100010{i}"), "s", "visit")).await;
    }
    let mut first = 0;
    let mut second = 0;
    while first + second < 10 {
        tokio::select! {
            Some(_) = rx1.recv() => first += 1,
            Some(_) = rx2.recv() => second += 1,
            _ = tokio::time::sleep(WAIT) => panic!("notifications missing: {first} + {second}"),
        }
    }
    assert!(first > 0 && second > 0, "round robin: {first} / {second}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn auth_tokens_authenticate_later_setups() {
    let emulator = start().await;
    let session = plain_app(&emulator).await;
    let token = match command(
        &session,
        E::GenerateAuthToken(p::GenerateAuthTokenCommand {}),
    )
    .await
    {
        R::GenerateAuthToken(t) => t.token,
        other => panic!("unexpected reply {other:?}"),
    };
    let mut with_token = meta(false);
    with_token.api_key = None;
    with_token.auth_token = Some(token);
    let second = app(&emulator, with_token.clone(), Arc::new(RejectAll))
        .await
        .unwrap();
    created_ok(command(&second, create("+254711000008")).await);
    with_token.auth_token = Some("el_tkn_forged".into());
    assert!(matches!(
        app(&emulator, with_token, Arc::new(RejectAll)).await,
        Err(SetupError::Rejected {
            code: ErrorCode::RejectedSetup,
            ..
        })
    ));
    emulator.shutdown().await;
}

#[tokio::test]
async fn tls_and_websocket_listeners_serve_the_same_protocol() {
    let emulator = Emulator::builder()
        .tls(([127, 0, 0, 1], 0))
        .ws(([127, 0, 0, 1], 0))
        .start()
        .await
        .unwrap();
    let pem = emulator
        .tls_certificate_pem()
        .expect("self-signed certificate");
    let tls = TlsClientOptions::new()
        .add_root_certificates_pem(pem.as_bytes())
        .unwrap()
        .only_custom_roots(true);
    let setup: Bytes = meta(false).encode_to_vec().into();
    let over_tls = dial(
        &emulator.tls_endpoint().unwrap(),
        &tls,
        setup.clone(),
        Arc::new(RejectAll),
    )
    .await
    .unwrap();
    created_ok(command(&over_tls, create("+254711000009")).await);
    let over_ws = dial(
        &emulator.ws_endpoint().unwrap(),
        &TlsClientOptions::new(),
        setup,
        Arc::new(RejectAll),
    )
    .await
    .unwrap();
    created_ok(command(&over_ws, create("+254711000009")).await);
    emulator.shutdown().await;
}

#[tokio::test]
async fn acknowledged_writes_survive_a_restart_with_a_data_dir() {
    let dir = temp_data_dir("elarian-emulator-wire");
    let tag = p::CustomerIndex {
        mapping: Some(p::IndexMapping {
            key: "plan".into(),
            value: Some("gold".into()),
        }),
        // `{0, 0}`, as the JavaScript client writes it: no expiry, and how replies show one.
        expires_at: Some(p::prost_types::Timestamp::default()),
    };
    let id = {
        let emulator = start_in(&dir).await;
        let session = plain_app(&emulator).await;
        let id = created_ok(
            command(
                &session,
                E::UpdateCustomerTag(p::UpdateCustomerTagCommand {
                    customer: Some(p::update_customer_tag_command::Customer::CustomerNumber(
                        phone("+254711000010"),
                    )),
                    updates: vec![tag.clone()],
                }),
            )
            .await,
        );
        emulator.shutdown().await;
        id
    };
    let emulator = start_in(&dir).await;
    let session = plain_app(&emulator).await;
    match command(
        &session,
        E::GetCustomerState(p::GetCustomerStateCommand {
            customer: Some(p::get_customer_state_command::Customer::CustomerNumber(
                phone("+254711000010"),
            )),
        }),
    )
    .await
    {
        R::GetCustomerState(r) => {
            let data = r.data.unwrap();
            assert_eq!(data.customer_id, id);
            assert_eq!(data.identity_state.unwrap().tags, vec![tag]);
        }
        other => panic!("unexpected reply {other:?}"),
    }
    emulator.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// An app that never answers, and reports each notification it gets.
struct Stuck(mpsc::UnboundedSender<()>);

impl RequestHandler for Stuck {
    fn request_response(
        &self,
        _payload: Payload,
    ) -> BoxFuture<'static, Result<Payload, StreamError>> {
        let _ = self.0.send(());
        Box::pin(futures_util::future::pending())
    }
}

#[tokio::test]
async fn a_notification_cut_off_by_a_dropped_connection_goes_to_another() {
    let emulator = start().await;
    let (stuck_tx, mut stuck_seen) = mpsc::unbounded_channel();
    let stuck = app(&emulator, meta(false), Arc::new(Stuck(stuck_tx)))
        .await
        .unwrap();
    let commands = simplex_app(&emulator).await;
    command(&commands, activity("+254711000011", "s", "visit")).await;
    next(&mut stuck_seen).await;

    let (_healthy, mut seen) =
        recording_app(&emulator, p::ServerToAppNotificationReply::default()).await;
    stuck.connection().close();
    let n = next(&mut seen).await;
    assert!(matches!(
        customer_entry(&n),
        Some((_, CE::CustomerActivity(_)))
    ));
    emulator.shutdown().await;
}

#[tokio::test]
async fn sessions_with_a_resume_token_survive_a_lost_transport() {
    let emulator = start().await;
    let upstream = emulator.tcp_addr().unwrap();
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let pipe = tokio::spawn(async move {
        let (mut client, _) = proxy.accept().await.unwrap();
        let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    });
    let transport = connect(
        &Endpoint::tcp("127.0.0.1", proxy_addr.port()),
        &TlsClientOptions::new(),
        WAIT,
    )
    .await
    .unwrap();
    #[allow(clippy::field_reassign_with_default)]
    let config = {
        let mut c = ClientSessionConfig::default();
        c.setup_payload = Payload::new(meta(false).encode_to_vec());
        c.resume_token = Some(Bytes::from_static(b"el_app_WZFQdt-1700000000000"));
        c
    };
    let session = ClientSession::connect(transport, config, Arc::new(RejectAll))
        .await
        .unwrap();
    let id = created_ok(command(&session, create("+254711000012")).await);

    pipe.abort();
    tokio::time::timeout(WAIT, session.disconnected())
        .await
        .expect("the client notices the lost transport");
    let direct = connect(
        &emulator.endpoint().unwrap(),
        &TlsClientOptions::new(),
        WAIT,
    )
    .await
    .unwrap();
    session
        .resume(direct)
        .await
        .expect("the emulator resumes the session");
    assert_eq!(
        created_ok(command(&session, create("+254711000012")).await),
        id
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn checkout_goes_through_the_simulator_and_back_to_the_app() {
    let emulator = start().await;
    let (app_session, mut seen) =
        recording_app(&emulator, p::ServerToAppNotificationReply::default()).await;
    let (sim, mut sim_seen) = simulator(&emulator).await;
    let value = p::Cash {
        currency_code: "KES".into(),
        amount: 99.0,
    };
    let reply = match command(
        &app_session,
        E::InitiatePayment(p::InitiatePaymentCommand {
            debit_party: Some(p::PaymentCounterParty {
                party: Some(p::payment_counter_party::Party::Customer(
                    p::PaymentCustomerCounterParty {
                        customer_number: Some(phone("+254711000013")),
                        channel_number: Some(p::PaymentChannelNumber {
                            channel: p::PaymentChannel::Cellular as i32,
                            number: TEST_PAYMENT_CHANNEL.into(),
                        }),
                    },
                )),
            }),
            credit_party: Some(p::PaymentCounterParty {
                party: Some(p::payment_counter_party::Party::Purse(
                    p::PaymentPurseCounterParty {
                        purse_id: TEST_PURSE_ID.into(),
                    },
                )),
            }),
            value: Some(value.clone()),
            narration: "loan repayment".into(),
        }),
    )
    .await
    {
        R::InitiatePayment(r) => r,
        other => panic!("unexpected reply {other:?}"),
    };
    assert_eq!(reply.status, p::PaymentStatus::PendingConfirmation as i32);
    let txn = reply.transaction_id.unwrap();
    let checkout = match next(&mut sim_seen).await.entry {
        Some(p::server_to_simulator_notification::Entry::CheckoutPayment(c)) => c,
        other => panic!("unexpected simulator notification {other:?}"),
    };
    assert_eq!(checkout.transaction_id, txn);
    assert_eq!(checkout.value, Some(value));
    let before = emulator
        .engine()
        .purse_balance(TEST_ORG_ID, TEST_PURSE_ID)
        .unwrap();
    let done = sim_command(
        &sim,
        p::simulator_to_server_command::Entry::UpdatePaymentStatus(
            p::UpdatePaymentStatusSimulatorCommand {
                transaction_id: txn.clone(),
                status: p::PaymentStatus::Success as i32,
            },
        ),
    )
    .await;
    assert!(done.status, "{}", done.description);
    let n = next(&mut seen).await;
    match customer_entry(&n) {
        Some((_, CE::PaymentStatus(s))) => {
            assert_eq!(s.transaction_id, txn);
            assert_eq!(s.status, p::PaymentStatus::Success as i32);
        }
        other => panic!("unexpected notification {other:?}"),
    }
    let after = emulator
        .engine()
        .purse_balance(TEST_ORG_ID, TEST_PURSE_ID)
        .unwrap();
    assert_eq!(after.0, before.0 + 99.0);
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_scheduler_delivers_due_reminders_to_the_app() {
    use elarian_emulator::clock::{Clock, ManualClock, to_timestamp};
    let clock = ManualClock::new(1_700_000_000_000);
    let emulator = Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap();
    let (session, mut seen) =
        recording_app(&emulator, p::ServerToAppNotificationReply::default()).await;
    let id = created_ok(command(&session, create("+254711000014")).await);
    let reply = command(
        &session,
        E::AddCustomerReminder(p::AddCustomerReminderCommand {
            customer: Some(p::add_customer_reminder_command::Customer::CustomerId(
                id.clone(),
            )),
            reminder: Some(p::CustomerReminder {
                key: "pay".into(),
                remind_at: Some(to_timestamp(clock.now_millis() + 3_600_000)),
                interval: None,
                payload: Some("invoice 7".into()),
            }),
        }),
    )
    .await;
    // The published clients read this reply as `update_customer_app_data`.
    match reply {
        R::UpdateCustomerAppData(r) => {
            assert!(r.status, "{}", r.description);
            assert_eq!(r.customer_id.as_deref(), Some(id.as_str()));
        }
        other => panic!("unexpected reply {other:?}"),
    }
    clock.advance_millis(3_600_000);
    emulator.wake_scheduler();
    let n = next(&mut seen).await;
    match customer_entry(&n) {
        Some((c, CE::Reminder(r))) => {
            assert_eq!(c.customer_id, id);
            let reminder = r.reminder.clone().unwrap();
            assert_eq!(reminder.key, "pay");
            assert_eq!(reminder.payload.as_deref(), Some("invoice 7"));
        }
        other => panic!("unexpected notification {other:?}"),
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_full_notification_queue_fails_the_command_instead_of_dropping_silently() {
    let emulator = Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .delivery_limits(elarian_emulator::DeliveryLimits {
            queue: 1,
            enqueue_timeout: Duration::from_millis(100),
            ..Default::default()
        })
        .start()
        .await
        .expect("emulator starts");
    // No notification-enabled connection: nothing drains the app's queue.
    let commands = simplex_app(&emulator).await;
    let mut accepted = Vec::new();
    let mut refused = None;
    // The dispatcher holds one notification while it waits for a connection and the queue
    // holds one more, so a refusal comes within a few commands.
    for i in 0..6 {
        let key = format!("k{i}");
        match command(&commands, activity("+254700000077", "s1", &key)).await {
            R::CustomerActivity(r) if r.status => accepted.push(key),
            R::CustomerActivity(r) => {
                refused = Some(r.description);
                break;
            }
            other => panic!("unexpected reply {other:?}"),
        }
    }
    let description = refused.expect("a command is refused once the queue is full");
    assert!(
        description.contains("notification queue is full"),
        "{description}"
    );
    assert!(!accepted.is_empty() && accepted.len() <= 2, "{accepted:?}");

    // Every notification of an accepted command reaches the app once it connects.
    let (_app, mut seen) =
        recording_app(&emulator, p::ServerToAppNotificationReply::default()).await;
    let mut delivered = Vec::new();
    for _ in 0..accepted.len() {
        match customer_entry(&next(&mut seen).await) {
            Some((_, CE::CustomerActivity(a))) => delivered.push(
                a.activity
                    .as_ref()
                    .map(|x| x.key.clone())
                    .unwrap_or_default(),
            ),
            other => panic!("unexpected notification {other:?}"),
        }
    }
    assert_eq!(delivered, accepted);
    emulator.shutdown().await;
}

#[tokio::test]
async fn notifications_not_yet_delivered_survive_a_restart_with_a_data_dir() {
    let dir = temp_data_dir("elarian-emulator-pending-wire");
    {
        let emulator = start_in(&dir).await;
        let session = simplex_app(&emulator).await;
        // Acknowledged, so its notification is durable too; no app is there to take it.
        match command(&session, activity("+254711000099", "s1", "checkout")).await {
            R::CustomerActivity(r) => assert!(r.status, "{}", r.description),
            other => panic!("unexpected reply {other:?}"),
        }
        emulator.shutdown().await;
    }
    let emulator = start_in(&dir).await;
    let (_app, mut seen) =
        recording_app(&emulator, p::ServerToAppNotificationReply::default()).await;
    match customer_entry(&next(&mut seen).await) {
        Some((_, CE::CustomerActivity(a))) => {
            assert_eq!(
                a.activity.as_ref().map(|x| x.key.as_str()),
                Some("checkout")
            );
        }
        other => panic!("unexpected notification {other:?}"),
    }
    emulator.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn with_no_simulator_connected_sends_are_not_held_up_by_its_queue() {
    let emulator = Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .delivery_limits(elarian_emulator::DeliveryLimits {
            queue: 2,
            enqueue_timeout: Duration::from_secs(3),
            ..Default::default()
        })
        .start()
        .await
        .expect("emulator starts");
    // The app takes its own notifications (message statuses); only the simulators' queue has
    // nobody to drain it.
    let (app, _seen) = recording_app(&emulator, p::ServerToAppNotificationReply::default()).await;
    let started = std::time::Instant::now();
    for i in 0..8 {
        let reply = command(
            &app,
            E::SendMessage(p::SendMessageCommand {
                customer_number: Some(phone(&format!("+25471100{i:04}"))),
                channel_number: Some(p::MessagingChannelNumber {
                    channel: p::MessagingChannel::Sms as i32,
                    number: TEST_SMS_SHORT_CODE.into(),
                }),
                message: Some(p::OutboundMessage {
                    body: Some(p::OutboundMessageBody {
                        entry: Some(p::outbound_message_body::Entry::Text("hi".into())),
                    }),
                    ..Default::default()
                }),
            }),
        )
        .await;
        match reply {
            R::SendMessage(r) => assert_eq!(
                r.status,
                p::MessageDeliveryStatus::Sent as i32,
                "message {i}: {}",
                r.description
            ),
            other => panic!("unexpected reply {other:?}"),
        }
    }
    // Each send beyond the queue would otherwise have waited out the 3 s enqueue timeout.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "sends waited for a queue no simulator drains: {:?}",
        started.elapsed()
    );
    let stats = emulator.delivery_stats();
    assert!(stats.no_simulator >= 5, "{stats:?}");
    assert_eq!(stats.refused_for_commands, 0, "{stats:?}");
    emulator.shutdown().await;
}
