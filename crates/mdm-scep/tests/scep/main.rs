//! Integration tests for mdm-scep (one binary): round trips with our own
//! client, real captures, the Debian `scepclient`, bad input, inspect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bad_input;
mod common;
mod fixtures;
mod inspect;
mod interop_openssl;
mod interop_scepclient;
mod roundtrip;
