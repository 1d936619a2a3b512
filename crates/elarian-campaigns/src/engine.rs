//! The [`Campaigns`] handle: resources, the scheduler that drives sendings through their
//! lifecycle, preparation, transmission and delivery tracking.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use elarian_sdk::{
    AppEvent, CustomerNumber, Elarian, MessageDeliveryStatus, MessageStatusNotification,
    MessagingChannelNumber,
};
use futures_core::Stream;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::codec::{decode_dispatch, encode_dispatch, encode_dispatch_into};
use crate::error::{CampaignError, Result};
use crate::lifecycle::check_transition;
use crate::mapping::{
    self, DispatchContent, Renderer, SkipReason, channel_number, data_value_to_json, inline_number,
    member_number,
};
use crate::model::*;
use crate::store::{Op, Store, StoreError, Table, id_key, owner_range, pair_key, pair_owner};
use crate::template::SmsInfo;
use crate::time::{Clock, SystemClock, Timestamp, parse_relative};

/// A resolved recipient: the member it came from, its number and its merge fields.
type Resolved = (Option<MemberId>, CustomerNumber, BTreeMap<String, Value>);

/// A recipient's merge fields.
type Properties = BTreeMap<String, Value>;

/// Recipients per stored chunk (of a sending or an audience).
const RECIPIENT_CHUNK: usize = 4096;
/// Status updates that wait for their dispatch (a status can arrive before the send's reply is
/// recorded) at most, and how long.
const STATUS_RETRY_LIMIT: usize = 65_536;
const STATUS_RETRY_FOR: Duration = Duration::from_secs(30);
/// Delivery reports queued for the tracker at most.
const STATUS_QUEUE: usize = 65_536;
/// Delivery reports the tracker takes per commit at most.
const STATUS_BATCH: usize = 4096;
/// How long a message-status handler waits for its report to be recorded before it lets the
/// notification be acknowledged anyway (the report stays queued).
pub const STATUS_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Tuning of a [`Campaigns`] handle.
#[derive(Debug, Clone)]
pub struct CampaignsConfig {
    /// Preparation starts this long before the transmission time (the seed's 5 minutes).
    pub prepare_lead: Duration,
    /// A sending not finished this long after its time fails (the seed's "about 20 minutes").
    pub fail_after: Duration,
    /// Sends in flight at once, per sending.
    pub concurrency: usize,
    /// Dispatches recorded as attempted (one store commit) before being sent.
    pub batch_size: usize,
    /// Messages per second per channel type; a type not listed is not limited.
    pub rates: BTreeMap<ChannelType, u32>,
    /// How often the scheduler looks for due sendings.
    pub poll_interval: Duration,
    /// Member look-ups (customer state reads) in flight at once during preparation.
    pub member_lookups: usize,
    /// Most recipients a sending or an audience may have.
    pub max_recipients: usize,
    /// Registers an `on_message_status` handler on the app to track deliveries. Turn it off
    /// when the app has its own handler, and forward to
    /// [`Campaigns::handle_message_status`] from it.
    pub track_deliveries: bool,
}

impl Default for CampaignsConfig {
    fn default() -> Self {
        CampaignsConfig {
            prepare_lead: Duration::from_secs(5 * 60),
            fail_after: Duration::from_secs(20 * 60),
            concurrency: 128,
            batch_size: 2048,
            rates: BTreeMap::new(),
            poll_interval: Duration::from_millis(250),
            member_lookups: 32,
            max_recipients: 5_000_000,
            track_deliveries: true,
        }
    }
}

/// A page of a list: 1-based `page`, `per_page` at most 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Page number, from 1.
    pub page: u32,
    /// Items per page, 1 to 500.
    pub per_page: u32,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            page: 1,
            per_page: 50,
        }
    }
}

impl Page {
    fn check(self) -> Result<(usize, usize)> {
        if self.page == 0 {
            return Err(CampaignError::Invalid {
                field: "page".into(),
                reason: "pages start at 1".into(),
            });
        }
        if !(1..=500).contains(&self.per_page) {
            return Err(CampaignError::Invalid {
                field: "per_page".into(),
                reason: "must be 1 to 500".into(),
            });
        }
        let per = self.per_page as usize;
        Ok(((self.page as usize - 1).saturating_mul(per), per))
    }
}

/// One page of a list and the total number of items.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listing<T> {
    /// The items.
    pub items: Vec<T>,
    /// Items in the whole list.
    pub total: u64,
}

/// A sending's counters, updated as it runs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// The sending.
    pub sending_id: u64,
    /// Its status.
    pub status: Option<SendingStatus>,
    /// Distinct recipients (audience and inline).
    pub recipients: u64,
    /// Recipients given more than once (dropped).
    pub duplicates: u64,
    /// Recipients with a dispatch.
    pub resolved: u64,
    /// Recipients without one, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Dispatches Elarian accepted.
    pub sent: u64,
    /// Dispatches Elarian reported delivered (or read, received).
    pub delivered: u64,
    /// Dispatches refused at send or reported failed.
    pub failed: u64,
    /// Of `failed`: dispatches Elarian accepted (counted in `sent`) and later reported failed.
    pub failed_after_send: u64,
    /// Dispatches whose send outcome is unknown (a crash or a lost connection mid-send); never
    /// resent.
    pub unknown: u64,
    /// Dispatches not sent because the sending was cancelled or failed.
    pub not_sent: u64,
    /// SMS segments of the dispatches built.
    pub sms_segments: u64,
}

impl Progress {
    /// Recipients skipped, whatever the reason.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Dispatches with an outcome (sent, failed, unknown or not sent).
    pub fn settled(&self) -> u64 {
        self.sent + self.failed_at_send() + self.unknown + self.not_sent
    }

    fn failed_at_send(&self) -> u64 {
        // `failed` also counts dispatches that were sent and failed later; those are in `sent`.
        self.failed.saturating_sub(self.failed_after_send)
    }
}

/// Where a dispatch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchState {
    /// Built, not yet sent.
    Pending,
    /// Recorded as attempted; the send is in flight (or was, when the process died).
    Attempted,
    /// Accepted by Elarian.
    Sent,
    /// Refused.
    Failed,
    /// Attempted, outcome unknown: reported, never resent.
    Unknown,
    /// Not sent: the sending was cancelled or failed first.
    NotSent,
}

/// One message to one recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispatch {
    /// Position in the sending.
    pub index: u32,
    /// The member it was resolved from, if any.
    pub member_id: Option<MemberId>,
    /// Where it goes.
    pub to: CustomerNumber,
    /// What it says.
    pub content: DispatchContent,
    /// SMS length and segments (SMS channels).
    pub sms: Option<SmsInfo>,
    /// Where it is.
    pub state: DispatchState,
    /// Elarian's message id, once sent.
    pub message_id: Option<String>,
    /// The latest delivery status from Elarian.
    pub delivery_status: Option<MessageDeliveryStatus>,
    /// Why it failed or is unknown.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MessageRecord {
    id: u64,
    name: String,
    shorten_urls: bool,
    track_in_shortener: bool,
    campaign_id: Option<String>,
    service: Option<Service>,
    created_at: Timestamp,
    updated_at: Timestamp,
    channels: Vec<Channel>,
    sending_ids: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SendingRecord {
    id: u64,
    message_id: u64,
    audience_id: Option<u64>,
    status: SendingStatus,
    scheduled_at: Option<Timestamp>,
    scheduled_with: Option<ScheduledWith>,
    created_at: Timestamp,
    updated_at: Timestamp,
    recipients_count: u64,
    progress: Progress,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AudienceRecord {
    id: u64,
    name: String,
    recipients_count: u64,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl SendingRecord {
    fn summary(&self) -> MessageSending {
        MessageSending {
            id: self.id,
            status: self.status,
            audience_id: self.audience_id,
            recipients_count: self.recipients_count,
            scheduled_at: self.scheduled_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Per-sending runtime state: the cancel gate, the running flag and the progress channel.
struct Active {
    /// `true` once cancelled or failed. Sends hold a read guard across the SDK call, so taking
    /// the write guard waits for the sends in flight; none starts after.
    gate: tokio::sync::RwLock<bool>,
    running: AtomicBool,
    progress: watch::Sender<Progress>,
}

/// A store commit running in its own task while the next piece of work is built. Dropping it
/// (the work that started it was stopped, as at a shutdown) aborts it, so it cannot land after a
/// restarted preparation began.
struct Commit(tokio::task::JoinHandle<Result<()>>);

impl Drop for Commit {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a transmission loop ended.
enum TransmitEnd {
    /// Every dispatch was sent and its outcome recorded.
    Done,
    /// Cancelled, failed or shut down.
    Stopped,
    /// Its deadline passed.
    Late,
}

struct RateLimiter {
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl RateLimiter {
    async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

struct Inner {
    app: Elarian,
    store: Store,
    clock: Arc<dyn Clock>,
    config: CampaignsConfig,
    /// Serializes read-modify-write of records (status changes, counters, ids).
    write_lock: tokio::sync::Mutex<()>,
    active: Mutex<HashMap<u64, Arc<Active>>>,
    /// Sendings not in a final status (drafts included), for the scheduler.
    open: Mutex<BTreeSet<u64>>,
    rates: HashMap<ChannelType, Arc<RateLimiter>>,
    status_tx: mpsc::Sender<StatusReport>,
    /// Woken when a batch of send outcomes is committed: reports waiting for their message id
    /// can be matched.
    outcomes_recorded: Arc<OutcomeSignal>,
    ledger: Arc<SendLedger>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    closed: AtomicBool,
}

/// Tells the delivery tracker that a batch of send outcomes was committed.
#[derive(Default)]
struct OutcomeSignal {
    notify: tokio::sync::Notify,
    commits: std::sync::atomic::AtomicU64,
}

impl OutcomeSignal {
    fn signal(&self) {
        self.commits.fetch_add(1, Ordering::Release);
        self.notify.notify_one();
    }
}

/// A delivery report on its way to the tracker, with whom to tell once it is durable.
struct StatusReport {
    message_id: String,
    status: MessageDeliveryStatus,
    /// The handler waiting to acknowledge the notification; taken when told.
    recorded: Option<tokio::sync::oneshot::Sender<()>>,
    /// In the report log (`Table::Reports`): durable while it waits for its dispatch.
    logged: bool,
    received: tokio::time::Instant,
    /// Sends issued when it came ([`SendLedger::issued`]): its message, if a campaign's, is one
    /// of them.
    issued: u64,
}

/// Which sends have their outcome recorded. A delivery report can come before the batch with
/// its send's outcome is committed; it then waits for that commit. One that matches no
/// dispatch once every send issued before it is recorded is of no campaign (the app's own
/// message) and is let go at once.
#[derive(Default)]
struct SendLedger {
    state: Mutex<LedgerState>,
}

#[derive(Default)]
struct LedgerState {
    next: u64,
    unrecorded: BTreeSet<u64>,
}

impl SendLedger {
    fn issue(self: &Arc<Self>) -> Issued {
        let seq = match self.state.lock() {
            Ok(mut s) => {
                let seq = s.next;
                s.next += 1;
                s.unrecorded.insert(seq);
                seq
            }
            Err(_) => u64::MAX,
        };
        Issued {
            ledger: self.clone(),
            seq,
        }
    }

    fn issued(&self) -> u64 {
        self.state.lock().map_or(u64::MAX, |s| s.next)
    }

    /// True when every send issued before the `issued` mark has its outcome recorded (or was
    /// abandoned).
    fn settled_before(&self, issued: u64) -> bool {
        self.state
            .lock()
            .is_ok_and(|s| s.unrecorded.first().is_none_or(|first| *first >= issued))
    }
}

/// A send in the [`SendLedger`], settled when dropped: after its outcome is committed, or when
/// the send is abandoned (its outcome then is never recorded here).
struct Issued {
    ledger: Arc<SendLedger>,
    seq: u64,
}

impl Drop for Issued {
    fn drop(&mut self) {
        if let Ok(mut s) = self.ledger.state.lock() {
            s.unrecorded.remove(&self.seq);
        }
    }
}

/// The campaigns: messages, sendings, audiences, and the scheduler that runs the sendings.
/// Cheap to clone.
#[derive(Clone)]
pub struct Campaigns {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Campaigns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Campaigns")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| CampaignError::Store(StoreError(e.to_string())))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| CampaignError::Store(StoreError(format!("corrupt record: {e}"))))
}

fn invalid(field: &str, reason: impl Into<String>) -> CampaignError {
    CampaignError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

const NEXT_ID: &[u8] = b"next_id";

impl Campaigns {
    /// Opens the campaigns on `store`, driven by the system clock. The app must be connected
    /// (or connect later: sendings wait). Sendings left `preparing` or `transmitting` by a
    /// previous process resume (see [`Campaigns::open_with_clock`]).
    pub async fn open(app: Elarian, store: Store, config: CampaignsConfig) -> Result<Self> {
        Self::open_with_clock(app, store, Arc::new(SystemClock), config).await
    }

    /// Opens the campaigns with a clock of your choice (a [`ManualClock`](crate::ManualClock)
    /// in tests). Starts the scheduler (every `poll_interval`) and the delivery tracker.
    ///
    /// A sending that was `transmitting` when its process died resumes: dispatches recorded as
    /// attempted without an outcome are marked unknown and reported, never resent.
    pub async fn open_with_clock(
        app: Elarian,
        store: Store,
        clock: Arc<dyn Clock>,
        config: CampaignsConfig,
    ) -> Result<Self> {
        if config.concurrency == 0 || config.batch_size == 0 || config.member_lookups == 0 {
            return Err(invalid(
                "config",
                "concurrency, batch_size and member_lookups must be positive",
            ));
        }
        let mut open = BTreeSet::new();
        let mut start = id_key(0);
        loop {
            let rows = store
                .scan(Table::Sendings, start.clone(), vec![0xff; 9], 1024)
                .await?;
            let Some((last, _)) = rows.last() else { break };
            start = last.clone();
            start.push(0);
            for (_, v) in &rows {
                let r: SendingRecord = decode(v)?;
                if !r.status.is_final() {
                    open.insert(r.id);
                }
            }
        }
        let rates = config
            .rates
            .iter()
            .filter(|(_, per_sec)| **per_sec > 0)
            .map(|(kind, per_sec)| {
                (
                    *kind,
                    Arc::new(RateLimiter {
                        interval: Duration::from_secs_f64(1.0 / f64::from(*per_sec)),
                        next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
                    }),
                )
            })
            .collect();
        let logged = logged_reports(&store).await?;
        let (status_tx, status_rx) = mpsc::channel(STATUS_QUEUE);
        let outcomes_recorded = Arc::new(OutcomeSignal::default());
        let ledger = Arc::new(SendLedger::default());
        let inner = Arc::new(Inner {
            app,
            store,
            clock,
            config,
            write_lock: tokio::sync::Mutex::new(()),
            active: Mutex::new(HashMap::new()),
            open: Mutex::new(open),
            rates,
            status_tx,
            outcomes_recorded: outcomes_recorded.clone(),
            ledger: ledger.clone(),
            tasks: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        });
        let campaigns = Campaigns { inner };
        if campaigns.inner.config.track_deliveries {
            let tx = campaigns.inner.status_tx.clone();
            let ledger = ledger.clone();
            campaigns.inner.app.on_message_status(
                move |notification, _customer, _data, _responder| {
                    let tx = tx.clone();
                    let ledger = ledger.clone();
                    async move {
                        report_status(&tx, &ledger, notification.message_id, notification.status)
                            .await;
                    }
                },
            );
        }
        let weak = Arc::downgrade(&campaigns.inner);
        let tracker = tokio::spawn(track_statuses(
            weak.clone(),
            status_rx,
            outcomes_recorded,
            ledger,
            logged,
        ));
        let scheduler = tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let interval = inner.config.poll_interval;
                let c = Campaigns { inner };
                if let Err(e) = c.tick().await {
                    tracing::warn!(error = %e, "campaign scheduler");
                }
                drop(c);
                tokio::time::sleep(interval).await;
            }
        });
        if let Ok(mut tasks) = campaigns.inner.tasks.lock() {
            tasks.push(tracker);
            tasks.push(scheduler);
        }
        Ok(campaigns)
    }

    /// Stops the scheduler, the delivery tracker and running sendings (as a process exit
    /// would: a sending mid-transmission resumes when the campaigns are opened again), and
    /// removes the message-status handler.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        if self.inner.config.track_deliveries {
            self.inner.app.off(AppEvent::MessageStatus);
        }
        let tasks = self
            .inner
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }

    /// Forwards a message-status notification to the delivery tracker (for apps that keep
    /// their own `on_message_status` handler and set `track_deliveries: false`). Returns once
    /// the status is durable (applied, or logged until its dispatch is recorded), so a handler that awaits
    /// it acknowledges the notification only then; it gives up waiting after
    /// [`STATUS_ACK_TIMEOUT`].
    pub async fn handle_message_status(&self, notification: &MessageStatusNotification) {
        report_status(
            &self.inner.status_tx,
            &self.inner.ledger,
            notification.message_id.clone(),
            notification.status,
        )
        .await;
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::SeqCst) {
            Err(CampaignError::Closed)
        } else {
            Ok(())
        }
    }

    async fn next_ids(&self, n: u64) -> Result<(u64, Op)> {
        // Called under the write lock; the caller commits the returned op with its records.
        let current = match self.inner.store.get(Table::Meta, NEXT_ID.to_vec()).await? {
            Some(bytes) => decode::<u64>(&bytes)?,
            None => 1,
        };
        Ok((
            current,
            Op::Put(Table::Meta, NEXT_ID.to_vec(), encode(&(current + n))?),
        ))
    }

    async fn load<T: serde::de::DeserializeOwned>(
        &self,
        table: Table,
        resource: &'static str,
        id: u64,
    ) -> Result<T> {
        match self.inner.store.get(table, id_key(id)).await? {
            Some(bytes) => decode(&bytes),
            None => Err(CampaignError::NotFound { resource, id }),
        }
    }

    async fn list_ids(&self, table: Table, page: Page) -> Result<(Vec<Vec<u8>>, u64)> {
        let (skip, take) = page.check()?;
        let mut start = id_key(0);
        let mut total = 0u64;
        let mut out = Vec::new();
        loop {
            let rows = self
                .inner
                .store
                .scan(table, start.clone(), vec![0xff; 9], 4096)
                .await?;
            let Some((last, _)) = rows.last() else { break };
            start = last.clone();
            start.push(0);
            for (_, v) in rows {
                if total as usize >= skip && out.len() < take {
                    out.push(v);
                }
                total += 1;
            }
        }
        Ok((out, total))
    }

    // ---- messages ------------------------------------------------------------------------

    fn build_channels(
        &self,
        first_id: u64,
        now: Timestamp,
        new: &[NewChannel],
    ) -> Result<Vec<Channel>> {
        if new.is_empty() {
            return Err(invalid("channels", "at least one channel is required"));
        }
        let mut out = Vec::with_capacity(new.len());
        for (i, c) in new.iter().enumerate() {
            mapping::validate_channel(i, c)?;
            out.push(Channel {
                id: first_id + 2 * i as u64,
                kind: c.kind,
                sender: c.sender.clone(),
                from_email: c.from_email.clone(),
                from_name: c.from_name.clone(),
                template: Template {
                    id: first_id + 2 * i as u64 + 1,
                    wrapper_id: c.template.wrapper_id,
                    content: c.template.content.clone(),
                    created_at: now,
                    updated_at: now,
                },
                created_at: now,
                updated_at: now,
            });
        }
        Ok(out)
    }

    /// Creates a message. Channels are validated against Elarian (see `docs/campaigns.md`):
    /// `push` is rejected, senders are checked, templates must fit the channel and compile.
    pub async fn create_message(&self, new: NewMessage) -> Result<Message> {
        self.check_open()?;
        if new.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        let _w = self.inner.write_lock.lock().await;
        let now = self.now();
        let n = 1 + 2 * new.channels.len() as u64;
        let (id, id_op) = self.next_ids(n).await?;
        let channels = self.build_channels(id + 1, now, &new.channels)?;
        let record = MessageRecord {
            id,
            name: new.name,
            shorten_urls: new.shorten_urls,
            track_in_shortener: new.track_in_shortener,
            campaign_id: new.campaign_id,
            service: new.service,
            created_at: now,
            updated_at: now,
            channels,
            sending_ids: Vec::new(),
        };
        self.inner
            .store
            .write(vec![
                id_op,
                Op::Put(Table::Messages, id_key(id), encode(&record)?),
            ])
            .await?;
        drop(_w);
        self.view_message(record).await
    }

    async fn view_message(&self, record: MessageRecord) -> Result<Message> {
        let mut statuses = Vec::with_capacity(record.sending_ids.len());
        let mut latest: Option<SendingRecord> = None;
        for sid in &record.sending_ids {
            let s: SendingRecord = self.load(Table::Sendings, "sending", *sid).await?;
            statuses.push(s.status);
            if latest
                .as_ref()
                .is_none_or(|l| (s.created_at, s.id) > (l.created_at, l.id))
            {
                latest = Some(s);
            }
        }
        Ok(Message {
            id: record.id,
            name: record.name,
            shorten_urls: record.shorten_urls,
            track_in_shortener: record.track_in_shortener,
            campaign_id: record.campaign_id,
            service: record.service,
            created_at: record.created_at,
            updated_at: record.updated_at,
            channels: record.channels,
            sendings_status: crate::lifecycle::aggregate_status(statuses),
            sendings_count: record.sending_ids.len() as u64,
            latest_sending: latest.map(|s| s.summary()),
        })
    }

    /// A message, with its aggregated sendings status and latest sending.
    pub async fn message(&self, id: u64) -> Result<Message> {
        let record: MessageRecord = self.load(Table::Messages, "message", id).await?;
        self.view_message(record).await
    }

    /// A page of messages, in creation order.
    pub async fn messages(&self, page: Page) -> Result<Listing<Message>> {
        let (rows, total) = self.list_ids(Table::Messages, page).await?;
        let mut items = Vec::with_capacity(rows.len());
        for v in rows {
            items.push(self.view_message(decode(&v)?).await?);
        }
        Ok(Listing { items, total })
    }

    /// Replaces a message's fields and channels (new channel and template ids). Refused while
    /// one of its sendings is executing.
    pub async fn update_message(&self, id: u64, new: NewMessage) -> Result<Message> {
        self.check_open()?;
        if new.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        let _w = self.inner.write_lock.lock().await;
        let mut record: MessageRecord = self.load(Table::Messages, "message", id).await?;
        self.refuse_if_executing(&record).await?;
        let now = self.now();
        let (first, id_op) = self.next_ids(2 * new.channels.len() as u64).await?;
        record.channels = self.build_channels(first, now, &new.channels)?;
        record.name = new.name;
        record.shorten_urls = new.shorten_urls;
        record.track_in_shortener = new.track_in_shortener;
        record.campaign_id = new.campaign_id;
        record.service = new.service;
        record.updated_at = now;
        self.inner
            .store
            .write(vec![
                id_op,
                Op::Put(Table::Messages, id_key(id), encode(&record)?),
            ])
            .await?;
        drop(_w);
        self.view_message(record).await
    }

    async fn refuse_if_executing(&self, record: &MessageRecord) -> Result<()> {
        for sid in &record.sending_ids {
            let s: SendingRecord = self.load(Table::Sendings, "sending", *sid).await?;
            if s.status.is_executing() {
                return Err(CampaignError::Conflict(format!(
                    "sending {} is {}",
                    s.id, s.status
                )));
            }
        }
        Ok(())
    }

    /// Deletes a message and its sendings (their recipients and dispatches too). Refused while
    /// one of its sendings is executing.
    pub async fn delete_message(&self, id: u64) -> Result<()> {
        self.check_open()?;
        let _w = self.inner.write_lock.lock().await;
        let record: MessageRecord = self.load(Table::Messages, "message", id).await?;
        self.refuse_if_executing(&record).await?;
        let mut ops = vec![Op::Delete(Table::Messages, id_key(id))];
        for sid in &record.sending_ids {
            // The index from Elarian message ids to dispatches has no range per sending: its
            // entries go with the dispatches that name them.
            for message_id in self.message_ids_of(*sid).await? {
                ops.push(Op::Delete(Table::MessageIds, message_id.into_bytes()));
            }
            let (s, e) = owner_range(*sid);
            ops.push(Op::Delete(Table::Sendings, id_key(*sid)));
            ops.push(Op::DeleteRange(
                Table::SendingRecipients,
                s.clone(),
                e.clone(),
            ));
            ops.push(Op::DeleteRange(Table::Dispatches, s, e));
            ops.push(Op::Delete(Table::Attempts, id_key(*sid)));
        }
        self.inner.store.write(ops).await?;
        if let Ok(mut open) = self.inner.open.lock() {
            for sid in &record.sending_ids {
                open.remove(sid);
            }
        }
        Ok(())
    }

    // ---- audiences -----------------------------------------------------------------------

    fn check_recipients(&self, field: &str, recipients: &[Recipient]) -> Result<()> {
        if recipients.len() > self.inner.config.max_recipients {
            return Err(invalid(
                field,
                format!("at most {} recipients", self.inner.config.max_recipients),
            ));
        }
        for (i, r) in recipients.iter().enumerate() {
            if r.member_id.is_none()
                && r.msisdn.is_none()
                && r.email.is_none()
                && r.app_token.is_none()
            {
                return Err(invalid(
                    &format!("{field}[{i}]"),
                    "needs member_id, msisdn, email or app_token",
                ));
            }
        }
        Ok(())
    }

    fn chunk_ops(table: Table, owner: u64, recipients: &[Recipient]) -> Result<Vec<Op>> {
        let (s, e) = owner_range(owner);
        let mut ops = vec![Op::DeleteRange(table, s, e)];
        for (i, chunk) in recipients.chunks(RECIPIENT_CHUNK).enumerate() {
            let index = u32::try_from(i).map_err(|_| invalid("recipients", "too many"))?;
            ops.push(Op::Put(table, pair_key(owner, index), encode(&chunk)?));
        }
        Ok(ops)
    }

    async fn read_chunks(&self, table: Table, owner: u64) -> Result<Vec<Recipient>> {
        let mut out = Vec::new();
        let (mut start, end) = owner_range(owner);
        loop {
            let rows = self
                .inner
                .store
                .scan(table, start.clone(), end.clone(), 16)
                .await?;
            let Some((last, _)) = rows.last() else { break };
            start = last.clone();
            start.push(0);
            for (_, v) in rows {
                out.extend(decode::<Vec<Recipient>>(&v)?);
            }
        }
        Ok(out)
    }

    /// Creates an audience: a stored list of recipients sendings can be directed to.
    pub async fn create_audience(&self, payload: AudiencePayload) -> Result<Audience> {
        self.check_open()?;
        if payload.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        self.check_recipients("recipients", &payload.recipients)?;
        let _w = self.inner.write_lock.lock().await;
        let now = self.now();
        let (id, id_op) = self.next_ids(1).await?;
        let record = AudienceRecord {
            id,
            name: payload.name,
            recipients_count: payload.recipients.len() as u64,
            created_at: now,
            updated_at: now,
        };
        let mut ops = vec![
            id_op,
            Op::Put(Table::Audiences, id_key(id), encode(&record)?),
        ];
        ops.extend(Self::chunk_ops(
            Table::AudienceRecipients,
            id,
            &payload.recipients,
        )?);
        self.inner.store.write(ops).await?;
        Ok(audience_view(record))
    }

    /// An audience.
    pub async fn audience(&self, id: u64) -> Result<Audience> {
        Ok(audience_view(
            self.load(Table::Audiences, "audience", id).await?,
        ))
    }

    /// An audience's recipients.
    pub async fn audience_recipients(&self, id: u64) -> Result<Vec<Recipient>> {
        let _: AudienceRecord = self.load(Table::Audiences, "audience", id).await?;
        self.read_chunks(Table::AudienceRecipients, id).await
    }

    /// A page of audiences.
    pub async fn audiences(&self, page: Page) -> Result<Listing<Audience>> {
        let (rows, total) = self.list_ids(Table::Audiences, page).await?;
        let items = rows
            .iter()
            .map(|v| decode(v).map(audience_view))
            .collect::<Result<_>>()?;
        Ok(Listing { items, total })
    }

    /// Replaces an audience's name and recipients. Sendings read it when they prepare.
    pub async fn update_audience(&self, id: u64, payload: AudiencePayload) -> Result<Audience> {
        self.check_open()?;
        if payload.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        self.check_recipients("recipients", &payload.recipients)?;
        let _w = self.inner.write_lock.lock().await;
        let mut record: AudienceRecord = self.load(Table::Audiences, "audience", id).await?;
        record.name = payload.name;
        record.recipients_count = payload.recipients.len() as u64;
        record.updated_at = self.now();
        let mut ops = vec![Op::Put(Table::Audiences, id_key(id), encode(&record)?)];
        ops.extend(Self::chunk_ops(
            Table::AudienceRecipients,
            id,
            &payload.recipients,
        )?);
        self.inner.store.write(ops).await?;
        Ok(audience_view(record))
    }

    /// Deletes an audience. Sendings that still name it find no members when they prepare
    /// (and are skipped if they have no inline recipients either), as the seed allows.
    pub async fn delete_audience(&self, id: u64) -> Result<()> {
        self.check_open()?;
        let _w = self.inner.write_lock.lock().await;
        let _: AudienceRecord = self.load(Table::Audiences, "audience", id).await?;
        let (s, e) = owner_range(id);
        self.inner
            .store
            .write(vec![
                Op::Delete(Table::Audiences, id_key(id)),
                Op::DeleteRange(Table::AudienceRecipients, s, e),
            ])
            .await?;
        Ok(())
    }

    // ---- sendings ------------------------------------------------------------------------

    fn schedule_of(
        &self,
        scheduled_at: Option<Timestamp>,
        scheduled_with: Option<&ScheduledWith>,
        draft: bool,
    ) -> Result<(SendingStatus, Option<Timestamp>)> {
        let at = match (scheduled_at, scheduled_with) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "scheduled_with",
                    "give scheduled_at or scheduled_with, not both",
                ));
            }
            (Some(at), None) => Some(at),
            (None, Some(w)) => {
                let d = parse_relative(&w.within).map_err(|r| invalid("scheduled_with.in", r))?;
                Some(self.now().plus(d))
            }
            (None, None) => None,
        };
        let status = if draft || at.is_none() {
            SendingStatus::Draft
        } else {
            SendingStatus::Scheduled
        };
        Ok((status, at))
    }

    /// Creates a sending of message `message_id`: a draft without a schedule (or with
    /// `draft: true`), else scheduled at `scheduled_at` or `scheduled_with.in` from now.
    pub async fn create_sending(
        &self,
        message_id: u64,
        payload: SendingPayload,
    ) -> Result<Sending> {
        self.check_open()?;
        self.check_recipients("recipients", &payload.recipients)?;
        if payload.audience_id.is_none() && payload.recipients.is_empty() {
            return Err(invalid(
                "recipients",
                "give an audience_id, recipients, or both",
            ));
        }
        let (status, at) = self.schedule_of(
            payload.scheduled_at,
            payload.scheduled_with.as_ref(),
            payload.draft,
        )?;
        let _w = self.inner.write_lock.lock().await;
        let mut message: MessageRecord = self.load(Table::Messages, "message", message_id).await?;
        if let Some(aid) = payload.audience_id {
            let _: AudienceRecord = self.load(Table::Audiences, "audience", aid).await?;
        }
        let now = self.now();
        let (id, id_op) = self.next_ids(1).await?;
        let record = SendingRecord {
            id,
            message_id,
            audience_id: payload.audience_id,
            status,
            scheduled_at: at,
            scheduled_with: payload.scheduled_with,
            created_at: now,
            updated_at: now,
            recipients_count: payload.recipients.len() as u64,
            progress: Progress {
                sending_id: id,
                status: Some(status),
                ..Progress::default()
            },
        };
        message.sending_ids.push(id);
        message.updated_at = now;
        let mut ops = vec![
            id_op,
            Op::Put(Table::Sendings, id_key(id), encode(&record)?),
            Op::Put(Table::Messages, id_key(message_id), encode(&message)?),
        ];
        ops.extend(Self::chunk_ops(
            Table::SendingRecipients,
            id,
            &payload.recipients,
        )?);
        self.inner.store.write(ops).await?;
        if let Ok(mut open) = self.inner.open.lock() {
            open.insert(id);
        }
        Ok(sending_view(record, payload.recipients))
    }

    /// A sending with its inline recipients.
    pub async fn sending(&self, id: u64) -> Result<Sending> {
        let record: SendingRecord = self.load(Table::Sendings, "sending", id).await?;
        let recipients = self.read_chunks(Table::SendingRecipients, id).await?;
        Ok(sending_view(record, recipients))
    }

    /// The message a sending belongs to.
    pub async fn sending_message_id(&self, id: u64) -> Result<u64> {
        let record: SendingRecord = self.load(Table::Sendings, "sending", id).await?;
        Ok(record.message_id)
    }

    /// A sending's inline recipients.
    pub async fn recipients(&self, sending_id: u64) -> Result<Vec<Recipient>> {
        let _: SendingRecord = self.load(Table::Sendings, "sending", sending_id).await?;
        self.read_chunks(Table::SendingRecipients, sending_id).await
    }

    /// A page of a message's sendings, oldest first, with their recipients.
    pub async fn sendings(&self, message_id: u64, page: Page) -> Result<Listing<Sending>> {
        let (skip, take) = page.check()?;
        let message: MessageRecord = self.load(Table::Messages, "message", message_id).await?;
        let mut items = Vec::new();
        for sid in message.sending_ids.iter().skip(skip).take(take) {
            items.push(self.sending(*sid).await?);
        }
        Ok(Listing {
            items,
            total: message.sending_ids.len() as u64,
        })
    }

    /// Reschedules a draft or scheduled sending, or makes it a draft again (`draft: true`, or
    /// no schedule). Refused once execution started, and for cancelled or failed sendings
    /// (clone those).
    pub async fn schedule(&self, id: u64, payload: SchedulePayload) -> Result<Sending> {
        self.check_open()?;
        let _w = self.inner.write_lock.lock().await;
        let mut record: SendingRecord = self.load(Table::Sendings, "sending", id).await?;
        let (status, at) = if payload.scheduled_at.is_none() && payload.scheduled_with.is_none() {
            // Back to draft, keeping the time it had.
            (SendingStatus::Draft, record.scheduled_at)
        } else {
            self.schedule_of(
                payload.scheduled_at,
                payload.scheduled_with.as_ref(),
                payload.draft,
            )?
        };
        check_transition(record.status, status)?;
        record.scheduled_at = at;
        record.scheduled_with = payload.scheduled_with;
        self.put_status(&mut record, status, None).await?;
        drop(_w);
        self.publish(&record);
        self.sending(id).await
    }

    /// Cancels a sending at any point before its final outcome. When this returns, no further
    /// dispatch of it is sent (sends already in flight finish first; those stay sent).
    pub async fn cancel(&self, id: u64) -> Result<Sending> {
        self.stop(id, SendingStatus::Cancelled).await?;
        self.sending(id).await
    }

    /// Ends a sending as cancelled or failed: closes the gate (waiting for sends in flight),
    /// then records the status.
    async fn stop(&self, id: u64, status: SendingStatus) -> Result<()> {
        self.check_open()?;
        let _w = self.inner.write_lock.lock().await;
        let mut record: SendingRecord = self.load(Table::Sendings, "sending", id).await?;
        check_transition(record.status, status)?;
        let active = self.active(&record);
        *active.gate.write().await = true;
        self.put_status(&mut record, status, Some(&active)).await?;
        drop(_w);
        self.publish(&record);
        Ok(())
    }

    /// Creates a new draft sending of the same message, audience and inline recipients (the
    /// way to "reschedule" a cancelled or failed sending).
    pub async fn clone_sending(&self, id: u64) -> Result<Sending> {
        let record: SendingRecord = self.load(Table::Sendings, "sending", id).await?;
        let recipients = self.read_chunks(Table::SendingRecipients, id).await?;
        self.create_sending(
            record.message_id,
            SendingPayload {
                audience_id: record.audience_id,
                recipients,
                scheduled_at: None,
                scheduled_with: None,
                draft: true,
            },
        )
        .await
    }

    /// A sending's counters.
    pub async fn progress(&self, id: u64) -> Result<Progress> {
        let record: SendingRecord = self.load(Table::Sendings, "sending", id).await?;
        let active = self
            .inner
            .active
            .lock()
            .ok()
            .and_then(|a| a.get(&id).cloned());
        Ok(match active {
            Some(a) => a.progress.borrow().clone(),
            None => record.progress,
        })
    }

    /// A stream of a sending's counters: the ones current when this is called first, then
    /// every change (changes that come faster than they are read are merged), ending after a
    /// final status.
    pub async fn progress_stream(
        &self,
        id: u64,
    ) -> Result<Pin<Box<dyn Stream<Item = Progress> + Send>>> {
        let record: SendingRecord = self.load(Table::Sendings, "sending", id).await?;
        if record.status.is_final() && !self.is_active(id) {
            return Ok(Box::pin(futures_util::stream::iter([record.progress])));
        }
        let mut rx = self.active(&record).progress.subscribe();
        // Taken now, not when the stream is first polled: a caller that subscribes and then
        // starts the sending sees where it started from.
        let current = rx.borrow_and_update().clone();
        Ok(Box::pin(futures_util::stream::unfold(
            (rx, Some(current), false),
            |(mut rx, first, done)| async move {
                if done {
                    return None;
                }
                let p = match first {
                    Some(p) => p,
                    None => {
                        if rx.changed().await.is_err() {
                            return None;
                        }
                        rx.borrow_and_update().clone()
                    }
                };
                let done = p.status.is_some_and(SendingStatus::is_final);
                Some((p, (rx, None, done)))
            },
        )))
    }

    /// A page of a sending's dispatches, in recipient order.
    pub async fn dispatches(&self, id: u64, page: Page) -> Result<Listing<Dispatch>> {
        let (skip, take) = page.check()?;
        let record: SendingRecord = self.load(Table::Sendings, "sending", id).await?;
        let skip = u32::try_from(skip).unwrap_or(u32::MAX);
        let (_, end) = owner_range(id);
        let rows = self
            .inner
            .store
            .scan(Table::Dispatches, pair_key(id, skip), end, take)
            .await?;
        // Pending below the attempt mark is attempted: sent or about to be, outcome not yet
        // recorded.
        let through = self.attempted_through(id).await?.unwrap_or(0);
        let items = rows
            .iter()
            .map(|(_, v)| {
                let mut d = decode_dispatch(v)?;
                if d.state == DispatchState::Pending && d.index < through {
                    d.state = DispatchState::Attempted;
                }
                Ok(d)
            })
            .collect::<Result<_>>()?;
        Ok(Listing {
            items,
            total: record.progress.resolved,
        })
    }

    /// Calls `f` with every dispatch of sending `id`, in recipient order, a stored chunk at a
    /// time.
    async fn for_each_dispatch(&self, id: u64, mut f: impl FnMut(Dispatch)) -> Result<()> {
        let (mut start, end) = owner_range(id);
        loop {
            let rows = self
                .inner
                .store
                .scan(Table::Dispatches, start.clone(), end.clone(), 4096)
                .await?;
            let Some((last, _)) = rows.last() else {
                return Ok(());
            };
            start = last.clone();
            start.push(0);
            for (_, v) in rows {
                f(decode_dispatch(&v)?);
            }
        }
    }

    /// The Elarian message ids the dispatches of sending `id` recorded.
    async fn message_ids_of(&self, id: u64) -> Result<Vec<String>> {
        let mut out = Vec::new();
        self.for_each_dispatch(id, |d| out.extend(d.message_id))
            .await?;
        Ok(out)
    }

    /// Dispatches whose outcome is unknown (attempted when the process died, or the send's
    /// reply was lost): reported here, never resent.
    pub async fn unknown_dispatches(&self, id: u64) -> Result<Vec<Dispatch>> {
        let _: SendingRecord = self.load(Table::Sendings, "sending", id).await?;
        let mut out = Vec::new();
        self.for_each_dispatch(id, |d| {
            if d.state == DispatchState::Unknown {
                out.push(d);
            }
        })
        .await?;
        Ok(out)
    }

    // ---- runtime -------------------------------------------------------------------------

    fn is_active(&self, id: u64) -> bool {
        self.inner
            .active
            .lock()
            .map(|a| a.contains_key(&id))
            .unwrap_or(false)
    }

    fn active(&self, record: &SendingRecord) -> Arc<Active> {
        let Ok(mut map) = self.inner.active.lock() else {
            // A poisoned map only happens after a panic elsewhere; a detached entry still
            // works for this caller.
            return Arc::new(Active {
                gate: tokio::sync::RwLock::new(record.status.is_final()),
                running: AtomicBool::new(false),
                progress: watch::channel(record.progress.clone()).0,
            });
        };
        map.entry(record.id)
            .or_insert_with(|| {
                Arc::new(Active {
                    gate: tokio::sync::RwLock::new(matches!(
                        record.status,
                        SendingStatus::Cancelled | SendingStatus::Failed
                    )),
                    running: AtomicBool::new(false),
                    progress: watch::channel(record.progress.clone()).0,
                })
            })
            .clone()
    }

    /// Publishes a record's status and counters; forgets finished sendings that are idle.
    fn publish(&self, record: &SendingRecord) {
        let active = self
            .inner
            .active
            .lock()
            .ok()
            .and_then(|a| a.get(&record.id).cloned());
        if let Some(a) = &active {
            a.progress.send_modify(|p| p.status = Some(record.status));
        }
        if record.status.is_final() {
            if let Ok(mut open) = self.inner.open.lock() {
                open.remove(&record.id);
            }
            if active.is_some_and(|a| !a.running.load(Ordering::SeqCst))
                && let Ok(mut map) = self.inner.active.lock()
            {
                map.remove(&record.id);
            }
        }
    }

    /// Moves due sendings forward: scheduled ones whose preparation time came start preparing,
    /// prepared ones whose time came transmit, interrupted ones resume, late ones fail. The
    /// scheduler calls it every `poll_interval`; tests with a manual clock call it directly.
    /// Work runs in background tasks; this returns once they are started.
    pub async fn tick(&self) -> Result<()> {
        self.check_open()?;
        let now = self.now();
        let ids: Vec<u64> = self
            .inner
            .open
            .lock()
            .map(|o| o.iter().copied().collect())
            .unwrap_or_default();
        for id in ids {
            let record: SendingRecord = match self.load(Table::Sendings, "sending", id).await {
                Ok(r) => r,
                Err(CampaignError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let Some(at) = record.scheduled_at else {
                continue;
            };
            let deadline = at.plus(self.inner.config.fail_after);
            match record.status {
                SendingStatus::Scheduled
                | SendingStatus::Preparing
                | SendingStatus::Prepared
                | SendingStatus::Transmitting
                    if now >= deadline =>
                {
                    self.fail(id).await?
                }
                SendingStatus::Scheduled
                    if now >= at.minus(self.inner.config.prepare_lead)
                        && self
                            .transition(id, SendingStatus::Scheduled, SendingStatus::Preparing)
                            .await? =>
                {
                    self.spawn_execute(id);
                }
                SendingStatus::Preparing | SendingStatus::Transmitting => self.spawn_execute(id),
                SendingStatus::Prepared if now >= at => self.spawn_execute(id),
                _ => {}
            }
        }
        Ok(())
    }

    /// Changes `from` to `to` if the sending is still `from`; false when it moved meanwhile.
    async fn transition(&self, id: u64, from: SendingStatus, to: SendingStatus) -> Result<bool> {
        let _w = self.inner.write_lock.lock().await;
        let mut record: SendingRecord = self.load(Table::Sendings, "sending", id).await?;
        if record.status != from {
            return Ok(false);
        }
        check_transition(from, to)?;
        let active = self.active(&record);
        self.put_status(&mut record, to, Some(&active)).await?;
        drop(_w);
        self.publish(&record);
        Ok(true)
    }

    fn spawn_execute(&self, id: u64) {
        let Ok(record_active) = self.inner.active.lock().map(|a| a.get(&id).cloned()) else {
            return;
        };
        if record_active.is_some_and(|a| a.running.load(Ordering::SeqCst)) {
            return;
        }
        let this = self.clone();
        let handle = tokio::spawn(async move {
            if let Err(e) = this.execute(id).await {
                tracing::error!(sending_id = id, error = %e, "sending execution stopped; it resumes at the next tick");
            }
        });
        if let Ok(mut tasks) = self.inner.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(handle);
        }
    }

    async fn execute(&self, id: u64) -> Result<()> {
        let record: SendingRecord = self.load(Table::Sendings, "sending", id).await?;
        let active = self.active(&record);
        if active
            .running
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Ok(());
        }
        struct Running(Arc<Active>);
        impl Drop for Running {
            fn drop(&mut self) {
                self.0.running.store(false, Ordering::SeqCst);
            }
        }
        let _running = Running(active.clone());
        // True once this task moved the sending to transmitting: no earlier attempt can exist,
        // so the scan for interrupted dispatches is skipped.
        let mut started_here = false;
        loop {
            if self.inner.closed.load(Ordering::SeqCst) || self.is_stopped(&active).await {
                return Ok(());
            }
            let record: SendingRecord = self.load(Table::Sendings, "sending", id).await?;
            if record.status.is_executing() && self.deadline_passed(&record) {
                return self.fail(id).await;
            }
            match record.status {
                SendingStatus::Preparing => self.prepare(&record, &active).await?,
                SendingStatus::Prepared => {
                    let due = record.scheduled_at.is_none_or(|at| self.now() >= at);
                    if !due
                        || !self
                            .transition(id, SendingStatus::Prepared, SendingStatus::Transmitting)
                            .await?
                    {
                        return Ok(());
                    }
                    started_here = true;
                }
                SendingStatus::Transmitting => {
                    self.transmit(&record, &active, started_here).await?
                }
                _ => {
                    if record.status.is_final() {
                        self.publish(&record);
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Fails a sending whose deadline passed (unless it reached another final status first).
    async fn fail(&self, id: u64) -> Result<()> {
        match self.stop(id, SendingStatus::Failed).await {
            Ok(()) | Err(CampaignError::IllegalTransition(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn deadline_passed(&self, record: &SendingRecord) -> bool {
        record
            .scheduled_at
            .is_some_and(|at| self.now() >= at.plus(self.inner.config.fail_after))
    }

    async fn is_stopped(&self, active: &Active) -> bool {
        *active.gate.read().await
    }

    /// Records `status` on the sending (with the running counters of `active`, when it runs)
    /// and writes it; the caller holds the write lock and checked the transition.
    async fn put_status(
        &self,
        record: &mut SendingRecord,
        status: SendingStatus,
        active: Option<&Active>,
    ) -> Result<()> {
        record.status = status;
        record.updated_at = self.now();
        if let Some(active) = active {
            record.progress = active.progress.borrow().clone();
        }
        record.progress.status = Some(status);
        self.inner
            .store
            .write(vec![Op::Put(
                Table::Sendings,
                id_key(record.id),
                encode(&*record)?,
            )])
            .await?;
        Ok(())
    }

    /// Writes `ops` and the sending's counters in one commit, keeping the record's status
    /// (which a cancel may have changed meanwhile).
    async fn commit_with_progress(&self, id: u64, mut ops: Vec<Op>, active: &Active) -> Result<()> {
        let _w = self.inner.write_lock.lock().await;
        let mut record: SendingRecord = self.load(Table::Sendings, "sending", id).await?;
        record.progress = active.progress.borrow().clone();
        record.progress.status = Some(record.status);
        ops.push(Op::Put(Table::Sendings, id_key(id), encode(&record)?));
        self.inner.store.write(ops).await?;
        Ok(())
    }

    async fn prepare(&self, record: &SendingRecord, active: &Arc<Active>) -> Result<()> {
        let id = record.id;
        let message: MessageRecord = self
            .load(Table::Messages, "message", record.message_id)
            .await?;
        let channel = message
            .channels
            .first()
            .ok_or_else(|| invalid("channels", "the message has no channel"))?
            .clone();
        let renderer = Renderer::new(channel.kind, &channel.template.content)
            .map_err(|e| invalid("template", e.to_string()))?;
        // A restarted preparation starts over: nothing of it was sent.
        let (s, e) = owner_range(id);
        active.progress.send_modify(|p| {
            *p = Progress {
                sending_id: id,
                status: Some(SendingStatus::Preparing),
                ..Progress::default()
            }
        });
        self.inner
            .store
            .write(vec![
                Op::DeleteRange(Table::Dispatches, s, e),
                Op::Delete(Table::Attempts, id_key(id)),
            ])
            .await?;
        // The audience's chunks, then the sending's own, one stored chunk at a time: a sending
        // of millions never has them all decoded at once.
        let mut sources = Vec::with_capacity(2);
        if let Some(aid) = record.audience_id
            && self
                .inner
                .store
                .get(Table::Audiences, id_key(aid))
                .await?
                .is_some()
        {
            sources.push((Table::AudienceRecipients, aid));
        }
        sources.push((Table::SendingRecipients, id));

        let mut seen: HashSet<Box<str>> = HashSet::with_capacity(
            usize::try_from(record.recipients_count)
                .unwrap_or(0)
                .min(self.inner.config.max_recipients),
        );
        let mut next_index: u32 = 0;
        // The previous chunk's commit, running while this chunk is built.
        let mut committing: Option<Commit> = None;
        let mut buf = Vec::with_capacity(128);
        for (table, owner) in sources {
            let (mut cursor, end) = owner_range(owner);
            loop {
                if self.is_stopped(active).await {
                    return Self::finish_commit(committing).await;
                }
                if self.deadline_passed(record) {
                    Self::finish_commit(committing).await?;
                    return self.fail(id).await;
                }
                let rows = self
                    .inner
                    .store
                    .scan(table, cursor.clone(), end.clone(), 1)
                    .await?;
                let Some((key, chunk)) = rows.into_iter().next() else {
                    break;
                };
                cursor = key;
                cursor.push(0);
                let chunk: Vec<Recipient> = decode(&chunk)?;
                let ops = self
                    .prepare_chunk(
                        id,
                        channel.kind,
                        &renderer,
                        chunk,
                        &mut seen,
                        &mut next_index,
                        &mut buf,
                        active,
                    )
                    .await?;
                Self::finish_commit(committing.take()).await?;
                let this = self.clone();
                let counters = active.clone();
                committing = Some(Commit(tokio::spawn(async move {
                    this.commit_with_progress(id, ops, &counters).await
                })));
            }
        }
        Self::finish_commit(committing).await?;
        let to = if active.progress.borrow().resolved == 0 {
            SendingStatus::Skipped
        } else {
            SendingStatus::Prepared
        };
        self.transition(id, SendingStatus::Preparing, to).await?;
        Ok(())
    }

    async fn finish_commit(commit: Option<Commit>) -> Result<()> {
        let Some(mut commit) = commit else {
            return Ok(());
        };
        (&mut commit.0)
            .await
            .map_err(|e| CampaignError::Store(StoreError(format!("store task failed: {e}"))))?
    }

    /// Deduplicates, resolves and renders one chunk of recipients; returns the dispatches'
    /// writes and counts them in the progress.
    #[allow(clippy::too_many_arguments)]
    async fn prepare_chunk(
        &self,
        id: u64,
        kind: ChannelType,
        renderer: &Renderer,
        chunk: Vec<Recipient>,
        seen: &mut HashSet<Box<str>>,
        next_index: &mut u32,
        buf: &mut Vec<u8>,
        active: &Active,
    ) -> Result<Vec<Op>> {
        // Dedupe first, so members are looked up once. Inline recipients resolve here; members
        // take a customer-state read each, done below with bounded concurrency.
        let mut resolved: Vec<Option<std::result::Result<Resolved, SkipReason>>> =
            Vec::with_capacity(chunk.len());
        // (position in `resolved`, member, inline properties)
        let mut members: Vec<(usize, MemberId, Option<Properties>)> = Vec::new();
        let mut duplicates = 0u64;
        let mut key = String::with_capacity(32);
        for r in chunk {
            use std::fmt::Write as _;
            key.clear();
            let number = match &r.member_id {
                Some(MemberId::Number(n)) => {
                    let _ = write!(key, "m:{n}");
                    None
                }
                Some(MemberId::CustomerId(c)) => {
                    key.push_str("c:");
                    key.push_str(c);
                    None
                }
                None => match inline_number(kind, &r) {
                    Ok(n) => {
                        key.push_str("n:");
                        key.push_str(&n.number);
                        Some(Ok(n))
                    }
                    // Not resolvable: counted as a skip below, not deduplicated.
                    Err(reason) => Some(Err(reason)),
                },
            };
            if !key.is_empty() {
                if seen.contains(key.as_str()) {
                    duplicates += 1;
                    continue;
                }
                seen.insert(key.as_str().into());
            }
            match (number, r.member_id) {
                (Some(n), _) => {
                    resolved.push(Some(n.map(|n| (None, n, r.properties.unwrap_or_default()))))
                }
                (None, Some(member)) => {
                    members.push((resolved.len(), member, r.properties));
                    resolved.push(None);
                }
                (None, None) => resolved.push(Some(Err(SkipReason::NoIdentifier))),
            }
        }
        if !members.is_empty() {
            // Collected first: a lazy `map` held across the await trips the spawn's `Send` check.
            let mut lookups = Vec::with_capacity(members.len());
            for (at, member, properties) in members {
                lookups
                    .push(async move { (at, self.resolve_member(kind, member, properties).await) });
            }
            let found: Vec<(usize, std::result::Result<Resolved, SkipReason>)> =
                futures_util::stream::iter(lookups)
                    .buffer_unordered(self.inner.config.member_lookups)
                    .collect()
                    .await;
            for (at, r) in found {
                if let Some(slot) = resolved.get_mut(at) {
                    *slot = Some(r);
                }
            }
        }
        let total = resolved.len() as u64;
        let mut ops = Vec::with_capacity(resolved.len());
        let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
        let mut ok = 0u64;
        let mut segments = 0u64;
        for item in resolved.into_iter().flatten() {
            let built = item.and_then(|(member_id, to, fields)| {
                renderer
                    .render(&fields)
                    .map(|(content, sms)| (member_id, to, content, sms))
            });
            match built {
                Ok((member_id, to, content, sms)) => {
                    segments += sms.map_or(0, |s| u64::from(s.segments));
                    let d = Dispatch {
                        index: *next_index,
                        member_id,
                        to,
                        content,
                        sms,
                        state: DispatchState::Pending,
                        message_id: None,
                        delivery_status: None,
                        error: None,
                    };
                    encode_dispatch_into(&d, buf);
                    ops.push(Op::Put(
                        Table::Dispatches,
                        pair_key(id, *next_index),
                        buf.clone(),
                    ));
                    *next_index = next_index
                        .checked_add(1)
                        .ok_or_else(|| invalid("recipients", "too many"))?;
                    ok += 1;
                }
                Err(reason) => *skipped.entry(reason.to_string()).or_default() += 1,
            }
        }
        active.progress.send_modify(|p| {
            p.recipients += total;
            p.duplicates += duplicates;
            p.resolved += ok;
            p.sms_segments += segments;
            for (reason, n) in skipped {
                *p.skipped.entry(reason).or_default() += n;
            }
        });
        Ok(ops)
    }

    async fn resolve_member(
        &self,
        kind: ChannelType,
        member: MemberId,
        properties: Option<BTreeMap<String, Value>>,
    ) -> std::result::Result<Resolved, SkipReason> {
        let customer = match &member {
            MemberId::Number(n) => self
                .inner
                .app
                .customer_by_secondary_id("member_id", n.to_string()),
            MemberId::CustomerId(c) => self.inner.app.customer_by_id(c.clone()),
        };
        let state = customer.get_state().await.map_err(|e| {
            tracing::debug!(member = %member, error = %e, "member lookup failed");
            SkipReason::MemberNotFound
        })?;
        let number = member_number(kind, &state).ok_or(SkipReason::NoIdentifier)?;
        let mut fields: BTreeMap<String, Value> = state
            .identity
            .metadata
            .iter()
            .filter_map(|(k, v)| data_value_to_json(v).map(|v| (k.clone(), v)))
            .collect();
        if let Some(props) = properties {
            fields.extend(props);
        }
        Ok((Some(member), number, fields))
    }

    async fn transmit(
        &self,
        record: &SendingRecord,
        active: &Arc<Active>,
        started_here: bool,
    ) -> Result<()> {
        let id = record.id;
        let message: MessageRecord = self
            .load(Table::Messages, "message", record.message_id)
            .await?;
        let channel = message
            .channels
            .first()
            .ok_or_else(|| invalid("channels", "the message has no channel"))?
            .clone();
        let from = channel_number(
            channel.kind,
            channel.sender.as_ref().map(|s| s.value.as_str()),
            channel.from_email.as_deref(),
        )
        .ok_or_else(|| invalid("channels[0]", "no Elarian channel number"))?;
        let rate = self.inner.rates.get(&channel.kind).cloned();

        // Dispatches attempted by a process that died before recording the outcome: unknown.
        if !started_here {
            self.settle_interrupted(id, active).await?;
        }

        // Three stages run at once, joined by bounded channels: batches are read and recorded
        // as attempted, sent with `concurrency` in flight across batch boundaries (the window
        // never drains between batches), and their outcomes committed in batches. Only a batch
        // whose attempt is durable reaches the sender.
        let batch_size = self.inner.config.batch_size;
        let (batch_tx, batch_rx) = mpsc::channel::<Vec<Dispatch>>(2);
        let (outcome_tx, outcome_rx) =
            mpsc::channel::<(Dispatch, Option<Issued>)>(batch_size.saturating_mul(2));
        let read = self.read_for_transmission(record, active, batch_tx);
        let send = async move {
            let dispatches = futures_util::stream::unfold(batch_rx, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|batch| (futures_util::stream::iter(batch), rx))
            })
            .flatten();
            let outcomes = dispatches
                .map(|d| self.send_one(d, &from, rate.as_deref(), active))
                .buffer_unordered(self.inner.config.concurrency);
            let mut outcomes = std::pin::pin!(outcomes);
            while let Some(outcome) = outcomes.next().await {
                if outcome_tx.send(outcome).await.is_err() {
                    // The recorder failed: stop sending; what is in flight stays attempted.
                    break;
                }
            }
        };
        let record_outcomes = self.record_outcomes(id, active, outcome_rx);
        let (end, (), recorded) = tokio::join!(read, send, record_outcomes);
        recorded?;
        match end? {
            TransmitEnd::Done => {
                self.transition(id, SendingStatus::Transmitting, SendingStatus::Transmitted)
                    .await?;
                Ok(())
            }
            TransmitEnd::Stopped => Ok(()),
            TransmitEnd::Late => self.fail(id).await,
        }
    }

    /// The first stage of [`Campaigns::transmit`]: reads pending dispatches in batches, records
    /// each batch as attempted (durably) and hands it to the sender.
    async fn read_for_transmission(
        &self,
        record: &SendingRecord,
        active: &Active,
        batches: mpsc::Sender<Vec<Dispatch>>,
    ) -> Result<TransmitEnd> {
        let id = record.id;
        let (_, end) = owner_range(id);
        let mut cursor = pair_key(id, 0);
        loop {
            if self.is_stopped(active).await || self.inner.closed.load(Ordering::SeqCst) {
                return Ok(TransmitEnd::Stopped);
            }
            if self.deadline_passed(record) {
                return Ok(TransmitEnd::Late);
            }
            let rows = self
                .inner
                .store
                .scan(
                    Table::Dispatches,
                    cursor.clone(),
                    end.clone(),
                    self.inner.config.batch_size,
                )
                .await?;
            let Some((last, _)) = rows.last() else {
                return Ok(TransmitEnd::Done);
            };
            cursor = last.clone();
            cursor.push(0);
            let mut batch: Vec<Dispatch> = Vec::with_capacity(rows.len());
            for (_, v) in &rows {
                let d = decode_dispatch(v)?;
                if d.state == DispatchState::Pending {
                    batch.push(d);
                }
            }
            let Some(through) = batch.last().map(|d| d.index.saturating_add(1)) else {
                continue;
            };
            // At most once: every dispatch below this mark counts as attempted, and the mark is
            // durable before anything of the batch goes on the wire. One small write per batch
            // instead of rewriting each dispatch.
            self.inner
                .store
                .write(vec![Op::Put(
                    Table::Attempts,
                    id_key(id),
                    through.to_be_bytes().to_vec(),
                )])
                .await?;
            if batches.send(batch).await.is_err() {
                return Ok(TransmitEnd::Stopped);
            }
        }
    }

    /// The last stage of [`Campaigns::transmit`]: commits outcomes (dispatch, message-id index,
    /// counters) in batches of what has arrived, until the sender is done.
    async fn record_outcomes(
        &self,
        id: u64,
        active: &Active,
        mut outcomes: mpsc::Receiver<(Dispatch, Option<Issued>)>,
    ) -> Result<()> {
        let batch_size = self.inner.config.batch_size;
        let mut buf = Vec::with_capacity(batch_size);
        let mut encoded = Vec::with_capacity(128);
        loop {
            buf.clear();
            if outcomes.recv_many(&mut buf, batch_size).await == 0 {
                return Ok(());
            }
            let mut ops = Vec::with_capacity(buf.len() * 2);
            let (mut sent, mut failed, mut unknown, mut not_sent) = (0u64, 0u64, 0u64, 0u64);
            for (d, _) in &buf {
                match d.state {
                    DispatchState::Sent => sent += 1,
                    DispatchState::Failed => failed += 1,
                    DispatchState::Unknown => unknown += 1,
                    DispatchState::NotSent => not_sent += 1,
                    DispatchState::Pending | DispatchState::Attempted => {}
                }
                if let Some(mid) = &d.message_id {
                    ops.push(Op::Put(
                        Table::MessageIds,
                        mid.as_bytes().to_vec(),
                        pair_key(id, d.index),
                    ));
                }
                encode_dispatch_into(d, &mut encoded);
                ops.push(Op::Put(
                    Table::Dispatches,
                    pair_key(id, d.index),
                    encoded.clone(),
                ));
            }
            active.progress.send_modify(|p| {
                p.sent += sent;
                p.failed += failed;
                p.unknown += unknown;
                p.not_sent += not_sent;
            });
            let committed = self.commit_with_progress(id, ops, active).await;
            // Settles the sends in the ledger, recorded or not (a failed commit ends the
            // transmission; their reports can never match).
            buf.clear();
            committed?;
            // Delivery reports that came before their send's outcome was recorded can match now.
            self.inner.outcomes_recorded.signal();
        }
    }

    async fn settle_interrupted(&self, id: u64, active: &Active) -> Result<()> {
        let Some(through) = self.attempted_through(id).await? else {
            return Ok(());
        };
        let (mut start, _) = owner_range(id);
        let end = pair_key(id, through);
        let mut ops = Vec::new();
        loop {
            let rows = self
                .inner
                .store
                .scan(Table::Dispatches, start.clone(), end.clone(), 4096)
                .await?;
            let Some((last, _)) = rows.last() else { break };
            start = last.clone();
            start.push(0);
            for (k, v) in rows {
                let mut d = decode_dispatch(&v)?;
                if matches!(d.state, DispatchState::Pending | DispatchState::Attempted) {
                    d.state = DispatchState::Unknown;
                    d.error =
                        Some("attempted before a restart; outcome unknown, not resent".into());
                    ops.push(Op::Put(Table::Dispatches, k, encode_dispatch(&d)));
                }
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        let n = ops.len() as u64;
        tracing::warn!(
            sending_id = id,
            dispatches = n,
            "dispatches with an unknown outcome after a restart are reported, not resent"
        );
        active.progress.send_modify(|p| p.unknown += n);
        self.commit_with_progress(id, ops, active).await
    }

    /// Dispatches below this index were recorded as attempted (see `read_for_transmission`).
    async fn attempted_through(&self, id: u64) -> Result<Option<u32>> {
        match self.inner.store.get(Table::Attempts, id_key(id)).await? {
            None => Ok(None),
            Some(bytes) => {
                let raw: [u8; 4] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| CampaignError::Store(StoreError("corrupt attempt mark".into())))?;
                Ok(Some(u32::from_be_bytes(raw)))
            }
        }
    }

    async fn send_one(
        &self,
        mut d: Dispatch,
        from: &MessagingChannelNumber,
        rate: Option<&RateLimiter>,
        active: &Active,
    ) -> (Dispatch, Option<Issued>) {
        if let Some(rate) = rate {
            rate.acquire().await;
        }
        let gate = active.gate.read().await;
        if *gate {
            d.state = DispatchState::NotSent;
            d.error = Some("the sending was stopped before this dispatch".into());
            return (d, None);
        }
        let issued = self.inner.ledger.issue();
        let customer = self.inner.app.customer(d.to.clone());
        let result = customer
            .send_message(from.clone(), d.content.to_message())
            .await;
        drop(gate);
        match result {
            Ok(reply) if reply.is_success() => {
                d.state = DispatchState::Sent;
                d.message_id = reply.message_id;
                d.delivery_status = Some(reply.status);
            }
            Ok(reply) => {
                d.state = DispatchState::Failed;
                d.delivery_status = Some(reply.status);
                d.error = Some(format!("{:?}: {}", reply.status, reply.description));
            }
            Err(
                e @ (elarian_sdk::Error::InvalidArgument { .. }
                | elarian_sdk::Error::NotConnected
                | elarian_sdk::Error::Failed { .. }
                | elarian_sdk::Error::NoCustomerNumber { .. }),
            ) => {
                d.state = DispatchState::Failed;
                d.error = Some(e.to_string());
            }
            Err(e) => {
                // A timeout or a lost connection: Elarian may or may not have sent it.
                d.state = DispatchState::Unknown;
                d.error = Some(e.to_string());
            }
        }
        (d, Some(issued))
    }
}

fn audience_view(r: AudienceRecord) -> Audience {
    Audience {
        id: r.id,
        name: r.name,
        recipients_count: r.recipients_count,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn sending_view(r: SendingRecord, recipients: Vec<Recipient>) -> Sending {
    Sending {
        id: r.id,
        audience_id: r.audience_id,
        status: r.status,
        scheduled_at: r.scheduled_at,
        scheduled_with: r.scheduled_with,
        created_at: r.created_at,
        updated_at: r.updated_at,
        recipients,
    }
}

fn delivered(s: MessageDeliveryStatus) -> bool {
    (300..400).contains(&i32::from(s))
}

fn failed(s: MessageDeliveryStatus) -> bool {
    i32::from(s) >= 400
}

/// Queues a delivery report for the tracker and waits until it is durable (applied to its
/// dispatch, or kept in the report log until its dispatch's outcome is committed): the caller
/// acknowledges the notification after this returns. It never waits for a send: Elarian may
/// hold a send's reply until its notifications are taken, and a report waiting for that reply
/// would wait for itself. Waits for room when the tracker is behind (backpressure), never
/// drops.
async fn report_status(
    tx: &mpsc::Sender<StatusReport>,
    ledger: &SendLedger,
    message_id: String,
    status: MessageDeliveryStatus,
) {
    let (recorded, done) = tokio::sync::oneshot::channel();
    let report = StatusReport {
        message_id,
        status,
        recorded: Some(recorded),
        logged: false,
        received: tokio::time::Instant::now(),
        issued: ledger.issued(),
    };
    let wait = async {
        if tx.send(report).await.is_ok() {
            let _ = done.await;
        }
    };
    if tokio::time::timeout(STATUS_ACK_TIMEOUT, wait)
        .await
        .is_err()
    {
        tracing::warn!("a delivery report was not recorded in time; acknowledged anyway");
    }
}

/// Reports a previous process logged and had not applied: applied (or let go) by the tracker's
/// first pass.
async fn logged_reports(store: &Store) -> Result<Vec<StatusReport>> {
    let rows = store
        .scan(
            Table::Reports,
            Vec::new(),
            vec![0xff; 256],
            STATUS_RETRY_LIMIT,
        )
        .await?;
    let now = tokio::time::Instant::now();
    Ok(rows
        .into_iter()
        .filter_map(|(k, v)| {
            let status: [u8; 4] = v.as_slice().try_into().ok()?;
            Some(StatusReport {
                message_id: String::from_utf8(k).ok()?,
                status: MessageDeliveryStatus::from(i32::from_le_bytes(status)),
                recorded: None,
                logged: true,
                received: now,
                issued: 0,
            })
        })
        .collect())
}

/// Applies message-status notifications to dispatches, in batches (one commit per batch), off
/// the sending path.
async fn track_statuses(
    inner: Weak<Inner>,
    mut rx: mpsc::Receiver<StatusReport>,
    outcomes_recorded: Arc<OutcomeSignal>,
    ledger: Arc<SendLedger>,
    logged: Vec<StatusReport>,
) {
    // Outcome commits seen at the last retry of the waiting reports: a retry before the next
    // commit would find the same nothing.
    let mut retried_at = u64::MAX;
    // Reports whose message id is not recorded yet (the status came before the batch with its
    // send's outcome was committed), in the report log, retried when outcomes are committed.
    let mut waiting: VecDeque<StatusReport> = logged.into();
    let mut buf = Vec::with_capacity(STATUS_BATCH);
    loop {
        buf.clear();
        let retry = !waiting.is_empty();
        tokio::select! {
            n = rx.recv_many(&mut buf, STATUS_BATCH) => {
                if n == 0 {
                    return; // Every sender is gone.
                }
            }
            () = outcomes_recorded.notify.notified(), if retry => {}
            () = tokio::time::sleep(Duration::from_millis(200)) => retried_at = u64::MAX,
        }
        let Some(inner) = inner.upgrade() else { return };
        let campaigns = Campaigns { inner };
        let commits = outcomes_recorded.commits.load(Ordering::Acquire);
        let mut todo: Vec<StatusReport> = if commits != retried_at {
            retried_at = commits;
            waiting.drain(..).collect()
        } else {
            Vec::new()
        };
        todo.append(&mut buf);
        if todo.is_empty() {
            continue;
        }
        let applied = match campaigns.apply_statuses(&todo).await {
            Ok(applied) => applied,
            Err(e) => {
                // Retried with the others that wait, as long as they may.
                tracing::warn!(error = %e, "delivery tracking: store failure");
                vec![false; todo.len()]
            }
        };
        let now = tokio::time::Instant::now();
        let mut log = Vec::new();
        let mut done = Vec::new();
        for (mut report, applied) in todo.into_iter().zip(applied) {
            let key = report.message_id.as_bytes().to_vec();
            if applied {
                if report.logged {
                    log.push(Op::Delete(Table::Reports, key));
                }
                done.push(report);
            } else if !ledger.settled_before(report.issued)
                && now.duration_since(report.received) < STATUS_RETRY_FOR
                && waiting.len() < STATUS_RETRY_LIMIT
            {
                // Its send's outcome may not be committed yet: logged, and retried when
                // outcomes are.
                if !report.logged {
                    log.push(Op::Put(
                        Table::Reports,
                        key,
                        i32::from(report.status).to_le_bytes().to_vec(),
                    ));
                    report.logged = true;
                }
                waiting.push_back(report);
            } else {
                // Of a message of no campaign (the app's own), or of a send whose outcome was
                // never recorded (unknown): let go.
                tracing::debug!(message_id = %report.message_id, "status of no recorded dispatch");
                if report.logged {
                    log.push(Op::Delete(Table::Reports, key));
                }
                done.push(report);
            }
        }
        match campaigns.inner.store.write(log).await {
            Ok(()) => {
                for report in done.iter_mut().chain(waiting.iter_mut()) {
                    if let Some(tx) = report.recorded.take() {
                        let _ = tx.send(());
                    }
                }
            }
            Err(e) => {
                // Those just logged are not durable: their handlers keep waiting (and give up
                // after `STATUS_ACK_TIMEOUT`); they are logged again on the next pass.
                tracing::warn!(error = %e, "delivery tracking: report log");
                for report in waiting.iter_mut() {
                    if report.recorded.is_some() {
                        report.logged = false;
                    }
                }
            }
        }
    }
}

impl Campaigns {
    /// Records `reports` on their dispatches in one commit per sending; says which were
    /// recorded (the others name no dispatch recorded so far).
    async fn apply_statuses(&self, reports: &[StatusReport]) -> Result<Vec<bool>> {
        let store = &self.inner.store;
        let keys: Vec<Vec<u8>> = reports
            .iter()
            .map(|r| r.message_id.as_bytes().to_vec())
            .collect();
        let found = store.get_many(Table::MessageIds, keys).await?;
        let recorded: Vec<bool> = found.iter().map(Option::is_some).collect();
        let matched: Vec<(Vec<u8>, MessageDeliveryStatus)> = reports
            .iter()
            .zip(found)
            .filter_map(|(r, key)| key.map(|k| (k, r.status)))
            .collect();
        if matched.is_empty() {
            return Ok(recorded);
        }
        let dispatches = store
            .get_many(
                Table::Dispatches,
                matched.iter().map(|(k, _)| k.clone()).collect(),
            )
            .await?;
        // Per sending: its ops and counter changes.
        let mut per_sending: BTreeMap<u64, (Vec<Op>, u64, u64, u64)> = BTreeMap::new();
        let mut latest: HashMap<Vec<u8>, Dispatch> = HashMap::new();
        for ((key, status), bytes) in matched.into_iter().zip(dispatches) {
            let Some(owner) = pair_owner(&key) else {
                continue;
            };
            let mut d: Dispatch = match latest.remove(&key) {
                Some(d) => d,
                None => match bytes {
                    Some(b) => decode_dispatch(&b)?,
                    None => continue,
                },
            };
            let before = d.delivery_status;
            d.delivery_status = Some(status);
            let entry = per_sending.entry(owner).or_default();
            if delivered(status) && !before.is_some_and(delivered) {
                entry.1 += 1;
            }
            if failed(status) && !before.is_some_and(failed) {
                entry.2 += 1;
                entry.3 += 1;
            }
            latest.insert(key, d);
        }
        for (key, d) in latest {
            if let Some(owner) = pair_owner(&key) {
                let bytes = encode_dispatch(&d);
                per_sending.entry(owner).or_default().0.push(Op::Put(
                    Table::Dispatches,
                    key,
                    bytes,
                ));
            }
        }
        for (sid, (ops, delivered_n, failed_n, failed_after)) in per_sending {
            let record: SendingRecord = match self.load(Table::Sendings, "sending", sid).await {
                Ok(r) => r,
                Err(CampaignError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let active = self.active(&record);
            active.progress.send_modify(|p| {
                p.delivered += delivered_n;
                p.failed += failed_n;
                p.failed_after_send += failed_after;
            });
            self.commit_with_progress(sid, ops, &active).await?;
            if record.status.is_final() {
                self.publish(&record);
            }
        }
        Ok(recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use elarian_emulator::Emulator;
    use elarian_emulator::config::{TEST_API_KEY, TEST_APP_ID, TEST_ORG_ID};
    use elarian_sdk::ClientConfig;

    const WAIT: Duration = Duration::from_secs(20);

    fn sent(index: u32, message_id: &str) -> Dispatch {
        Dispatch {
            index,
            member_id: None,
            to: CustomerNumber::cellular(format!("+25470000000{index}")),
            content: DispatchContent::Text { text: "Hi".into() },
            sms: None,
            state: DispatchState::Sent,
            message_id: Some(message_id.into()),
            delivery_status: Some(MessageDeliveryStatus::Sent),
            error: None,
        }
    }

    /// An emulator on loopback and an app connected to it.
    async fn emulator_and_app() -> (elarian_emulator::EmulatorHandle, Elarian) {
        let emulator = Emulator::builder()
            .tcp(([127, 0, 0, 1], 0))
            .start()
            .await
            .unwrap();
        let app = Elarian::new(
            ClientConfig::builder()
                .org_id(TEST_ORG_ID)
                .app_id(TEST_APP_ID)
                .api_key(TEST_API_KEY)
                .endpoint(emulator.endpoint().unwrap())
                .command_timeout(WAIT)
                .initial_connect_timeout(WAIT),
        )
        .unwrap();
        tokio::time::timeout(WAIT, app.connect())
            .await
            .unwrap()
            .unwrap();
        (emulator, app)
    }

    /// Deleting a message also forgets the Elarian message ids its dispatches recorded (the
    /// index that delivery reports are looked up in), and only those.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deleting_a_message_forgets_its_message_ids() {
        let (emulator, app) = emulator_and_app().await;
        let store = Store::memory();
        let now = Timestamp::now();
        let message = MessageRecord {
            id: 1,
            name: "reminders".into(),
            shorten_urls: false,
            track_in_shortener: false,
            campaign_id: None,
            service: None,
            created_at: now,
            updated_at: now,
            channels: Vec::new(),
            sending_ids: vec![7],
        };
        let sending = SendingRecord {
            id: 7,
            message_id: 1,
            audience_id: None,
            status: SendingStatus::Transmitted,
            scheduled_at: None,
            scheduled_with: None,
            created_at: now,
            updated_at: now,
            recipients_count: 2,
            progress: Progress {
                sending_id: 7,
                status: Some(SendingStatus::Transmitted),
                recipients: 2,
                resolved: 2,
                sent: 2,
                ..Progress::default()
            },
        };
        store
            .write(vec![
                Op::Put(Table::Messages, id_key(1), encode(&message).unwrap()),
                Op::Put(Table::Sendings, id_key(7), encode(&sending).unwrap()),
                Op::Put(
                    Table::Dispatches,
                    pair_key(7, 0),
                    encode_dispatch(&sent(0, "m-a")),
                ),
                Op::Put(
                    Table::Dispatches,
                    pair_key(7, 1),
                    encode_dispatch(&sent(1, "m-b")),
                ),
                Op::Put(Table::MessageIds, b"m-a".to_vec(), pair_key(7, 0)),
                Op::Put(Table::MessageIds, b"m-b".to_vec(), pair_key(7, 1)),
                // Another message's sending.
                Op::Put(Table::MessageIds, b"m-other".to_vec(), pair_key(8, 0)),
            ])
            .await
            .unwrap();
        let config = CampaignsConfig {
            track_deliveries: false,
            poll_interval: Duration::from_secs(3600),
            ..CampaignsConfig::default()
        };
        let campaigns = Campaigns::open(app.clone(), store.clone(), config)
            .await
            .unwrap();
        campaigns.delete_message(1).await.unwrap();
        let left: Vec<Vec<u8>> = store
            .scan(Table::MessageIds, Vec::new(), vec![0xff; 8], 10)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(left, vec![b"m-other".to_vec()]);
        campaigns.shutdown().await;
        app.disconnect().await;
        emulator.shutdown().await;
    }

    /// A process logged two delivery reports whose dispatches' outcomes were not committed yet,
    /// then died after committing one of them: the next process applies that report at open
    /// and lets the other go.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn logged_reports_are_applied_or_let_go_after_a_restart() {
        let (emulator, app) = emulator_and_app().await;
        let store = Store::memory();
        let now = Timestamp::now();
        let record = SendingRecord {
            id: 7,
            message_id: 1,
            audience_id: None,
            status: SendingStatus::Transmitted,
            scheduled_at: None,
            scheduled_with: None,
            created_at: now,
            updated_at: now,
            recipients_count: 1,
            progress: Progress {
                sending_id: 7,
                status: Some(SendingStatus::Transmitted),
                recipients: 1,
                resolved: 1,
                sent: 1,
                ..Progress::default()
            },
        };
        store
            .write(vec![
                Op::Put(Table::Sendings, id_key(7), encode(&record).unwrap()),
                Op::Put(
                    Table::Dispatches,
                    pair_key(7, 0),
                    encode_dispatch(&sent(0, "m-recorded")),
                ),
                Op::Put(Table::MessageIds, b"m-recorded".to_vec(), pair_key(7, 0)),
                Op::Put(
                    Table::Reports,
                    b"m-recorded".to_vec(),
                    i32::from(MessageDeliveryStatus::Delivered)
                        .to_le_bytes()
                        .to_vec(),
                ),
                Op::Put(
                    Table::Reports,
                    b"m-lost".to_vec(),
                    i32::from(MessageDeliveryStatus::Delivered)
                        .to_le_bytes()
                        .to_vec(),
                ),
            ])
            .await
            .unwrap();
        let config = CampaignsConfig {
            track_deliveries: false,
            poll_interval: Duration::from_secs(3600),
            ..CampaignsConfig::default()
        };
        let campaigns = Campaigns::open(app.clone(), store.clone(), config)
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        loop {
            let p = campaigns.progress(7).await.unwrap();
            let left = store
                .scan(Table::Reports, Vec::new(), vec![0xff; 8], 10)
                .await
                .unwrap();
            if p.delivered == 1 && left.is_empty() {
                break;
            }
            assert!(started.elapsed() < WAIT, "{p:?}, reports left: {left:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let d = campaigns.dispatches(7, Page::default()).await.unwrap();
        assert_eq!(
            d.items[0].delivery_status,
            Some(MessageDeliveryStatus::Delivered)
        );
        campaigns.shutdown().await;
        app.disconnect().await;
        emulator.shutdown().await;
    }

    #[test]
    fn the_ledger_tells_settled_sends() {
        let ledger = Arc::new(SendLedger::default());
        assert!(ledger.settled_before(ledger.issued()));
        let first = ledger.issue();
        let mark = ledger.issued();
        assert!(!ledger.settled_before(mark));
        let second = ledger.issue();
        drop(first);
        assert!(ledger.settled_before(mark));
        assert!(!ledger.settled_before(ledger.issued()));
        drop(second);
        assert!(ledger.settled_before(ledger.issued()));
    }
}
