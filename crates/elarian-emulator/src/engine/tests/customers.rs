//! Customers: creation, lookup, tags, secondary ids, metadata, app data, adoption and deletion.

use super::*;

#[test]
fn customers_are_created_on_first_reference_and_found_again() {
    let h = harness();
    let id = h.create("+254700000001");
    assert!(id.starts_with("el_cst_"));
    assert_eq!(h.create("+254700000001"), id, "same number, same customer");
    let st = h.state(&id);
    assert_eq!(st.customer_id, id);
    let numbers = st.activity_state.unwrap().customer_numbers;
    assert_eq!(numbers[0].number, "+254700000001");
    assert_eq!(h.engine.customer_count(TEST_ORG_ID), 1);
}

#[test]
fn unknown_customer_id_gives_status_false_with_a_description() {
    let h = harness();
    let (reply, _) = h.run(E::GetCustomerState(p::GetCustomerStateCommand {
        customer: Some(p::get_customer_state_command::Customer::CustomerId(
            "el_cst_nope".into(),
        )),
    }));
    let R::GetCustomerState(r) = reply else {
        panic!("wrong reply")
    };
    assert!(!r.status);
    assert!(r.description.contains("el_cst_nope"));
    let r = h.update(E::DeleteCustomerTag(p::DeleteCustomerTagCommand {
        customer: Some(p::delete_customer_tag_command::Customer::CustomerId(
            "el_cst_nope".into(),
        )),
        deletions: vec!["x".into()],
    }));
    assert!(!r.status);
}

#[test]
fn missing_command_is_answered_unknown_command() {
    let h = harness();
    let out = h
        .engine
        .app_command(&h.app, AppToServerCommand { entry: None });
    let Some(R::UpdateCustomerState(r)) = out.reply.entry else {
        panic!("wrong reply")
    };
    assert!(!r.status);
    assert_eq!(r.description, "unknown command");
}

#[test]
fn tags_replace_by_key_expire_and_delete() {
    let h = harness();
    let id = h.create("+254700000002");
    h.tag(&id, "tier", "gold", None);
    h.tag(&id, "tier", "silver", None);
    h.tag(&id, "promo", "x", Some(T0 + 1_000));
    let tags = h.state(&id).identity_state.unwrap().tags;
    assert_eq!(tags.len(), 2);
    assert!(tags.contains(&never_expiring("tier", "silver")));
    h.clock.advance_millis(2_000);
    let tags = h.state(&id).identity_state.unwrap().tags;
    assert_eq!(
        tags,
        vec![never_expiring("tier", "silver")],
        "expired tag hidden"
    );
    let r = h.update(E::DeleteCustomerTag(p::DeleteCustomerTagCommand {
        customer: Some(p::delete_customer_tag_command::Customer::CustomerId(
            id.clone(),
        )),
        deletions: vec!["tier".into()],
    }));
    assert!(r.status);
    assert!(h.state(&id).identity_state.unwrap().tags.is_empty());
}

fn index_at(k: &str, v: &str, seconds: i64) -> p::CustomerIndex {
    p::CustomerIndex {
        mapping: Some(mapping(k, v)),
        expires_at: Some(p::prost_types::Timestamp { seconds, nanos: 0 }),
    }
}

#[test]
fn a_zero_or_negative_expiry_never_expires() {
    // The published JavaScript client sends `expiresAt: {seconds: 0}` on every tag and
    // secondary id that has no expiry.
    let h = harness();
    let id = h.create("+254700000040");
    let r = h.update(E::UpdateCustomerTag(p::UpdateCustomerTagCommand {
        customer: Some(p::update_customer_tag_command::Customer::CustomerId(
            id.clone(),
        )),
        updates: vec![index_at("tier", "gold", 0), index_at("segment", "b", -60)],
    }));
    assert!(r.status, "{}", r.description);
    let r = h.update(E::UpdateCustomerSecondaryId(
        p::UpdateCustomerSecondaryIdCommand {
            customer: Some(
                p::update_customer_secondary_id_command::Customer::CustomerId(id.clone()),
            ),
            updates: vec![index_at("passport", "P1", 0)],
        },
    ));
    assert!(r.status, "{}", r.description);
    h.clock.advance_millis(86_400_000);

    let identity = h.state(&id).identity_state.unwrap();
    assert_eq!(
        identity.tags,
        vec![
            never_expiring("tier", "gold"),
            never_expiring("segment", "b")
        ]
    );
    assert_eq!(
        identity.secondary_ids,
        vec![never_expiring("passport", "P1")]
    );
    // Still found by secondary id and by tag.
    let (reply, _) = h.run(E::GetCustomerState(p::GetCustomerStateCommand {
        customer: Some(p::get_customer_state_command::Customer::SecondaryId(
            mapping("passport", "P1"),
        )),
    }));
    let R::GetCustomerState(r) = reply else {
        panic!("wrong reply")
    };
    assert!(r.status, "{}", r.description);
    assert_eq!(r.data.unwrap().customer_id, id);
    let (reply, _) = h.run(E::AddCustomerReminderTag(
        p::AddCustomerReminderTagCommand {
            tag: Some(mapping("tier", "gold")),
            reminder: Some(reminder("nudge", T0 + 86_401_000, 0)),
        },
    ));
    assert!(matches!(reply, R::TagCommand(t) if t.status));
    h.clock.advance_millis(1_000);
    let fired = reminders_fired(&h.fire());
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].0, id);
}

#[test]
fn replies_carry_every_tag_with_an_expiry_and_a_value() {
    // The published JavaScript client reads `expiresAt.seconds` and `mapping.value.value` on
    // every tag and secondary id without checking they are there.
    let h = harness();
    let id = h.create("+254700000041");
    let bare = p::CustomerIndex {
        mapping: Some(IndexMapping {
            key: "vip".into(),
            value: None,
        }),
        expires_at: None,
    };
    let r = h.update(E::UpdateCustomerTag(p::UpdateCustomerTagCommand {
        customer: Some(p::update_customer_tag_command::Customer::CustomerId(
            id.clone(),
        )),
        updates: vec![bare, index("promo", "x", Some(T0 + 60_000))],
    }));
    assert!(r.status, "{}", r.description);
    let tags = h.state(&id).identity_state.unwrap().tags;
    assert_eq!(
        tags,
        vec![
            never_expiring("vip", ""),
            index("promo", "x", Some(T0 + 60_000))
        ],
        "no expiry reads as {{0, 0}}, a real expiry is kept"
    );

    // Reminders by tag carry the tag the same way.
    let work_id = add_tag_reminder(&h, ("vip", ""), reminder("r", T0 + 1_000, 0));
    h.clock.advance_millis(1_000);
    let fired = reminders_fired(&h.fire());
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].1.work_id.as_deref(), Some(work_id.as_str()));
    assert_eq!(fired[0].1.tag, Some(never_expiring("vip", "")));
}

#[test]
fn secondary_ids_identify_customers_uniquely() {
    let h = harness();
    let a = h.create("+254700000003");
    let b = h.create("+254700000004");
    let set = |id: &str| {
        h.update(E::UpdateCustomerSecondaryId(
            p::UpdateCustomerSecondaryIdCommand {
                customer: Some(
                    p::update_customer_secondary_id_command::Customer::CustomerId(id.into()),
                ),
                updates: vec![index("passport", "A123", None)],
            },
        ))
    };
    assert!(set(&a).status);
    let conflict = set(&b);
    assert!(!conflict.status, "a secondary id belongs to one customer");
    let st = match h
        .run(E::GetCustomerState(p::GetCustomerStateCommand {
            customer: Some(p::get_customer_state_command::Customer::SecondaryId(
                mapping("passport", "A123"),
            )),
        }))
        .0
    {
        R::GetCustomerState(r) => r.data.unwrap(),
        _ => panic!("wrong reply"),
    };
    assert_eq!(st.customer_id, a);
    let r = h.update(E::DeleteCustomerSecondaryId(
        p::DeleteCustomerSecondaryIdCommand {
            customer: Some(
                p::delete_customer_secondary_id_command::Customer::CustomerId(a.clone()),
            ),
            deletions: vec![mapping("passport", "A123")],
        },
    ));
    assert!(r.status);
    assert!(set(&b).status, "free again after deletion");
}

#[test]
fn metadata_updates_and_deletes() {
    let h = harness();
    let id = h.create("+254700000005");
    let r = h.update(E::UpdateCustomerMetadata(
        p::UpdateCustomerMetadataCommand {
            customer: Some(p::update_customer_metadata_command::Customer::CustomerId(
                id.clone(),
            )),
            updates: [
                ("name".to_string(), text("Ann")),
                ("age".into(), text("30")),
            ]
            .into_iter()
            .collect(),
        },
    ));
    assert!(r.status);
    let r = h.update(E::DeleteCustomerMetadata(
        p::DeleteCustomerMetadataCommand {
            customer: Some(p::delete_customer_metadata_command::Customer::CustomerId(
                id.clone(),
            )),
            deletions: vec!["age".into()],
        },
    ));
    assert!(r.status);
    let meta = h.state(&id).identity_state.unwrap().metadata;
    assert_eq!(meta.len(), 1);
    assert_eq!(meta["name"], text("Ann"));
}

#[test]
fn app_data_lease_locks_other_leases_until_update_or_90_seconds() {
    let h = harness();
    let id = h.create("+254700000006");
    let customer = || {
        Some(p::lease_customer_app_data_command::Customer::CustomerId(
            id.clone(),
        ))
    };
    let lease = || match h
        .run(E::LeaseCustomerAppData(p::LeaseCustomerAppDataCommand {
            customer: customer(),
        }))
        .0
    {
        R::LeaseCustomerAppData(r) => r,
        _ => panic!("wrong reply"),
    };
    let update = |v: &str| match h
        .run(E::UpdateCustomerAppData(p::UpdateCustomerAppDataCommand {
            customer: Some(p::update_customer_app_data_command::Customer::CustomerId(
                id.clone(),
            )),
            update: Some(text(v)),
        }))
        .0
    {
        R::UpdateCustomerAppData(r) => r,
        _ => panic!("wrong reply"),
    };
    assert!(update("v1").status);
    let first = lease();
    assert!(first.status);
    assert_eq!(first.value, Some(text("v1")));
    assert!(!lease().status, "locked while leased");
    assert!(update("v2").status, "an update releases the lease");
    let again = lease();
    assert!(again.status);
    assert_eq!(again.value, Some(text("v2")));
    h.clock.advance_millis(89_000);
    assert!(!lease().status);
    h.clock.advance_millis(1_000);
    assert!(lease().status, "the lease lapses after 90 s");
    match h
        .run(E::DeleteCustomerAppData(p::DeleteCustomerAppDataCommand {
            customer: Some(p::delete_customer_app_data_command::Customer::CustomerId(
                id.clone(),
            )),
        }))
        .0
    {
        R::UpdateCustomerAppData(r) => assert!(r.status),
        _ => panic!("wrong reply"),
    }
    assert_eq!(lease().value, None);
}

#[test]
fn adopt_merges_the_other_customer_and_retires_it() {
    let h = harness();
    let a = h.create("+254700000027");
    let b = h.create("+254700000028");
    h.tag(&b, "from", "b", None);
    add_reminder(&h, &b, reminder("r", T0 + 1_000, 0));
    let r = h.update(E::AdoptCustomerState(p::AdoptCustomerStateCommand {
        customer_id: a.clone(),
        other_customer: Some(
            p::adopt_customer_state_command::OtherCustomer::OtherCustomerId(b.clone()),
        ),
    }));
    assert!(r.status, "{}", r.description);
    assert_eq!(h.create("+254700000028"), a, "b's number now leads to a");
    let st = h.state(&a);
    assert!(
        st.identity_state
            .unwrap()
            .tags
            .contains(&never_expiring("from", "b"))
    );
    assert_eq!(h.engine.customer_count(TEST_ORG_ID), 1);
    h.clock.advance_millis(1_000);
    let fired = reminders_fired(&h.fire());
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].0, a, "adopted reminders fire for the adopter");
    let r = h.update(E::AdoptCustomerState(p::AdoptCustomerStateCommand {
        customer_id: a.clone(),
        other_customer: Some(
            p::adopt_customer_state_command::OtherCustomer::OtherCustomerId(a.clone()),
        ),
    }));
    assert!(!r.status);
}

#[test]
fn delete_customer_forgets_it() {
    let h = harness();
    let a = h.create("+254700000029");
    let r = h.update(E::DeleteCustomer(p::DeleteCustomerCommand {
        customer: Some(p::delete_customer_command::Customer::CustomerNumber(phone(
            "+254700000029",
        ))),
    }));
    assert!(r.status);
    assert_eq!(r.customer_id.as_deref(), Some(a.as_str()));
    assert_eq!(h.engine.customer_count(TEST_ORG_ID), 0);
    let r = h.update(E::DeleteCustomer(p::DeleteCustomerCommand {
        customer: Some(p::delete_customer_command::Customer::CustomerId(a.clone())),
    }));
    assert!(!r.status);
    assert_ne!(
        h.create("+254700000029"),
        a,
        "a new customer after deletion"
    );
}
