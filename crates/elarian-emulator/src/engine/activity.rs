//! Customer activity: app-reported events grouped in activity sessions.

use elarian_proto::{
    ActivitySessionState, CustomerActivity, CustomerActivityCommand, CustomerActivityNotification,
    CustomerActivityReply, app_to_server_command_reply::Entry as ReplyEntry,
    server_to_app_customer_notification::Entry as CustomerEntry,
};

use super::{Selector, Tx};
use crate::clock::to_timestamp;
use crate::record::trim_front;

/// Activities kept per activity session.
const MAX_ACTIVITIES: usize = 100;

impl Tx<'_> {
    pub(super) fn customer_activity(&mut self, c: CustomerActivityCommand) -> ReplyEntry {
        let result = (|| {
            let number = c
                .customer_number
                .clone()
                .ok_or("customer_number is required")?;
            if c.key.is_empty() || c.source.is_empty() {
                return Err("activity key and source are required".to_string());
            }
            let id = self.resolve(Selector::Number(number.clone()), true)?;
            let now = to_timestamp(self.now);
            let activity = CustomerActivity {
                key: c.key.clone(),
                properties: c.properties.clone(),
                created_at: Some(now),
            };
            let app = self.app.to_owned();
            let limit = self.cfg.history_limit;
            let mut trimmed = 0;
            if let Some(rec) = self.customer_mut(&id) {
                let e = rec.extra_mut();
                let mut sessions = e.activity();
                let pos = sessions
                    .iter()
                    .position(|s| s.source == c.source && s.session_id == c.session_id);
                let session = match pos {
                    Some(i) => &mut sessions[i],
                    None => {
                        sessions.push(ActivitySessionState {
                            customer_number: Some(number.clone()),
                            source: c.source.clone(),
                            session_id: c.session_id.clone(),
                            app_id: app.clone(),
                            activities: vec![],
                            created_at: Some(now),
                            updated_at: Some(now),
                        });
                        let last = sessions.len() - 1;
                        &mut sessions[last]
                    }
                };
                session.activities.push(activity.clone());
                trimmed += trim_front(&mut session.activities, MAX_ACTIVITIES);
                session.updated_at = Some(now);
                trimmed += trim_front(&mut sessions, limit);
                e.set_activity(&sessions);
            }
            self.trimmed(trimmed);
            self.notify_customer(
                &app,
                &id,
                CustomerEntry::CustomerActivity(CustomerActivityNotification {
                    customer_number: Some(number),
                    source: c.source,
                    session_id: c.session_id,
                    activity: Some(activity),
                }),
                false,
            );
            Ok(id)
        })();
        ReplyEntry::CustomerActivity(match result {
            Ok(id) => CustomerActivityReply {
                status: true,
                description: "activity recorded".into(),
                customer_id: Some(id),
            },
            Err(description) => CustomerActivityReply {
                status: false,
                description,
                customer_id: None,
            },
        })
    }
}
