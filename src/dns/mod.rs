//! The only place that touches the wire: TSIG, UPDATE messages, transfers, queries, transport.

pub mod tsig;
pub mod wire;
