//! Fragmentation of outgoing payloads and reassembly of incoming ones.

use bytes::{Bytes, BytesMut};

use super::budget::{Budgets, Charge, Exhausted};
use crate::frame::{HEADER_LEN, MIN_MTU};
use crate::payload::Payload;

/// One piece of a payload to put into a frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Fragment {
    pub(crate) metadata: Option<Bytes>,
    pub(crate) data: Bytes,
    pub(crate) follows: bool,
}

/// Splits `payload` so that each frame is at most `mtu` bytes. `first_extra` is the size of the
/// fixed fields of the first frame beyond the header (4 for the initial N of REQUEST_STREAM).
/// Metadata goes first, then data, as the spec requires. The pieces are slices: nothing is copied,
/// and a payload that fits yields exactly one fragment without allocating.
pub(crate) fn split(payload: Payload, mtu: usize, first_extra: usize) -> Fragments {
    Fragments {
        metadata: payload.metadata,
        data: Some(payload.data),
        mtu: mtu.max(MIN_MTU),
        extra: first_extra,
    }
}

/// Iterator of the fragments of one payload, from [`split`].
#[derive(Debug)]
pub(crate) struct Fragments {
    metadata: Option<Bytes>,
    /// `None` once the last fragment was produced.
    data: Option<Bytes>,
    mtu: usize,
    /// Fixed fields of the next frame beyond the header (only the first frame has any).
    extra: usize,
}

impl Iterator for Fragments {
    type Item = Fragment;

    fn next(&mut self) -> Option<Fragment> {
        let data = self.data.as_mut()?;
        let mut room = self.mtu - HEADER_LEN - self.extra;
        self.extra = 0;
        let md_part = match self.metadata.as_mut() {
            Some(m) => {
                room -= 3;
                let take = m.len().min(room);
                room -= take;
                if take == m.len() {
                    self.metadata.take()
                } else {
                    Some(m.split_to(take))
                }
            }
            None => None,
        };
        let data_part = if self.metadata.is_none() {
            if data.len() <= room {
                std::mem::take(data)
            } else {
                data.split_to(room)
            }
        } else {
            Bytes::new()
        };
        let follows = self.metadata.is_some() || !data.is_empty();
        if !follows {
            self.data = None;
        }
        Some(Fragment {
            metadata: md_part,
            data: data_part,
            follows,
        })
    }
}

/// A payload being reassembled from fragments.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    metadata: Option<BytesMut>,
    data: BytesMut,
    /// What the bytes held cost the connection's (and the process's) budget.
    charge: Charge,
}

/// Why a fragment was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The reassembled payload would exceed the per-payload limit.
    TooLarge { len: usize },
    /// The connection's or the process's reassembly budget is spent.
    Budget(Exhausted),
}

impl Reassembly {
    pub(crate) fn len(&self) -> usize {
        self.data.len() + self.metadata.as_ref().map_or(0, BytesMut::len)
    }

    /// Appends one fragment, refusing to grow beyond `limit` bytes or beyond `budgets`.
    pub(crate) fn push(
        &mut self,
        metadata: Option<Bytes>,
        data: Bytes,
        limit: usize,
        budgets: &Budgets,
    ) -> Result<(), PushError> {
        let add = data.len() + metadata.as_ref().map_or(0, Bytes::len);
        let len = self.len() + add;
        if len > limit {
            return Err(PushError::TooLarge { len });
        }
        self.charge.add(budgets, add).map_err(PushError::Budget)?;
        if let Some(m) = metadata {
            self.metadata
                .get_or_insert_with(BytesMut::new)
                .extend_from_slice(&m);
        }
        self.data.extend_from_slice(&data);
        Ok(())
    }

    /// The whole payload; its bytes stop counting against the budgets, as the application
    /// owns them from now on (and its own limits apply).
    pub(crate) fn finish(self) -> Payload {
        let Reassembly {
            metadata,
            data,
            charge,
        } = self;
        drop(charge);
        Payload {
            data: data.freeze(),
            metadata: metadata.map(BytesMut::freeze),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::budget::ByteBudget;
    use std::sync::Arc;

    fn unlimited() -> Budgets {
        Budgets {
            connection: Arc::new(ByteBudget::new(usize::MAX)),
            shared: None,
        }
    }

    #[test]
    fn small_payloads_are_not_split() {
        let f: Vec<_> = split(Payload::new("abc"), 1000, 0).collect();
        assert_eq!(f.len(), 1);
        assert!(!f[0].follows);
    }

    #[test]
    fn split_then_reassemble_is_identity() {
        let md: Vec<u8> = (0..150u8).collect();
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let payload = Payload::new(data.clone()).with_metadata(md.clone());
        let frags: Vec<_> = split(payload.clone(), 100, 4).collect();
        assert!(frags.len() > 10);
        let mut r = Reassembly::default();
        for (i, f) in frags.iter().enumerate() {
            assert_eq!(f.follows, i + 1 < frags.len());
            let extra = if i == 0 { 4 } else { 0 };
            let size =
                HEADER_LEN + extra + f.metadata.as_ref().map_or(0, |m| 3 + m.len()) + f.data.len();
            assert!(size <= 100, "fragment {i} is {size} bytes");
            r.push(f.metadata.clone(), f.data.clone(), usize::MAX, &unlimited())
                .unwrap();
        }
        assert_eq!(r.finish(), payload);
    }

    #[test]
    fn reassembly_limit_is_enforced() {
        let mut r = Reassembly::default();
        let b = unlimited();
        r.push(None, Bytes::from(vec![0; 60]), 100, &b).unwrap();
        assert_eq!(
            r.push(None, Bytes::from(vec![0; 60]), 100, &b),
            Err(PushError::TooLarge { len: 120 })
        );
        assert_eq!(r.len(), 60);
    }
}
