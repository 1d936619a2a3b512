//! Reminders, by customer and by tag: when they fire, repeat, are replaced and stop.

use super::*;

#[test]
fn customer_reminder_commands_answer_with_update_customer_app_data() {
    // docs/protocol.md: the published clients read `update_customer_app_data` for these.
    let h = harness();
    let id = h.create("+254700000042");
    let added = add_reminder(&h, &id, reminder("k", T0 + 60_000, 0));
    assert!(added.status, "{}", added.description);
    assert_eq!(added.customer_id.as_deref(), Some(id.as_str()));
    let cancel = || {
        h.app_data(E::CancelCustomerReminder(
            p::CancelCustomerReminderCommand {
                customer: Some(p::cancel_customer_reminder_command::Customer::CustomerId(
                    id.clone(),
                )),
                key: "k".into(),
            },
        ))
    };
    let cancelled = cancel();
    assert!(cancelled.status, "{}", cancelled.description);
    assert_eq!(cancelled.customer_id.as_deref(), Some(id.as_str()));
    let again = cancel();
    assert!(!again.status, "nothing left to cancel");
    assert!(again.description.contains('k'), "{}", again.description);
}

#[test]
fn reminders_fire_at_remind_at_repeat_and_cancel() {
    let h = harness();
    let id = h.create("+254700000007");
    assert!(add_reminder(&h, &id, reminder("once", T0 + 10_000, 0)).status);
    assert!(add_reminder(&h, &id, reminder("daily", T0 + 5_000, 60)).status);
    assert_eq!(h.engine.next_due(), Some(T0 + 5_000));
    assert!(h.fire().is_empty(), "nothing due yet");

    h.clock.advance_millis(5_000);
    let fired = reminders_fired(&h.fire());
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].0, id);
    let r = fired[0].1.reminder.clone().unwrap();
    assert_eq!(r.key, "daily");
    assert_eq!(r.payload.as_deref(), Some("pay up"));
    assert!(fired[0].1.tag.is_none());

    h.clock.advance_millis(5_000);
    let fired = reminders_fired(&h.fire());
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].1.reminder.as_ref().unwrap().key, "once");

    h.clock.advance_millis(55_000);
    let fired = reminders_fired(&h.fire());
    assert_eq!(
        fired.len(),
        1,
        "the repeating reminder fires again one interval later"
    );
    assert_eq!(fired[0].1.reminder.as_ref().unwrap().key, "daily");

    let r = h.app_data(E::CancelCustomerReminder(
        p::CancelCustomerReminderCommand {
            customer: Some(p::cancel_customer_reminder_command::Customer::CustomerId(
                id.clone(),
            )),
            key: "daily".into(),
        },
    ));
    assert!(r.status);
    h.clock.advance_millis(600_000);
    assert!(reminders_fired(&h.fire()).is_empty(), "cancelled");
}

#[test]
fn replacing_a_reminder_by_key_fires_only_the_new_one() {
    let h = harness();
    let id = h.create("+254700000008");
    add_reminder(&h, &id, reminder("k", T0 + 1_000, 0));
    add_reminder(&h, &id, reminder("k", T0 + 3_000, 0));
    h.clock.advance_millis(1_500);
    assert!(reminders_fired(&h.fire()).is_empty());
    h.clock.advance_millis(2_000);
    assert_eq!(reminders_fired(&h.fire()).len(), 1);
}

#[test]
fn invalid_reminders_are_refused() {
    let h = harness();
    let id = h.create("+254700000009");
    let mut r = reminder("", T0, 0);
    assert!(!add_reminder(&h, &id, r.clone()).status);
    r.key = "k".into();
    r.remind_at = None;
    assert!(!add_reminder(&h, &id, r).status);
}

#[test]
fn tag_reminders_reach_every_tagged_customer_with_tag_and_work_id() {
    let h = harness();
    let a = h.create("+254700000010");
    let b = h.create("+254700000011");
    let c = h.create("+254700000012");
    h.tag(&a, "segment", "late", None);
    h.tag(&b, "segment", "late", None);
    h.tag(&c, "segment", "early", None);
    let (reply, _) = h.run(E::AddCustomerReminderTag(
        p::AddCustomerReminderTagCommand {
            tag: Some(mapping("segment", "late")),
            reminder: Some(reminder("nudge", T0 + 1_000, 0)),
        },
    ));
    let R::TagCommand(t) = reply else {
        panic!("wrong reply")
    };
    assert!(t.status);
    let work_id = t.work_id.unwrap();
    h.clock.advance_millis(1_000);
    let mut fired = reminders_fired(&h.fire());
    fired.sort_by(|x, y| x.0.cmp(&y.0));
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(
        fired.iter().map(|f| f.0.clone()).collect::<Vec<_>>(),
        expected
    );
    for (_, n) in &fired {
        assert_eq!(n.work_id.as_deref(), Some(work_id.as_str()));
        assert_eq!(
            n.tag.as_ref().and_then(|t| t.mapping.clone()),
            Some(mapping("segment", "late"))
        );
    }

    h.run(E::AddCustomerReminderTag(
        p::AddCustomerReminderTagCommand {
            tag: Some(mapping("segment", "late")),
            reminder: Some(reminder("again", T0 + 5_000, 0)),
        },
    ));
    let (reply, _) = h.run(E::CancelCustomerReminderTag(
        p::CancelCustomerReminderTagCommand {
            tag: Some(mapping("segment", "late")),
            key: "again".into(),
        },
    ));
    assert!(matches!(reply, R::TagCommand(t) if t.status && t.work_id.is_some()));
    h.clock.advance_millis(10_000);
    assert!(reminders_fired(&h.fire()).is_empty());
}

fn fired_ids(h: &Harness) -> Vec<String> {
    let mut ids: Vec<String> = reminders_fired(&h.fire())
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn tag_reminders_apply_to_customers_tagged_later_and_leave_untagged_ones() {
    let h = harness();
    let early = h.create("+254700000013");
    let late = h.create("+254700000014");
    let leaver = h.create("+254700000015");
    h.tag(&early, "plan", "gold", None);
    h.tag(&leaver, "plan", "gold", None);
    let work_id = add_tag_reminder(&h, ("plan", "gold"), reminder("renew", T0 + 10_000, 0));
    h.tag(&late, "plan", "gold", None);
    // Replacing the tag's value drops the reminders the old value brought.
    h.tag(&leaver, "plan", "silver", None);
    h.clock.advance_millis(10_000);
    let fired = reminders_fired(&h.fire());
    let mut ids: Vec<&str> = fired.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort();
    let mut expected = vec![early.as_str(), late.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    for (_, n) in &fired {
        assert_eq!(n.work_id.as_deref(), Some(work_id.as_str()));
        let due = n.reminder.as_ref().and_then(|r| r.remind_at.as_ref());
        assert_eq!(due, Some(&to_timestamp(T0 + 10_000)));
    }
    // Its time has passed and it does not repeat: customers tagged now do not get it.
    let after = h.create("+254700000016");
    h.tag(&after, "plan", "gold", None);
    h.clock.advance_millis(60_000);
    assert!(fired_ids(&h).is_empty());
}

#[test]
fn a_tag_reminder_stops_for_a_customer_whose_tag_expired() {
    let h = harness();
    let keeps = h.create("+254700000030");
    let expires = h.create("+254700000031");
    h.tag(&keeps, "trial", "on", None);
    h.tag(&expires, "trial", "on", Some(T0 + 5_000));
    add_tag_reminder(&h, ("trial", "on"), reminder("ends", T0 + 10_000, 60));
    h.clock.advance_millis(10_000);
    // Past its expiry the tag is gone, and so is the reminder it brought; the other customer
    // keeps getting it, period after period.
    assert_eq!(fired_ids(&h), vec![keeps.clone()]);
    h.clock.advance_millis(60_000);
    assert_eq!(fired_ids(&h), vec![keeps.clone()]);
}

#[test]
fn repeating_tag_reminders_reach_late_customers_from_the_next_period_until_cancelled() {
    let h = harness();
    let first = h.create("+254700000017");
    h.tag(&first, "plan", "gold", None);
    add_tag_reminder(&h, ("plan", "gold"), reminder("monthly", T0 + 1_000, 60));
    h.clock.advance_millis(1_000);
    assert_eq!(fired_ids(&h), vec![first.clone()]);
    // Tagged between periods: joins at the next one, with no burst of missed ones.
    h.clock.advance_millis(30_000);
    let late = h.create("+254700000018");
    h.tag(&late, "plan", "gold", None);
    assert!(fired_ids(&h).is_empty());
    h.clock.advance_millis(30_000);
    let mut both = vec![first.clone(), late.clone()];
    both.sort();
    assert_eq!(fired_ids(&h), both);
    // Deleting the tag stops it for that customer.
    let r = h.update(E::DeleteCustomerTag(p::DeleteCustomerTagCommand {
        customer: Some(p::delete_customer_tag_command::Customer::CustomerId(
            late.clone(),
        )),
        deletions: vec!["plan".into()],
    }));
    assert!(r.status, "{}", r.description);
    h.clock.advance_millis(60_000);
    assert_eq!(fired_ids(&h), vec![first.clone()]);
    // Cancelling by tag stops it for everyone, including customers tagged afterwards.
    let (reply, _) = h.run(E::CancelCustomerReminderTag(
        p::CancelCustomerReminderTagCommand {
            tag: Some(mapping("plan", "gold")),
            key: "monthly".into(),
        },
    ));
    assert!(matches!(reply, R::TagCommand(t) if t.status));
    h.tag(&late, "plan", "gold", None);
    h.clock.advance_millis(120_000);
    assert!(fired_ids(&h).is_empty());
}

#[test]
fn a_deleted_customers_reminders_and_tags_die_with_it() {
    let h = harness();
    let a = h.create("+254700000040");
    h.tag(&a, "t", "1", None);
    add_reminder(&h, &a, reminder("r", T0 + 1_000, 0));
    let r = h.update(E::DeleteCustomer(p::DeleteCustomerCommand {
        customer: Some(p::delete_customer_command::Customer::CustomerId(a.clone())),
    }));
    assert!(r.status);
    // The next customer takes over the freed storage slot.
    let b = h.create("+254700000041");
    add_reminder(&h, &b, reminder("r", T0 + 5_000, 0));
    h.clock.advance_millis(1_000);
    assert!(reminders_fired(&h.fire()).is_empty());
    let (reply, effects) = h.run(E::SendMessageTag(p::SendMessageTagCommand {
        tag: Some(mapping("t", "1")),
        channel_number: Some(sms()),
        message: Some(text_message("x")),
    }));
    assert!(matches!(reply, R::TagCommand(t) if t.status));
    assert!(
        sim_entries(&effects).is_empty(),
        "nobody carries the tag any more"
    );
    h.clock.advance_millis(4_000);
    let fired = reminders_fired(&h.fire());
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].0, b);
}
