//! A scripted [`Connector`]/[`Link`] for unit tests of the supervisor and the client.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::watch;

use crate::error::ConnectError;
use crate::link::{Connector, Link, LinkDown, LinkRequestError, ResumeFailure};

#[derive(Default)]
pub(crate) struct FakeConnector {
    /// Outcomes of the next `connect` calls; an empty script connects.
    pub(crate) script: Mutex<VecDeque<ConnectError>>,
    pub(crate) connects: AtomicUsize,
    pub(crate) links: Mutex<Vec<Arc<FakeLink>>>,
    /// Requests on new links are held until released or the link closes.
    pub(crate) hold_requests: std::sync::atomic::AtomicBool,
    /// Answers of the next requests (on any link), before they execute; empty: they execute.
    pub(crate) request_errors: Arc<Mutex<VecDeque<LinkRequestError>>>,
    /// Requests received by every link, answered or not.
    pub(crate) attempts: Arc<AtomicUsize>,
}

impl FakeConnector {
    pub(crate) fn fail_next(&self, errors: impl IntoIterator<Item = ConnectError>) {
        self.script.lock().unwrap().extend(errors);
    }

    pub(crate) fn fail_requests(&self, errors: impl IntoIterator<Item = LinkRequestError>) {
        self.request_errors.lock().unwrap().extend(errors);
    }

    pub(crate) fn link(&self, index: usize) -> Arc<FakeLink> {
        self.links.lock().unwrap()[index].clone()
    }
}

impl Connector for Arc<FakeConnector> {
    fn connect(&self) -> BoxFuture<'static, Result<Arc<dyn Link>, ConnectError>> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        let outcome = self.script.lock().unwrap().pop_front();
        let this = self.clone();
        Box::pin(async move {
            if let Some(error) = outcome {
                return Err(error);
            }
            let mut link = FakeLink::new(this.hold_requests.load(Ordering::SeqCst));
            link.request_errors = this.request_errors.clone();
            link.attempts = this.attempts.clone();
            let link = Arc::new(link);
            this.links.lock().unwrap().push(link.clone());
            Ok(link as Arc<dyn Link>)
        })
    }
}

pub(crate) struct FakeLink {
    hold: bool,
    /// `Some` once the link went down.
    down: watch::Sender<Option<LinkDown>>,
    /// Set to release held requests.
    release: watch::Sender<bool>,
    closed: watch::Sender<bool>,
    pub(crate) resume_script: Mutex<VecDeque<Result<(), ResumeFailure>>>,
    pub(crate) executed: Arc<AtomicUsize>,
    request_errors: Arc<Mutex<VecDeque<LinkRequestError>>>,
    attempts: Arc<AtomicUsize>,
}

impl FakeLink {
    fn new(hold: bool) -> Self {
        FakeLink {
            hold,
            down: watch::Sender::new(None),
            release: watch::Sender::new(false),
            closed: watch::Sender::new(false),
            resume_script: Mutex::new(VecDeque::new()),
            executed: Arc::new(AtomicUsize::new(0)),
            request_errors: Arc::default(),
            attempts: Arc::default(),
        }
    }

    pub(crate) fn go_down(&self, down: LinkDown) {
        if matches!(down, LinkDown::Closed { .. }) {
            self.closed.send_replace(true);
        }
        self.down.send_replace(Some(down));
    }

    pub(crate) fn release(&self) {
        self.release.send_replace(true);
    }

    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }
}

impl Link for FakeLink {
    fn request(
        &self,
        data: Bytes,
        deadline: tokio::time::Instant,
    ) -> BoxFuture<'static, Result<Bytes, LinkRequestError>> {
        let hold = self.hold;
        let mut release = self.release.subscribe();
        let mut closed = self.closed.subscribe();
        let executed = self.executed.clone();
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let scripted = self.request_errors.lock().unwrap().pop_front();
        Box::pin(async move {
            if let Some(error) = scripted {
                return Err(error);
            }
            if *closed.borrow() {
                return Err(LinkRequestError::Lost);
            }
            if hold {
                tokio::select! {
                    _ = release.wait_for(|r| *r) => {}
                    _ = closed.wait_for(|c| *c) => return Err(LinkRequestError::Lost),
                    () = tokio::time::sleep_until(deadline) => return Err(LinkRequestError::TimedOut),
                }
            }
            executed.fetch_add(1, Ordering::SeqCst);
            Ok(data)
        })
    }

    fn down(&self) -> BoxFuture<'static, LinkDown> {
        let mut down = self.down.subscribe();
        Box::pin(async move {
            match down.wait_for(|d| d.is_some()).await {
                Ok(d) => d.clone().unwrap_or(LinkDown::Closed {
                    reason: "gone".into(),
                }),
                Err(_) => LinkDown::Closed {
                    reason: "gone".into(),
                },
            }
        })
    }

    fn resume(&self) -> BoxFuture<'static, Result<(), ResumeFailure>> {
        let outcome = self
            .resume_script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Ok(()));
        if outcome.is_ok() {
            self.down.send_replace(None);
        }
        Box::pin(async move { outcome })
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        self.closed.send_replace(true);
        self.down.send_replace(Some(LinkDown::Closed {
            reason: "closed".into(),
        }));
        Box::pin(async {})
    }
}
