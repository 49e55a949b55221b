//! The system clock behind the application's `Clock` port.

use chrono::{DateTime, Utc};
use hookline_application::ports::Clock;

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
