//! EXTENSION POINT: campaigns.
//!
//! A campaigns crate (messaging campaigns: sendings and their progress) is being written
//! separately. Once it exists, the console shows its sendings here:
//!
//! 1. report a campaign's progress to the feed as `{"type": "campaign", ...}` events
//!    (see [`super::feed::Feed`]) from where the campaign engine advances a sending;
//! 2. return its sendings from [`available`] (the `/api/overview` field `campaigns`) and add an
//!    `/api/campaigns` snapshot next to the others in `console/api.rs`;
//! 3. render them in `renderCampaigns` of `assets/console.js` (the page exists and says that
//!    campaigns are not available yet).

/// Whether campaigns can be shown: false until the campaigns crate is wired in (see the module
/// documentation).
pub(crate) fn available() -> bool {
    false
}
