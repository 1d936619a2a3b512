//! Transactions: the per-command working context over the locked state, and how a command
//! runs in it (lock, apply, collect effects, persist, tell the console).

use crate::clock::Millis;
use crate::config::EmulatorConfig;
use crate::record::CustomerRecord;
use crate::state::{OrgIdx, State};

use super::{Durable, Effect, Engine, Identity, Outcome};

/// Per-command working context over the locked state.
pub(crate) struct Tx<'a> {
    pub st: &'a mut State,
    pub cfg: &'a EmulatorConfig,
    pub org: OrgIdx,
    pub app: &'a str,
    pub now: Millis,
    pub effects: Vec<Effect>,
}

impl Engine {
    /// Runs `f` in a transaction context and packages the outcome, persisting dirty records.
    pub(super) fn with_tx<R>(&self, who: &Identity, f: impl FnOnce(&mut Tx<'_>) -> R) -> Outcome<R>
    where
        R: Default,
    {
        let now = self.now();
        let mut st = self.lock();
        let Some(org) = st.org_index(&who.org_id) else {
            // authenticate() guarantees a configured org; an unknown one gets the default reply.
            return Outcome {
                reply: R::default(),
                effects: Vec::new(),
                durable: Durable::default(),
            };
        };
        let earliest_before = st.earliest_due();
        let observed = self.feed.active();
        st.observe = observed;
        let mut tx = Tx {
            st: &mut st,
            cfg: &self.config,
            org,
            app: &who.app_id,
            now,
            effects: Vec::new(),
        };
        let reply = f(&mut tx);
        let mut effects = std::mem::take(&mut tx.effects);
        let changes = observed.then(|| observed_changes(&st, org, "command", &effects));
        self.track_pending(&mut st, &mut effects);
        let durable = self.flush(&mut st);
        let earliest_after = st.earliest_due();
        drop(st);
        if let Some(changes) = changes {
            self.feed.applied(changes);
        }
        if earliest_after.is_some() && earliest_after != earliest_before {
            self.timers_changed.notify_one();
        }
        Outcome {
            reply,
            effects,
            durable,
        }
    }
}

impl Tx<'_> {
    pub(crate) fn org(&self) -> &crate::state::OrgState {
        &self.st.orgs[self.org]
    }

    pub(crate) fn org_mut(&mut self) -> &mut crate::state::OrgState {
        &mut self.st.orgs[self.org]
    }

    pub(crate) fn org_id(&self) -> String {
        self.org().config.id.clone()
    }

    /// A customer record for writing; marks it for persistence.
    pub(crate) fn customer_mut(&mut self, id: &str) -> Option<&mut CustomerRecord> {
        let org = self.org;
        // In memory nothing is marked, so the common path looks the id up once.
        if (self.st.persist || self.st.observe) && self.st.orgs[org].customers.contains_key(id) {
            self.st.mark_customer(org, id);
        }
        self.st.orgs[org].customers.get_mut(id)
    }

    /// Counts history entries dropped beyond the history limit.
    pub(crate) fn trimmed(&mut self, count: usize) {
        self.st.history_trimmed = self.st.history_trimmed.saturating_add(count as u64);
    }

    pub(crate) fn mark_purse(&mut self, id: &str) {
        self.st.dirty.purses.push((self.org, id.to_owned()));
    }

    pub(crate) fn mark_transaction(&mut self, id: &str) {
        self.st.dirty.transactions.push((self.org, id.to_owned()));
    }
}

/// What the current command (or timer batch) changed in `org`, for the console's feed: read
/// from the records it marked changed and the notifications it caused.
pub(super) fn observed_changes(
    st: &State,
    org: OrgIdx,
    source: &'static str,
    effects: &[Effect],
) -> crate::console::feed::Changes {
    let org_id = st.orgs.get(org).map(|o| o.config.id.clone());
    let mut changes = crate::console::feed::Changes {
        org: org_id.clone().unwrap_or_default(),
        source,
        ..Default::default()
    };
    for (o, id) in &st.dirty.customers {
        if *o == org {
            changes.customer(id);
        }
    }
    changes.payments = st
        .dirty
        .purses
        .iter()
        .chain(&st.dirty.transactions)
        .any(|(o, _)| *o == org);
    changes.effects(effects.iter().filter(|e| match e {
        Effect::App(n) => Some(&n.org_id) == org_id.as_ref(),
        Effect::Simulator(n) => Some(&n.org_id) == org_id.as_ref(),
    }));
    changes
}
