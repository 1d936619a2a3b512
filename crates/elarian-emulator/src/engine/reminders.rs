//! Reminders: per customer and by tag, fired as `ReminderNotification`s at `remind_at`, repeated
//! at `interval`, cancelable.
//!
//! A reminder by tag applies to the tag, as in Elarian: it is kept per org
//! ([`TagReminderRecord`]) and every customer holding the tag gets it, those tagged when the
//! command runs and those tagged later (from the next due time on: a reminder without an interval
//! whose time has passed no longer applies). A customer that loses the tag (tag deleted,
//! replaced by another value, or expired) loses the reminders it brought. Each customer's copy is an ordinary
//! reminder record carrying the tag and work id, so firing works the same for both kinds.
//!
//! Scheduling is a binary heap of `(due, seq)` timers in the state. A reminder record carries
//! the `seq` of its live timer; cancelling or replacing a reminder just drops the record, and the
//! stale timer is skipped when it surfaces. One heap entry is a few dozen bytes, so a million
//! reminders stay well within memory, and firing is a heap pop plus a record lookup.

use elarian_proto::{
    AddCustomerReminderCommand, AddCustomerReminderTagCommand, CancelCustomerReminderCommand,
    CancelCustomerReminderTagCommand, CustomerIndex, CustomerReminder, IndexMapping,
    ReminderNotification, TagCommandReply, app_to_server_command_reply::Entry as ReplyEntry,
    server_to_app_customer_notification::Entry as CustomerEntry,
};

use super::Tx;
use super::customers::app_data_reply;
use crate::clock::{duration_millis, from_timestamp, to_timestamp};
use crate::record::{ReminderRecord, TagOrigin, TagReminderRecord};
use crate::state::{MappingKey, OrgIdx, State, TimerKind, expired, index_for_reply, mapping_key};

/// Shortest repeat interval; a smaller one would let one reminder flood an app.
const MIN_INTERVAL_MILLIS: i64 = 1_000;
/// Reminders one customer may hold per app.
const MAX_REMINDERS: usize = 1_000;
/// Reminders by tag one org may hold (all apps together).
const MAX_TAG_REMINDERS: usize = 10_000;

fn validate(reminder: &Option<CustomerReminder>) -> Result<(CustomerReminder, i64), String> {
    let r = reminder.clone().ok_or("reminder is required")?;
    if r.key.is_empty() {
        return Err("reminder key is required".into());
    }
    let due = r
        .remind_at
        .as_ref()
        .map(from_timestamp)
        .ok_or("reminder remind_at is required")?;
    if let Some(i) = &r.interval
        && duration_millis(i) > 0
        && duration_millis(i) < MIN_INTERVAL_MILLIS
    {
        return Err(format!(
            "reminder interval must be at least {} s",
            MIN_INTERVAL_MILLIS / 1000
        ));
    }
    Ok((r, due))
}

impl Tx<'_> {
    /// Adds (or replaces, by key) a reminder of the current app on a customer.
    fn put_reminder(
        &mut self,
        customer_id: &str,
        reminder: CustomerReminder,
        due: i64,
        origin: Option<TagOrigin>,
    ) -> Result<(), String> {
        let app = self.app.to_owned();
        self.put_reminder_of(&app, customer_id, reminder, due, origin)
    }

    /// Adds (or replaces, by key) a reminder of `app` on a customer.
    fn put_reminder_of(
        &mut self,
        app: &str,
        customer_id: &str,
        reminder: CustomerReminder,
        due: i64,
        origin: Option<TagOrigin>,
    ) -> Result<(), String> {
        let org = self.org;
        let seq = self.st.schedule(due, org, customer_id, TimerKind::Reminder);
        let rec = self
            .customer_mut(customer_id)
            .ok_or_else(|| format!("unknown customer id {customer_id}"))?;
        let a = rec.app_mut(app);
        a.reminders
            .retain(|r| r.reminder.as_ref().map(|x| &x.key) != Some(&reminder.key));
        if a.reminders.len() >= MAX_REMINDERS {
            return Err(format!("too many reminders (max {MAX_REMINDERS})"));
        }
        crate::record::push_exact(
            &mut a.reminders,
            ReminderRecord {
                reminder: Some(reminder),
                origin: origin.map(Box::new),
                due,
                seq,
            },
        );
        Ok(())
    }

    pub(super) fn add_customer_reminder(&mut self, c: AddCustomerReminderCommand) -> ReplyEntry {
        let result = (|| {
            let (reminder, due) = validate(&c.reminder)?;
            let id = self.resolve_opt(c.customer, true)?;
            self.put_reminder(&id, reminder, due, None)?;
            Ok(id)
        })();
        app_data_reply(result, "reminder added")
    }

    pub(super) fn cancel_customer_reminder(
        &mut self,
        c: CancelCustomerReminderCommand,
    ) -> ReplyEntry {
        let result = (|| {
            let id = self.resolve_opt(c.customer, false)?;
            if !self.remove_reminder(&id, &c.key) {
                return Err(format!("no reminder with key {}", c.key));
            }
            Ok(id)
        })();
        app_data_reply(result, "reminder cancelled")
    }

    fn remove_reminder(&mut self, customer_id: &str, key: &str) -> bool {
        let app = self.app.to_owned();
        let Some(rec) = self.customer_mut(customer_id) else {
            return false;
        };
        let Some(a) = rec.apps.iter_mut().find(|a| a.app_id == app) else {
            return false;
        };
        let before = a.reminders.len();
        a.reminders
            .retain(|r| r.reminder.as_ref().map(|x| x.key.as_str()) != Some(key));
        // Most customers end with no reminder left: free the room the last one took.
        a.reminders.shrink_to_fit();
        before != a.reminders.len()
    }

    pub(super) fn add_customer_reminder_tag(
        &mut self,
        c: AddCustomerReminderTagCommand,
    ) -> ReplyEntry {
        let result = (|| {
            let tag = valid_tag(c.tag)?;
            let (reminder, due) = validate(&c.reminder)?;
            let work_id = crate::ids::work_id();
            let index = CustomerIndex {
                mapping: Some(tag.clone()),
                expires_at: None,
            };
            self.prune_tag_reminders();
            let record = TagReminderRecord {
                app_id: self.app.to_owned(),
                tag: Some(tag.clone()),
                reminder: Some(reminder.clone()),
                due,
                work_id: work_id.clone(),
            };
            let record_id = record.id();
            let org = self.org;
            let reminders = &mut self.st.orgs[org].tag_reminders;
            if !reminders.contains_key(&record_id) && reminders.len() >= MAX_TAG_REMINDERS {
                return Err(format!(
                    "too many reminders by tag (max {MAX_TAG_REMINDERS} per organization)"
                ));
            }
            reminders.insert(record_id.clone(), record);
            self.st.dirty.tag_reminders.push((org, record_id));
            for id in self.org().tagged(&tag, self.now) {
                self.put_reminder(
                    &id,
                    reminder.clone(),
                    due,
                    Some(TagOrigin {
                        tag: Some(index.clone()),
                        work_id: work_id.clone(),
                    }),
                )?;
            }
            Ok(work_id)
        })();
        tag_reply(result, "reminder added to tagged customers")
    }

    pub(super) fn cancel_customer_reminder_tag(
        &mut self,
        c: CancelCustomerReminderTagCommand,
    ) -> ReplyEntry {
        let result = (|| {
            let tag = valid_tag(c.tag)?;
            let record_id = TagReminderRecord {
                app_id: self.app.to_owned(),
                tag: Some(tag.clone()),
                reminder: Some(CustomerReminder {
                    key: c.key.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }
            .id();
            let org = self.org;
            if self.st.orgs[org].tag_reminders.remove(&record_id).is_some() {
                self.st.dirty.tag_reminders.push((org, record_id));
            }
            for id in self.org().tagged(&tag, self.now) {
                self.remove_reminder(&id, &c.key);
            }
            Ok(crate::ids::work_id())
        })();
        tag_reply(result, "reminder cancelled on tagged customers")
    }

    /// Forgets reminders by tag that no longer apply: no interval, and their time has passed.
    fn prune_tag_reminders(&mut self) {
        let now = self.now;
        let org = self.org;
        let mut gone = Vec::new();
        self.st.orgs[org].tag_reminders.retain(|id, r| {
            let repeats = r
                .reminder
                .as_ref()
                .and_then(|x| x.interval.as_ref())
                .is_some_and(|i| duration_millis(i) > 0);
            // Due exactly now counts as passed: it fired (or fires) for the customers tagged.
            let live = repeats || r.due > now;
            if !live {
                gone.push(id.clone());
            }
            live
        });
        for id in gone {
            self.st.dirty.tag_reminders.push((org, id));
        }
    }

    /// Brings a customer's reminders by tag in line with its tags, after its tags changed: it
    /// gets the org's reminders on tags it now holds (unless it has a reminder of that key
    /// already) and loses those brought by tags it no longer holds.
    pub(super) fn sync_tag_reminders(&mut self, customer_id: &str) {
        let now = self.now;
        let org = self.org;
        let Some(rec) = self.st.orgs[org].customers.get(customer_id) else {
            return;
        };
        let held: Vec<MappingKey> = rec
            .tags
            .iter()
            .filter(|t| !expired(t, now))
            .filter_map(|t| t.mapping.as_ref().map(mapping_key))
            .collect();
        let from_lost_tag = |r: &ReminderRecord| {
            r.origin
                .as_ref()
                .and_then(|o| o.tag.as_ref())
                .and_then(|t| t.mapping.as_ref())
                .is_some_and(|m| !held.contains(&mapping_key(m)))
        };
        let loses = rec
            .apps
            .iter()
            .any(|a| a.reminders.iter().any(&from_lost_tag));
        if loses && let Some(rec) = self.customer_mut(customer_id) {
            for a in &mut rec.apps {
                a.reminders.retain(|r| !from_lost_tag(r));
                a.reminders.shrink_to_fit();
            }
        }
        if self.st.orgs[org].tag_reminders.is_empty() {
            return;
        }
        self.prune_tag_reminders();
        let Some(rec) = self.st.orgs[org].customers.get(customer_id) else {
            return;
        };
        let missing: Vec<TagReminderRecord> = self.st.orgs[org]
            .tag_reminders
            .values()
            .filter(|t| {
                t.tag
                    .as_ref()
                    .is_some_and(|m| held.contains(&mapping_key(m)))
            })
            .filter(|t| {
                let key = t.reminder.as_ref().map(|r| r.key.as_str());
                !rec.app(&t.app_id).is_some_and(|a| {
                    a.reminders
                        .iter()
                        .any(|r| r.reminder.as_ref().map(|x| x.key.as_str()) == key)
                })
            })
            .cloned()
            .collect();
        for t in missing {
            let Some(mut reminder) = t.reminder else {
                continue;
            };
            let interval = reminder.interval.as_ref().map(duration_millis).unwrap_or(0);
            let due = if t.due > now || interval <= 0 {
                t.due
            } else {
                // The first period at or after now: a customer tagged late joins the schedule
                // rather than getting every missed period at once.
                let behind = (now - t.due).saturating_add(interval - 1) / interval;
                t.due.saturating_add(behind.saturating_mul(interval))
            };
            if interval <= 0 && due <= now {
                continue;
            }
            reminder.remind_at = Some(to_timestamp(due));
            let origin = TagOrigin {
                tag: t.tag.map(|m| CustomerIndex {
                    mapping: Some(m),
                    expires_at: None,
                }),
                work_id: t.work_id,
            };
            if let Err(e) =
                self.put_reminder_of(&t.app_id, customer_id, reminder, due, Some(origin))
            {
                tracing::warn!(customer = customer_id, error = %e, "reminder by tag not added");
            }
        }
    }

    /// Fires the reminder whose live timer is `seq`, if it still exists. The record is read
    /// and changed where it is: most records fired in a burst are cold, and stay encoded.
    pub(super) fn fire_reminder(&mut self, customer_id: &str, seq: u64) {
        let now = self.now;
        let org = self.org;
        let Some(slot) = self.st.orgs[org].customers.slot_of(customer_id) else {
            return;
        };
        let Some((app_id, r)) = self.st.orgs[org].customers.reminder(slot, seq) else {
            return;
        };
        // A reminder brought by a tag stops with the tag. Deleting or replacing the tag drops
        // it at once (`sync_tag_reminders`); a tag that expires changes nothing until now.
        let lost_tag = r
            .origin
            .as_ref()
            .and_then(|o| o.tag.as_ref())
            .and_then(|t| t.mapping.as_ref())
            .map(mapping_key);
        if let Some(key) = lost_tag {
            let holds = self.st.orgs[org].customers.at(slot).is_some_and(|rec| {
                rec.tags.iter().any(|t| {
                    !expired(t, now) && t.mapping.as_ref().is_some_and(|h| mapping_key(h) == key)
                })
            });
            if !holds {
                self.st.mark_customer(org, customer_id);
                self.st.orgs[org]
                    .customers
                    .replace_reminder(slot, seq, None);
                return;
            }
        }
        let interval = r
            .reminder
            .as_ref()
            .and_then(|x| x.interval.as_ref())
            .map(duration_millis)
            .unwrap_or(0);
        let mut fired = r.reminder.clone().unwrap_or_default();
        fired.remind_at = Some(to_timestamp(r.due));
        self.st.mark_customer(org, customer_id);
        if interval > 0 {
            // Missed periods (the emulator was down) collapse into one notification.
            let mut next = r.due.saturating_add(interval);
            if next <= now {
                let behind = (now - next) / interval + 1;
                next = next.saturating_add(behind.saturating_mul(interval));
            }
            let new_seq = self
                .st
                .schedule(next, org, customer_id, TimerKind::Reminder);
            let mut rr = r.clone();
            rr.due = next;
            rr.seq = new_seq;
            if let Some(x) = rr.reminder.as_mut() {
                x.remind_at = Some(to_timestamp(next));
            }
            self.st.orgs[org]
                .customers
                .replace_reminder(slot, seq, Some(rr));
        } else {
            // A one-off reminder is done.
            self.st.orgs[org]
                .customers
                .replace_reminder(slot, seq, None);
        }
        self.notify_customer(
            &app_id,
            customer_id,
            CustomerEntry::Reminder(ReminderNotification {
                reminder: Some(fired),
                tag: r
                    .origin
                    .as_ref()
                    .and_then(|o| o.tag.clone())
                    .map(index_for_reply),
                work_id: r.origin.map(|o| o.work_id),
            }),
            false,
        );
    }

    /// Gives every reminder of a customer a fresh timer (after adoption).
    pub(super) fn reschedule_all(&mut self, customer_id: &str) {
        let org = self.org;
        if let Some(slot) = self.st.orgs[org].customers.slot_of(customer_id) {
            reschedule_slot(self.st, org, slot);
        }
    }
}

/// Schedules the timers of a stored record (after load or adoption), assigning fresh `seq`s.
pub(crate) fn reschedule_slot(st: &mut State, org: OrgIdx, slot: u32) {
    let Some(mut rec) = st.orgs[org].customers.take(slot) else {
        return;
    };
    for a in &mut rec.apps {
        for r in &mut a.reminders {
            r.seq = st.schedule(r.due, org, &rec.id, TimerKind::Reminder);
        }
    }
    if let Some(e) = &rec.extra {
        for ch in &e.channels() {
            if let Some(elarian_proto::messaging_channel_state::State::InSession(s)) = &ch.state
                && let Some(exp) = &s.expires_at
            {
                st.schedule(from_timestamp(exp), org, &rec.id, TimerKind::SessionExpiry);
            }
        }
    }
    st.orgs[org].customers.put_back(slot, rec);
}

fn valid_tag(tag: Option<IndexMapping>) -> Result<IndexMapping, String> {
    match tag {
        Some(t) if !t.key.is_empty() => Ok(t),
        _ => Err("a tag with a non-empty key is required".into()),
    }
}

pub(super) fn tag_reply(result: Result<String, String>, ok: &str) -> ReplyEntry {
    ReplyEntry::TagCommand(match result {
        Ok(work_id) => TagCommandReply {
            status: true,
            description: ok.into(),
            work_id: Some(work_id),
        },
        Err(description) => TagCommandReply {
            status: false,
            description,
            work_id: None,
        },
    })
}
