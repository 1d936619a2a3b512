//! Deterministic tests of the state machine: no sockets, a fake clock.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::frame::{Frame, KeepaliveFrame, RequestFrame, RequestKind, SetupFrame};

const TOKEN: &[u8] = b"token-1";

fn setup_frame(token: Option<&[u8]>) -> SetupFrame {
    SetupFrame {
        major_version: 1,
        minor_version: 0,
        keepalive_ms: 1000,
        max_lifetime_ms: 60_000,
        resume_token: token.map(Bytes::copy_from_slice),
        lease: false,
        metadata_mime: "application/json".into(),
        data_mime: "application/octet-stream".into(),
        metadata: None,
        data: Bytes::from_static(b"credentials"),
    }
}

fn configs(resumable: bool) -> (SessionConfig, SessionConfig) {
    let mut c = SessionConfig::new(Side::Client);
    let mut s = SessionConfig::new(Side::Server);
    if resumable {
        c.resume_buffer = Some(1 << 20);
        s.resume_buffer = Some(1 << 20);
    }
    (c, s)
}

/// A connected client/server pair with the handshake done and its events consumed.
fn pair_with(
    c: SessionConfig,
    s: SessionConfig,
    token: Option<&[u8]>,
    now: Instant,
) -> (Session, Session) {
    let mut client = Session::client(c, &setup_frame(token), now).unwrap();
    let mut server = Session::server(s, now);
    let Frame::Setup(setup) = Frame::decode(client.poll_transmit().unwrap()).unwrap() else {
        panic!("first frame is not SETUP");
    };
    check_setup(&setup, true).unwrap();
    pump(&mut client, &mut server, now);
    assert_eq!(events(&mut client), vec![Event::Established]);
    (client, server)
}

fn pair(now: Instant) -> (Session, Session) {
    let (c, s) = configs(false);
    pair_with(c, s, None, now)
}

/// Delivers frames both ways until neither side has anything to send.
fn pump(a: &mut Session, b: &mut Session, now: Instant) {
    loop {
        let mut moved = false;
        while let Some(f) = a.poll_transmit() {
            b.handle_frame(f, now);
            moved = true;
        }
        while let Some(f) = b.poll_transmit() {
            a.handle_frame(f, now);
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn transmitted(s: &mut Session) -> Vec<Frame> {
    std::iter::from_fn(|| s.poll_transmit())
        .map(|b| Frame::decode(b).unwrap())
        .collect()
}

fn request_frame(stream_id: u32, kind: RequestKind) -> Bytes {
    Frame::Request(RequestFrame {
        stream_id,
        kind,
        follows: false,
        metadata: None,
        data: Bytes::from_static(b"req"),
    })
    .to_bytes()
    .unwrap()
}

#[test]
fn client_sends_keepalives_and_the_server_answers_with_the_same_data() {
    let now = Instant::now();
    let (mut client, mut server) = pair(now);
    assert!(client.poll_timeout().unwrap() <= now + Duration::from_secs(1));
    client.handle_timeout(now + Duration::from_secs(1));
    let sent = transmitted(&mut client);
    assert!(matches!(
        sent.as_slice(),
        [Frame::Keepalive(KeepaliveFrame { respond: true, .. })]
    ));

    let ping = Frame::Keepalive(KeepaliveFrame {
        respond: true,
        last_received_position: 0,
        data: Bytes::from_static(b"ping"),
    });
    server.handle_frame(ping.to_bytes().unwrap(), now);
    let answer = transmitted(&mut server);
    assert_eq!(
        answer,
        vec![Frame::Keepalive(KeepaliveFrame {
            respond: false,
            last_received_position: 0,
            data: Bytes::from_static(b"ping"),
        })]
    );
    // A KEEPALIVE without the respond flag is not answered.
    server.handle_frame(answer[0].to_bytes().unwrap(), now);
    assert!(!server.has_transmit());
}

#[test]
fn silence_beyond_the_max_lifetime_closes_with_keepalive_timeout() {
    let now = Instant::now();
    let (mut client, mut server) = pair(now);
    let later = now + Duration::from_secs(60);
    client.handle_timeout(later);
    server.handle_timeout(later);
    for s in [&mut client, &mut server] {
        assert!(s.is_closed());
        assert!(events(s).contains(&Event::Closed(CloseReason::KeepaliveTimeout)));
    }
}

#[test]
fn frames_received_keep_the_connection_alive() {
    let now = Instant::now();
    let (mut client, mut server) = pair(now);
    for sec in 1..=120 {
        let t = now + Duration::from_secs(sec);
        client.handle_timeout(t);
        server.handle_timeout(t);
        pump(&mut client, &mut server, t);
    }
    assert!(!client.is_closed());
    assert!(!server.is_closed());
}

#[test]
fn connection_errors_close_with_code_and_message() {
    let now = Instant::now();
    for code in [
        ErrorCode::InvalidSetup,
        ErrorCode::UnsupportedSetup,
        ErrorCode::RejectedSetup,
        ErrorCode::RejectedResume,
        ErrorCode::ConnectionError,
        ErrorCode::ConnectionClose,
    ] {
        let (mut client, mut server) = pair(now);
        server.close_with_error(code, "bye");
        pump(&mut client, &mut server, now);
        assert_eq!(
            events(&mut client),
            vec![Event::Closed(CloseReason::Error {
                code,
                message: "bye".into()
            })]
        );
    }
}

#[test]
fn stream_errors_fail_the_request_with_code_and_lossy_message() {
    let now = Instant::now();
    let (mut client, mut server) = pair(now);
    for (i, code) in [
        ErrorCode::ApplicationError,
        ErrorCode::Rejected,
        ErrorCode::Canceled,
        ErrorCode::Invalid,
        ErrorCode::Other(0x301),
    ]
    .into_iter()
    .enumerate()
    {
        let id = 1 + 2 * i as u32;
        assert_eq!(client.request_response(Payload::new("x")), Ok(id));
        pump(&mut client, &mut server, now);
        assert!(matches!(
            events(&mut server).as_slice(),
            [Event::Request { .. }]
        ));
        server
            .respond(id, Err(StreamError::new(code, "failed")))
            .unwrap();
        pump(&mut client, &mut server, now);
        assert_eq!(
            events(&mut client),
            vec![Event::RequestFailed {
                stream_id: id,
                error: RequestError::Remote {
                    code,
                    message: "failed".into()
                }
            }]
        );
    }
    // Invalid UTF-8 in the error data is replaced, not refused.
    assert_eq!(client.request_response(Payload::new("x")), Ok(11));
    pump(&mut client, &mut server, now);
    let raw = Frame::Error(ErrorFrame {
        stream_id: 11,
        code: ErrorCode::ApplicationError,
        data: Bytes::from_static(&[b'o', 0xFF, b'k']),
    });
    client.handle_frame(raw.to_bytes().unwrap(), now);
    assert_eq!(
        events(&mut client),
        vec![Event::RequestFailed {
            stream_id: 11,
            error: RequestError::Remote {
                code: ErrorCode::ApplicationError,
                message: "o\u{FFFD}k".into()
            }
        }]
    );
    assert!(!client.is_closed());
}

#[test]
fn lease_and_unknown_versions_are_unsupported_setups() {
    let mut lease = setup_frame(None);
    lease.lease = true;
    assert_eq!(
        check_setup(&lease, true).unwrap_err().code,
        ErrorCode::UnsupportedSetup
    );
    let mut v2 = setup_frame(None);
    v2.major_version = 2;
    assert_eq!(
        check_setup(&v2, true).unwrap_err().code,
        ErrorCode::UnsupportedSetup
    );
    let resumable = setup_frame(Some(TOKEN));
    assert_eq!(
        check_setup(&resumable, false).unwrap_err().code,
        ErrorCode::UnsupportedSetup
    );
    assert!(check_setup(&resumable, true).is_ok());
}

#[test]
fn request_channel_is_rejected_on_its_stream() {
    let now = Instant::now();
    let (_client, mut server) = pair(now);
    server.handle_frame(
        request_frame(
            1,
            RequestKind::Channel {
                initial_n: 1,
                complete: false,
            },
        ),
        now,
    );
    assert!(events(&mut server).is_empty());
    match transmitted(&mut server).as_slice() {
        [Frame::Error(e)] => {
            assert_eq!(e.stream_id, 1);
            assert_eq!(e.code, ErrorCode::Rejected);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!server.is_closed());
}

#[test]
fn requests_on_invalid_stream_ids_are_connection_errors() {
    let now = Instant::now();
    // The server receives requests on odd ids only.
    let (_client, mut server) = pair(now);
    server.handle_frame(request_frame(2, RequestKind::Response), now);
    assert!(server.is_closed());
    match transmitted(&mut server).as_slice() {
        [Frame::Error(e)] => assert_eq!((e.stream_id, e.code), (0, ErrorCode::ConnectionError)),
        other => panic!("unexpected {other:?}"),
    }
    // Reusing an active id is also an error.
    let (_client, mut server) = pair(now);
    server.handle_frame(request_frame(1, RequestKind::Response), now);
    server.handle_frame(request_frame(1, RequestKind::Response), now);
    assert!(server.is_closed());
}

#[test]
fn frames_for_unknown_streams_are_ignored() {
    let now = Instant::now();
    let (mut client, _server) = pair(now);
    for f in [
        Frame::Payload(PayloadFrame {
            stream_id: 8,
            follows: false,
            complete: true,
            next: true,
            metadata: None,
            data: Bytes::new(),
        }),
        Frame::RequestN { stream_id: 8, n: 3 },
        Frame::Cancel { stream_id: 8 },
        Frame::Error(ErrorFrame {
            stream_id: 8,
            code: ErrorCode::ApplicationError,
            data: Bytes::new(),
        }),
    ] {
        client.handle_frame(f.to_bytes().unwrap(), now);
    }
    assert!(events(&mut client).is_empty());
    assert!(!client.has_transmit());
    assert!(!client.is_closed());
}

#[test]
fn malformed_frames_close_with_connection_error() {
    let now = Instant::now();
    let (mut client, _server) = pair(now);
    client.handle_frame(Bytes::from_static(&[0, 0, 0, 1, 0x28]), now);
    assert!(client.is_closed());
    match transmitted(&mut client).as_slice() {
        [Frame::Error(e)] => assert_eq!(e.code, ErrorCode::ConnectionError),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn fragmentation_round_trip_both_ways() {
    let now = Instant::now();
    let (mut c, mut s) = configs(false);
    c.mtu = 64;
    s.mtu = 64;
    let (mut client, mut server) = pair_with(c, s, None, now);
    let request = Payload::new(vec![7u8; 1000]).with_metadata(vec![1u8; 300]);
    assert_eq!(client.request_response(request.clone()), Ok(1));
    let frames: Vec<Bytes> = std::iter::from_fn(|| client.poll_transmit()).collect();
    assert!(frames.len() > 20);
    assert!(frames.iter().all(|f| f.len() <= 64));
    for f in frames {
        server.handle_frame(f, now);
    }
    assert_eq!(
        events(&mut server),
        vec![Event::Request {
            stream_id: 1,
            kind: InboundKind::Response,
            payload: request,
        }]
    );
    let response = Payload::new(vec![9u8; 777]);
    server.respond(1, Ok(response.clone())).unwrap();
    pump(&mut client, &mut server, now);
    assert_eq!(
        events(&mut client),
        vec![Event::Response {
            stream_id: 1,
            payload: response
        }]
    );
    assert_eq!(client.active_streams(), 0);
    assert_eq!(server.active_streams(), 0);
}

#[test]
fn oversized_request_is_rejected_and_its_memory_released() {
    let now = Instant::now();
    let (mut c, mut s) = configs(false);
    c.mtu = 100;
    s.max_reassembly = 1000;
    let (mut client, mut server) = pair_with(c, s, None, now);
    assert_eq!(
        client.request_response(Payload::new(vec![0u8; 5000])),
        Ok(1)
    );
    pump(&mut client, &mut server, now);
    assert!(events(&mut server).is_empty());
    assert_eq!(server.active_streams(), 0);
    match events(&mut client).as_slice() {
        [
            Event::RequestFailed {
                stream_id: 1,
                error: RequestError::Remote { code, .. },
            },
        ] => assert_eq!(*code, ErrorCode::Rejected),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!server.is_closed());
}

#[test]
fn oversized_response_cancels_the_stream_and_fails_locally() {
    let now = Instant::now();
    let (mut c, mut s) = configs(false);
    c.max_reassembly = 500;
    s.mtu = 100;
    let (mut client, mut server) = pair_with(c, s, None, now);
    assert_eq!(client.request_response(Payload::new("q")), Ok(1));
    pump(&mut client, &mut server, now);
    events(&mut server);
    server
        .respond(1, Ok(Payload::new(vec![0u8; 5000])))
        .unwrap();
    // Deliver frame by frame to see the CANCEL go out.
    let mut canceled = false;
    while let Some(f) = server.poll_transmit() {
        client.handle_frame(f, now);
        for f in transmitted(&mut client) {
            canceled |= f == Frame::Cancel { stream_id: 1 };
        }
    }
    assert!(canceled);
    match events(&mut client).as_slice() {
        [
            Event::RequestFailed {
                stream_id: 1,
                error: RequestError::PayloadTooLarge { len, limit: 500 },
            },
        ] => assert!(*len > 500),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(client.active_streams(), 0);
}

#[test]
fn responder_never_exceeds_request_n_credit() {
    let now = Instant::now();
    let (mut client, mut server) = pair(now);
    assert_eq!(client.request_stream(Payload::new("s"), 2), Ok(1));
    pump(&mut client, &mut server, now);
    assert_eq!(
        events(&mut server),
        vec![Event::Request {
            stream_id: 1,
            kind: InboundKind::Stream { initial_n: 2 },
            payload: Payload::new("s")
        }]
    );
    server.stream_next(1, Payload::new("a")).unwrap();
    server.stream_next(1, Payload::new("b")).unwrap();
    assert_eq!(
        server.stream_next(1, Payload::new("c")),
        Err(OperationError::NoCredit(1))
    );
    pump(&mut client, &mut server, now);
    assert_eq!(events(&mut client).len(), 2);
    client.request_n(1, 1).unwrap();
    pump(&mut client, &mut server, now);
    assert_eq!(events(&mut server), vec![Event::Credit { stream_id: 1 }]);
    server.stream_next(1, Payload::new("c")).unwrap();
    server.stream_complete(1).unwrap();
    pump(&mut client, &mut server, now);
    assert_eq!(
        events(&mut client),
        vec![
            Event::StreamNext {
                stream_id: 1,
                payload: Payload::new("c")
            },
            Event::StreamComplete { stream_id: 1 }
        ]
    );
}

#[test]
fn cancel_stops_a_responder_stream() {
    let now = Instant::now();
    let (mut client, mut server) = pair(now);
    assert_eq!(client.request_stream(Payload::new("s"), 10), Ok(1));
    pump(&mut client, &mut server, now);
    events(&mut server);
    client.cancel(1);
    pump(&mut client, &mut server, now);
    assert_eq!(events(&mut server), vec![Event::Canceled { stream_id: 1 }]);
    assert_eq!(
        server.stream_next(1, Payload::new("late")),
        Err(OperationError::UnknownStream(1))
    );
}

#[test]
fn fire_and_forget_and_metadata_push_are_delivered() {
    let now = Instant::now();
    let (mut client, mut server) = pair(now);
    assert_eq!(client.fire_and_forget(Payload::new("f")), Ok(1));
    client.metadata_push(Bytes::from_static(b"m")).unwrap();
    pump(&mut client, &mut server, now);
    assert_eq!(
        events(&mut server),
        vec![
            Event::Request {
                stream_id: 1,
                kind: InboundKind::FireAndForget,
                payload: Payload::new("f")
            },
            Event::MetadataPush(Bytes::from_static(b"m"))
        ]
    );
    assert_eq!(server.active_streams(), 0);
}

#[test]
fn server_requests_use_even_ids_and_client_answers() {
    let now = Instant::now();
    let (mut client, mut server) = pair(now);
    // The server's first request takes the first even id.
    assert_eq!(server.request_response(Payload::new("notification")), Ok(2));
    pump(&mut client, &mut server, now);
    assert!(matches!(
        events(&mut client).as_slice(),
        [Event::Request { stream_id: 2, .. }]
    ));
    client.respond(2, Ok(Payload::new("reply"))).unwrap();
    pump(&mut client, &mut server, now);
    assert_eq!(
        events(&mut server),
        vec![Event::Response {
            stream_id: 2,
            payload: Payload::new("reply")
        }]
    );
}

/// Resumes `client` against `server`, returning what the server answered.
fn resume(client: &mut Session, server: &mut Session, now: Instant) -> Result<(), String> {
    client.start_resume(Bytes::from_static(TOKEN), now).unwrap();
    let Frame::Resume(frame) = Frame::decode(client.poll_transmit().unwrap()).unwrap() else {
        panic!("expected RESUME");
    };
    server.accept_resume(&frame, now)
}

#[test]
fn resume_retransmits_lost_frames_exactly_once() {
    let now = Instant::now();
    let (c, s) = configs(true);
    let (mut client, mut server) = pair_with(c, s, Some(TOKEN), now);
    assert_eq!(client.request_response(Payload::new("one")), Ok(1));
    assert_eq!(client.request_response(Payload::new("three")), Ok(3));
    // Request 1 arrives, request 3 is lost with the transport.
    server.handle_frame(client.poll_transmit().unwrap(), now);
    client.poll_transmit().unwrap();
    assert_eq!(events(&mut server).len(), 1);
    // The answer to 1 is lost too.
    server.respond(1, Ok(Payload::new("r1"))).unwrap();
    server.poll_transmit().unwrap();
    client.transport_lost(now, "reset");
    server.transport_lost(now, "reset");
    assert!(client.is_detached() && server.is_detached());
    // Work done while detached is kept for the resumption.
    assert_eq!(client.request_response(Payload::new("five")), Ok(5));
    assert!(!client.has_transmit());

    resume(&mut client, &mut server, now).unwrap();
    pump(&mut client, &mut server, now);
    assert!(events(&mut client).contains(&Event::Resumed));
    let server_events = events(&mut server);
    let ids: Vec<u32> = server_events
        .iter()
        .filter_map(|e| match e {
            Event::Request { stream_id, .. } => Some(*stream_id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![3, 5]);
    server.respond(3, Ok(Payload::new("r3"))).unwrap();
    server.respond(5, Ok(Payload::new("r5"))).unwrap();
    pump(&mut client, &mut server, now);
    let responses: Vec<u32> = events(&mut client)
        .iter()
        .filter_map(|e| match e {
            Event::Response { stream_id, .. } => Some(*stream_id),
            _ => None,
        })
        .collect();
    assert_eq!(responses, vec![3, 5]);
    // The earlier response to 1 was delivered during the resume pump.
    assert_eq!(client.active_streams(), 0);
    assert_eq!(client.received_position(), server.resume.sent);
    assert_eq!(server.received_position(), client.resume.sent);
}

#[test]
fn resume_is_rejected_when_positions_are_gone() {
    let now = Instant::now();
    let (c, s) = configs(true);
    let (mut client, mut server) = pair_with(c, s, Some(TOKEN), now);
    assert_eq!(client.request_response(Payload::new("one")), Ok(1));
    pump(&mut client, &mut server, now);
    client.transport_lost(now, "reset");
    server.transport_lost(now, "reset");
    // The client claims to have received bytes the server never sent.
    let bogus = ResumeFrame {
        major_version: 1,
        minor_version: 0,
        resume_token: Bytes::from_static(TOKEN),
        last_received_server_position: 1_000_000,
        first_available_client_position: 0,
    };
    assert!(server.accept_resume(&bogus, now).is_err());
    // A refused RESUME leaves the session as it was: the real client can still resume.
    assert!(!server.is_closed());
    assert!(server.is_detached());
    let good = ResumeFrame {
        last_received_server_position: client.received_position(),
        first_available_client_position: 0,
        ..bogus.clone()
    };
    let sent_before = server.resume.sent;
    assert!(server.accept_resume(&good, now).is_ok());
    assert_eq!(server.resume.sent, sent_before);

    // A client that released frames the server still needs cannot resume either.
    let (c, s) = configs(true);
    let (mut client, mut server) = pair_with(c, s, Some(TOKEN), now);
    assert_eq!(client.request_response(Payload::new("one")), Ok(1));
    client.poll_transmit();
    client.transport_lost(now, "reset");
    server.transport_lost(now, "reset");
    let gone = ResumeFrame {
        first_available_client_position: 10,
        ..bogus
    };
    assert!(server.accept_resume(&gone, now).is_err());
}

#[test]
fn rejected_resume_closes_the_client_session() {
    let now = Instant::now();
    let (c, s) = configs(true);
    let (mut client, _server) = pair_with(c, s, Some(TOKEN), now);
    assert_eq!(client.request_response(Payload::new("one")), Ok(1));
    client.transport_lost(now, "reset");
    client.start_resume(Bytes::from_static(TOKEN), now).unwrap();
    client.poll_transmit();
    let reject = Frame::Error(ErrorFrame {
        stream_id: 0,
        code: ErrorCode::RejectedResume,
        data: Bytes::from_static(b"unknown resume token"),
    });
    client.handle_frame(reject.to_bytes().unwrap(), now);
    let ev = events(&mut client);
    assert!(ev.contains(&Event::RequestFailed {
        stream_id: 1,
        error: RequestError::Closed(CloseReason::Error {
            code: ErrorCode::RejectedResume,
            message: "unknown resume token".into()
        })
    }));
    assert!(client.is_closed());
}

#[test]
fn resume_buffer_overflow_makes_the_session_non_resumable() {
    let now = Instant::now();
    let (mut c, s) = configs(true);
    c.resume_buffer = Some(100);
    let (mut client, _server) = pair_with(c, s, Some(TOKEN), now);
    assert!(client.is_resumable());
    assert_eq!(client.request_response(Payload::new(vec![0u8; 200])), Ok(1));
    assert!(!client.is_resumable());
    client.transport_lost(now, "reset");
    assert!(client.is_closed());
}

#[test]
fn keepalive_positions_release_the_resume_buffer() {
    let now = Instant::now();
    let (c, s) = configs(true);
    let (mut client, mut server) = pair_with(c, s, Some(TOKEN), now);
    assert_eq!(client.request_response(Payload::new("one")), Ok(1));
    pump(&mut client, &mut server, now);
    assert_eq!(client.resume.first_available, 0);
    client.handle_timeout(now + Duration::from_secs(1));
    pump(&mut client, &mut server, now);
    assert_eq!(client.resume.first_available, client.resume.sent);
}

#[test]
fn a_filling_resume_buffer_asks_the_peer_for_its_position_and_stays_resumable() {
    let now = Instant::now();
    for (client_asks, limit) in [(true, 4_096), (false, 4_096)] {
        let (mut c, mut s) = configs(true);
        c.resume_buffer = Some(limit);
        s.resume_buffer = Some(limit);
        let (mut client, mut server) = pair_with(c, s, Some(TOKEN), now);
        // Far more than the limit in total, with no periodic KEEPALIVE due meanwhile.
        for i in 0..200u32 {
            let id = 2 * i + 1;
            let asking = if client_asks {
                &mut client
            } else {
                &mut server
            };
            let id = if client_asks { id } else { id + 1 };
            assert_eq!(
                asking.request_response(Payload::new(vec![7u8; 100])),
                Ok(id)
            );
            let frames = transmitted(asking);
            let asks = frames
                .iter()
                .filter(|f| matches!(f, Frame::Keepalive(k) if k.respond))
                .count();
            assert!(asks <= 1, "one question at a time, got {asks}");
            let other = if client_asks {
                &mut server
            } else {
                &mut client
            };
            for f in frames {
                other.handle_frame(f.to_bytes().unwrap(), now);
            }
            // The peer answers the question (and nothing else: no responder runs here).
            let answers = transmitted(other);
            let asking = if client_asks {
                &mut client
            } else {
                &mut server
            };
            for f in answers {
                asking.handle_frame(f.to_bytes().unwrap(), now);
            }
            assert!(asking.is_resumable(), "overflowed after {i} requests");
            assert!(asking.resume.buffered_bytes() <= limit);
        }
    }
}

#[test]
fn metadata_push_does_not_count_towards_positions_and_is_not_queued_while_detached() {
    let now = Instant::now();
    let (c, s) = configs(true);
    let (mut client, mut server) = pair_with(c, s, Some(TOKEN), now);
    let (sent, received) = (client.resume.sent, server.resume.received);
    client.metadata_push(Bytes::from_static(b"m")).unwrap();
    pump(&mut client, &mut server, now);
    assert_eq!(
        events(&mut server),
        vec![Event::MetadataPush(Bytes::from_static(b"m"))]
    );
    assert_eq!(client.resume.sent, sent);
    assert_eq!(server.resume.received, received);
    assert_eq!(client.request_response(Payload::new("one")), Ok(1));
    pump(&mut client, &mut server, now);
    assert!(client.resume.sent > sent);
    assert_eq!(server.resume.received, client.resume.sent);
    client.transport_lost(now, "reset");
    assert!(matches!(
        client.metadata_push(Bytes::from_static(b"m")),
        Err(OperationError::Detached)
    ));
}

#[test]
fn durations_of_duration_max_mean_never_rather_than_a_panic() {
    let now = Instant::now();
    let (mut c, mut s) = configs(true);
    c.resume_window = Duration::MAX;
    c.resume_timeout = Duration::MAX;
    s.resume_window = Duration::MAX;
    let (mut client, mut server) = pair_with(c, s, Some(TOKEN), now);
    client.transport_lost(now, "reset");
    server.transport_lost(now, "reset");
    let later = now + Duration::from_secs(3_600);
    client.handle_timeout(later);
    server.handle_timeout(later);
    assert!(client.is_detached() && server.is_detached());
    assert!(client.poll_timeout().is_some_and(|t| t > later));
    client
        .start_resume(Bytes::from_static(TOKEN), later)
        .unwrap();
    assert!(client.poll_timeout().is_some_and(|t| t > later));
}

#[test]
fn detached_sessions_expire() {
    let now = Instant::now();
    let (c, s) = configs(true);
    let (_client, mut server) = pair_with(c, s, Some(TOKEN), now);
    server.transport_lost(now, "reset");
    assert_eq!(server.poll_timeout(), Some(now + Duration::from_secs(60)));
    server.handle_timeout(now + Duration::from_secs(60));
    assert!(events(&mut server).contains(&Event::Closed(CloseReason::ResumeExpired)));
}

#[test]
fn keepalive_timeout_detaches_a_resumable_session() {
    let now = Instant::now();
    let (c, s) = configs(true);
    let (mut client, _server) = pair_with(c, s, Some(TOKEN), now);
    client.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(events(&mut client), vec![Event::Disconnected]);
    assert!(client.is_detached());
}

#[test]
fn items_beyond_the_granted_credit_fail_the_stream() {
    let now = Instant::now();
    let (mut client, mut server) = pair(now);
    assert_eq!(client.request_stream(Payload::new("s"), 1), Ok(1));
    pump(&mut client, &mut server, now);
    events(&mut server);
    let item = |n: &'static str| {
        Frame::Payload(PayloadFrame {
            stream_id: 1,
            follows: false,
            complete: false,
            next: true,
            metadata: None,
            data: Bytes::from_static(n.as_bytes()),
        })
        .to_bytes()
        .unwrap()
    };
    client.handle_frame(item("a"), now);
    client.handle_frame(item("b"), now);
    let ev = events(&mut client);
    assert_eq!(ev.len(), 2);
    assert!(matches!(ev[0], Event::StreamNext { .. }));
    assert!(matches!(
        ev[1],
        Event::RequestFailed {
            stream_id: 1,
            error: RequestError::Protocol(_)
        }
    ));
    assert_eq!(
        transmitted(&mut client),
        vec![Frame::Cancel { stream_id: 1 }]
    );
}

/// Maps a frame onto a few stream ids, so that random frames hit the streams that exist.
fn squash_stream(frame: Frame) -> Frame {
    let squash = |id: u32| id % 8;
    match frame {
        Frame::Request(mut r) => {
            r.stream_id = squash(r.stream_id).max(1);
            Frame::Request(r)
        }
        Frame::Payload(mut p) => {
            p.stream_id = squash(p.stream_id).max(1);
            Frame::Payload(p)
        }
        Frame::RequestN { stream_id, n } => Frame::RequestN {
            stream_id: squash(stream_id).max(1),
            n,
        },
        Frame::Cancel { stream_id } => Frame::Cancel {
            stream_id: squash(stream_id).max(1),
        },
        Frame::Error(mut e) => {
            e.stream_id = squash(e.stream_id);
            Frame::Error(e)
        }
        other => other,
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_frame_sequences_never_panic(
        frames in proptest::collection::vec(crate::frame::tests::frame_strategy(), 0..40),
        ticks in proptest::collection::vec(0u64..120_000, 0..5),
        as_server in proptest::prelude::any::<bool>(),
    ) {
        let now = Instant::now();
        let (mut c, mut s) = configs(true);
        c.mtu = 64;
        s.mtu = 64;
        c.max_reassembly = 256;
        s.max_reassembly = 256;
        let (mut client, mut server) = pair_with(c, s, Some(TOKEN), now);
        // Some streams of our own so that responses and errors find a target.
        assert_eq!(client.request_response(Payload::new("a")), Ok(1));
        assert_eq!(client.request_stream(Payload::new("b"), 2), Ok(3));
        assert_eq!(server.request_response(Payload::new("c")), Ok(2));
        pump(&mut client, &mut server, now);
        let session = if as_server { &mut server } else { &mut client };
        for frame in frames {
            if let Ok(bytes) = squash_stream(frame).to_bytes() {
                session.handle_frame(bytes, now);
            }
            while let Some(event) = session.poll_event() {
                // Answer what can be answered, as a driver would.
                if let Event::Request { stream_id, kind: InboundKind::Response, .. } = event {
                    let _ = session.respond(stream_id, Ok(Payload::new(vec![0u8; 200])));
                }
            }
        }
        for t in ticks {
            session.handle_timeout(now + Duration::from_millis(t));
        }
        while let Some(bytes) = session.poll_transmit() {
            let len = bytes.len();
            let frame = Frame::decode(bytes);
            proptest::prop_assert!(frame.is_ok());
            if let Ok(Frame::Payload(_) | Frame::Request(_)) = frame {
                proptest::prop_assert!(len <= 64, "a {len}-byte frame exceeds the MTU");
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// Deliver up to n frames from client to server.
    ToServer(usize),
    /// Deliver up to n frames from server to client.
    ToClient(usize),
    /// The client sends a new request.
    Request,
    /// A second passes (the client sends a KEEPALIVE).
    Tick,
    /// The transport dies, losing every frame on the wire; the client resumes.
    Cut,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        (1usize..6).prop_map(Step::ToServer),
        (1usize..6).prop_map(Step::ToClient),
        Just(Step::Request),
        Just(Step::Tick),
        Just(Step::Cut),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// However often the transport dies and whatever is lost on the wire, resumption delivers
    /// every request and every response exactly once.
    #[test]
    fn resumption_delivers_everything_exactly_once(
        steps in proptest::collection::vec(step(), 1..80),
        mtu in proptest::prop_oneof![proptest::strategy::Just(64usize), proptest::strategy::Just(4096usize)],
    ) {
        use std::collections::{HashMap, VecDeque};
        let start = Instant::now();
        let mut now = start;
        let (mut c, mut s) = configs(true);
        c.mtu = mtu;
        s.mtu = mtu;
        let (mut client, mut server) = pair_with(c, s, Some(TOKEN), now);
        let mut to_server: VecDeque<Bytes> = VecDeque::new();
        let mut to_client: VecDeque<Bytes> = VecDeque::new();
        let mut next_id = 1u32;
        let mut requests_seen: HashMap<u32, usize> = HashMap::new();
        let mut responses_seen: HashMap<u32, usize> = HashMap::new();

        let drain = |client: &mut Session, server: &mut Session,
                         to_server: &mut VecDeque<Bytes>, to_client: &mut VecDeque<Bytes>,
                         requests_seen: &mut HashMap<u32, usize>,
                         responses_seen: &mut HashMap<u32, usize>| {
            while let Some(f) = client.poll_transmit() {
                to_server.push_back(f);
            }
            while let Some(e) = server.poll_event() {
                if let Event::Request { stream_id, payload, .. } = e {
                    *requests_seen.entry(stream_id).or_default() += 1;
                    // A response big enough to be fragmented at the small MTU.
                    let mut data = payload.data.to_vec();
                    data.resize(150, b'.');
                    server.respond(stream_id, Ok(Payload::new(data))).unwrap();
                }
            }
            while let Some(f) = server.poll_transmit() {
                to_client.push_back(f);
            }
            while let Some(e) = client.poll_event() {
                if let Event::Response { stream_id, payload } = e {
                    assert_eq!(&payload.data[..4], &stream_id.to_be_bytes());
                    *responses_seen.entry(stream_id).or_default() += 1;
                }
            }
        };

        let resume_now = |client: &mut Session, server: &mut Session,
                              to_server: &mut VecDeque<Bytes>, to_client: &mut VecDeque<Bytes>,
                              now: Instant| {
            to_server.clear();
            to_client.clear();
            client.transport_lost(now, "cut");
            server.transport_lost(now, "cut");
            client.start_resume(Bytes::from_static(TOKEN), now).unwrap();
            let Frame::Resume(frame) = Frame::decode(client.poll_transmit().unwrap()).unwrap() else {
                panic!("expected RESUME");
            };
            server.accept_resume(&frame, now).unwrap();
        };

        for step in steps {
            match step {
                Step::ToServer(n) => {
                    for _ in 0..n {
                        if let Some(f) = to_server.pop_front() {
                            server.handle_frame(f, now);
                        }
                    }
                }
                Step::ToClient(n) => {
                    for _ in 0..n {
                        if let Some(f) = to_client.pop_front() {
                            client.handle_frame(f, now);
                        }
                    }
                }
                Step::Request => {
                    let mut data = next_id.to_be_bytes().to_vec();
                    data.resize(100, b'r');
                    assert_eq!(client.request_response(Payload::new(data)), Ok(next_id));
                    next_id += 2;
                }
                Step::Tick => {
                    now += Duration::from_secs(1);
                    client.handle_timeout(now);
                    server.handle_timeout(now);
                }
                Step::Cut => resume_now(&mut client, &mut server, &mut to_server, &mut to_client, now),
            }
            // A RESUME that timed out (ticks pass while RESUME_OK is on the wire) leaves the
            // client detached; like the driver's caller, try again over a new transport.
            if client.is_detached() {
                resume_now(&mut client, &mut server, &mut to_server, &mut to_client, now);
            }
            drain(&mut client, &mut server, &mut to_server, &mut to_client,
                  &mut requests_seen, &mut responses_seen);
            proptest::prop_assert!(!client.is_closed() && !server.is_closed());
        }
        // Let everything arrive.
        for _ in 0..1000 {
            if to_server.is_empty() && to_client.is_empty() {
                break;
            }
            while let Some(f) = to_server.pop_front() {
                server.handle_frame(f, now);
            }
            while let Some(f) = to_client.pop_front() {
                client.handle_frame(f, now);
            }
            drain(&mut client, &mut server, &mut to_server, &mut to_client,
                  &mut requests_seen, &mut responses_seen);
        }
        let sent = ((next_id - 1) / 2) as usize;
        proptest::prop_assert_eq!(requests_seen.len(), sent);
        proptest::prop_assert!(requests_seen.values().all(|&n| n == 1));
        proptest::prop_assert_eq!(responses_seen.len(), sent);
        proptest::prop_assert!(responses_seen.values().all(|&n| n == 1));
        proptest::prop_assert_eq!(client.active_streams(), 0);
    }
}

fn closed_with_connection_error(s: &mut Session) -> bool {
    s.is_closed()
        && transmitted(s).iter().any(|f| {
            matches!(f, Frame::Error(e) if e.stream_id == 0 && e.code == ErrorCode::ConnectionError)
        })
}

#[test]
fn reused_request_ids_are_connection_errors_even_after_the_stream_ended() {
    let now = Instant::now();
    let (_client, mut server) = pair(now);
    for id in [1, 3, 5] {
        server.handle_frame(request_frame(id, RequestKind::FireAndForget), now);
    }
    assert!(!server.is_closed());
    // Id 3 was a fire-and-forget: it holds no stream any more, yet it may not be used again.
    server.handle_frame(request_frame(3, RequestKind::Response), now);
    assert!(closed_with_connection_error(&mut server));

    // A request/response answered and gone: its id is spent too.
    let (_client, mut server) = pair(now);
    server.handle_frame(request_frame(7, RequestKind::Response), now);
    events(&mut server);
    server.respond(7, Ok(Payload::new("done"))).unwrap();
    transmitted(&mut server);
    server.handle_frame(request_frame(7, RequestKind::Response), now);
    assert!(closed_with_connection_error(&mut server));
}

#[test]
fn request_ids_far_below_the_newest_are_connection_errors() {
    let now = Instant::now();
    let (mut client, _server) = pair(now);
    // The client receives requests on even ids.
    client.handle_frame(request_frame(2, RequestKind::FireAndForget), now);
    client.handle_frame(request_frame(100_000, RequestKind::FireAndForget), now);
    assert!(!client.is_closed());
    client.handle_frame(request_frame(4, RequestKind::FireAndForget), now);
    assert!(closed_with_connection_error(&mut client));
}

#[test]
fn slightly_reordered_request_ids_are_accepted() {
    // Implementations that allocate ids and write frames from different tasks (rsocket_rust)
    // reorder concurrent requests a little.
    let now = Instant::now();
    let (_client, mut server) = pair(now);
    for id in [1, 5, 3, 9, 7] {
        server.handle_frame(request_frame(id, RequestKind::Response), now);
    }
    assert!(!server.is_closed());
    let requested: Vec<u32> = events(&mut server)
        .into_iter()
        .filter_map(|e| match e {
            Event::Request { stream_id, .. } => Some(stream_id),
            _ => None,
        })
        .collect();
    assert_eq!(requested, vec![1, 5, 3, 9, 7]);
}

#[test]
fn paused_reading_does_not_count_towards_the_lifetime() {
    let now = Instant::now();
    let (mut client, _server) = pair(now);
    // Reading stops after 10 s of a 60 s lifetime, for 100 s.
    client.set_reading_paused(true, now + Duration::from_secs(10));
    for sec in 11..=110 {
        client.handle_timeout(now + Duration::from_secs(sec));
        transmitted(&mut client);
    }
    assert!(!client.is_closed());
    client.set_reading_paused(false, now + Duration::from_secs(110));
    // The lifetime resumes where it stood: 50 s are left.
    client.handle_timeout(now + Duration::from_secs(159));
    assert!(!client.is_closed());
    client.handle_timeout(now + Duration::from_secs(160));
    assert!(client.is_closed());
    assert!(events(&mut client).contains(&Event::Closed(CloseReason::KeepaliveTimeout)));
}

#[test]
fn delivered_requests_count_requests_that_need_an_answer() {
    let now = Instant::now();
    let (_client, mut server) = pair(now);
    server.handle_frame(request_frame(1, RequestKind::Response), now);
    server.handle_frame(request_frame(3, RequestKind::FireAndForget), now);
    server.handle_frame(request_frame(5, RequestKind::Stream { initial_n: 1 }), now);
    assert_eq!(server.delivered_requests(), 2);
    assert_eq!(server.inbound_requests(), 2);
}

#[test]
fn stream_ids_are_allocated_by_the_session_until_the_31_bit_space_runs_out() {
    let now = Instant::now();
    let (mut client, mut server) = pair(now);
    assert_eq!(client.request_response(Payload::new("a")), Ok(1));
    assert_eq!(client.fire_and_forget(Payload::new("b")), Ok(3));
    assert_eq!(client.request_stream(Payload::new("c"), 1), Ok(5));
    // The last odd id is the client's last one; nothing wraps around to reuse old ids.
    client.next_stream_id = MAX_U31;
    assert_eq!(client.request_response(Payload::new("last")), Ok(MAX_U31));
    assert_eq!(
        client.request_response(Payload::new("one more")),
        Err(OperationError::StreamIdsExhausted)
    );
    assert_eq!(
        client.fire_and_forget(Payload::new("one more")),
        Err(OperationError::StreamIdsExhausted)
    );
    server.next_stream_id = MAX_U31 - 1;
    assert_eq!(
        server.request_stream(Payload::new("last"), 1),
        Ok(MAX_U31 - 1)
    );
    assert_eq!(
        server.request_stream(Payload::new("one more"), 1),
        Err(OperationError::StreamIdsExhausted)
    );
    // A closed session refuses before taking an id.
    client.close_local();
    assert!(matches!(
        client.request_response(Payload::new("closed")),
        Err(OperationError::Closed(_))
    ));
}
