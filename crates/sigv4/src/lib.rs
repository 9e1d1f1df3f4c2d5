//! AWS Signature Version 4 verification for header-signed requests.
//!
//! Tresor speaks the AWS KMS wire protocol, so clients (the AWS SDKs and CLI)
//! authenticate every request with SigV4: they hash a canonical form of the
//! request, sign it with a key derived from their secret access key, and send
//! the result in the `Authorization` header. This crate redoes that
//! computation on the server side and compares the result. It is pure: no
//! I/O, no clock reads (the caller passes "now"), no async.
//!
//! # Flow
//!
//! 1. [`parse_authorization`] turns the `Authorization` header into an
//!    [`Authorization`] (access key id, credential scope, signed header list,
//!    signature).
//! 2. [`request_time`] finds the signing time (`X-Amz-Date`, else `Date`) and
//!    [`check_clock_skew`] rejects requests outside the allowed window.
//! 3. The caller looks up the secret for `access_key_id` and derives a
//!    [`SigningKey`] for the scope named in the header.
//! 4. [`verify`] checks the scope against the request time, rebuilds the
//!    canonical request and string to sign, and compares signatures in
//!    constant time.
//!
//! # Invariants
//!
//! - Only the `AWS4-HMAC-SHA256` algorithm in the `Authorization` header is
//!   accepted; presigned URLs (signature in the query string) and SigV4a are
//!   not handled here.
//! - Canonicalisation matches the `aws-sigv4` signer used by the AWS SDK for
//!   Rust byte for byte (the cross-check tests sign with it), including its
//!   query decoding where a raw `+` means a space.
//! - [`Error`]'s `Display` is the message AWS sends for the same failure, and
//!   [`Error::aws_error_code`] the AWS exception name, so the server can
//!   forward both unchanged.
//! - Secret material ([`SigningKey`] and the intermediate keys of its
//!   derivation) is zeroized on drop and never printed by `Debug`.
//! - Nothing here panics on request data: every lookup into input-derived
//!   data is checked.
//!
//! # Example
//!
//! ```
//! use tresor_sigv4::{
//!     Request, SigningKey, UriEncoding, check_clock_skew, parse_authorization, request_time,
//!     sha256_hex, verify,
//! };
//!
//! // `get-vanilla` from the AWS SigV4 test suite.
//! let headers = [
//!     ("Host", "example.amazonaws.com"),
//!     ("X-Amz-Date", "20150830T123600Z"),
//!     (
//!         "Authorization",
//!         "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
//!          SignedHeaders=host;x-amz-date, \
//!          Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
//!     ),
//! ];
//! let body_hash = sha256_hex(b"");
//! let request = Request {
//!     method: "GET",
//!     path: "/",
//!     query: "",
//!     headers: &headers,
//!     payload_sha256_hex: &body_hash,
//!     uri_encoding: UriEncoding::Double,
//! };
//!
//! let auth = parse_authorization(headers[2].1)?;
//! let time = request_time(&headers)?;
//! check_clock_skew(&time, time.unix_seconds + 60, 300)?;
//! // The server would look the secret up by `auth.access_key_id`.
//! let key = SigningKey::derive(
//!     b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
//!     &auth.date,
//!     &auth.region,
//!     &auth.service,
//! );
//! verify(&request, &auth, &time, &key)?;
//! # Ok::<(), tresor_sigv4::Error>(())
//! ```
#![forbid(unsafe_code)]
// Request data must never be able to crash the server; slicing and indexing
// are the easy way to get that wrong, so they are banned outside tests.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod authorization;
mod canonical;
mod clock;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod key;
mod verify;

pub use authorization::{ALGORITHM, Authorization, TERMINATOR, parse_authorization};
pub use canonical::{Request, UriEncoding, canonical_request, string_to_sign};
pub use clock::{RequestTime, check_clock_skew, request_time};
pub use error::Error;
pub use key::{SigningKey, sha256_hex};
pub use verify::{check_scope, verify};
