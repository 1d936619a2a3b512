//! The unit of application data: data plus optional metadata.

use bytes::Bytes;

/// What requests and responses carry: opaque data and optional metadata.
///
/// ```
/// use elarian_transport::Payload;
///
/// let p = Payload::new("hello").with_metadata("meta");
/// assert_eq!(&p.data[..], b"hello");
/// assert_eq!(p.metadata.as_deref(), Some(&b"meta"[..]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payload {
    /// The data.
    pub data: Bytes,
    /// The metadata, if any (`Some(empty)` and `None` are distinct on the wire).
    pub metadata: Option<Bytes>,
}

impl Payload {
    /// A payload with data and no metadata.
    pub fn new(data: impl Into<Bytes>) -> Self {
        Payload {
            data: data.into(),
            metadata: None,
        }
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: impl Into<Bytes>) -> Self {
        self.metadata = Some(metadata.into());
        self
    }

    /// Bytes of data plus metadata.
    pub fn len(&self) -> usize {
        self.data.len() + self.metadata.as_ref().map_or(0, Bytes::len)
    }

    /// Whether both data and metadata are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Bytes> for Payload {
    fn from(data: Bytes) -> Self {
        Payload::new(data)
    }
}
