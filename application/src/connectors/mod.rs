//! Connectors to other systems of the seeds: provisioning webhook
//! subscriptions at Siigo (whose webhooks then arrive through a source).

mod siigo;

#[cfg(test)]
mod tests;

pub use siigo::{
    partner_id_for, siigo_topic, SiigoEvents, SiigoProvision, SiigoService, SiigoTarget,
    UpstreamView, DEFAULT_PARTNER_ID, DEFAULT_SIIGO_BASE_URL, SEALING_CONTEXT_UPSTREAM,
};
