//! Payments: transfers between purses, wallets and mobile money, settlement, throttling.

use super::*;

#[test]
fn purse_to_wallet_and_back_settle_after_the_delay_and_check_funds() {
    let h = harness();
    let id = h.create("+254700000022");
    let start = h.purse();
    let (r, effects) = h.pay(purse(), wallet(&id, "savings"), kes(100.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32, "{}", r.description);
    assert!(payment_statuses(&effects).is_empty());
    let txn = r.transaction_id.unwrap();
    assert_eq!(h.purse(), (start.0 - 100.0, start.1), "held until settled");
    h.clock.advance_millis(SETTLE - 1);
    assert!(
        payment_statuses(&h.fire()).is_empty(),
        "not before the delay"
    );
    h.clock.advance_millis(1);
    assert_eq!(
        payment_statuses(&h.fire()),
        vec![(id.clone(), txn, PaymentStatus::Success as i32)]
    );
    assert_eq!(h.purse(), (start.0 - 100.0, start.1 - 100.0));
    let wallets = h.state(&id).payment_state.unwrap().wallets;
    assert_eq!(wallets["savings"].available.as_ref().unwrap().amount, 100.0);

    let (r, _) = h.pay(wallet(&id, "savings"), purse(), kes(150.0));
    assert_eq!(r.status, PaymentStatus::InsufficientFunds as i32);
    let (r, _) = h.pay(wallet(&id, "savings"), purse(), kes(40.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32);
    let txn = r.transaction_id.unwrap();
    let held = &h.state(&id).payment_state.unwrap().wallets["savings"];
    assert_eq!(held.available.as_ref().unwrap().amount, 60.0);
    assert_eq!(held.actual.as_ref().unwrap().amount, 100.0);
    assert_eq!(held.pending[&txn].value, Some(kes(40.0)), "the hold shows");
    h.clock.advance_millis(SETTLE);
    h.fire();
    assert_eq!(h.purse(), (start.0 - 60.0, start.1 - 60.0));
    let settled = &h.state(&id).payment_state.unwrap().wallets["savings"];
    assert_eq!(settled.actual.as_ref().unwrap().amount, 60.0);
    assert!(settled.pending.is_empty());
}

#[test]
fn purse_to_purse_settles_with_a_purse_notification() {
    let mut config = EmulatorConfig::default();
    config.orgs[0].purses.push(PurseConfig {
        id: "el_prs_second".into(),
        currency: "KES".into(),
        balance: 0.0,
    });
    let h = harness_with(config);
    let second = p::PaymentCounterParty {
        party: Some(p::payment_counter_party::Party::Purse(
            p::PaymentPurseCounterParty {
                purse_id: "el_prs_second".into(),
            },
        )),
    };
    let (r, _) = h.pay(purse(), second, kes(5.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32, "{}", r.description);
    h.clock.advance_millis(SETTLE);
    assert_eq!(
        payment_statuses(&h.fire()),
        vec![(
            TEST_PURSE_ID.to_string(),
            r.transaction_id.unwrap(),
            PaymentStatus::Success as i32
        )]
    );
    assert_eq!(
        h.engine.purse_balance(TEST_ORG_ID, "el_prs_second"),
        Some((5.0, 5.0))
    );
}

#[test]
fn payouts_settle_by_themselves_unless_a_simulator_settles_first() {
    let h = harness();
    let start = h.purse();
    let (r, effects) = h.pay(purse(), mobile("+254700000060"), kes(20.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32);
    assert!(matches!(
        sim_entries(&effects).as_slice(),
        [SE::SendCustomerPayment(_)]
    ));
    let customer = r.credit_customer_id.clone().unwrap();
    let txn = r.transaction_id.unwrap();
    h.clock.advance_millis(SETTLE);
    assert_eq!(
        payment_statuses(&h.fire()),
        vec![(customer.clone(), txn.clone(), PaymentStatus::Success as i32)]
    );
    assert_eq!(h.purse(), (start.0 - 20.0, start.1 - 20.0));
    let (late, _) = h.settle(&txn, PaymentStatus::Failed);
    assert!(!late.status, "a settled payout stays settled");

    // A simulator may settle first; its time then passes without a second notification.
    let (r, _) = h.pay(purse(), mobile("+254700000060"), kes(5.0));
    let txn = r.transaction_id.unwrap();
    let (reply, effects) = h.settle(&txn, PaymentStatus::Rejected);
    assert!(reply.status, "{}", reply.description);
    assert_eq!(payment_statuses(&effects).len(), 1);
    h.clock.advance_millis(SETTLE);
    assert!(payment_statuses(&h.fire()).is_empty());
    assert_eq!(h.purse(), (start.0 - 20.0, start.1 - 20.0), "hold released");
}

#[test]
fn payments_to_configured_payees_fail_with_the_configured_status() {
    let mut config = EmulatorConfig::default();
    config.payments.settle_delay_ms = 0;
    config.payments.fail = vec![
        PaymentFailure::new("+2547000000*", "insufficient_funds"),
        PaymentFailure::new("broke-*", "failed"),
    ];
    let h = harness_with(config);
    let start = h.purse();
    let (r, _) = h.pay(purse(), mobile("+254700000061"), kes(9.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32);
    let customer = r.credit_customer_id.clone().unwrap();
    assert_eq!(
        payment_statuses(&h.fire()),
        vec![(
            customer.clone(),
            r.transaction_id.unwrap(),
            PaymentStatus::InsufficientFunds as i32
        )]
    );
    assert_eq!(h.purse(), start, "the hold is released");
    let (r, _) = h.pay(purse(), wallet(&customer, "broke-1"), kes(3.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32);
    assert_eq!(
        payment_statuses(&h.fire())[0].2,
        PaymentStatus::Failed as i32
    );
    let (r, _) = h.pay(purse(), mobile("+254711000062"), kes(4.0));
    let fired = payment_statuses(&h.fire());
    assert_eq!(fired[0].1, r.transaction_id.unwrap());
    assert_eq!(
        fired[0].2,
        PaymentStatus::Success as i32,
        "other payees are paid"
    );
    assert_eq!(h.purse(), (start.0 - 4.0, start.1 - 4.0));
}

#[test]
fn too_many_unsettled_payments_are_throttled_before_money_moves() {
    let mut config = EmulatorConfig::default();
    config.payments.max_unsettled = 2;
    let h = harness_with(config);
    let start = h.purse();
    for _ in 0..2 {
        let (r, _) = h.pay(purse(), mobile("+254700000063"), kes(1.0));
        assert_eq!(r.status, PaymentStatus::Queued as i32);
    }
    let (r, _) = h.pay(purse(), mobile("+254700000063"), kes(1.0));
    assert_eq!(
        r.status,
        PaymentStatus::Throttled as i32,
        "{}",
        r.description
    );
    assert_eq!(h.purse(), (start.0 - 2.0, start.1));
    // Checkouts wait for the customer, not for the queue.
    let (r, _) = h.pay(mobile("+254700000063"), purse(), kes(1.0));
    assert_eq!(r.status, PaymentStatus::PendingConfirmation as i32);
    h.clock.advance_millis(SETTLE);
    h.fire();
    let (r, _) = h.pay(purse(), mobile("+254700000063"), kes(1.0));
    assert_eq!(
        r.status,
        PaymentStatus::Queued as i32,
        "room again once settled"
    );
}

#[test]
fn a_simulator_settles_its_own_payment_by_its_own_id() {
    let h = harness();
    let start = h.purse();
    let out = h.simulate(p::simulator_to_server_command::Entry::ReceivePayment(
        p::ReceivePaymentSimulatorCommand {
            transaction_id: "mpesa-pending-1".into(),
            channel_number: Some(p::PaymentChannelNumber {
                channel: p::PaymentChannel::Cellular as i32,
                number: TEST_PAYMENT_CHANNEL.into(),
            }),
            customer_number: "+254700000064".into(),
            value: Some(kes(80.0)),
            status: PaymentStatus::PendingValidation as i32,
        },
    ));
    assert!(out.reply.status, "{}", out.reply.description);
    let received = app_entries(&out.effects)
        .into_iter()
        .find_map(|(id, e)| match e {
            CE::ReceivedPayment(r) => Some((id, r)),
            _ => None,
        })
        .expect("received payment notification");
    let (customer, received) = received;
    assert_ne!(received.transaction_id, "mpesa-pending-1");
    assert_eq!(h.purse(), start, "nothing arrives while pending");
    // Not settled by the emulator: the payment is the simulator's.
    h.clock.advance_millis(SETTLE);
    assert!(payment_statuses(&h.fire()).is_empty());

    let (reply, effects) = h.settle("mpesa-pending-1", PaymentStatus::Success);
    assert!(reply.status, "{}", reply.description);
    assert_eq!(
        payment_statuses(&effects),
        vec![(
            customer.clone(),
            received.transaction_id.clone(),
            PaymentStatus::Success as i32
        )],
        "the app hears of it under the id it was told"
    );
    assert_eq!(h.purse(), (start.0 + 80.0, start.1 + 80.0));
    let (again, _) = h.settle(&received.transaction_id, PaymentStatus::Success);
    assert!(!again.status, "both ids name the same, settled, payment");
    let log = h.state(&customer).payment_state.unwrap().transaction_log;
    assert_eq!(
        log[0].provider_transaction_id.as_deref(),
        Some("mpesa-pending-1")
    );
}

#[test]
fn payments_are_validated() {
    let h = harness();
    let id = h.create("+254700000023");
    let unknown = p::PaymentCounterParty {
        party: Some(p::payment_counter_party::Party::Purse(
            p::PaymentPurseCounterParty {
                purse_id: "el_prs_nope".into(),
            },
        )),
    };
    assert_eq!(
        h.pay(unknown, wallet(&id, "w"), kes(1.0)).0.status,
        PaymentStatus::InvalidPurse as i32
    );
    for bad in [0.0, -5.0, f64::NAN, f64::INFINITY] {
        assert_eq!(
            h.pay(purse(), wallet(&id, "w"), kes(bad)).0.status,
            PaymentStatus::InvalidRequest as i32
        );
    }
    let usd = p::Cash {
        currency_code: "USD".into(),
        amount: 1.0,
    };
    assert_eq!(
        h.pay(purse(), wallet(&id, "w"), usd).0.status,
        PaymentStatus::InvalidRequest as i32
    );
    assert_eq!(
        h.pay(wallet(&id, "missing"), purse(), kes(1.0)).0.status,
        PaymentStatus::InvalidWallet as i32
    );
    let huge = kes(TEST_PURSE_BALANCE * 2.0);
    assert_eq!(
        h.pay(purse(), wallet(&id, "w"), huge).0.status,
        PaymentStatus::InsufficientFunds as i32
    );
}

#[test]
fn checkout_waits_for_the_simulator_then_credits_the_purse() {
    let h = harness();
    let start = h.purse();
    let (r, effects) = h.pay(mobile("+254700000024"), purse(), kes(250.0));
    assert_eq!(r.status, PaymentStatus::PendingConfirmation as i32);
    let txn = r.transaction_id.unwrap();
    let customer_id = r.debit_customer_id.unwrap();
    let sims = sim_entries(&effects);
    let [SE::CheckoutPayment(c)] = sims.as_slice() else {
        panic!("expected a checkout, got {sims:?}")
    };
    assert_eq!(c.transaction_id, txn);
    assert_eq!(c.value, Some(kes(250.0)));
    assert_eq!(h.purse(), start, "nothing moves before confirmation");
    let pending = h
        .state(&customer_id)
        .payment_state
        .unwrap()
        .pending_transactions;
    assert_eq!(pending.len(), 1);

    let (reply, effects) = h.settle(&txn, PaymentStatus::Success);
    assert!(reply.status, "{}", reply.description);
    assert_eq!(h.purse(), (start.0 + 250.0, start.1 + 250.0));
    assert!(
        app_entries(&effects)
            .iter()
            .any(|(id, e)| id == &customer_id
                && matches!(e, CE::PaymentStatus(s) if s.transaction_id == txn
            && s.status == PaymentStatus::Success as i32))
    );
    let (again, _) = h.settle(&txn, PaymentStatus::Success);
    assert!(!again.status, "settled transactions stay settled");
    let ps = h.state(&customer_id).payment_state.unwrap();
    assert!(ps.pending_transactions.is_empty());
    assert_eq!(ps.transaction_log.len(), 1);
}

#[test]
fn payout_holds_funds_and_a_failure_releases_them() {
    let h = harness();
    let start = h.purse();
    let (r, effects) = h.pay(purse(), mobile("+254700000025"), kes(70.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32);
    assert!(matches!(
        sim_entries(&effects).as_slice(),
        [SE::SendCustomerPayment(_)]
    ));
    assert_eq!(h.purse(), (start.0 - 70.0, start.1));
    h.settle(r.transaction_id.as_ref().unwrap(), PaymentStatus::Failed);
    assert_eq!(h.purse(), start);

    let (r, _) = h.pay(purse(), mobile("+254700000025"), kes(30.0));
    h.settle(r.transaction_id.as_ref().unwrap(), PaymentStatus::Success);
    assert_eq!(h.purse(), (start.0 - 30.0, start.1 - 30.0));
}

#[test]
fn received_payment_credits_the_purse_and_notifies() {
    let h = harness();
    let start = h.purse();
    let out = h.simulate(p::simulator_to_server_command::Entry::ReceivePayment(
        p::ReceivePaymentSimulatorCommand {
            transaction_id: "mpesa-1".into(),
            channel_number: Some(p::PaymentChannelNumber {
                channel: p::PaymentChannel::Cellular as i32,
                number: TEST_PAYMENT_CHANNEL.into(),
            }),
            customer_number: "+254700000026".into(),
            value: Some(kes(500.0)),
            status: PaymentStatus::Success as i32,
        },
    ));
    assert!(out.reply.status, "{}", out.reply.description);
    assert_eq!(h.purse(), (start.0 + 500.0, start.1 + 500.0));
    assert!(app_entries(&out.effects).iter().any(|(_, e)| matches!(e,
        CE::ReceivedPayment(r) if r.purse_id == TEST_PURSE_ID && r.value == Some(kes(500.0)))));
}

#[test]
fn a_pending_payment_settles_on_the_customer_that_adopted_its_payee() {
    let h = harness();
    let a = h.create("+254700000065");
    let b = h.create("+254700000066");
    let (r, _) = h.pay(purse(), wallet(&b, "loan"), kes(30.0));
    assert_eq!(r.status, PaymentStatus::Queued as i32);
    let r2 = h.update(E::AdoptCustomerState(p::AdoptCustomerStateCommand {
        customer_id: a.clone(),
        other_customer: Some(
            p::adopt_customer_state_command::OtherCustomer::OtherCustomerId(b.clone()),
        ),
    }));
    assert!(r2.status, "{}", r2.description);
    h.clock.advance_millis(SETTLE);
    assert_eq!(
        payment_statuses(&h.fire()),
        vec![(
            a.clone(),
            r.transaction_id.unwrap(),
            PaymentStatus::Success as i32
        )]
    );
    let wallets = h.state(&a).payment_state.unwrap().wallets;
    assert_eq!(wallets["loan"].actual.as_ref().unwrap().amount, 30.0);
}
