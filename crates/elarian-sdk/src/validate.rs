//! Argument checks run before a command is sent, so bad input fails fast with a typed error
//! instead of a round trip and an opaque server refusal.

use std::time::SystemTime;

use crate::error::Error;
use crate::models::{
    Cash, CustomerNumber, MessagingChannelNumber, PaymentChannelNumber, Reminder, SecondaryId, Tag,
};

pub(crate) fn invalid(argument: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        argument,
        reason: reason.into(),
    }
}

pub(crate) fn non_empty(argument: &'static str, value: &str) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(invalid(argument, "must not be empty"));
    }
    Ok(())
}

pub(crate) fn customer_number(argument: &'static str, n: &CustomerNumber) -> Result<(), Error> {
    non_empty(argument, &n.number)
}

pub(crate) fn channel_number(
    argument: &'static str,
    n: &MessagingChannelNumber,
) -> Result<(), Error> {
    non_empty(argument, &n.number)
}

pub(crate) fn payment_channel(
    argument: &'static str,
    n: &PaymentChannelNumber,
) -> Result<(), Error> {
    non_empty(argument, &n.number)
}

pub(crate) fn cash(argument: &'static str, c: &Cash) -> Result<(), Error> {
    if c.currency_code.trim().is_empty() {
        return Err(invalid(argument, "currency code must not be empty"));
    }
    if !c.amount.is_finite() {
        return Err(invalid(argument, "amount must be a finite number"));
    }
    if c.amount < 0.0 {
        return Err(invalid(argument, "amount must not be negative"));
    }
    Ok(())
}

pub(crate) fn reminder(r: &Reminder) -> Result<(), Error> {
    non_empty("reminder.key", &r.key)?;
    if r.interval.is_none() && r.remind_at < SystemTime::now() {
        return Err(invalid(
            "reminder.remind_at",
            "is in the past and the reminder has no interval, so it would never fire",
        ));
    }
    if r.interval.is_some_and(|i| i.is_zero()) {
        return Err(invalid("reminder.interval", "must be longer than zero"));
    }
    Ok(())
}

pub(crate) fn tag(argument: &'static str, t: &Tag) -> Result<(), Error> {
    if t.key.trim().is_empty() {
        return Err(invalid(argument, "tag key must not be empty"));
    }
    Ok(())
}

pub(crate) fn secondary_id(argument: &'static str, s: &SecondaryId) -> Result<(), Error> {
    if s.key.trim().is_empty() {
        return Err(invalid(argument, "secondary id key must not be empty"));
    }
    if s.value.trim().is_empty() {
        return Err(invalid(argument, "secondary id value must not be empty"));
    }
    Ok(())
}

pub(crate) fn keys<'a>(
    argument: &'static str,
    keys: impl IntoIterator<Item = &'a String>,
) -> Result<(), Error> {
    for key in keys {
        if key.trim().is_empty() {
            return Err(invalid(argument, "keys must not be empty"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn argument_of(e: Error) -> &'static str {
        match e {
            Error::InvalidArgument { argument, .. } => argument,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_cash() {
        for bad in [
            Cash::new("KES", f64::NAN),
            Cash::new("KES", f64::INFINITY),
            Cash::new("KES", -1.0),
            Cash::new(" ", 1.0),
        ] {
            assert_eq!(argument_of(cash("value", &bad).unwrap_err()), "value");
        }
        assert!(cash("value", &Cash::new("KES", 0.0)).is_ok());
    }

    #[test]
    fn rejects_reminders_that_would_never_fire() {
        let past = Reminder::new("k", UNIX_EPOCH);
        assert_eq!(
            argument_of(reminder(&past).unwrap_err()),
            "reminder.remind_at"
        );
        assert!(reminder(&past.clone().every(Duration::from_secs(60))).is_ok());
        let zero =
            Reminder::new("k", SystemTime::now() + Duration::from_secs(60)).every(Duration::ZERO);
        assert_eq!(
            argument_of(reminder(&zero).unwrap_err()),
            "reminder.interval"
        );
        let no_key = Reminder::new("", SystemTime::now() + Duration::from_secs(60));
        assert_eq!(argument_of(reminder(&no_key).unwrap_err()), "reminder.key");
    }

    #[test]
    fn rejects_empty_identifiers() {
        assert!(customer_number("n", &CustomerNumber::cellular("")).is_err());
        assert!(customer_number("n", &CustomerNumber::cellular("+254700000000")).is_ok());
        assert!(tag("tag", &Tag::new("", "v")).is_err());
        assert!(tag("tag", &Tag::new("k", "")).is_ok());
        assert!(secondary_id("id", &SecondaryId::new("k", "")).is_err());
        assert!(keys("keys", &["a".to_string(), "".to_string()]).is_err());
        assert!(non_empty("x", "  ").is_err());
    }
}
