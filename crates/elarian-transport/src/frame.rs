//! The RSocket 1.0 frame codec.
//!
//! [`Frame::decode`] turns one whole frame (without the transport's 24-bit length prefix) into a
//! [`Frame`] whose metadata and data are slices of the input [`Bytes`]: nothing is copied.
//! [`Frame::encode`] writes a frame into a [`BytesMut`]. Both validate every field, so malformed
//! input gives a [`FrameError`] and never a panic.
//!
//! ```
//! use bytes::Bytes;
//! use elarian_transport::frame::{Frame, PayloadFrame};
//!
//! let frame = Frame::Payload(PayloadFrame {
//!     stream_id: 1,
//!     follows: false,
//!     complete: true,
//!     next: true,
//!     metadata: None,
//!     data: Bytes::from_static(b"hello"),
//! });
//! let bytes = frame.to_bytes().unwrap();
//! assert_eq!(Frame::decode(bytes).unwrap(), frame);
//! ```

use std::borrow::Cow;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Frame type codes of RSocket 1.0.
pub mod frame_type {
    /// SETUP: sent by the client to start a connection.
    pub const SETUP: u8 = 0x01;
    /// LEASE: grants the peer the right to send requests.
    pub const LEASE: u8 = 0x02;
    /// KEEPALIVE: connection liveness and resume position.
    pub const KEEPALIVE: u8 = 0x03;
    /// REQUEST_RESPONSE: one request, one response.
    pub const REQUEST_RESPONSE: u8 = 0x04;
    /// REQUEST_FNF: fire-and-forget.
    pub const REQUEST_FNF: u8 = 0x05;
    /// REQUEST_STREAM: one request, a finite stream of responses.
    pub const REQUEST_STREAM: u8 = 0x06;
    /// REQUEST_CHANNEL: bidirectional stream.
    pub const REQUEST_CHANNEL: u8 = 0x07;
    /// REQUEST_N: more credit for a stream.
    pub const REQUEST_N: u8 = 0x08;
    /// CANCEL: the requester gives up a stream.
    pub const CANCEL: u8 = 0x09;
    /// PAYLOAD: a response or a follow-up fragment.
    pub const PAYLOAD: u8 = 0x0A;
    /// ERROR: a stream or connection error.
    pub const ERROR: u8 = 0x0B;
    /// METADATA_PUSH: connection-level metadata.
    pub const METADATA_PUSH: u8 = 0x0C;
    /// RESUME: the client asks to resume a session.
    pub const RESUME: u8 = 0x0D;
    /// RESUME_OK: the server accepts a resumption.
    pub const RESUME_OK: u8 = 0x0E;
    /// EXT: extension frame.
    pub const EXT: u8 = 0x3F;
}

/// Frame flags of RSocket 1.0 (10 bits of the header).
pub mod flags {
    /// (I)gnore: the frame may be ignored if not understood.
    pub const IGNORE: u16 = 0x200;
    /// (M)etadata present.
    pub const METADATA: u16 = 0x100;
    /// (F)ollows: more fragments follow.
    pub const FOLLOWS: u16 = 0x80;
    /// (C)omplete: the stream is complete.
    pub const COMPLETE: u16 = 0x40;
    /// (N)ext: the frame carries a payload.
    pub const NEXT: u16 = 0x20;
    /// (R)espond, on KEEPALIVE: the peer must answer.
    pub const RESPOND: u16 = 0x80;
    /// (R)esume enable, on SETUP: a resume token follows.
    pub const RESUME_ENABLE: u16 = 0x80;
    /// (L)ease, on SETUP: the client honours leases.
    pub const LEASE: u16 = 0x40;
}

/// Length of the frame header: stream id (4 bytes), type and flags (2 bytes).
pub const HEADER_LEN: usize = 6;
/// The largest frame: byte-stream transports prefix each frame with a 24-bit length.
pub const MAX_FRAME_LEN: usize = (1 << 24) - 1;
/// The smallest MTU a fragmenting sender accepts: a header, the largest fixed fields and one
/// byte.
pub const MIN_MTU: usize = 64;
/// The largest metadata a frame can carry with its 24-bit length prefix.
pub const MAX_METADATA_LEN: usize = (1 << 24) - 1;
/// The largest value of a 31-bit field (stream ids, request N, keepalive times).
pub const MAX_U31: u32 = 0x7FFF_FFFF;
/// The largest value of a 63-bit position.
pub const MAX_U63: u64 = 0x7FFF_FFFF_FFFF_FFFF;

/// An RSocket error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0x001: the SETUP frame is invalid.
    InvalidSetup,
    /// 0x002: a SETUP parameter is not supported.
    UnsupportedSetup,
    /// 0x003: the server rejected the SETUP.
    RejectedSetup,
    /// 0x004: the server rejected the RESUME.
    RejectedResume,
    /// 0x101: the connection is being terminated because of an error.
    ConnectionError,
    /// 0x102: the connection is being closed normally.
    ConnectionClose,
    /// 0x201: the application failed the request.
    ApplicationError,
    /// 0x202: the responder rejected the request before processing it.
    Rejected,
    /// 0x203: the responder canceled the request.
    Canceled,
    /// 0x204: the request is invalid.
    Invalid,
    /// Any other code (reserved or extension codes).
    Other(u32),
}

impl ErrorCode {
    /// The numeric value on the wire.
    pub fn as_u32(self) -> u32 {
        match self {
            ErrorCode::InvalidSetup => 0x001,
            ErrorCode::UnsupportedSetup => 0x002,
            ErrorCode::RejectedSetup => 0x003,
            ErrorCode::RejectedResume => 0x004,
            ErrorCode::ConnectionError => 0x101,
            ErrorCode::ConnectionClose => 0x102,
            ErrorCode::ApplicationError => 0x201,
            ErrorCode::Rejected => 0x202,
            ErrorCode::Canceled => 0x203,
            ErrorCode::Invalid => 0x204,
            ErrorCode::Other(code) => code,
        }
    }

    /// Whether this code ends the whole connection (as opposed to a single stream).
    pub fn is_connection_error(self) -> bool {
        matches!(
            self,
            ErrorCode::InvalidSetup
                | ErrorCode::UnsupportedSetup
                | ErrorCode::RejectedSetup
                | ErrorCode::RejectedResume
                | ErrorCode::ConnectionError
                | ErrorCode::ConnectionClose
        )
    }
}

impl From<u32> for ErrorCode {
    fn from(code: u32) -> Self {
        match code {
            0x001 => ErrorCode::InvalidSetup,
            0x002 => ErrorCode::UnsupportedSetup,
            0x003 => ErrorCode::RejectedSetup,
            0x004 => ErrorCode::RejectedResume,
            0x101 => ErrorCode::ConnectionError,
            0x102 => ErrorCode::ConnectionClose,
            0x201 => ErrorCode::ApplicationError,
            0x202 => ErrorCode::Rejected,
            0x203 => ErrorCode::Canceled,
            0x204 => ErrorCode::Invalid,
            other => ErrorCode::Other(other),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            ErrorCode::InvalidSetup => "INVALID_SETUP",
            ErrorCode::UnsupportedSetup => "UNSUPPORTED_SETUP",
            ErrorCode::RejectedSetup => "REJECTED_SETUP",
            ErrorCode::RejectedResume => "REJECTED_RESUME",
            ErrorCode::ConnectionError => "CONNECTION_ERROR",
            ErrorCode::ConnectionClose => "CONNECTION_CLOSE",
            ErrorCode::ApplicationError => "APPLICATION_ERROR",
            ErrorCode::Rejected => "REJECTED",
            ErrorCode::Canceled => "CANCELED",
            ErrorCode::Invalid => "INVALID",
            ErrorCode::Other(code) => return write!(f, "0x{code:08X}"),
        };
        f.write_str(name)
    }
}

/// Why a frame could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame ended before a field it must contain.
    #[error("frame too short: needed {needed} more bytes for {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// How many bytes were missing.
        needed: usize,
    },
    /// The frame type is not known and the frame does not carry the ignore flag.
    #[error("unknown frame type 0x{frame_type:02X}")]
    UnknownType {
        /// The type code.
        frame_type: u8,
        /// Whether the ignore flag was set (the receiver may then skip the frame).
        ignorable: bool,
    },
    /// The stream id is not allowed for this frame type (0 where a stream is needed or the reverse).
    #[error("stream id {stream_id} is invalid for a {frame} frame")]
    InvalidStreamId {
        /// The frame type name.
        frame: &'static str,
        /// The offending stream id.
        stream_id: u32,
    },
    /// A field has a value outside its allowed range.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Bytes remain after a frame that has no variable-length tail.
    #[error("{extra} unexpected bytes after a {frame} frame")]
    TrailingBytes {
        /// The frame type name.
        frame: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
}

/// A SETUP frame: the client's first frame on a new connection.
///
/// `Debug` redacts the payload and the resume token: for Elarian they carry credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct SetupFrame {
    /// Protocol major version (1 for RSocket 1.0).
    pub major_version: u16,
    /// Protocol minor version.
    pub minor_version: u16,
    /// Milliseconds between the client's KEEPALIVE frames (1..=2^31-1).
    pub keepalive_ms: u32,
    /// Milliseconds without any frame after which a peer is considered dead (1..=2^31-1).
    pub max_lifetime_ms: u32,
    /// The resume token, present when the client wants a resumable session.
    pub resume_token: Option<Bytes>,
    /// Whether the client asks to honour leases.
    pub lease: bool,
    /// MIME type of metadata (ASCII, at most 255 bytes).
    pub metadata_mime: String,
    /// MIME type of data (ASCII, at most 255 bytes).
    pub data_mime: String,
    /// Setup metadata.
    pub metadata: Option<Bytes>,
    /// Setup data.
    pub data: Bytes,
}

impl std::fmt::Debug for SetupFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupFrame")
            .field("major_version", &self.major_version)
            .field("minor_version", &self.minor_version)
            .field("keepalive_ms", &self.keepalive_ms)
            .field("max_lifetime_ms", &self.max_lifetime_ms)
            .field(
                "resume_token",
                &self.resume_token.as_ref().map(|_| "<redacted>"),
            )
            .field("lease", &self.lease)
            .field("metadata_mime", &self.metadata_mime)
            .field("data_mime", &self.data_mime)
            .field(
                "metadata",
                &self
                    .metadata
                    .as_ref()
                    .map(|m| format!("<{} bytes>", m.len())),
            )
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .finish()
    }
}

/// A LEASE frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseFrame {
    /// Validity of the lease in milliseconds.
    pub ttl_ms: u32,
    /// Number of requests the lease allows.
    pub requests: u32,
    /// Lease metadata.
    pub metadata: Option<Bytes>,
}

/// A KEEPALIVE frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepaliveFrame {
    /// Whether the peer must answer with a KEEPALIVE of its own.
    pub respond: bool,
    /// Resume position: bytes of resumable frames the sender has received.
    pub last_received_position: u64,
    /// Opaque data, echoed in the answer.
    pub data: Bytes,
}

/// The interaction a request frame starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// REQUEST_RESPONSE.
    Response,
    /// REQUEST_FNF.
    FireAndForget,
    /// REQUEST_STREAM with the initial credit.
    Stream {
        /// Initial REQUEST_N credit (1..=2^31-1).
        initial_n: u32,
    },
    /// REQUEST_CHANNEL with the initial credit.
    Channel {
        /// Initial REQUEST_N credit (1..=2^31-1).
        initial_n: u32,
        /// Whether the requester's side of the channel is already complete.
        complete: bool,
    },
}

/// A REQUEST_RESPONSE, REQUEST_FNF, REQUEST_STREAM or REQUEST_CHANNEL frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFrame {
    /// The new stream.
    pub stream_id: u32,
    /// Which request this is.
    pub kind: RequestKind,
    /// More fragments follow.
    pub follows: bool,
    /// Request metadata.
    pub metadata: Option<Bytes>,
    /// Request data.
    pub data: Bytes,
}

/// A PAYLOAD frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFrame {
    /// The stream.
    pub stream_id: u32,
    /// More fragments follow.
    pub follows: bool,
    /// The stream is complete.
    pub complete: bool,
    /// The frame carries a payload.
    pub next: bool,
    /// Payload metadata.
    pub metadata: Option<Bytes>,
    /// Payload data.
    pub data: Bytes,
}

/// An ERROR frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFrame {
    /// 0 for a connection error, else the failed stream.
    pub stream_id: u32,
    /// The error code.
    pub code: ErrorCode,
    /// The error data (UTF-8 text by the spec, but peers may send anything).
    pub data: Bytes,
}

impl ErrorFrame {
    /// The error text, with invalid UTF-8 replaced.
    pub fn message(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }
}

/// A RESUME frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeFrame {
    /// Protocol major version.
    pub major_version: u16,
    /// Protocol minor version.
    pub minor_version: u16,
    /// The token of the session to resume.
    pub resume_token: Bytes,
    /// Bytes of resumable frames the client received from the server.
    pub last_received_server_position: u64,
    /// The earliest position the client can still retransmit from.
    pub first_available_client_position: u64,
}

/// An EXT frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtFrame {
    /// The stream (may be 0).
    pub stream_id: u32,
    /// Whether the receiver may ignore the frame if it does not understand it.
    pub ignore: bool,
    /// The extended type.
    pub extended_type: u32,
    /// Metadata.
    pub metadata: Option<Bytes>,
    /// Data.
    pub data: Bytes,
}

/// One RSocket 1.0 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// SETUP.
    Setup(SetupFrame),
    /// LEASE.
    Lease(LeaseFrame),
    /// KEEPALIVE.
    Keepalive(KeepaliveFrame),
    /// REQUEST_RESPONSE, REQUEST_FNF, REQUEST_STREAM or REQUEST_CHANNEL.
    Request(RequestFrame),
    /// REQUEST_N.
    RequestN {
        /// The stream.
        stream_id: u32,
        /// Additional credit (1..=2^31-1).
        n: u32,
    },
    /// CANCEL.
    Cancel {
        /// The stream.
        stream_id: u32,
    },
    /// PAYLOAD.
    Payload(PayloadFrame),
    /// ERROR.
    Error(ErrorFrame),
    /// METADATA_PUSH.
    MetadataPush {
        /// The pushed metadata.
        metadata: Bytes,
    },
    /// RESUME.
    Resume(ResumeFrame),
    /// RESUME_OK.
    ResumeOk {
        /// Bytes of resumable frames the server received from the client.
        last_received_client_position: u64,
    },
    /// EXT.
    Ext(ExtFrame),
}

fn need(buf: &Bytes, n: usize, field: &'static str) -> Result<(), FrameError> {
    if buf.len() < n {
        Err(FrameError::Truncated {
            field,
            needed: n - buf.len(),
        })
    } else {
        Ok(())
    }
}

fn get_u31(buf: &mut Bytes, field: &'static str, allow_zero: bool) -> Result<u32, FrameError> {
    need(buf, 4, field)?;
    let v = buf.get_u32();
    if v > MAX_U31 {
        return Err(FrameError::InvalidField {
            field,
            reason: "reserved high bit is set",
        });
    }
    if v == 0 && !allow_zero {
        return Err(FrameError::InvalidField {
            field,
            reason: "must be greater than zero",
        });
    }
    Ok(v)
}

fn get_u63(buf: &mut Bytes, field: &'static str) -> Result<u64, FrameError> {
    need(buf, 8, field)?;
    let v = buf.get_u64();
    if v > MAX_U63 {
        return Err(FrameError::InvalidField {
            field,
            reason: "reserved high bit is set",
        });
    }
    Ok(v)
}

/// Reads length-prefixed metadata (if `present`) and returns the rest as data.
fn split_metadata(mut buf: Bytes, present: bool) -> Result<(Option<Bytes>, Bytes), FrameError> {
    if !present {
        return Ok((None, buf));
    }
    need(&buf, 3, "metadata length")?;
    let len = ((buf[0] as usize) << 16) | ((buf[1] as usize) << 8) | buf[2] as usize;
    buf.advance(3);
    need(&buf, len, "metadata")?;
    let metadata = buf.split_to(len);
    Ok((Some(metadata), buf))
}

fn get_mime(buf: &mut Bytes, field: &'static str) -> Result<String, FrameError> {
    need(buf, 1, field)?;
    let len = buf.get_u8() as usize;
    need(buf, len, field)?;
    let raw = buf.split_to(len);
    if !raw.is_ascii() {
        return Err(FrameError::InvalidField {
            field,
            reason: "MIME type is not ASCII",
        });
    }
    // ASCII is valid UTF-8.
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

fn no_trailing(buf: &Bytes, frame: &'static str) -> Result<(), FrameError> {
    if buf.is_empty() {
        Ok(())
    } else {
        Err(FrameError::TrailingBytes {
            frame,
            extra: buf.len(),
        })
    }
}

impl Frame {
    /// Decodes one whole frame. Metadata and data are slices of `buf`.
    pub fn decode(mut buf: Bytes) -> Result<Frame, FrameError> {
        need(&buf, HEADER_LEN, "header")?;
        // The top bit of the stream id is reserved; receivers ignore it.
        let stream_id = buf.get_u32() & MAX_U31;
        let type_and_flags = buf.get_u16();
        let frame_type = (type_and_flags >> 10) as u8;
        let fl = type_and_flags & 0x3FF;
        let has = |f: u16| fl & f != 0;
        let conn = |frame: &'static str| {
            if stream_id == 0 {
                Ok(())
            } else {
                Err(FrameError::InvalidStreamId { frame, stream_id })
            }
        };
        let strm = |frame: &'static str| {
            if stream_id != 0 {
                Ok(())
            } else {
                Err(FrameError::InvalidStreamId { frame, stream_id })
            }
        };
        match frame_type {
            frame_type::SETUP => {
                conn("SETUP")?;
                need(&buf, 12, "SETUP fields")?;
                let major_version = buf.get_u16();
                let minor_version = buf.get_u16();
                let keepalive_ms = get_u31(&mut buf, "keepalive interval", false)?;
                let max_lifetime_ms = get_u31(&mut buf, "max lifetime", false)?;
                let resume_token = if has(flags::RESUME_ENABLE) {
                    need(&buf, 2, "resume token length")?;
                    let len = buf.get_u16() as usize;
                    need(&buf, len, "resume token")?;
                    Some(buf.split_to(len))
                } else {
                    None
                };
                let metadata_mime = get_mime(&mut buf, "metadata MIME type")?;
                let data_mime = get_mime(&mut buf, "data MIME type")?;
                let (metadata, data) = split_metadata(buf, has(flags::METADATA))?;
                Ok(Frame::Setup(SetupFrame {
                    major_version,
                    minor_version,
                    keepalive_ms,
                    max_lifetime_ms,
                    resume_token,
                    lease: has(flags::LEASE),
                    metadata_mime,
                    data_mime,
                    metadata,
                    data,
                }))
            }
            frame_type::LEASE => {
                conn("LEASE")?;
                let ttl_ms = get_u31(&mut buf, "lease TTL", true)?;
                let requests = get_u31(&mut buf, "lease request count", true)?;
                let metadata = if has(flags::METADATA) {
                    Some(buf)
                } else {
                    no_trailing(&buf, "LEASE")?;
                    None
                };
                Ok(Frame::Lease(LeaseFrame {
                    ttl_ms,
                    requests,
                    metadata,
                }))
            }
            frame_type::KEEPALIVE => {
                conn("KEEPALIVE")?;
                let last_received_position = get_u63(&mut buf, "last received position")?;
                Ok(Frame::Keepalive(KeepaliveFrame {
                    respond: has(flags::RESPOND),
                    last_received_position,
                    data: buf,
                }))
            }
            frame_type::REQUEST_RESPONSE
            | frame_type::REQUEST_FNF
            | frame_type::REQUEST_STREAM
            | frame_type::REQUEST_CHANNEL => {
                strm("REQUEST")?;
                let kind = match frame_type {
                    frame_type::REQUEST_RESPONSE => RequestKind::Response,
                    frame_type::REQUEST_FNF => RequestKind::FireAndForget,
                    frame_type::REQUEST_STREAM => RequestKind::Stream {
                        initial_n: get_u31(&mut buf, "initial request N", false)?,
                    },
                    _ => RequestKind::Channel {
                        initial_n: get_u31(&mut buf, "initial request N", false)?,
                        complete: has(flags::COMPLETE),
                    },
                };
                let (metadata, data) = split_metadata(buf, has(flags::METADATA))?;
                Ok(Frame::Request(RequestFrame {
                    stream_id,
                    kind,
                    follows: has(flags::FOLLOWS),
                    metadata,
                    data,
                }))
            }
            frame_type::REQUEST_N => {
                strm("REQUEST_N")?;
                let n = get_u31(&mut buf, "request N", false)?;
                no_trailing(&buf, "REQUEST_N")?;
                Ok(Frame::RequestN { stream_id, n })
            }
            frame_type::CANCEL => {
                strm("CANCEL")?;
                no_trailing(&buf, "CANCEL")?;
                Ok(Frame::Cancel { stream_id })
            }
            frame_type::PAYLOAD => {
                strm("PAYLOAD")?;
                let (metadata, data) = split_metadata(buf, has(flags::METADATA))?;
                Ok(Frame::Payload(PayloadFrame {
                    stream_id,
                    follows: has(flags::FOLLOWS),
                    complete: has(flags::COMPLETE),
                    next: has(flags::NEXT),
                    metadata,
                    data,
                }))
            }
            frame_type::ERROR => {
                need(&buf, 4, "error code")?;
                let code = ErrorCode::from(buf.get_u32());
                Ok(Frame::Error(ErrorFrame {
                    stream_id,
                    code,
                    data: buf,
                }))
            }
            frame_type::METADATA_PUSH => {
                conn("METADATA_PUSH")?;
                if !has(flags::METADATA) {
                    return Err(FrameError::InvalidField {
                        field: "flags",
                        reason: "METADATA_PUSH without the metadata flag",
                    });
                }
                Ok(Frame::MetadataPush { metadata: buf })
            }
            frame_type::RESUME => {
                conn("RESUME")?;
                need(&buf, 6, "RESUME fields")?;
                let major_version = buf.get_u16();
                let minor_version = buf.get_u16();
                let len = buf.get_u16() as usize;
                need(&buf, len, "resume token")?;
                let resume_token = buf.split_to(len);
                let last_received_server_position =
                    get_u63(&mut buf, "last received server position")?;
                let first_available_client_position =
                    get_u63(&mut buf, "first available client position")?;
                no_trailing(&buf, "RESUME")?;
                Ok(Frame::Resume(ResumeFrame {
                    major_version,
                    minor_version,
                    resume_token,
                    last_received_server_position,
                    first_available_client_position,
                }))
            }
            frame_type::RESUME_OK => {
                conn("RESUME_OK")?;
                let last_received_client_position =
                    get_u63(&mut buf, "last received client position")?;
                no_trailing(&buf, "RESUME_OK")?;
                Ok(Frame::ResumeOk {
                    last_received_client_position,
                })
            }
            frame_type::EXT => {
                need(&buf, 4, "extended type")?;
                let extended_type = buf.get_u32();
                let (metadata, data) = split_metadata(buf, has(flags::METADATA))?;
                Ok(Frame::Ext(ExtFrame {
                    stream_id,
                    ignore: has(flags::IGNORE),
                    extended_type,
                    metadata,
                    data,
                }))
            }
            other => Err(FrameError::UnknownType {
                frame_type: other,
                ignorable: has(flags::IGNORE),
            }),
        }
    }

    /// The stream the frame belongs to (0 for connection frames).
    pub fn stream_id(&self) -> u32 {
        match self {
            Frame::Request(f) => f.stream_id,
            Frame::RequestN { stream_id, .. } | Frame::Cancel { stream_id } => *stream_id,
            Frame::Payload(f) => f.stream_id,
            Frame::Error(f) => f.stream_id,
            Frame::Ext(f) => f.stream_id,
            Frame::Setup(_)
            | Frame::Lease(_)
            | Frame::Keepalive(_)
            | Frame::MetadataPush { .. }
            | Frame::Resume(_)
            | Frame::ResumeOk { .. } => 0,
        }
    }

    /// Whether the frame counts towards resume positions and is retransmitted on resumption:
    /// the request, REQUEST_N, CANCEL, PAYLOAD and stream ERROR frames (RSocket 1.0, "Resuming
    /// Operation"; rsocket-java and rsocket-js count the same). Connection-level frames
    /// (METADATA_PUSH included) do not count, or positions would disagree with those peers and
    /// every resumption after a METADATA_PUSH would be rejected.
    pub fn is_resumable(&self) -> bool {
        match self {
            Frame::Request(_)
            | Frame::RequestN { .. }
            | Frame::Cancel { .. }
            | Frame::Payload(_) => true,
            Frame::Error(f) => f.stream_id != 0,
            _ => false,
        }
    }

    /// The exact encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        let md = |m: &Option<Bytes>| m.as_ref().map_or(0, |m| 3 + m.len());
        HEADER_LEN
            + match self {
                Frame::Setup(f) => {
                    12 + f.resume_token.as_ref().map_or(0, |t| 2 + t.len())
                        + 2
                        + f.metadata_mime.len()
                        + f.data_mime.len()
                        + md(&f.metadata)
                        + f.data.len()
                }
                Frame::Lease(f) => 8 + f.metadata.as_ref().map_or(0, Bytes::len),
                Frame::Keepalive(f) => 8 + f.data.len(),
                Frame::Request(f) => {
                    let n = match f.kind {
                        RequestKind::Stream { .. } | RequestKind::Channel { .. } => 4,
                        _ => 0,
                    };
                    n + md(&f.metadata) + f.data.len()
                }
                Frame::RequestN { .. } => 4,
                Frame::Cancel { .. } => 0,
                Frame::Payload(f) => md(&f.metadata) + f.data.len(),
                Frame::Error(f) => 4 + f.data.len(),
                Frame::MetadataPush { metadata } => metadata.len(),
                Frame::Resume(f) => 6 + f.resume_token.len() + 16,
                Frame::ResumeOk { .. } => 8,
                Frame::Ext(f) => 4 + md(&f.metadata) + f.data.len(),
            }
    }

    /// Encodes the frame into a new buffer.
    pub fn to_bytes(&self) -> Result<Bytes, FrameError> {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf)?;
        Ok(buf.freeze())
    }

    /// Appends the encoded frame to `buf`. On error `buf` may hold a partial frame.
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), FrameError> {
        let stream_id = self.stream_id();
        if stream_id > MAX_U31 {
            return Err(FrameError::InvalidField {
                field: "stream id",
                reason: "exceeds 31 bits",
            });
        }
        let needs_stream = matches!(
            self,
            Frame::Request(_) | Frame::RequestN { .. } | Frame::Cancel { .. } | Frame::Payload(_)
        );
        if needs_stream && stream_id == 0 {
            return Err(FrameError::InvalidStreamId {
                frame: "stream",
                stream_id,
            });
        }
        buf.reserve(self.encoded_len());
        let header = |buf: &mut BytesMut, ty: u8, fl: u16| {
            buf.put_u32(stream_id);
            buf.put_u16((u16::from(ty) << 10) | (fl & 0x3FF));
        };
        let md_flag = |m: &Option<Bytes>| if m.is_some() { flags::METADATA } else { 0 };
        match self {
            Frame::Setup(f) => {
                let mut fl = md_flag(&f.metadata);
                if f.resume_token.is_some() {
                    fl |= flags::RESUME_ENABLE;
                }
                if f.lease {
                    fl |= flags::LEASE;
                }
                header(buf, frame_type::SETUP, fl);
                buf.put_u16(f.major_version);
                buf.put_u16(f.minor_version);
                put_u31(buf, f.keepalive_ms, "keepalive interval", false)?;
                put_u31(buf, f.max_lifetime_ms, "max lifetime", false)?;
                if let Some(token) = &f.resume_token {
                    let len = u16::try_from(token.len()).map_err(|_| FrameError::InvalidField {
                        field: "resume token",
                        reason: "longer than 65535 bytes",
                    })?;
                    buf.put_u16(len);
                    buf.put_slice(token);
                }
                put_mime(buf, &f.metadata_mime, "metadata MIME type")?;
                put_mime(buf, &f.data_mime, "data MIME type")?;
                put_metadata(buf, &f.metadata)?;
                buf.put_slice(&f.data);
            }
            Frame::Lease(f) => {
                header(buf, frame_type::LEASE, md_flag(&f.metadata));
                put_u31(buf, f.ttl_ms, "lease TTL", true)?;
                put_u31(buf, f.requests, "lease request count", true)?;
                if let Some(m) = &f.metadata {
                    buf.put_slice(m);
                }
            }
            Frame::Keepalive(f) => {
                header(
                    buf,
                    frame_type::KEEPALIVE,
                    if f.respond { flags::RESPOND } else { 0 },
                );
                put_u63(buf, f.last_received_position, "last received position")?;
                buf.put_slice(&f.data);
            }
            Frame::Request(f) => {
                let mut fl = md_flag(&f.metadata);
                if f.follows {
                    fl |= flags::FOLLOWS;
                }
                match f.kind {
                    RequestKind::Response => header(buf, frame_type::REQUEST_RESPONSE, fl),
                    RequestKind::FireAndForget => header(buf, frame_type::REQUEST_FNF, fl),
                    RequestKind::Stream { initial_n } => {
                        header(buf, frame_type::REQUEST_STREAM, fl);
                        put_u31(buf, initial_n, "initial request N", false)?;
                    }
                    RequestKind::Channel {
                        initial_n,
                        complete,
                    } => {
                        if complete {
                            fl |= flags::COMPLETE;
                        }
                        header(buf, frame_type::REQUEST_CHANNEL, fl);
                        put_u31(buf, initial_n, "initial request N", false)?;
                    }
                }
                put_metadata(buf, &f.metadata)?;
                buf.put_slice(&f.data);
            }
            Frame::RequestN { n, .. } => {
                header(buf, frame_type::REQUEST_N, 0);
                put_u31(buf, *n, "request N", false)?;
            }
            Frame::Cancel { .. } => header(buf, frame_type::CANCEL, 0),
            Frame::Payload(f) => {
                let mut fl = md_flag(&f.metadata);
                if f.follows {
                    fl |= flags::FOLLOWS;
                }
                if f.complete {
                    fl |= flags::COMPLETE;
                }
                if f.next {
                    fl |= flags::NEXT;
                }
                header(buf, frame_type::PAYLOAD, fl);
                put_metadata(buf, &f.metadata)?;
                buf.put_slice(&f.data);
            }
            Frame::Error(f) => {
                header(buf, frame_type::ERROR, 0);
                buf.put_u32(f.code.as_u32());
                buf.put_slice(&f.data);
            }
            Frame::MetadataPush { metadata } => {
                header(buf, frame_type::METADATA_PUSH, flags::METADATA);
                buf.put_slice(metadata);
            }
            Frame::Resume(f) => {
                header(buf, frame_type::RESUME, 0);
                buf.put_u16(f.major_version);
                buf.put_u16(f.minor_version);
                let len =
                    u16::try_from(f.resume_token.len()).map_err(|_| FrameError::InvalidField {
                        field: "resume token",
                        reason: "longer than 65535 bytes",
                    })?;
                buf.put_u16(len);
                buf.put_slice(&f.resume_token);
                put_u63(
                    buf,
                    f.last_received_server_position,
                    "last received server position",
                )?;
                put_u63(
                    buf,
                    f.first_available_client_position,
                    "first available client position",
                )?;
            }
            Frame::ResumeOk {
                last_received_client_position,
            } => {
                header(buf, frame_type::RESUME_OK, 0);
                put_u63(
                    buf,
                    *last_received_client_position,
                    "last received client position",
                )?;
            }
            Frame::Ext(f) => {
                let mut fl = md_flag(&f.metadata);
                if f.ignore {
                    fl |= flags::IGNORE;
                }
                header(buf, frame_type::EXT, fl);
                buf.put_u32(f.extended_type);
                put_metadata(buf, &f.metadata)?;
                buf.put_slice(&f.data);
            }
        }
        Ok(())
    }
}

fn put_u31(
    buf: &mut BytesMut,
    v: u32,
    field: &'static str,
    allow_zero: bool,
) -> Result<(), FrameError> {
    if v > MAX_U31 {
        return Err(FrameError::InvalidField {
            field,
            reason: "exceeds 31 bits",
        });
    }
    if v == 0 && !allow_zero {
        return Err(FrameError::InvalidField {
            field,
            reason: "must be greater than zero",
        });
    }
    buf.put_u32(v);
    Ok(())
}

fn put_u63(buf: &mut BytesMut, v: u64, field: &'static str) -> Result<(), FrameError> {
    if v > MAX_U63 {
        return Err(FrameError::InvalidField {
            field,
            reason: "exceeds 63 bits",
        });
    }
    buf.put_u64(v);
    Ok(())
}

fn put_mime(buf: &mut BytesMut, mime: &str, field: &'static str) -> Result<(), FrameError> {
    if !mime.is_ascii() {
        return Err(FrameError::InvalidField {
            field,
            reason: "MIME type is not ASCII",
        });
    }
    let len = u8::try_from(mime.len()).map_err(|_| FrameError::InvalidField {
        field,
        reason: "longer than 255 bytes",
    })?;
    buf.put_u8(len);
    buf.put_slice(mime.as_bytes());
    Ok(())
}

fn put_metadata(buf: &mut BytesMut, metadata: &Option<Bytes>) -> Result<(), FrameError> {
    if let Some(m) = metadata {
        if m.len() > MAX_METADATA_LEN {
            return Err(FrameError::InvalidField {
                field: "metadata",
                reason: "longer than 2^24-1 bytes",
            });
        }
        let len = m.len() as u32;
        buf.put_u8((len >> 16) as u8);
        buf.put_u8((len >> 8) as u8);
        buf.put_u8(len as u8);
        buf.put_slice(m);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes_strategy(max: usize) -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
    }

    fn opt_bytes(max: usize) -> impl Strategy<Value = Option<Bytes>> {
        proptest::option::of(bytes_strategy(max))
    }

    fn mime() -> impl Strategy<Value = String> {
        "[a-z/+.-]{0,40}"
    }

    fn stream_id() -> impl Strategy<Value = u32> {
        1..=MAX_U31
    }

    pub(crate) fn frame_strategy() -> impl Strategy<Value = Frame> {
        prop_oneof![
            (
                any::<u16>(),
                any::<u16>(),
                1..=MAX_U31,
                1..=MAX_U31,
                opt_bytes(64),
                any::<bool>(),
                mime(),
                mime(),
                opt_bytes(64),
                bytes_strategy(64)
            )
                .prop_map(|(ma, mi, ka, lt, tok, lease, mm, dm, md, data)| {
                    Frame::Setup(SetupFrame {
                        major_version: ma,
                        minor_version: mi,
                        keepalive_ms: ka,
                        max_lifetime_ms: lt,
                        resume_token: tok,
                        lease,
                        metadata_mime: mm,
                        data_mime: dm,
                        metadata: md,
                        data,
                    })
                }),
            (0..=MAX_U31, 0..=MAX_U31, opt_bytes(64)).prop_map(|(ttl_ms, requests, metadata)| {
                Frame::Lease(LeaseFrame {
                    ttl_ms,
                    requests,
                    metadata,
                })
            }),
            (any::<bool>(), 0..=MAX_U63, bytes_strategy(32)).prop_map(|(respond, pos, data)| {
                Frame::Keepalive(KeepaliveFrame {
                    respond,
                    last_received_position: pos,
                    data,
                })
            }),
            (
                stream_id(),
                prop_oneof![
                    Just(RequestKind::Response),
                    Just(RequestKind::FireAndForget),
                    (1..=MAX_U31).prop_map(|initial_n| RequestKind::Stream { initial_n }),
                    (1..=MAX_U31, any::<bool>()).prop_map(|(initial_n, complete)| {
                        RequestKind::Channel {
                            initial_n,
                            complete,
                        }
                    }),
                ],
                any::<bool>(),
                opt_bytes(64),
                bytes_strategy(64)
            )
                .prop_map(|(stream_id, kind, follows, metadata, data)| {
                    Frame::Request(RequestFrame {
                        stream_id,
                        kind,
                        follows,
                        metadata,
                        data,
                    })
                }),
            (stream_id(), 1..=MAX_U31).prop_map(|(stream_id, n)| Frame::RequestN { stream_id, n }),
            stream_id().prop_map(|stream_id| Frame::Cancel { stream_id }),
            (
                stream_id(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                opt_bytes(64),
                bytes_strategy(64)
            )
                .prop_map(|(stream_id, follows, complete, next, metadata, data)| {
                    Frame::Payload(PayloadFrame {
                        stream_id,
                        follows,
                        complete,
                        next,
                        metadata,
                        data,
                    })
                }),
            (0..=MAX_U31, any::<u32>(), bytes_strategy(64)).prop_map(|(stream_id, code, data)| {
                Frame::Error(ErrorFrame {
                    stream_id,
                    code: ErrorCode::from(code),
                    data,
                })
            }),
            bytes_strategy(64).prop_map(|metadata| Frame::MetadataPush { metadata }),
            (
                any::<u16>(),
                any::<u16>(),
                bytes_strategy(64),
                0..=MAX_U63,
                0..=MAX_U63
            )
                .prop_map(|(ma, mi, tok, a, b)| Frame::Resume(ResumeFrame {
                    major_version: ma,
                    minor_version: mi,
                    resume_token: tok,
                    last_received_server_position: a,
                    first_available_client_position: b,
                })),
            (0..=MAX_U63).prop_map(|p| Frame::ResumeOk {
                last_received_client_position: p
            }),
            (
                0..=MAX_U31,
                any::<bool>(),
                any::<u32>(),
                opt_bytes(64),
                bytes_strategy(64)
            )
                .prop_map(|(stream_id, ignore, extended_type, metadata, data)| {
                    Frame::Ext(ExtFrame {
                        stream_id,
                        ignore,
                        extended_type,
                        metadata,
                        data,
                    })
                }),
        ]
    }

    proptest! {
        #[test]
        fn encode_decode_identity(frame in frame_strategy()) {
            let bytes = frame.to_bytes().unwrap();
            prop_assert_eq!(bytes.len(), frame.encoded_len());
            let decoded = Frame::decode(bytes).unwrap();
            prop_assert_eq!(decoded, frame);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(frame) = Frame::decode(Bytes::from(raw)) {
                // Whatever decodes must encode again.
                prop_assert!(frame.to_bytes().is_ok());
            }
        }

        #[test]
        fn truncating_a_valid_frame_is_an_error_or_a_shorter_frame(frame in frame_strategy(), cut in 0usize..200) {
            let bytes = frame.to_bytes().unwrap();
            let cut = cut.min(bytes.len());
            let _ = Frame::decode(bytes.slice(..cut));
        }
    }

    #[test]
    fn error_codes_round_trip() {
        for code in [
            1u32,
            2,
            3,
            4,
            0x101,
            0x102,
            0x201,
            0x202,
            0x203,
            0x204,
            0x300,
            0xFFFF_FFFF,
        ] {
            assert_eq!(ErrorCode::from(code).as_u32(), code);
        }
        assert_eq!(ErrorCode::from(0x202), ErrorCode::Rejected);
        assert!(ErrorCode::RejectedSetup.is_connection_error());
        assert!(!ErrorCode::ApplicationError.is_connection_error());
    }

    #[test]
    fn malformed_frames_are_typed_errors() {
        assert!(matches!(
            Frame::decode(Bytes::from_static(&[0, 0, 0])),
            Err(FrameError::Truncated { .. })
        ));
        // REQUEST_RESPONSE on stream 0.
        let rr0 = [0, 0, 0, 0, frame_type::REQUEST_RESPONSE << 2, 0];
        assert!(matches!(
            Frame::decode(Bytes::copy_from_slice(&rr0)),
            Err(FrameError::InvalidStreamId { .. })
        ));
        // KEEPALIVE on stream 1.
        let mut ka = vec![0, 0, 0, 1, frame_type::KEEPALIVE << 2, 0];
        ka.extend_from_slice(&[0; 8]);
        assert!(matches!(
            Frame::decode(Bytes::from(ka)),
            Err(FrameError::InvalidStreamId { .. })
        ));
        // Metadata length beyond the frame.
        let pl = [
            0,
            0,
            0,
            1,
            (frame_type::PAYLOAD << 2) | 1,
            0x20,
            0,
            0,
            9,
            1,
            2,
        ];
        assert!(matches!(
            Frame::decode(Bytes::copy_from_slice(&pl)),
            Err(FrameError::Truncated { .. })
        ));
        // Unknown type 0x20 without and with the ignore flag.
        assert_eq!(
            Frame::decode(Bytes::copy_from_slice(&[0, 0, 0, 0, 0x20 << 2, 0])),
            Err(FrameError::UnknownType {
                frame_type: 0x20,
                ignorable: false
            })
        );
        assert_eq!(
            Frame::decode(Bytes::copy_from_slice(&[0, 0, 0, 0, (0x20 << 2) | 2, 0])),
            Err(FrameError::UnknownType {
                frame_type: 0x20,
                ignorable: true
            })
        );
        // REQUEST_N of zero.
        let rn = [0, 0, 0, 1, frame_type::REQUEST_N << 2, 0, 0, 0, 0, 0];
        assert!(matches!(
            Frame::decode(Bytes::copy_from_slice(&rn)),
            Err(FrameError::InvalidField { .. })
        ));
    }

    #[test]
    fn payload_is_sliced_not_copied() {
        let frame = Frame::Payload(PayloadFrame {
            stream_id: 3,
            follows: false,
            complete: false,
            next: true,
            metadata: Some(Bytes::from_static(b"meta")),
            data: Bytes::from_static(b"data"),
        });
        let bytes = frame.to_bytes().unwrap();
        let range = bytes.as_ptr_range();
        let Frame::Payload(decoded) = Frame::decode(bytes.clone()).unwrap() else {
            panic!("not a payload");
        };
        assert!(range.contains(&decoded.data.as_ptr()));
        assert!(range.contains(&decoded.metadata.unwrap().as_ptr()));
    }

    #[test]
    fn setup_debug_redacts_credentials() {
        let setup = SetupFrame {
            major_version: 1,
            minor_version: 0,
            keepalive_ms: 1,
            max_lifetime_ms: 1,
            resume_token: Some(Bytes::from_static(b"tok-secret")),
            lease: false,
            metadata_mime: String::new(),
            data_mime: String::new(),
            metadata: Some(Bytes::from_static(b"meta-secret")),
            data: Bytes::from_static(b"el_k_test_secret"),
        };
        let text = format!("{:?}", Frame::Setup(setup));
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn oversized_metadata_is_refused_on_encode() {
        let frame = Frame::Payload(PayloadFrame {
            stream_id: 1,
            follows: false,
            complete: true,
            next: true,
            metadata: Some(Bytes::from(vec![0; MAX_METADATA_LEN + 1])),
            data: Bytes::new(),
        });
        assert!(frame.to_bytes().is_err());
    }
}
