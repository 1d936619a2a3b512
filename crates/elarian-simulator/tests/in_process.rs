//! An app and a simulator against an emulator with no listener at all, connected through its
//! in-process dialer: commands, notifications both ways, and reconnection through the dialer
//! when the connection drops.

use elarian_emulator::config::{TEST_API_KEY, TEST_APP_ID, TEST_ORG_ID, TEST_SMS_SHORT_CODE};
use elarian_emulator::{Emulator, EmulatorHandle, InProcessDialer};
use elarian_sdk::{
    BoxTransport, ClientConfig, ClientConfigBuilder, CustomerNumber, DialFuture, Dialer, Elarian,
    InboundMessageBody, Message, MessageBody, MessagingChannel, MessagingChannelNumber,
};
use elarian_simulator::Simulator;
use elarian_transport::io::{FrameReader, FrameTransport, FrameWriter, memory};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Bound on every wait, so a broken connection fails a test instead of hanging it.
const WAIT: Duration = Duration::from_secs(15);

async fn emulator() -> EmulatorHandle {
    Emulator::builder()
        .in_process_only()
        .start()
        .await
        .expect("starts without a listener")
}

fn config(dialer: Arc<dyn Dialer>) -> ClientConfigBuilder {
    ClientConfig::builder()
        .org_id(TEST_ORG_ID)
        .app_id(TEST_APP_ID)
        .api_key(TEST_API_KEY)
        .dialer(dialer)
        .command_timeout(WAIT)
        .initial_connect_timeout(WAIT)
        .reconnect_delay(|_| Duration::from_millis(20))
}

fn sms() -> MessagingChannelNumber {
    MessagingChannelNumber::new(TEST_SMS_SHORT_CODE, MessagingChannel::Sms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_and_simulator_talk_in_process_without_a_listener() {
    let server = emulator().await;
    let dialer: Arc<dyn Dialer> = Arc::new(server.in_process_dialer());
    let config = config(dialer);
    assert!(
        format!("{:?}", config.clone().build().unwrap()).contains("in-process emulator"),
        "Debug shows the dialer"
    );

    let app = Elarian::new(config.clone()).unwrap();
    let (received_tx, mut received) = mpsc::channel(4);
    app.on_received_sms(move |notification, _customer, app_data, responder| {
        let received_tx = received_tx.clone();
        async move {
            responder.reply(None, app_data);
            let _ = received_tx.send(notification.text()).await;
        }
    });
    tokio::time::timeout(WAIT, app.connect())
        .await
        .expect("in time")
        .expect("the app connects in-process");
    let simulator = Simulator::new(config).unwrap();
    let (sent_tx, mut sent) = mpsc::channel(4);
    simulator.on_send_message(move |notification| {
        let sent_tx = sent_tx.clone();
        async move {
            let _ = sent_tx.send(notification).await;
        }
    });
    tokio::time::timeout(WAIT, simulator.connect())
        .await
        .expect("in time")
        .expect("the simulator connects in-process");

    // App command, then its notification to the simulator.
    let number = "+254700000101";
    let reply = app
        .customer(CustomerNumber::cellular(number))
        .send_message(sms(), Message::text("hello in-process"))
        .await
        .expect("sent");
    assert!(reply.is_success(), "{reply:?}");
    let delivered = tokio::time::timeout(WAIT, sent.recv())
        .await
        .expect("in time")
        .expect("the simulator is notified");
    assert_eq!(
        delivered.message.body,
        Some(MessageBody::Text("hello in-process".into()))
    );

    // Simulator command, then its notification to the app.
    simulator
        .receive_message(
            number,
            sms(),
            "",
            vec![InboundMessageBody::Text("hi back".into())],
        )
        .await
        .expect("the customer's SMS is accepted");
    let text = tokio::time::timeout(WAIT, received.recv())
        .await
        .expect("in time")
        .expect("the app is notified");
    assert_eq!(text.as_deref(), Some("hi back"));

    simulator.disconnect().await;
    app.disconnect().await;
    server.shutdown().await;
}

/// The emulator's dialer behind a relay that a test can cut, as a network would drop a TCP
/// connection; counts dials.
struct CuttableDialer {
    inner: InProcessDialer,
    dials: Arc<AtomicUsize>,
    cut: watch::Receiver<u64>,
}

impl Dialer for CuttableDialer {
    fn dial(&self) -> DialFuture {
        let dials = self.dials.clone();
        let mut cut = self.cut.clone();
        let upstream = self.inner.dial();
        Box::pin(async move {
            let upstream = upstream.await?;
            dials.fetch_add(1, Ordering::SeqCst);
            cut.mark_unchanged();
            let (client, relay) = memory::pair(64);
            let (mut up_r, mut up_w) = upstream.split();
            let (mut relay_r, mut relay_w) = relay.split();
            tokio::spawn(async move {
                // Dropping both ends when cut closes the connection for both peers.
                let to_server = async {
                    while let Ok(Some(frame)) = relay_r.read_frame().await {
                        if up_w.write_frame(frame).await.is_err() || up_w.flush().await.is_err() {
                            break;
                        }
                    }
                };
                let to_client = async {
                    while let Ok(Some(frame)) = up_r.read_frame().await {
                        if relay_w.write_frame(frame).await.is_err()
                            || relay_w.flush().await.is_err()
                        {
                            break;
                        }
                    }
                };
                tokio::select! {
                    _ = cut.changed() => {}
                    _ = to_server => {}
                    _ = to_client => {}
                }
            });
            Ok(BoxTransport::new(client))
        })
    }

    fn describe(&self) -> String {
        "cuttable in-process emulator".to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_in_process_connection_is_reopened_through_the_dialer() {
    let server = emulator().await;
    for resumption in [true, false] {
        let dials = Arc::new(AtomicUsize::new(0));
        let (cut_tx, cut_rx) = watch::channel(0u64);
        let dialer = Arc::new(CuttableDialer {
            inner: server.in_process_dialer(),
            dials: dials.clone(),
            cut: cut_rx,
        });
        let app = Elarian::new(config(dialer.clone()).resumption(resumption)).unwrap();
        tokio::time::timeout(WAIT, app.connect())
            .await
            .expect("in time")
            .expect("connects");
        app.generate_auth_token()
            .await
            .expect("works before the cut");
        assert_eq!(dials.load(Ordering::SeqCst), 1);

        let simulator = Simulator::new(config(dialer)).unwrap();
        tokio::time::timeout(WAIT, simulator.connect())
            .await
            .expect("in time")
            .expect("connects");
        assert_eq!(dials.load(Ordering::SeqCst), 2);

        cut_tx.send_modify(|n| *n += 1);
        tokio::time::timeout(WAIT, async {
            while dials.load(Ordering::SeqCst) < 4 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("both clients dial again (resumption {resumption})"));
        app.generate_auth_token()
            .await
            .unwrap_or_else(|e| panic!("works after the cut (resumption {resumption}): {e}"));
        simulator
            .receive_message(
                "+254700000102",
                sms(),
                "",
                vec![InboundMessageBody::Text("still here".into())],
            )
            .await
            .unwrap_or_else(|e| panic!("simulator works after the cut: {e}"));
        simulator.disconnect().await;
        app.disconnect().await;
    }
    server.shutdown().await;
}
