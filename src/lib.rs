//! xmppdns: plan, push and audit the DNS records of XMPP federation for Lync Server 2013 /
//! Skype for Business Edge pools.

pub mod app;
pub mod audit;
pub mod clock;
pub mod dns;
pub mod drill;
pub mod error;
pub mod failover;
pub mod failpoint;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod journal;
pub mod lock;
pub mod monitor;
pub mod plan;
pub mod probe;
pub mod provider;
pub mod records;
pub mod topology;

pub use error::Error;
