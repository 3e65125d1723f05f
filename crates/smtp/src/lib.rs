//! Sans-IO SMTP for Postern (placeholder crate doc, rewritten below).
#![forbid(unsafe_code)]

pub mod client;
pub mod privacy;
pub mod reply;

pub use privacy::PrivacyFlags;
pub use reply::{EnhancedCode, Reply};
