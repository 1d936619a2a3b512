//! Customer identity: lookup and creation, state, adoption, deletion, tags, secondary ids,
//! metadata and per-app data with its lease.

use elarian_proto::{
    ActivityState, AdoptCustomerStateCommand, ChannelMessage, CreateCustomerCommand, CustomerIndex,
    CustomerNumber, CustomerNumberProvider, CustomerStateReplyData, DeleteCustomerAppDataCommand,
    DeleteCustomerMetadataCommand, DeleteCustomerSecondaryIdCommand, DeleteCustomerTagCommand,
    GetCustomerStateCommand, GetCustomerStateReply, IdentityState, LeaseCustomerAppDataCommand,
    LeaseCustomerAppDataReply, MessagingState, PaymentState, PaymentStatus,
    UpdateCustomerAppDataCommand, UpdateCustomerAppDataReply, UpdateCustomerMetadataCommand,
    UpdateCustomerSecondaryIdCommand, UpdateCustomerTagCommand,
    app_to_server_command_reply::Entry as ReplyEntry,
};

use super::{Selector, Tx, update_reply};
use crate::record::{CustomerExtra, CustomerRecord, push_bounded, push_exact, trim_front};
use crate::state::{NumberKey, expired, index_for_reply, mapping_key};

/// How long `LeaseCustomerAppData` locks the app data from other leases.
pub(crate) const LEASE_MILLIS: i64 = 90_000;

/// Upper bound on entries a single update may carry (tags, ids, metadata keys).
const MAX_UPDATES: usize = 1_000;

impl Tx<'_> {
    /// Finds a customer; by number, creates it when `create` is set.
    pub(crate) fn resolve(&mut self, sel: Selector, create: bool) -> Result<String, String> {
        match sel {
            Selector::Id(id) => {
                if self.org().customers.contains_key(&id) {
                    Ok(id)
                } else {
                    Err(format!("unknown customer id {id}"))
                }
            }
            Selector::Number(n) => {
                validate_number(&n)?;
                if let Some(id) = self.org().id_by_number(&NumberKey::of(&n)) {
                    return Ok(id);
                }
                if create {
                    Ok(self.create_customer(n))
                } else {
                    Err(format!("unknown customer number {}", n.number))
                }
            }
            Selector::Secondary(m) => {
                let key = mapping_key(&m);
                let now = self.now;
                let found = self.org().id_by_secondary(&key, now);
                found.ok_or_else(|| format!("unknown secondary id {}={}", key.0, key.1))
            }
        }
    }

    /// Resolves an optional selector (a command without one is invalid).
    pub(crate) fn resolve_opt(
        &mut self,
        sel: Option<impl Into<Selector>>,
        create: bool,
    ) -> Result<String, String> {
        match sel {
            Some(s) => self.resolve(s.into(), create),
            None => Err("a customer (id, number or secondary id) is required".into()),
        }
    }

    /// Creates a customer known by `number` and returns its id.
    pub(crate) fn create_customer(&mut self, mut number: CustomerNumber) -> String {
        let id = crate::ids::customer_id();
        number.provider = crate::state::normalized_provider(number.provider);
        let rec = CustomerRecord {
            id: id.clone(),
            numbers: vec![number],
            created_at: self.now,
            ..Default::default()
        };
        self.org_mut().add_customer(rec);
        self.st.mark_customer(self.org, &id);
        id
    }

    pub(super) fn create_customer_cmd(&mut self, c: CreateCustomerCommand) -> ReplyEntry {
        let result = match c.customer_number {
            Some(n) => self.resolve(Selector::Number(n), true),
            None => Err("customer_number is required".into()),
        };
        update_reply(result, "customer created")
    }

    /// Applies `f` to a customer's record, keeping the indexes in step.
    pub(crate) fn with_indexed<R>(
        &mut self,
        id: &str,
        f: impl FnOnce(&mut CustomerRecord, i64) -> R,
    ) -> Option<R> {
        let now = self.now;
        let org = self.org;
        let o = &mut self.st.orgs[org];
        let slot = o.customers.slot_of(id)?;
        let mut rec = o.customers.take(slot)?;
        o.idx.unindex(slot, &rec);
        let r = f(&mut rec, now);
        o.idx.index(slot, &rec);
        o.customers.put_back(slot, rec);
        self.st.mark_customer(org, id);
        Some(r)
    }

    pub(super) fn get_customer_state(&mut self, c: GetCustomerStateCommand) -> ReplyEntry {
        let id = match self.resolve_opt(c.customer, true) {
            Ok(id) => id,
            Err(description) => {
                return ReplyEntry::GetCustomerState(GetCustomerStateReply {
                    status: false,
                    description,
                    data: None,
                });
            }
        };
        // Reads of a customer's state usually come again: decoded once, not at each.
        self.org_mut().customers.warm(&id);
        let data = self.customer_state(&id);
        ReplyEntry::GetCustomerState(GetCustomerStateReply {
            status: data.is_some(),
            description: if data.is_some() {
                "customer state".into()
            } else {
                format!("unknown customer id {id}")
            },
            data,
        })
    }

    /// Builds the customer state as `GetCustomerState` returns it.
    pub(crate) fn customer_state(&self, id: &str) -> Option<CustomerStateReplyData> {
        let now = self.now;
        let org = self.org();
        let rec = org.customers.get(id)?;
        // Borrowed, not cloned whole: each part below is copied once, into the reply.
        let empty = CustomerExtra::default();
        let extra = rec.extra.as_deref().unwrap_or(&empty);
        let identity_state = IdentityState {
            tags: rec
                .tags
                .iter()
                .filter(|t| !expired(t, now))
                .cloned()
                .map(index_for_reply)
                .collect(),
            metadata: extra.metadata_map(),
            secondary_ids: extra
                .secondary_ids
                .iter()
                .filter(|t| !expired(t, now))
                .cloned()
                .map(index_for_reply)
                .collect(),
        };
        let messaging_state = MessagingState {
            channels: extra.channels(),
            messages: extra.messages(),
            sessions: extra.sessions(),
        };
        let mut transaction_log = Vec::new();
        let mut pending_transactions = Vec::new();
        for txn_id in &extra.transactions {
            if let Some(t) = org
                .transactions
                .get(txn_id)
                .and_then(|t| t.transaction.clone())
            {
                if is_pending(t.status) {
                    pending_transactions.push(t);
                } else {
                    transaction_log.push(t);
                }
            }
        }
        let payment_state = PaymentState {
            customer_numbers: rec
                .numbers
                .iter()
                .filter(|n| n.provider == CustomerNumberProvider::Cellular as i32)
                .cloned()
                .collect(),
            channel_numbers: extra.payment_channels.clone(),
            transaction_log,
            pending_transactions,
            wallets: extra.wallets.clone(),
        };
        let activity_state = ActivityState {
            sessions: extra.activity(),
            customer_numbers: rec.numbers.clone(),
        };
        Some(CustomerStateReplyData {
            customer_id: rec.id.clone(),
            identity_state: Some(identity_state),
            messaging_state: Some(messaging_state),
            payment_state: Some(payment_state),
            activity_state: Some(activity_state),
        })
    }

    pub(super) fn adopt_customer_state(&mut self, c: AdoptCustomerStateCommand) -> ReplyEntry {
        let result = (|| {
            let target = self.resolve(Selector::Id(c.customer_id.clone()), false)?;
            let other = self.resolve_opt(c.other_customer, false)?;
            if other == target {
                return Err("a customer cannot adopt its own state".to_string());
            }
            self.merge_into(&target, &other);
            self.sync_tag_reminders(&target);
            Ok(target)
        })();
        update_reply(result, "customer state adopted")
    }

    /// Moves everything of `other` into `target` and retires `other`.
    fn merge_into(&mut self, target: &str, other: &str) {
        let org = self.org;
        let Some(o) = self.st.orgs[org].remove_customer(other) else {
            return;
        };
        self.st.mark_customer(org, other);
        let mut moved_reminders = Vec::new();
        let mut moved_transactions = Vec::new();
        let limit = self.cfg.history_limit;
        let mut trimmed = 0;
        self.with_indexed(target, |t, _| {
            for n in o.numbers {
                if !t.numbers.contains(&n) {
                    push_exact(&mut t.numbers, n);
                }
            }
            for tag in o.tags {
                let key = tag.mapping.as_ref().map(|m| m.key.clone());
                if !t
                    .tags
                    .iter()
                    .any(|x| x.mapping.as_ref().map(|m| m.key.clone()) == key)
                {
                    push_exact(&mut t.tags, tag);
                }
            }
            for app in o.apps {
                let mine = t.app_mut(&app.app_id);
                if mine.data.is_none() {
                    mine.data = app.data;
                }
                for r in app.reminders {
                    let key = r.reminder.as_ref().map(|x| x.key.clone());
                    if !mine
                        .reminders
                        .iter()
                        .any(|x| x.reminder.as_ref().map(|x| x.key.clone()) == key)
                    {
                        moved_reminders.push(r.due);
                        push_exact(&mut mine.reminders, r);
                    }
                }
            }
            if let Some(oe) = o.extra {
                let oe = *oe;
                let te = t.extra_mut();
                for s in oe.secondary_ids {
                    if !te.secondary_ids.contains(&s) {
                        te.secondary_ids.push(s);
                    }
                }
                for e in oe.metadata {
                    te.set_metadata(e.key, e.value.unwrap_or_default(), true);
                }
                te.packed_channels.extend(oe.packed_channels);
                te.packed_messages.extend(oe.packed_messages);
                trimmed += trim_front(&mut te.packed_messages, limit);
                te.packed_sessions.extend(oe.packed_sessions);
                trimmed += trim_front(&mut te.packed_sessions, limit);
                for (wallet, balance) in oe.wallets {
                    match te.wallets.get_mut(&wallet) {
                        Some(mine) => super::payments::merge_balance(mine, &balance),
                        None => {
                            te.wallets.insert(wallet, balance);
                        }
                    }
                }
                moved_transactions.clone_from(&oe.transactions);
                te.transactions.extend(oe.transactions);
                trimmed += trim_front(&mut te.transactions, limit);
                te.packed_activity.extend(oe.packed_activity);
                trimmed += trim_front(&mut te.packed_activity, limit);
                for p in oe.payment_channels {
                    if !te.payment_channels.contains(&p) {
                        push_exact(&mut te.payment_channels, p);
                    }
                }
            }
        });
        self.trimmed(trimmed);
        // Adopted reminders need fresh timers pointing at the surviving customer.
        self.reschedule_all(target);
        // Payments still pending settle on the surviving customer and its wallets.
        self.adopt_transactions(other, target, &moved_transactions);
    }

    pub(super) fn delete_customer(&mut self, sel: Option<Selector>) -> ReplyEntry {
        let result = (|| {
            let sel = sel.ok_or_else(|| "a customer is required".to_string())?;
            let id = self.resolve(sel, false)?;
            let org = self.org;
            if self.st.orgs[org].remove_customer(&id).is_some() {
                self.st.mark_customer(org, &id);
            }
            Ok(id)
        })();
        update_reply(result, "customer deleted")
    }

    pub(super) fn update_customer_tag(&mut self, c: UpdateCustomerTagCommand) -> ReplyEntry {
        let result = (|| {
            check_count(c.updates.len())?;
            for u in &c.updates {
                validate_index(u)?;
            }
            let id = self.resolve_opt(c.customer, true)?;
            self.with_indexed(&id, |rec, now| {
                rec.tags.retain(|t| !expired(t, now));
                for u in c.updates {
                    let key = u.mapping.as_ref().map(|m| m.key.clone());
                    rec.tags
                        .retain(|t| t.mapping.as_ref().map(|m| m.key.clone()) != key);
                    push_exact(&mut rec.tags, u);
                }
            });
            self.sync_tag_reminders(&id);
            Ok(id)
        })();
        update_reply(result, "tags updated")
    }

    pub(super) fn delete_customer_tag(&mut self, c: DeleteCustomerTagCommand) -> ReplyEntry {
        let result = (|| {
            check_count(c.deletions.len())?;
            let id = self.resolve_opt(c.customer, false)?;
            self.with_indexed(&id, |rec, _| {
                rec.tags.retain(|t| {
                    !t.mapping
                        .as_ref()
                        .is_some_and(|m| c.deletions.contains(&m.key))
                });
            });
            self.sync_tag_reminders(&id);
            Ok(id)
        })();
        update_reply(result, "tags deleted")
    }

    pub(super) fn update_customer_secondary_id(
        &mut self,
        c: UpdateCustomerSecondaryIdCommand,
    ) -> ReplyEntry {
        let result = (|| {
            check_count(c.updates.len())?;
            for u in &c.updates {
                validate_index(u)?;
            }
            let id = self.resolve_opt(c.customer, true)?;
            for u in &c.updates {
                if let Some(m) = &u.mapping
                    && let Some(owner) = self.org().id_by_secondary(&mapping_key(m), self.now)
                    && owner != id
                {
                    return Err(format!(
                        "secondary id {}={} belongs to another customer",
                        m.key,
                        m.value.clone().unwrap_or_default()
                    ));
                }
            }
            self.with_indexed(&id, |rec, now| {
                let e = rec.extra_mut();
                e.secondary_ids.retain(|t| !expired(t, now));
                for u in c.updates {
                    // A customer holds one value per secondary id key.
                    let key = u.mapping.as_ref().map(|m| m.key.clone());
                    e.secondary_ids
                        .retain(|t| t.mapping.as_ref().map(|m| m.key.clone()) != key);
                    e.secondary_ids.push(u);
                }
            });
            Ok(id)
        })();
        update_reply(result, "secondary ids updated")
    }

    pub(super) fn delete_customer_secondary_id(
        &mut self,
        c: DeleteCustomerSecondaryIdCommand,
    ) -> ReplyEntry {
        let result = (|| {
            check_count(c.deletions.len())?;
            let id = self.resolve_opt(c.customer, false)?;
            self.with_indexed(&id, |rec, _| {
                if let Some(e) = rec.extra.as_mut() {
                    e.secondary_ids.retain(|t| {
                        !t.mapping.as_ref().is_some_and(|m| {
                            c.deletions.iter().any(|d| {
                                d.key == m.key && (d.value.is_none() || d.value == m.value)
                            })
                        })
                    });
                }
            });
            Ok(id)
        })();
        update_reply(result, "secondary ids deleted")
    }

    pub(super) fn update_customer_metadata(
        &mut self,
        c: UpdateCustomerMetadataCommand,
    ) -> ReplyEntry {
        let result = (|| {
            check_count(c.updates.len())?;
            let id = self.resolve_opt(c.customer, true)?;
            if let Some(rec) = self.customer_mut(&id) {
                let e = rec.extra_mut();
                for (k, v) in c.updates {
                    e.set_metadata(k, v, false);
                }
            }
            Ok(id)
        })();
        update_reply(result, "metadata updated")
    }

    pub(super) fn delete_customer_metadata(
        &mut self,
        c: DeleteCustomerMetadataCommand,
    ) -> ReplyEntry {
        let result = (|| {
            check_count(c.deletions.len())?;
            let id = self.resolve_opt(c.customer, false)?;
            if let Some(rec) = self.customer_mut(&id)
                && let Some(e) = rec.extra.as_mut()
            {
                for k in &c.deletions {
                    e.remove_metadata(k);
                }
            }
            Ok(id)
        })();
        update_reply(result, "metadata deleted")
    }

    pub(super) fn lease_customer_app_data(&mut self, c: LeaseCustomerAppDataCommand) -> ReplyEntry {
        let now = self.now;
        let app = self.app.to_owned();
        let result = (|| {
            let id = self.resolve_opt(c.customer, true)?;
            let rec = self
                .customer_mut(&id)
                .ok_or_else(|| format!("unknown customer id {id}"))?;
            let a = rec.app_mut(&app);
            if a.lease_until > now {
                return Err(format!(
                    "app data is leased for another {} ms",
                    a.lease_until - now
                ));
            }
            a.lease_until = now + LEASE_MILLIS;
            Ok((id, a.data.clone()))
        })();
        ReplyEntry::LeaseCustomerAppData(match result {
            Ok((id, value)) => LeaseCustomerAppDataReply {
                status: true,
                description: "app data leased".into(),
                customer_id: Some(id),
                value,
            },
            Err(description) => LeaseCustomerAppDataReply {
                status: false,
                description,
                customer_id: None,
                value: None,
            },
        })
    }

    pub(super) fn update_customer_app_data(
        &mut self,
        c: UpdateCustomerAppDataCommand,
    ) -> ReplyEntry {
        let app = self.app.to_owned();
        let result = (|| {
            let id = self.resolve_opt(c.customer, true)?;
            if let Some(rec) = self.customer_mut(&id) {
                let a = rec.app_mut(&app);
                a.data = c.update;
                a.lease_until = 0;
            }
            Ok(id)
        })();
        app_data_reply(result, "app data updated")
    }

    pub(super) fn delete_customer_app_data(
        &mut self,
        c: DeleteCustomerAppDataCommand,
    ) -> ReplyEntry {
        let app = self.app.to_owned();
        let result = (|| {
            let id = self.resolve_opt(c.customer, false)?;
            if let Some(rec) = self.customer_mut(&id)
                && let Some(a) = rec.apps.iter_mut().find(|a| a.app_id == app)
            {
                a.data = None;
                a.lease_until = 0;
            }
            Ok(id)
        })();
        app_data_reply(result, "app data deleted")
    }

    /// Records a message in a customer's history (bounded).
    pub(crate) fn push_message(&mut self, customer_id: &str, message: ChannelMessage) {
        let limit = self.cfg.history_limit;
        let mut trimmed = 0;
        if let Some(rec) = self.customer_mut(customer_id) {
            trimmed = push_bounded(&mut rec.extra_mut().packed_messages, &message, limit);
        }
        self.trimmed(trimmed);
    }
}

/// The reply to app data and per-customer reminder commands (see docs/protocol.md).
pub(super) fn app_data_reply(result: Result<String, String>, ok: &str) -> ReplyEntry {
    ReplyEntry::UpdateCustomerAppData(match result {
        Ok(id) => UpdateCustomerAppDataReply {
            status: true,
            description: ok.into(),
            customer_id: Some(id),
        },
        Err(description) => UpdateCustomerAppDataReply {
            status: false,
            description,
            customer_id: None,
        },
    })
}

fn check_count(n: usize) -> Result<(), String> {
    if n > MAX_UPDATES {
        Err(format!("too many entries ({n} > {MAX_UPDATES})"))
    } else {
        Ok(())
    }
}

fn validate_index(i: &CustomerIndex) -> Result<(), String> {
    match &i.mapping {
        Some(m) if !m.key.is_empty() => Ok(()),
        _ => Err("every entry needs a non-empty key".into()),
    }
}

/// Checks a customer number is usable as an identity.
pub(crate) fn validate_number(n: &CustomerNumber) -> Result<(), String> {
    if n.number.trim().is_empty() {
        return Err("customer number is empty".into());
    }
    if CustomerNumberProvider::try_from(n.provider).is_err() {
        return Err(format!("unknown customer number provider {}", n.provider));
    }
    Ok(())
}

pub(crate) fn is_pending(status: i32) -> bool {
    [
        PaymentStatus::Queued,
        PaymentStatus::PendingConfirmation,
        PaymentStatus::PendingValidation,
        PaymentStatus::Validated,
    ]
    .iter()
    .any(|s| *s as i32 == status)
}
