//! The S3 server's clock, read from the `Date` header of its answers, so a
//! machine can tell whether its own clock is fit to sign with (see
//! [`crate::ClockReading`]). An SDK interceptor notes the `Date` of every
//! answer with the local time it arrived.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;

use crate::clock::ClockReading;

/// An HTTP `Date` is to the second.
const DATE_RESOLUTION: Duration = Duration::from_secs(1);

/// The latest answer's `Date`, and when it arrived.
#[derive(Clone, Debug, Default)]
pub(crate) struct ServerDates(Arc<Mutex<Option<(SystemTime, SystemTime)>>>);

impl ServerDates {
    /// The reading from an exchange sent at `sent`, if an answer with a
    /// `Date` arrived since.
    pub fn reading_since(&self, sent: SystemTime) -> Option<ClockReading> {
        let (received, date) = (*self.0.lock().unwrap())?;
        (received >= sent)
            .then(|| ClockReading::from_exchange(sent, received, date, DATE_RESOLUTION))
    }
}

impl Intercept for ServerDates {
    fn name(&self) -> &'static str {
        "ServerDates"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let received = SystemTime::now();
        let date = context.response().headers().get("date");
        if let Some(date) = date.and_then(|d| httpdate::parse_http_date(d).ok()) {
            *self.0.lock().unwrap() = Some((received, date));
        }
        Ok(())
    }
}
