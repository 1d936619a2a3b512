//! Effects: the notifications a command or timer causes, queued for delivery after it.

use elarian_proto::{
    ServerToAppCustomerNotification, ServerToAppNotification, ServerToSimulatorNotification,
    server_to_app_customer_notification::Entry as CustomerEntry,
};

use crate::clock::to_timestamp;

use super::Tx;

/// A notification for an app.
#[derive(Clone, Debug, PartialEq)]
pub struct AppNotice {
    /// Org id.
    pub org_id: String,
    /// App id.
    pub app_id: String,
    /// The customer the notification is about (for refreshing its app data at delivery).
    pub customer_id: Option<String>,
    /// With a data dir, the id of its durable pending record, which delivery settles once the
    /// notification is answered or refused.
    pub pending: Option<u64>,
    /// The notification.
    pub notification: ServerToAppNotification,
    /// True when the sender waits for the app's reply (a received message whose reply message
    /// goes back to the simulator).
    pub awaits_reply: bool,
}

/// A notification for the simulators of an org.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatorNotice {
    /// Org id.
    pub org_id: String,
    /// With a data dir, the id of its durable pending record (see [`AppNotice::pending`]).
    pub pending: Option<u64>,
    /// The notification.
    pub notification: ServerToSimulatorNotification,
}

/// Something to deliver as a consequence of a command or a timer.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// To the app's notification-enabled connections.
    App(AppNotice),
    /// To the org's simulator connections.
    Simulator(SimulatorNotice),
}

impl Tx<'_> {
    /// Queues a customer notification for `app`.
    pub(crate) fn notify_customer(
        &mut self,
        app: &str,
        customer_id: &str,
        entry: CustomerEntry,
        awaits_reply: bool,
    ) -> usize {
        // The record is often cold here (a fired reminder): its apps alone are decoded.
        let app_data = self.org().customers.app_data(customer_id, app);
        let notification = ServerToAppNotification {
            entry: Some(elarian_proto::server_to_app_notification::Entry::Customer(
                ServerToAppCustomerNotification {
                    org_id: self.org_id(),
                    app_id: app.to_owned(),
                    customer_id: customer_id.to_owned(),
                    app_data,
                    created_at: Some(to_timestamp(self.now)),
                    entry: Some(entry),
                },
            )),
        };
        self.effects.push(Effect::App(AppNotice {
            org_id: self.org_id(),
            app_id: app.to_owned(),
            customer_id: Some(customer_id.to_owned()),
            pending: None,
            notification,
            awaits_reply,
        }));
        self.effects.len() - 1
    }

    /// Queues a notification for the org's simulators.
    pub(crate) fn notify_simulator(
        &mut self,
        entry: elarian_proto::server_to_simulator_notification::Entry,
    ) {
        self.effects.push(Effect::Simulator(SimulatorNotice {
            org_id: self.org_id(),
            pending: None,
            notification: ServerToSimulatorNotification { entry: Some(entry) },
        }));
    }
}
