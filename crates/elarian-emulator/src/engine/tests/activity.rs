//! Customer activity.

use super::*;

#[test]
fn activity_is_recorded_and_notified() {
    let h = harness();
    let (reply, effects) = h.run(E::CustomerActivity(p::CustomerActivityCommand {
        customer_number: Some(phone("+254700000030")),
        source: "web".into(),
        session_id: "s1".into(),
        key: "login".into(),
        properties: [("ip".to_string(), "1.2.3.4".to_string())]
            .into_iter()
            .collect(),
    }));
    let R::CustomerActivity(r) = reply else {
        panic!("wrong reply")
    };
    assert!(r.status);
    assert!(
        app_entries(&effects)
            .iter()
            .any(|(_, e)| matches!(e, CE::CustomerActivity(a) if a.source == "web"))
    );
    let sessions = h
        .state(&r.customer_id.unwrap())
        .activity_state
        .unwrap()
        .sessions;
    assert_eq!(sessions[0].activities[0].key, "login");
}
