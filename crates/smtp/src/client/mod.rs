//! The client side of SMTP, sans-IO (written next).
